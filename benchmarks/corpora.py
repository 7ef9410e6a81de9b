"""Benchmark: the closed loop over corpora built from ../shared/traces (fluid backend).

The traces of ../shared/traces (Norway 3G, FCC, Mahimahi up- and downlinks: 24
recordings) at several rates, in two scenarios that differ in period, devices and menu
(``cellular.yaml``: 3 devices, 30 s periods, int8; ``default.yaml``: 2 devices, 10 s
periods, fp16), every policy on each trace.  For each corpus it prints what issue 24's
bar is judged by: the share of ``oracle``'s lead over each trace's best baseline that
``adaptive`` captures (over the traces where that lead is above 0.3 mAP), the traces
where ``adaptive`` is more than 0.05 mAP below the best baseline, and its largest
shortfall.  A corpus is a copy of the scenario whose capacity mapping has ``scale:``;
each runs with ``edgecollab run --traces`` (about 15-60 s each on 2 cores).

    .venv/bin/python -m benchmarks.corpora [--shared ../shared/traces] \\
        [--only default-x3] [--out /tmp/corpora] [--trace-start 120s]

``--trace-start`` cuts every trace from a later time (``edgecollab run
--trace-start``): the same recordings from another start are cases the closed loop
was not tuned on.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys

import yaml

from benchmarks.report import emit
from edgecollab.scenarios import corpus

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETS = {'norway': ['norway/*'], 'fcc': ['fcc/*'],
        'all': ['norway/*', 'fcc/*', 'mahimahi/*.down', 'mahimahi/*.up']}
# (scenario, scale, trace set): 12 corpora, means from 0.5 to about 180 Mbit/s.
CORPORA = [(base, scale, 'all') for base in ('cellular', 'default') for scale in (1, 3, 15)] + \
    [(base, scale, 'norway') for base in ('cellular', 'default') for scale in (20, 40)] + \
    [(base, 20, 'fcc') for base in ('cellular', 'default')]
POLICIES = 'optimal,adaptive,oracle,equal,upload-first,model-first,proportional,tcp-fair'
# The columns of the verdict table (key, header, format).
COLUMNS = [('corpus', 'corpus', '%s'), ('traces', 'traces', '%d'),
           ('adaptive', 'adaptive', '%.2f'), ('oracle', 'oracle', '%.2f'),
           ('captured', 'captured', '%.2f'), ('over', 'over', '%d'),
           ('below', 'below best', '%d'), ('shortfall', 'worst short', '%.2f')]


def name_of(base, scale, which):
    return '%s-x%d%s' % (base, scale, '' if which == 'all' else '-' + which)


def scenario_copy(base, scale, out):
    """A copy of scenarios/<base>.yaml with its capacity trace scaled by scale."""
    with open(os.path.join(HERE, 'scenarios', base + '.yaml'), encoding='utf-8') as f:
        raw = yaml.safe_load(f)
    capacity = raw.get('capacity')
    capacity = dict(capacity) if isinstance(capacity, dict) else {}
    if 'trace' in capacity:
        capacity['trace'] = os.path.join(HERE, 'scenarios', capacity['trace'])
    else:
        capacity['trace'] = os.path.join(HERE, 'scenarios', 'traces',
                                         'tmobile-lte-short.txt')
    capacity['scale'] = scale
    raw['capacity'] = capacity
    path = os.path.join(out, 'scenario-%s-x%d.yaml' % (base, scale))
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    return path


def run(base, scale, which, shared, out, start=None):
    """Run one corpus into out/<name> (fluid), its traces cut from start (None: their
    beginning); return its summary's corpus verdict."""
    return run_corpus(scenario_copy(base, scale, out),
                      [os.path.join(shared, pattern) for pattern in SETS[which]],
                      os.path.join(out, name_of(base, scale, which)), start)


def run_corpus(scenario, patterns, folder, start=None):
    """Run scenario over the traces patterns match into folder (fluid, every policy),
    the traces cut from start; return (its summary's corpus verdict, folder)."""
    if corpus.is_corpus(folder):
        shutil.rmtree(folder)               # this benchmark's last run of the corpus
    command = [sys.executable, '-m', 'edgecollab.cli', 'run', scenario,
               '--backend', 'fluid', '--policies', POLICIES, '--out', folder]
    if start:
        command += ['--trace-start', start]
    for pattern in patterns:
        command += ['--traces', pattern]
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    if done.returncode:
        sys.exit('%s failed:\n%s' % (' '.join(command), done.stderr))
    with open(os.path.join(folder, 'summary.json'), encoding='utf-8') as f:
        return json.load(f)['corpus'], folder


def shortfall(folder, verdict):
    """adaptive's largest shortfall below a trace's best baseline (mAP; <= 0: none)."""
    import csv
    with open(os.path.join(folder, 'corpus.csv'), encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    means = {}
    for r in rows:
        means.setdefault(r['trace'], {})[r['policy']] = float(r['accuracy'])
    best = verdict['best_baseline']
    return max(means[t][best[t]] - means[t]['adaptive'] for t in best)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--shared', default=os.path.join(HERE, '..', 'shared', 'traces'))
    parser.add_argument('--only', help='comma-separated corpus names, e.g. default-x3')
    parser.add_argument('--out', default='/tmp/edgecollab-corpora')
    parser.add_argument('--trace-start', metavar='TIME',
                        help='cut every trace from this time, e.g. 120s')
    args = parser.parse_args(argv)
    if not glob.glob(os.path.join(args.shared, 'norway', '*')):
        parser.error('no traces under %s (--shared)' % args.shared)
    os.makedirs(args.out, exist_ok=True)
    only = set(args.only.split(',')) if args.only else None
    rows = []
    for base, scale, which in CORPORA:
        name = name_of(base, scale, which)
        if only and name not in only:
            continue
        verdict, folder = run(base, scale, which, args.shared, args.out,
                              args.trace_start)
        rows.append(verdict_row(name, verdict, folder))
    emit(rows, COLUMNS, os.path.join(args.out, 'corpora.json'),
         'adaptive over corpora from %s%s' % (
             args.shared, ' from %s' % args.trace_start if args.trace_start else ''))
    return 0


def verdict_row(name, verdict, folder):
    """The table row of one corpus's verdict (run_corpus), printed as it comes."""
    mine = verdict['policies']['adaptive']
    row = {'corpus': name, 'traces': verdict['traces'],
           'captured': mine['captured'], 'over': mine['captured_over'],
           'below': len(mine['below_best_baseline']),
           'shortfall': shortfall(folder, verdict),
           'adaptive': mine['mean'], 'oracle': verdict['policies']['oracle']['mean'],
           'which': ' '.join(mine['below_best_baseline'])}
    print('%s: captured %s over %d traces, %d below the best baseline %s' % (
        name, '-' if mine['captured'] is None else '%.0f%%' % (100 * mine['captured']),
        mine['captured_over'], row['below'], row['which']), flush=True)
    return row


if __name__ == '__main__':
    sys.exit(main())
