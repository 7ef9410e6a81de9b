"""Run-scoped cleanup: nothing of an emulation is left after a normal stop, SIGINT,
SIGTERM or SIGKILL (followed by ``edgecollab clean``), and nothing else is touched."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from edgecollab.topologies import cleanup
from edgecollab.topologies.emulation import Emulation
from edgecollab.ready import poll
from edgecollab.topologies.star import EdgeStar
from tests.conftest import PYTHON, REPO, TEST_PREFIX

pytestmark = pytest.mark.emulation

RUNNER = textwrap.dedent('''
    import sys, time
    from edgecollab.topologies.emulation import Emulation
    from edgecollab.topologies.star import EdgeStar
    with Emulation(EdgeStar(n=3, prefix=%r, delay=sys.argv[1],
                            delay_engine='userspace')) as emu:
        emu.popen('edge', ['iperf3', '-s', '-p', '5201'])
        emu.popen('d1', ['ping', '-i', '0.2', emu.ip('edge')])
        print('UP', flush=True)
        time.sleep(60)
''' % TEST_PREFIX)


def leftovers():
    """What of the test prefix is still on the machine."""
    found = cleanup.owned_interfaces(TEST_PREFIX)
    if os.path.exists(cleanup.state_path(TEST_PREFIX)):
        found.append('state file')
    return found


def start_runner(delay='0ms'):
    """A child running a 3-device star (delay: each path's, through the delay line)."""
    proc = subprocess.Popen([sys.executable, '-c', RUNNER, delay], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'UP'
    state = cleanup.RunState.load(TEST_PREFIX)
    assert state.processes, 'the run recorded no processes'
    return proc, [p['pid'] for p in state.processes]


def gone(pids):
    return all(cleanup.process_start_time(pid) is None for pid in pids)


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_leaves_nothing(sig):
    bystander = subprocess.Popen(['sleep', '60'])   # not ours: must survive
    try:
        proc, pids = start_runner()
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert leftovers() == []
        assert poll(lambda: gone(pids), 5, 'processes of the run to end')
        assert bystander.poll() is None, 'cleanup killed a process it did not start'
    finally:
        bystander.kill()
        bystander.wait()


def test_sigint_with_a_delay_line_leaves_nothing():
    proc, pids = start_runner('10ms')
    assert any('delay line' in p['what'] for p in cleanup.RunState.load(
        TEST_PREFIX).processes), 'the relay is not recorded for cleanup'
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert leftovers() == []
    assert poll(lambda: gone(pids), 5, 'the relay and the hosts to end')


@pytest.mark.parametrize('delay', ['0ms', '10ms'])
def test_clean_command_after_sigkill(delay):
    proc, pids = start_runner(delay)
    proc.kill()
    proc.wait(timeout=10)
    assert leftovers(), 'SIGKILL should leave state for edgecollab clean to remove'
    out = subprocess.run([sys.executable, '-m', 'edgecollab.cli', 'clean', '--prefix',
                          TEST_PREFIX], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'removed' in out.stdout
    assert leftovers() == []
    assert poll(lambda: gone(pids), 5, 'processes of the killed run to end')


def test_hundred_device_star_starts_and_stops_cleanly():
    began = time.monotonic()
    with Emulation(EdgeStar(n=100, prefix=TEST_PREFIX)) as emu:
        up_s = time.monotonic() - began
        assert len(emu.devices) == 100
        assert len(emu.linkshare.counters()) == 200
        # The last device reaches the edge over the data plane.
        emu.cmd('d100', ['ping', '-c', '1', '-W', '2', emu.ip('edge')], 'ping the edge')
    print('100-device star: up in %.1f s, down in %.1f s'
          % (up_s, time.monotonic() - began - up_s))
    assert leftovers() == []


def test_second_emulation_is_refused_while_one_runs():
    with Emulation(EdgeStar(n=1, prefix=TEST_PREFIX)):
        with pytest.raises(Exception, match='another emulation is running'):
            Emulation(EdgeStar(n=1, prefix=TEST_PREFIX)).start()
        assert cleanup.owned_interfaces(TEST_PREFIX), 'the refused start cleaned the live run'


def test_a_run_is_refused_while_an_experiment_holds_the_lock(tmp_path):
    # An experiment holds the lock across its policies (between two of them too): a
    # second `edgecollab run` is refused at once, before it makes a results folder.
    lock = cleanup.EmulationLock(experiment=True)
    lock.acquire()
    try:
        done = subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'run',
                               os.path.join(REPO, 'scenarios', 'default.yaml'), '--out',
                               str(tmp_path / 'out')], capture_output=True, text=True,
                              timeout=120)
        # Its own emulations run under it, one at a time.
        with Emulation(EdgeStar(n=1, prefix=TEST_PREFIX)):
            with pytest.raises(Exception, match='another emulation is running'):
                Emulation(EdgeStar(n=1, prefix=TEST_PREFIX)).start()
    finally:
        lock.release()
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert 'another emulation is running' in lines[0]
    assert not (tmp_path / 'out').exists()
    assert not cleanup.lock_is_held()
