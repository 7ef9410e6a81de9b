"""The user-space delay line between two hosts: it holds frames for their delay, drops
at its loss rate, and carries TCP (with checksum offload off on the endpoints)."""

import re
import statistics

import pytest

from edgecollab.emulation import Emulation
from edgecollab.iperf import Flow, mean_between
from edgecollab.shell import runner
from edgecollab.topologies.line import EDGE_IP, DelayedPair, start_delay_line
from tests.conftest import TEST_PREFIX

pytestmark = pytest.mark.emulation


def pings(emu, count, interval):
    """(round-trip times in ms of the replies, packets sent) of pings device -> edge
    (ping exits 1 when some are lost: not an error here)."""
    out = runner.run(['ping', '-n', '-c', str(count), '-i', str(interval), '-W', '2',
                      EDGE_IP], 'ping the edge', ns_pid=emu.host('device').pid,
                     ns_name='device', timeout=count * interval + 30, check=False)
    return [float(t) for t in re.findall(r'time=([\d.]+) ms', out)], count


def test_frames_are_held_for_their_delay_each_way():
    with Emulation(DelayedPair(prefix=TEST_PREFIX)) as emu:
        line = start_delay_line(emu, {'delay_ms': 15}, {'delay_ms': 25})
        rtts, _ = pings(emu, 30, 0.05)
        assert line.poll() is None, 'the delay line died'
        # 15 ms up + 25 ms down; wide bounds (a loaded 2-core machine).
        assert len(rtts) >= 25 and 39 <= statistics.median(rtts) <= 60, rtts
        assert min(rtts) >= 39.5, rtts


def test_random_loss_drops_at_its_rate():
    with Emulation(DelayedPair(prefix=TEST_PREFIX)) as emu:
        start_delay_line(emu, {'loss': 0.2}, {})
        rtts, sent = pings(emu, 300, 0.01)
        lost = 1 - len(rtts) / sent
        # 300 pings, each lost with probability 0.2 on its way up: 0.2 +- 0.08 covers
        # well over 99.9% of outcomes.
        assert 0.12 <= lost <= 0.28, lost


def test_tcp_crosses_the_delay_line_at_speed():
    # 20 ms each way: one CUBIC flow for 4 s.  Wide bound: on this 2-core machine the
    # relay carried several hundred Mbit/s (benchmarks/delayline.py); 30 is far below.
    with Emulation(DelayedPair(prefix=TEST_PREFIX)) as emu:
        line = start_delay_line(emu, {'delay_ms': 20}, {'delay_ms': 20})
        flow = Flow(emu, 'device', 'up', 5201, 4, window='8M', congestion='cubic')
        flow.start_server()
        flow.start_client()
        series = flow.result()
        assert line.poll() is None, 'the delay line died'
        goodput = mean_between(series, series[0][0] + 1.0, series[-1][1])
        assert goodput > 30, series
