"""The link-share layer under real TCP (iperf3): shares hold, re-splits are live, the
ACK knob is real, duplex and work-conserving modes behave."""

import time

import pytest

from edgecollab.wire import GOODPUT_PER_WIRE
from edgecollab.topologies import linkshare
from edgecollab.topologies.emulation import Emulation
from edgecollab.topologies.iperf import Flow, mean_between
from edgecollab.topologies.access import EdgeAccessStar
from edgecollab.topologies.star import EdgeStar
from tests.conftest import SOFTWARE_EMULATED, TEST_PREFIX
from edgecollab.ready import sleep_until
from tests.helpers import assert_within

pytestmark = pytest.mark.emulation


def expected_goodput(share_mbit, before, after, device, direction, seconds):
    """Goodput a full share should give, in Mbit/s: the share minus the airtime of the
    reverse flow's ACKs that travel in it (read from the ACK child's counters), times the
    TCP payload per wire byte (1448 / 1514)."""
    key = (device, direction)
    ack_mbit = (after[key].ack_bytes - before[key].ack_bytes) * 8 / seconds / 1e6
    return (share_mbit - ack_mbit) * GOODPUT_PER_WIRE


def start_flows(emu, device, duration_s, directions=('up', 'down')):
    flows = [Flow(emu, device, direction, 5301 + i, duration_s)
             for i, direction in enumerate(directions)]
    for flow in flows:
        flow.start_server()
    for flow in flows:
        flow.start_client()
    return flows


def samples(series, t0):
    """A goodput series as 't:rate' text relative to t0, for failure messages."""
    return ' '.join('%.1f:%.2f' % (end - t0, rate) for _, end, rate in series)


def measure_window(emu, start_s, end_s):
    """Counters at the edges of [start_s, end_s] (monotonic)."""
    sleep_until(start_s)
    before = emu.linkshare.counters()
    sleep_until(end_s)
    return before, emu.linkshare.counters()


def readings_every(emu, start_s, end_s, step_s=0.5):
    """[(monotonic time, counters)] every step_s over [start_s, end_s]."""
    readings = []
    for k in range(int(round((end_s - start_s) / step_s)) + 1):
        sleep_until(start_s + step_s * k)
        readings.append((time.monotonic(), emu.linkshare.counters()))
    return readings


def median_carried(readings, device, direction):
    """(the median over the intervals between readings of what device's class carried
    in direction, Mbit/s of TCP payload with each interval's measured length; every
    interval's, sorted).  A median, not the window's mean: on a loaded 2-core machine a
    stall of the sender holds one interval low (once 11.28 Mbit/s of 20, the 4 s mean
    then 17.26), and receiver goodput moves bytes across a window's edges (a 10 Mbit/s
    download once read 9.91 of payload, more than its wire carries)."""
    rates = sorted(carried_mbit(before, after, device, direction, t_after - t_before)
                   for (t_before, before), (t_after, after) in zip(readings, readings[1:]))
    middle = len(rates) // 2
    median = rates[middle] if len(rates) % 2 else (rates[middle - 1] + rates[middle]) / 2
    return median, rates


def test_shared_strict_shares_hold_and_resplit_live():
    topo = EdgeStar(n=2, capacity='20mbit', medium='shared', mode='strict', prefix=TEST_PREFIX)
    with Emulation(topo) as emu:
        share = emu.linkshare
        share.set_shares({'d1': {'up': 0.75, 'down': 0.25}, 'd2': {'up': 0.0, 'down': 0.0}})
        handles = share.qdisc_handles()
        flows = start_flows(emu, 'd1', duration_s=11)
        t0 = max(flow.started_s for flow in flows)
        # Windows leave TCP 3 s from the later client's start (1.5 s after a re-split) to
        # reach its share.
        first = measure_window(emu, t0 + 3, t0 + 6)
        switch_s = time.monotonic()
        share.set_shares({'d1': {'up': 0.25, 'down': 0.75}})
        second = measure_window(emu, switch_s + 1.5, switch_s + 5)
        series = {flow.direction: flow.result() for flow in flows}
        assert share.qdisc_handles() == handles, 'a qdisc was replaced during the run'
    # What the class carried of the flow (its data child's bytes, as TCP payload) against
    # what the share gives.  Not receiver goodput over the window: a loss just before the
    # window opens leaves a hole whose catch-up burst lands inside it (measured in the
    # full suite: 8.8 Mbit/s for 0.5 s on a 5 Mbit/s share, the window mean 5.33 against
    # 4.47), or the other way round.
    for (start, end), (before, after), shares in (
            ((t0 + 3, t0 + 6), first, {'up': 15, 'down': 5}),
            ((switch_s + 1.5, switch_s + 5), second, {'up': 5, 'down': 15})):
        for direction in ('up', 'down'):
            share_mbit = shares[direction]
            want = expected_goodput(share_mbit, before, after, 'd1', direction, end - start)
            got = carried_mbit(before, after, 'd1', direction, end - start)
            # Above: 10% (a strict share is a ceiling).  Below: 25%: a loss recovery by
            # timeout inside a 3 s window idles a 5 Mbit/s class for a few hundred ms on a
            # loaded machine (seen in full suites: 4.08 and 4.01 against 4.47); the strict
            # figures are benchmarks.fidelity's.
            assert_within(got, want, 0.10,
                          '%s payload carried with a %g Mbit/s share (receiver goodput, '
                          '0.5 s samples from the start: %s)'
                          % (direction, share_mbit, samples(series[direction], t0)),
                          below_tol=0.25)


