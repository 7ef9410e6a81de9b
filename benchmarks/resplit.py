"""Benchmark: a live re-split.  One device uploads and downloads at once (iperf3, 100 ms
intervals) on 20 Mbit/s with a 75/25 split; the controller decides 25/75.  Measured: the
time the change takes to apply; the time until the shaper acts (the first 100 ms window,
in 10 ms steps, in which both directions' wire rates, read from the switch ports'
transmit counters every 5 ms, are within 5% of their new steady levels) and the share
of the ten 100 ms windows of the second from there that hold it too; the same for
receiver goodput (TCP following); the dip of the flow that shrinks; TCP retransmissions
and queue drops in the second after the change.  Baseline in the same run: Mininet's
TCLink, changed with ``intf.config(bw=...)`` (which rebuilds the qdisc).  Needs root.

    .venv/bin/python -m benchmarks.resplit [--repeat 3]
"""

import argparse
import statistics
import threading
import time

import numpy as np

from edgecollab.topologies.emulation import Emulation
from edgecollab.topologies.iperf import Flow, mean_between, retransmits_between
from edgecollab.topologies.star import EdgeStar
from benchmarks.baseline import TCLinkStar, device_link, offload_off, wire_bytes
from benchmarks.report import emit
from edgecollab.ready import sleep_until

CAPACITY, BEFORE, AFTER = 20.0, 0.75, 0.25
DURATION_S, CHANGE_AT_S = 12, 5.0
WINDOW_S, HOLD_S, SAMPLE_S = 0.1, 1.0, 0.005


def window_rates(times, cumulative, edges):
    """Rates between consecutive edges of a cumulative counter sampled at times."""
    return np.diff(np.interp(edges, np.asarray(times), np.asarray(cumulative, dtype=float))) / \
        np.diff(edges)


def reached(times, cumulative, level, start, tolerance=0.05):
    """(seconds from start to the first 100 ms window, in 10 ms steps, carrying level
    within tolerance; the share of the ten 100 ms windows of the second from there that
    do too).  (inf, 0) when no window does in the samples."""
    last = times[-1] - start - HOLD_S
    for step in range(0, int(last / 0.01) + 1):
        t = start + 0.01 * step
        if abs(window_rates(times, cumulative, [t, t + WINDOW_S])[0] - level) <= \
                tolerance * level:
            edges = t + WINDOW_S * np.arange(int(round(HOLD_S / WINDOW_S)) + 1)
            rates = window_rates(times, cumulative, edges)
            return t - start, float(np.mean(np.abs(rates - level) <= tolerance * level))
    return float('inf'), 0.0


def sample(read, until_s, into):
    """Append (time, *read()) to into every SAMPLE_S until the monotonic clock reaches
    until_s."""
    while time.monotonic() < until_s:
        into.append((time.monotonic(),) + read())
        time.sleep(SAMPLE_S)


