"""The netem engine, where the kernel has sch_netem (a stock distribution kernel: run
``tests/vm/run.sh -k netem`` on a machine whose kernel lacks it): each device's path on
its own data interface, outside the shaper's HTB tree, with limits that hold the packets
inside the delay."""

import re
import statistics
import subprocess

import pytest

from edgecollab.topologies import cleanup
from edgecollab.topologies.emulation import Emulation
from edgecollab.topologies.iperf import Flow, mean_between, ping_rtts
from edgecollab.topologies import addressing
from edgecollab.topologies.paths import Path
from edgecollab.topologies.star import EdgeStar
from tests.conftest import TEST_PREFIX
from tests.test_topologies_emulation import netem_available


pytestmark = [pytest.mark.emulation]


@pytest.fixture(scope='module', autouse=True)
def needs_netem(request):
    if not netem_available():
        pytest.skip('this kernel has no sch_netem (tests/vm/run.sh -k netem runs these on '
                    'a stock Debian kernel)')


def netem_drops(emu, host, dev):
    """(packets sent, dropped) of the netem root of dev in host's namespace."""
    out = emu.cmd(host, ['tc', '-s', 'qdisc', 'show', 'dev', dev], 'read netem of %s' % dev)
    block = out[out.index('netem'):]
    sent, dropped = re.search(r'Sent \d+ bytes (\d+) pkt \(dropped (\d+)', block).groups()
    return int(sent), int(dropped)


def test_each_device_has_its_own_netem_path_outside_the_shaper():
    paths = {'d1': Path(10), 'd2': Path(40, loss_pct=0.0)}
    topo = EdgeStar(n=2, paths=paths, delay_engine='netem', prefix=TEST_PREFIX)
    assert topo.engine == 'netem'
    with Emulation(topo) as emu:
        near, far = (ping_rtts(emu, d, addressing.EDGE_DATA_IP) for d in ('d1', 'd2'))
        assert len(near) >= 15 and 19.5 <= statistics.median(near) <= 35, near
        assert len(far) >= 15 and 79.5 <= statistics.median(far) <= 95, far
        shaper = subprocess.run(['tc', 'qdisc', 'show'], capture_output=True,
                                text=True).stdout
        assert 'netem' not in shaper, 'a netem qdisc in the root namespace: %s' % shaper
        for host in ('d1', 'd2'):
            for dev in ('%s-eth0' % host, '%s-ifb' % host):
                assert netem_drops(emu, host, dev)[1] == 0
    assert cleanup.owned_interfaces(TEST_PREFIX) == []


def test_tcp_through_a_share_and_a_netem_path_keeps_its_acks():
    # 50 Mbit/s shared by one device, 20 ms each way: a download and an upload at once,
    # so each direction's netem carries data one way and the other's ACKs.  The old
    # 16-packet netem leaf dropped 18-30% of the ACKs here.
    topo = EdgeStar(n=1, capacity='50mbit', delay='20ms', delay_engine='netem',
                    prefix=TEST_PREFIX)
    with Emulation(topo) as emu:
        flows = [Flow(emu, 'd1', 'up', 5201, 8, window='8M'),
                 Flow(emu, 'd1', 'down', 5202, 8, window='8M')]
        for flow in flows:
            flow.start_server()
        for flow in flows:
            flow.start_client()
        goodputs = []
        for flow in flows:
            series = flow.result()
            goodputs.append(mean_between(series, series[0][0] + 3.0, series[-1][1]))
        for dev in ('d1-eth0', 'd1-ifb'):
            sent, dropped = netem_drops(emu, 'd1', dev)
            assert sent > 1000 and dropped <= 0.001 * sent, (dev, sent, dropped)
        # Each direction's share is 25 Mbit/s, less the other's ACKs and headers; wide
        # bounds (a loaded machine, or a VM under software emulation).
        for goodput in goodputs:
            assert 0.5 * 25 <= goodput <= 1.05 * 25, goodputs
    assert cleanup.owned_interfaces(TEST_PREFIX) == []
