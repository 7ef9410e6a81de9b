"""Benchmark: shaping fidelity, both directions at once on a shared medium.

For each capacity and split, one device uploads and downloads at once (iperf3) through
edgecollab's shared link share; fidelity = receiver-side goodput / allocated share
(raw), and / (share x 1448/1514) (what TCP can carry in a share: headers are airtime).
Baseline in the same run: Mininet's TCLink shaping each direction with bw= at the same
rates.  Needs root.

    .venv/bin/python -m benchmarks.fidelity [--capacities 1,10,100,500,1000] \
        [--rtt 0,40,100] [--congestion cubic,bbr] [--engine auto]

``--rtt`` adds each round trip after the shaper (``--engine``: auto, userspace or
netem, or a list to compare them, e.g. ``userspace,netem``; auto takes netem where the
kernel has it, else the delay line); the TCLink baseline, which would need netem for it,
is left out of rows with a round trip.  An engine the kernel lacks (netem here) is
skipped with a message.
"""

import argparse
import itertools
import time

from edgecollab.wire import GOODPUT_PER_WIRE, MTU_FRAME
from edgecollab.topologies.emulation import Emulation
from edgecollab.errors import EdgecollabError, UnsupportedError
from edgecollab.topologies.iperf import Flow, mean_between
from edgecollab.kinds import DelayEngine, words
from edgecollab.topologies.star import EdgeStar
from benchmarks.baseline import TCLinkStar, offload_off
from benchmarks.report import emit
from edgecollab.ready import sleep_until

ENGINES = words(DelayEngine)


def window(smaller_share_mbit, segments):
    """(skip_s, duration_s) of a test whose measured part carries about `segments` full
    frames in the smaller share, after skipping TCP's start-up.  At 0.1 Mbit/s a frame
    takes 121 ms and the 16-frame leaf queue is 2-3 s of RTT: slow start overshoots it and
    the flow may recover in bursts for tens of seconds before it holds its share, so the
    skip too is counted in frames (1.25 x segments)."""
    frame_s = MTU_FRAME * 8 / (smaller_share_mbit * 1e6)
    skip_s = max(2.0, 1.25 * segments * frame_s)
    return skip_s, skip_s + max(4.0, segments * frame_s) + 0.5