def run_once(emu, change, drops=None):
    """Start both flows, call change() at CHANGE_AT_S; return the measurements.
    drops: a callable giving the shaper's total queue drops now (None: not known)."""
    flows = {d: Flow(emu, 'd1', d, 5301 + i, DURATION_S, interval_s=WINDOW_S, window='4M')
             for i, d in enumerate(('up', 'down'))}
    wire = wire_bytes(emu, 'd1')
    for flow in flows.values():
        flow.start_server()
    for flow in flows.values():
        flow.start_client()
    t0 = max(f.started_s for f in flows.values())
    sleep_until(t0 + CHANGE_AT_S - 1.0)
    marks = [drops() if drops else None]
    samples = []
    sampler = threading.Thread(target=sample, args=(wire, t0 + CHANGE_AT_S + HOLD_S + 1.0,
                                                    samples))
    sampler.start()
    sleep_until(t0 + CHANGE_AT_S)
    marks.append(drops() if drops else None)
    decided = time.monotonic()
    change()
    applied = time.monotonic()
    sleep_until(decided + 1.0)
    marks.append(drops() if drops else None)
    sampler.join()
    sleep_until(decided + 3.0)
    steady_from, wire_from = time.monotonic(), wire()
    sleep_until(t0 + DURATION_S - 0.5)
    steady_to, wire_to = time.monotonic(), wire()
    series = {d: f.result() for d, f in flows.items()}
    result = {'apply_ms': 1000 * (applied - decided)}
    # The shaper acts: both directions' wire rates at their new levels.
    times = [s[0] for s in samples]
    acts, held = [], []
    for k in range(2):
        level = (wire_to[k] - wire_from[k]) / (steady_to - steady_from)
        after, share = reached(times, [s[1 + k] for s in samples], level, decided)
        acts.append(after)
        held.append(share)
    result['acts_ms'], result['wire_held'] = 1000 * max(acts), min(held)
    # TCP follows: receiver goodput of both flows at their new levels.
    holds, held = [], []
    for points in series.values():
        level = mean_between(points, decided + 3, t0 + DURATION_S - 0.5)
        ends = [points[0][0]] + [end for _, end, _ in points]
        cumulative = np.concatenate(([0.0], np.cumsum([(end - begin) * rate for begin, end,
                                                      rate in points])))
        after, share = reached(ends, cumulative, level, decided)
        holds.append(after)
        held.append(share)
    result['hold_ms'], result['goodput_held'] = 1000 * max(holds), min(held)
    shrinking = series['up']
    steady_up = mean_between(shrinking, decided + 3, t0 + DURATION_S - 0.5)
    result['dip'] = min(rate for a, b, rate in shrinking
                        if decided <= a <= decided + 1.0) / steady_up
    result['retransmits'] = sum(retransmits_between(f, decided, decided + 1.0)
                                for f in flows.values())
    result['drops_before'] = marks[1] - marks[0] if drops else None
    result['drops_after'] = marks[2] - marks[1] if drops else None
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--out', default='benchmarks/results/resplit.json')
    args = parser.parse_args()
    results = {'edgecollab': [], 'tclink': []}
    for _ in range(args.repeat):
        with Emulation(EdgeStar(n=1, capacity='%gmbit' % CAPACITY, prefix='ecb')) as emu:
            link = emu.linkshare
            link.set_shares({'d1': {'up': BEFORE, 'down': 1 - BEFORE}})
            results['edgecollab'].append(run_once(
                emu, lambda: link.set_shares({'d1': {'up': AFTER, 'down': 1 - AFTER}}),
                drops=lambda: sum(c.drops for c in link.counters().values())))
        with Emulation(TCLinkStar(n=1, up_mbit=CAPACITY * BEFORE,
                                  down_mbit=CAPACITY * (1 - BEFORE))) as emu:
            offload_off(emu)
            device_side, switch_side = device_link(emu, 'd1')

            def change():
                device_side.config(bw=CAPACITY * AFTER)
                switch_side.config(bw=CAPACITY * (1 - AFTER))
            results['tclink'].append(run_once(emu, change))
    rows = []
    for name, runs in results.items():
        row = {'shaper': name}
        for key in ('apply_ms', 'acts_ms', 'wire_held', 'hold_ms', 'goodput_held', 'dip',
                    'retransmits', 'drops_before', 'drops_after'):
            values = [r[key] for r in runs if r[key] is not None]
            row[key] = statistics.median(values) if values else None
        rows.append(row)
    ours, base = rows
    ours['hold_ratio'] = base['hold_ms'] / ours['hold_ms'] if ours['hold_ms'] else None
    emit(rows, [('shaper', 'shaper', '%s'), ('apply_ms', 'apply ms', '%.1f'),
                ('acts_ms', 'wire at new level after ms', '%.0f'),
                ('wire_held', 'held next 1 s', '%.1f'),
                ('hold_ms', 'goodput at new level after ms', '%.0f'),
                ('goodput_held', 'held next 1 s', '%.1f'), ('dip', 'dip (x new)', '%.2f'),
                ('retransmits', 'retransmits', '%d'),
                ('drops_before', 'drops 1s before', '%d'), ('drops_after', 'drops 1s after', '%d'),
                ('hold_ratio', 'TCLink/ours', '%.1fx')], args.out,
         'Live re-split 75/25 -> 25/75 of %g Mbit/s (median of %d)' % (CAPACITY,
                                                                       args.repeat))


if __name__ == '__main__':
    main()
