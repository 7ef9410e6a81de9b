"""Every shipped topology runs as shipped: through ``mn --custom`` and in Python; a
delay or loss setting is applied where the kernel has netem and refused where not."""

import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from edgecollab.topologies import cleanup
from edgecollab.ready import poll
from edgecollab.topologies.emulation import Emulation
from edgecollab.errors import UnsupportedError
from edgecollab.topologies.star import EdgeStar
from tests.conftest import REPO, TEST_PREFIX

pytestmark = pytest.mark.emulation

# The mn of the environment edgecollab is installed in (it can import edgecollab).
MN = os.path.join(os.path.dirname(sys.executable), 'mn')


@pytest.mark.parametrize('path,topo', [
    ('topologies/star.py', 'edgestar,3,capacity=20mbit,prefix=%s' % TEST_PREFIX),
    ('topologies/access.py', 'edgeaccess,3,rates=5mbit/10mbit,prefix=%s' % TEST_PREFIX),
    # With a delay: on a kernel without netem, through the delay line (a switch to
    # Mininet: pingall pings the hosts, not it).
    ('topologies/star.py', 'edgestar,2,delay=5ms,prefix=%s' % TEST_PREFIX),
    ('topologies/access.py', 'edgeaccess,2,delay=5ms,prefix=%s' % TEST_PREFIX),
    ('topologies/line.py', 'delayline'),
])
def test_mn_custom_loads_and_pings(path, topo):
    out = subprocess.run([MN, '--custom', os.path.join(REPO, path), '--topo', topo,
                          '--controller', 'none', '--test', 'pingall'],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    # Every host reaches every other ('100% dropped' also ends in '0% dropped').
    assert re.search(r'Results: 0% dropped', out.stdout + out.stderr), \
        out.stdout + out.stderr
    assert cleanup.owned_interfaces(TEST_PREFIX) == []
    assert not relays_running()


def test_management_plane_is_separate():
    with Emulation(EdgeStar(n=2, prefix=TEST_PREFIX)) as emu:
        routes = emu.cmd('d1', ['ip', '-4', 'route'], 'read routes of d1')
        assert '10.0.0.0/16 dev d1-eth0' in routes
        assert '10.254.0.0/16 dev d1-eth1' in routes
        # The controller in the root namespace reaches the edge's management address.
        subprocess.run(['ping', '-c', '1', '-W', '2', '10.254.255.253'], check=True,
                       capture_output=True, timeout=10)


def netem_available():
    probe = '%snprobe' % TEST_PREFIX
    subprocess.run(['ip', 'link', 'add', probe, 'type', 'ifb'], check=True)
    try:
        return subprocess.run(['tc', 'qdisc', 'add', 'dev', probe, 'root', 'netem'],
                              capture_output=True).returncode == 0
    finally:
        subprocess.run(['ip', 'link', 'del', probe], check=True)


def test_delay_is_applied_or_refused_never_ignored():
    # auto: netem where the kernel has it, else the delay line; applied either way.
    topo = EdgeStar(n=1, delay='20ms', prefix=TEST_PREFIX)
    assert topo.engine == ('netem' if netem_available() else 'userspace')
    with Emulation(topo) as emu:
        out = emu.cmd('d1', ['ping', '-c', '3', '-i', '0.2', emu.ip('edge')], 'ping')
        rtt_avg = float(out.strip().splitlines()[-1].split('/')[4])
        assert rtt_avg >= 38, 'two 20 ms delays should show in the RTT: %s' % out
    if not netem_available():
        with pytest.raises(UnsupportedError, match='netem'):
            EdgeStar(n=1, delay='20ms', delay_engine='netem', prefix=TEST_PREFIX)
    assert cleanup.owned_interfaces(TEST_PREFIX) == []
    assert not relays_running()


def relays_running():
    out = subprocess.run(['pgrep', '-f', 'edgecollab.topologies.delayline'], capture_output=True,
                         text=True)
    return out.stdout.split()


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGHUP])
def test_mn_custom_ended_by_a_signal_leaves_no_bridge(sig):
    # Python's default for SIGTERM ended mn without its cleanup: the bridges and the IFB
    # stayed.  The topology's bridges now remove themselves at exit.
    proc = subprocess.Popen([MN, '--custom', os.path.join(REPO, 'topologies/star.py'),
                             '--topo', 'edgestar,2,capacity=20mbit,prefix=%s' % TEST_PREFIX,
                             '--controller', 'none'], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    output = []
    reader = threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, b'')),
                              daemon=True)
    reader.start()
    try:
        poll(lambda: any(b'Starting CLI' in line for line in output), 60, 'the mn CLI')
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=5)
    assert cleanup.owned_interfaces(TEST_PREFIX) == [], b''.join(output)[-2000:]
