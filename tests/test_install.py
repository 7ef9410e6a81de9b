"""The installation: every subpackage imports, also through the pip that Debian 12's
python3-venv brings (23.0.1, whose editable install without pyproject.toml ignored
setup.py's package_dir)."""

import os
import shutil
import subprocess
import sys

import edgecollab
from tests.conftest import REPO

DEBIAN_12_PIP = '23.0.1'


def test_the_installed_package_imports_every_module():
    done = subprocess.run([sys.executable, '-m', 'edgecollab.installcheck'], cwd='/',
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'modules import' in done.stdout


def test_an_editable_install_with_debian_12_pip_maps_every_layer(tmp_path):
    source = tmp_path / 'src'
    for folder in ('edgecollab',) + edgecollab.LAYERS:
        shutil.copytree(os.path.join(REPO, folder), source / folder,
                        ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('setup.py', 'pyproject.toml'):
        shutil.copy(os.path.join(REPO, name), source / name)
    venv = tmp_path / 'venv'
    python = str(venv / 'bin' / 'python')
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, timeout=300)
    for args in (['pip==' + DEBIAN_12_PIP], ['--no-deps', '-e', str(source)]):
        done = subprocess.run([python, '-m', 'pip', 'install', '-q',
                               '--disable-pip-version-check'] + args,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    # find_spec locates each layer's modules without importing their dependencies
    # (--no-deps: numpy and Mininet are not in this venv).
    probe = ('import importlib.util, edgecollab\n'
             'for layer in edgecollab.LAYERS:\n'
             '    assert importlib.util.find_spec("edgecollab." + layer), layer\n'
             'assert importlib.util.find_spec("edgecollab.topologies.linkshare")\n')
    done = subprocess.run([python, '-c', probe], cwd='/', capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
