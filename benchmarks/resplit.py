"""Benchmark: a live re-split.  One device uploads and downloads at once (iperf3, 100 ms
intervals) on 20 Mbit/s with a 75/25 split; the controller decides 25/75.  Measured: the
time the change takes to apply, the time until both flows hold within 5% of their new
steady goodput, the dip of the flow that shrinks, and TCP retransmissions in the second
after the change.  Baseline in the same run: Mininet's TCLink, changed with
``intf.config(bw=...)`` (which rebuilds the qdisc).  Needs root.

    .venv/bin/python -m benchmarks.resplit [--repeat 3]
"""

import argparse
import statistics
import time

from edgecollab.emulation import Emulation
from edgecollab.iperf import Flow, mean_between, retransmits_between
from edgecollab.topologies.star import EdgeStar
from benchmarks.baseline import TCLinkStar, device_link, offload_off
from benchmarks.report import emit
from tests.helpers import sleep_until

CAPACITY, BEFORE, AFTER = 20.0, 0.75, 0.25
DURATION_S, CHANGE_AT_S = 12, 5.0


def run_once(emu, change, drops=None):
    """Start both flows, call change() at CHANGE_AT_S; return the measurements.
    drops: a callable giving the shaper's total queue drops now (None: not known)."""
    flows = {d: Flow(emu, 'd1', d, 5301 + i, DURATION_S, interval_s=0.1, window='4M')
             for i, d in enumerate(('up', 'down'))}
    for flow in flows.values():
        flow.start_server()
    for flow in flows.values():
        flow.start_client()
    t0 = max(f.started_s for f in flows.values())
    sleep_until(t0 + CHANGE_AT_S - 1.0)
    marks = [drops() if drops else None]
    sleep_until(t0 + CHANGE_AT_S)
    marks.append(drops() if drops else None)
    decided = time.monotonic()
    change()
    applied = time.monotonic()
    sleep_until(decided + 1.0)
    marks.append(drops() if drops else None)
    series = {d: f.result() for d, f in flows.items()}
    steady = {d: mean_between(s, decided + 3, t0 + DURATION_S - 0.5)
              for d, s in series.items()}
    holding = decided
    for d, s in series.items():
        after = [(a, b, rate) for a, b, rate in s if a >= decided - 1e-6]
        # The first interval from which every later one is within 5% of the new level.
        for i in range(len(after)):
            if all(abs(rate - steady[d]) <= 0.05 * steady[d] for _, _, rate in after[i:]):
                holding = max(holding, after[i][1])
                break
        else:
            holding = float('inf')
    shrinking = series['up']
    dip = min(rate for a, b, rate in shrinking if decided <= a <= decided + 1.0)
    return {'apply_ms': 1000 * (applied - decided), 'hold_ms': 1000 * (holding - decided),
            'dip': dip / steady['up'],
            'retransmits': sum(retransmits_between(f, decided, decided + 1.0)
                               for f in flows.values()),
            'drops_before': marks[1] - marks[0] if drops else None,
            'drops_after': marks[2] - marks[1] if drops else None}


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
        for key in ('apply_ms', 'hold_ms', 'dip', 'retransmits', 'drops_before',
                    'drops_after'):
            values = [r[key] for r in runs if r[key] is not None]
            row[key] = statistics.median(values) if values else None
        rows.append(row)
    ours, base = rows
    ours['hold_ratio'] = base['hold_ms'] / ours['hold_ms'] if ours['hold_ms'] else None
    emit(rows, [('shaper', 'shaper', '%s'), ('apply_ms', 'apply ms', '%.1f'),
                ('hold_ms', 'holds after ms', '%.0f'), ('dip', 'dip (x new)', '%.2f'),
                ('retransmits', 'retransmits', '%d'),
                ('drops_before', 'drops 1s before', '%d'), ('drops_after', 'drops 1s after', '%d'),
                ('hold_ratio', 'TCLink/ours', '%.1fx')], args.out,
         'Live re-split 75/25 -> 25/75 of %g Mbit/s (median of %d)' % (CAPACITY,
                                                                       args.repeat))


if __name__ == '__main__':
    main()