def carried_mbit(before, after, device, direction, seconds):
    """TCP payload (Mbit/s) the class of device in direction carried between two counter
    readings: its bytes outside the ACK child, times 1448/1514."""
    key = (device, direction)
    data = (after[key].bytes - after[key].ack_bytes) - (before[key].bytes -
                                                        before[key].ack_bytes)
    return data * 8 / seconds / 1e6 * GOODPUT_PER_WIRE


def upload_goodput(ack, queue):
    """Mean upload goodput (Mbit/s) of d1 at 15 of 20 Mbit/s, started while a 5 Mbit/s
    download already fills its queue."""
    topo = EdgeStar(n=1, capacity='20mbit', ack=ack, queue=queue, prefix=TEST_PREFIX)
    with Emulation(topo) as emu:
        emu.linkshare.set_shares({'d1': {'up': 0.75, 'down': 0.25}})
        down, up = Flow(emu, 'd1', 'down', 5302, 6), Flow(emu, 'd1', 'up', 5301, 9)
        down.start_server()
        up.start_server()
        up.start_client()
        sleep_until(up.started_s + 2)
        down.start_client()
        t0 = down.started_s
        down.result()
        return mean_between(up.result(), t0 + 1, t0 + 5)


def test_without_ack_priority_opposite_flows_collapse():
    # A 2.5 s queue is what Linux's default 1000-packet txqueue holds at 5 Mbit/s: without
    # the ACK child the upload's ACKs wait behind the download's data (measured here:
    # 12.7-13.5 Mbit/s, 89-94% of what the share gives; with the child 14.24-14.25,
    # steady to 0.1%, so 0.96 of it separates the two).
    # On Debian 12's 6.1 kernel under qemu's software emulation (tests/vm/run.sh) the
    # upload did not collapse (14.16 Mbit/s both ways, 2026-12-03): there the ACK child is
    # checked never to cost the upload anything, and the collapse is not asserted.
    full = 15 * GOODPUT_PER_WIRE
    with_ack = upload_goodput(True, '2500ms')
    without_ack = upload_goodput(False, '2500ms')
    # Under TCG with the host loaded the guest's upload fell to 12.97 (0.90 of the share).
    assert_within(with_ack, full, 0.15 if SOFTWARE_EMULATED else 0.07,
                  'upload with the ACK child')
    assert without_ack <= 1.01 * with_ack, (without_ack, with_ack)
    if SOFTWARE_EMULATED:
        pytest.skip('the collapse without the ACK child is not asserted under software '
                    'emulation (measured: %.2f Mbit/s without, %.2f with)'
                    % (without_ack, with_ack))
    assert without_ack < 0.96 * with_ack, (
        'upload with its ACKs queued behind download data should collapse: measured '
        '%.2f Mbit/s, the share gives %.2f, the ACK child %.2f' % (without_ack, full, with_ack))


