"""Shared test set-up: the emulation marker, root checks and a clean machine."""

import os
import shutil
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), 'shared')
TEST_PREFIX = 'ect'   # every emulation test's names start with this
# In tests/vm/run.sh's guest under qemu's software emulation (TCG) the CPU is many times
# slower and its timing uneven: a check of a timing-born effect says so and is skipped.
SOFTWARE_EMULATED = os.environ.get('EDGECOLLAB_VM_ACCEL') == 'tcg'


def emulation_possible():
    """(possible, reason) for running Mininet here."""
    if os.geteuid() != 0:
        return False, 'emulation tests need root'
    for tool in ('mnexec', 'iperf3', 'tc', 'ethtool'):
        if not shutil.which(tool):
            return False, 'emulation tests need %s (run install.sh)' % tool
    return True, ''


def pytest_configure(config):
    config.addinivalue_line('markers', 'emulation: needs root and Mininet (a live network)')


def pytest_collection_modifyitems(config, items):
    possible, reason = emulation_possible()
    if possible:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if 'emulation' in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope='session', autouse=True)
def clean_machine():
    """Remove leftovers of an earlier killed test run before, and check after, the suite."""
    from edgecollab.topologies import cleanup
    # Never clean under a running emulation (another suite's): its names are live.
    owner = emulation_possible()[0] and not cleanup.lock_is_held()
    if owner:
        cleanup.clean(TEST_PREFIX)
    yield
    if owner and not cleanup.lock_is_held():
        assert not cleanup.owned_interfaces(TEST_PREFIX), 'the suite left interfaces behind'


def shared_path(*parts):
    """A path under ../shared, or skip the test with a reason when shared/ is absent."""
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        pytest.skip('%s is absent (tests with real traces need ../shared)' % path)
    return path


PYTHON = sys.executable


BROWSER_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu',
                 '--disable-background-networking', '--disable-component-update',
                 '--disable-sync', '--no-first-run', '--window-size=1400,1800',
                 '--force-device-scale-factor=1')


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium (Debian's chromium and chromium-driver) driven by Selenium, with
    a fresh profile; the test fails when Debian's packages are missing (install.sh
    installs them)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    chromium, driver = shutil.which('chromium'), shutil.which('chromedriver')
    assert chromium and driver, 'browser tests need chromium and chromium-driver: run install.sh'
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in BROWSER_FLAGS + ('--user-data-dir=%s' % (tmp_path / 'chromium-profile'),):
        options.add_argument(flag)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    session = webdriver.Chrome(options=options, service=Service(driver))
    yield session
    session.quit()