def measure(emu, skip_s, duration_s, counters=False, congestion=None, window_bytes=4 << 20):
    """((up goodput, down goodput) in Mbit/s over the steady part of a both-ways test,
    {direction: reverse-ACK Mbit/s in that class} when counters is set)."""
    size = '%dK' % (window_bytes // 1024)
    flows = [Flow(emu, 'd1', 'up', 5301, duration_s, window=size, congestion=congestion),
             Flow(emu, 'd1', 'down', 5302, duration_s, window=size, congestion=congestion)]
    for flow in flows:
        flow.start_server()
    for flow in flows:
        flow.start_client()
    t0 = max(f.started_s for f in flows)
    start, end = t0 + skip_s, t0 + duration_s - 0.5
    acks = {}
    if counters:
        sleep_until(start)
        before = emu.linkshare.counters()
        sleep_until(end)
        after = emu.linkshare.counters()
        acks = {d: (after[('d1', d)].ack_bytes - before[('d1', d)].ack_bytes) * 8 / 1e6 /
                (end - start) for d in ('up', 'down')}
    return [mean_between(f.result(), start, end) for f in flows], acks


def baseline(up, down, skip_s, duration_s, congestion):
    """(up, down) goodput through Mininet's TCLinks at the same rates."""
    with Emulation(TCLinkStar(n=1, up_mbit=up, down_mbit=down)) as emu:
        offload_off(emu)
        try:
            return measure(emu, skip_s, duration_s, congestion=congestion)[0]
        except EdgecollabError as exc:
            # Mininet's default 1000-packet queue at a low rate holds minutes of data:
            # iperf3 may not even finish its test.
            print('TCLink %g/%g Mbit/s: %s' % (up, down, exc))
            return (0.0, 0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--capacities', default='1,10,100,500,1000')
    parser.add_argument('--splits', default='0.1,0.5,0.9')
    parser.add_argument('--segments', type=int, default=200,
                        help='full frames the smaller share carries in the measured part')
    parser.add_argument('--congestion', default='',
                        help="TCP congestion controls of the test flows, comma separated "
                        "(default: the system's, cubic here)")
    parser.add_argument('--rtt', default='0',
                        help='round trips added after the shaper, ms, comma separated')
    parser.add_argument('--engine', default='auto',
                        help='what imposes the round trip: %s, or a comma-separated list '
                        'to compare (default auto)' % ' | '.join(ENGINES))
    parser.add_argument('--out', default='benchmarks/results/fidelity.json')
    args = parser.parse_args()
    engines = args.engine.split(',')
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error('unknown engine %s (known: %s)' % (unknown[0], ', '.join(ENGINES)))
    rows, skipped = [], set()
    for capacity, split, rtt, congestion, engine in itertools.product(
            [float(v) for v in args.capacities.split(',')],
            [float(v) for v in args.splits.split(',')],
            [float(v) for v in args.rtt.split(',')],
            args.congestion.split(','), engines):
        if engine in skipped or (rtt == 0 and engine != engines[0]):
            continue
        congestion = congestion or None
        up, down = capacity * split, capacity * (1 - split)
        skip_s, duration_s = window(min(up, down), args.segments)
        # A round trip adds TCP's start-up: a few more seconds skipped.
        skip_s += 20 * rtt / 1000
        duration_s += 20 * rtt / 1000
        try:
            topo = EdgeStar(n=1, capacity='%gmbit' % capacity, prefix='ecb',
                            delay='%gms' % (rtt / 2), delay_engine=engine)
        except UnsupportedError as exc:
            print('benchmarks.fidelity: %s engine skipped: %s' % (engine, exc), flush=True)
            skipped.add(engine)
            continue
        with Emulation(topo) as emu:
            emu.linkshare.set_shares({'d1': {'up': split, 'down': 1 - split}})
            # Windows of twice the bandwidth-delay product (4 MB at least).
            ours, acks = measure(emu, skip_s, duration_s, counters=True,
                                 congestion=congestion, window_bytes=max(
                                     4 << 20, int(capacity * 1e6 / 8 * rtt / 500)))
        base = None if rtt > 0 else baseline(up, down, skip_s, duration_s, congestion)
        row = {'capacity_mbit': capacity, 'rtt_ms': rtt, 'engine': topo.engine or '-',
               'congestion': congestion or 'system',
               'split': '%d/%d' % (100 * split, 100 - 100 * split)}
        for name, result in (('ours', ours), ('tclink', base)):
            if result is None:
                continue
            g_up, g_down = result
            row['%s_up' % name] = g_up / up
            row['%s_down' % name] = g_down / down
            row['%s_min_tcp' % name] = min(g_up / up, g_down / down) / GOODPUT_PER_WIRE
        # What TCP can carry in a share that also carries the reverse flow's ACKs.
        row['ours_fidelity'] = min(ours[0] / ((up - acks['up']) * GOODPUT_PER_WIRE),
                                   ours[1] / ((down - acks['down']) * GOODPUT_PER_WIRE))
        row['ratio'] = row['ours_min_tcp'] / row['tclink_min_tcp'] \
            if row.get('tclink_min_tcp') else None
        rows.append(row)
        print(row, flush=True)
        time.sleep(0.5)
    emit(rows, [('capacity_mbit', 'C Mbit/s', '%g'), ('rtt_ms', 'RTT ms', '%g'),
                ('engine', 'engine', '%s'), ('congestion', 'TCP', '%s'),
                ('split', 'up/down %', '%s'),
                ('ours_up', 'ours up', '%.3f'), ('ours_down', 'ours down', '%.3f'),
                ('ours_min_tcp', 'ours vs TCP', '%.3f'), ('ours_fidelity', 'ours fidelity',
                                                            '%.3f'),
                ('tclink_up', 'TCLink up', '%.3f'), ('tclink_down', 'TCLink down', '%.3f'),
                ('tclink_min_tcp', 'TCLink vs TCP', '%.3f'), ('ratio', 'ours/TCLink', '%.3f')],
         args.out, 'Shaping fidelity: goodput / share (raw); worse direction / (share x '
         '1448/1514); ours: worse direction / ((share - reverse ACKs) x 1448/1514)')


if __name__ == '__main__':
    main()