def test_duplex_budgets_are_separate_each_at_its_own_capacity():
    # 15 Mbit/s up, 10 down (a scenario's capacity_down): each direction gets all of
    # its own.
    topo = EdgeStar(n=1, capacity='15mbit', medium='duplex', prefix=TEST_PREFIX)
    with Emulation(topo) as emu:
        emu.linkshare.set_shares({'d1': {'up': 1.0, 'down': 1.0}})
        emu.linkshare.set_capacity(15.0, down_mbit=10.0)
        assert emu.linkshare.share_mbit('d1', 'down') == pytest.approx(10.0)
        flows = start_flows(emu, 'd1', duration_s=6)
        t0 = flows[0].started_s
        readings = readings_every(emu, t0 + 1, t0 + 5)
        (began, before), (ended, after) = readings[0], readings[-1]
        for flow in flows:
            want = expected_goodput(emu.linkshare.share_mbit('d1', flow.direction), before,
                                    after, 'd1', flow.direction, ended - began)
            got, rates = median_carried(readings, 'd1', flow.direction)
            assert_within(got, want, 0.07,
                          'duplex %s payload carried at 15 Mbit/s up, 10 down, median of '
                          '0.5 s intervals %s (receiver goodput, 0.5 s samples: %s)'
                          % (flow.direction, ' '.join('%.2f' % r for r in rates),
                             samples(flow.result(), t0)))


def test_work_conserving_borrows_up_to_capacity():
    topo = EdgeStar(n=2, capacity='20mbit', mode='work-conserving', prefix=TEST_PREFIX)
    with Emulation(topo) as emu:
        emu.linkshare.set_shares({'d1': {'up': 0.25, 'down': 0.25}})
        flows = start_flows(emu, 'd1', duration_s=6, directions=('up',))
        t0 = flows[0].started_s
        readings = readings_every(emu, t0 + 1.5, t0 + 5.5)
        series = flows[0].result()
    # Alone on the medium, a 5 Mbit/s share borrows up to C (less the 1% other class).
    got, rates = median_carried(readings, 'd1', 'up')
    assert_within(got, 20 * GOODPUT_PER_WIRE, 0.07,
                  'borrowed upload payload carried, median of 0.5 s intervals %s '
                  '(receiver goodput, 0.5 s samples: %s)'
                  % (' '.join('%.2f' % r for r in rates), samples(series, t0)))


def test_access_links_cap_each_device():
    topo = EdgeAccessStar(n=2, rates='4mbit/8mbit', capacity='50mbit', prefix=TEST_PREFIX)
    with Emulation(topo) as emu:
        emu.linkshare.set_shares({'d1': {'up': 0.5, 'down': 0.0},
                                  'd2': {'up': 0.5, 'down': 0.0}})
        flows = start_flows(emu, 'd1', duration_s=6, directions=('up',))
        t0 = flows[0].started_s
        access = emu.medium.access_links['d1']
        sleep_until(t0 + 1.5)
        before, began = access.counters(), time.monotonic()
        sleep_until(t0 + 5.5)
        after, ended = access.counters(), time.monotonic()
        series = flows[0].result()
    # What the access link's class carried, not receiver goodput over the window: the
    # receiver counts bytes when iperf3 reads them, so on a loaded machine an interval
    # that follows a stall holds what the socket buffered during it, and a window that
    # leaves out the stalled interval read 4.36 Mbit/s through this 4 Mbit/s link.
    got = carried_mbit(before, after, 'd1', 'up', ended - began)
    assert_within(got, 4 * GOODPUT_PER_WIRE, 0.07,
                  'upload carried by a 4 Mbit/s access link (receiver goodput, 0.5 s '
                  'samples: %s)' % samples(series, t0))


@pytest.mark.parametrize('keepalive', [True, False], ids=['keepalive', 'bare-floor'])
def test_a_connection_opened_in_a_class_given_nothing_gets_its_first_window_through(
        keepalive, monkeypatch):
    # A device whose plan gives it no share opens its upload at the period's start: its
    # class still carries TCP's initial window (10 full frames) within about a second,
    # so the connection's timer does not back off while it waits for a share (at HTB's
    # bare floor, 0.008 Mbit/s, the window takes 15 s: measured under Mininet on the
    # T-Mobile trace, such an upload then carried nothing for 16 s once its share came).
    if not keepalive:
        monkeypatch.setattr(linkshare, 'KEEPALIVE_MBIT', 0.0)
    topo = EdgeStar(n=2, capacity='20mbit', delay='20ms', prefix=TEST_PREFIX)
    with Emulation(topo) as emu:
        emu.linkshare.set_shares({'d1': {'up': 0.0, 'down': 0.0},
                                  'd2': {'up': 1.0, 'down': 0.0}})
        (flow,) = start_flows(emu, 'd1', duration_s=4, directions=('up',))
        before, after = measure_window(emu, flow.started_s, flow.started_s + 3)
        flow.result()
    carried = carried_mbit(before, after, 'd1', 'up', 1.0) * 1e6 / 8     # bytes in 3 s
    window = 10 * 1448
    if keepalive:
        assert carried >= window, carried
    else:
        assert carried < window / 2, carried
