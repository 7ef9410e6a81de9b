"""Benchmark: the closed loop over bursty traces with outages (fluid backend).

The recordings in ../shared/traces are 3G and LTE; 5G throughput logged once a second
looks otherwise: long bursts at tens to hundreds of Mbit/s and whole seconds at zero
(15-30% of them), the link changing regime every few seconds.  This benchmark makes
such traces, seeded so that a run is repeatable, and runs ``cellular.yaml`` (30 s
periods, 3 devices) and ``default.yaml`` (10 s periods, 2 devices) over them with every
policy, printing the verdict ``benchmarks.corpora`` prints: the share of ``oracle``'s
lead over each trace's best baseline that ``adaptive`` captures, and the traces where
it is more than 0.05 mAP below that baseline.

Each trace (one row a second, 200 s) is a Markov chain over four regimes, outage
(0 or under 2% of the mean), low, mid and high (0.3, 1 and 2.2 relative, each second
log-normal around it, sigma 0.45); a regime lasts a geometric number of seconds (mean
2-8 s, drawn per trace), the outage is entered with probability 0.15-0.30 (per trace)
and the whole trace is scaled to a mean drawn log-uniformly from 3-120 Mbit/s.  These
are synthetic: a stress test of the loop's robustness, not a measurement of any
network; ``--seed`` gives another set (cases the loop was not tuned on).

    .venv/bin/python -m benchmarks.outages [--count 24] [--seed 100] [--out DIR]
"""

import argparse
import os
import sys

import numpy as np

from benchmarks.corpora import COLUMNS, HERE, run_corpus, verdict_row
from benchmarks.report import emit

LENGTH_S = 200
LEVELS = (0.0, 0.3, 1.0, 2.2)       # the regimes' rates relative to the trace's scale
SIGMA = 0.45                         # log-normal spread of a second within its regime
MEAN_MBIT = (3.0, 120.0)             # a trace's mean, drawn log-uniformly
DWELL_S = (2.0, 8.0)                 # a trace's mean regime length
OUTAGE = (0.15, 0.30)                # a trace's chance that the next regime is an outage


def trace(seed):
    """One trace's rates (Mbit/s, one a second) from seed."""
    rng = np.random.default_rng(seed)
    mean = float(np.exp(rng.uniform(*np.log(MEAN_MBIT))))
    outage = rng.uniform(*OUTAGE)
    dwell = rng.uniform(*DWELL_S)
    odds = np.array([outage, 0.25, 0.35, 0.40 - outage])     # sums to 1
    rates, regime = [], 2
    while len(rates) < LENGTH_S:
        for _ in range(int(rng.geometric(1.0 / dwell))):
            if regime == 0:
                rates.append(0.0 if rng.random() < 0.5 else rng.uniform(0.0, 0.02))
            else:
                rates.append(LEVELS[regime] * float(np.exp(rng.normal(0.0, SIGMA))))
        regime = int(rng.choice(len(LEVELS), p=odds))
    rates = np.array(rates[:LENGTH_S])
    return rates * mean / rates.mean()


def write(folder, count, seed):
    """count traces of seeds seed, seed + 1, ... as CSV files in folder; their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for k in range(count):
        path = os.path.join(folder, 'outages-%d.csv' % (seed + k))
        with open(path, 'w', encoding='utf-8') as f:
            f.write('time_s,rate_mbit\n')
            f.writelines('%d,%.3f\n' % (i, r) for i, r in enumerate(trace(seed + k)))
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=24)
    parser.add_argument('--seed', type=int, default=100)
    parser.add_argument('--out', default='/tmp/edgecollab-outages')
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error('--count must be at least 1')
    folder = os.path.join(args.out, 'traces-%d' % args.seed)
    write(folder, args.count, args.seed)
    rows = []
    for base in ('cellular', 'default'):
        verdict, out = run_corpus(os.path.join(HERE, 'scenarios', base + '.yaml'),
                                  [os.path.join(folder, '*.csv')],
                                  os.path.join(args.out, '%s-%d' % (base, args.seed)))
        rows.append(verdict_row('%s, seed %d' % (base, args.seed), verdict, out))
    emit(rows, COLUMNS, os.path.join(args.out, 'outages-%d.json' % args.seed),
         'adaptive over %d bursty traces with outages (seed %d)' % (args.count, args.seed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
