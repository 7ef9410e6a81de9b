"""Benchmark: the capacity predictors over a corpus of traces (fluid backend).

For each predictor (``forecast:``) the scenario runs on every trace of the corpus
(``edgecollab run --traces``); per predictor: its error at the periods' starts against
the period's real mean (mean |forecast - real| / real, and the share of periods forecast
at more than 1.5 x or less than 1 / 1.5 x the real mean), and each policy's mean mAP and
``adaptive``'s captured share of ``oracle``'s lead across the corpus.

    .venv/bin/python -m benchmarks.forecasts scenarios/trace-corpus.yaml \\
        [--traces GLOB ...] [--predictors last,ewma,harmonic,robust] [--out DIR]
"""

import argparse
import os
import statistics
import subprocess
import sys

import yaml

from edgecollab.scenarios import corpus, results
from benchmarks.report import emit

PREDICTORS = ('last', 'ewma', 'harmonic', 'robust')


def scenario_with(path, predictor, out):
    """A copy of the scenario at path in out with forecast: predictor (its trace paths
    made absolute, so that they still resolve)."""
    with open(path) as src:
        raw = yaml.safe_load(src)
    base = os.path.dirname(os.path.abspath(path))

    def absolute(p):
        return p if os.path.isabs(p) else os.path.join(base, p)
    if isinstance(raw.get('capacity'), dict):
        raw['capacity']['trace'] = absolute(raw['capacity']['trace'])
    if 'traces' in raw:
        raw['traces'] = [absolute(p) for p in raw['traces']]
    raw['forecast'] = predictor
    copy = os.path.join(out, 'scenario-%s.yaml' % predictor)
    os.makedirs(out, exist_ok=True)
    with open(copy, 'w') as dst:
        yaml.safe_dump(raw, dst)
    return copy


def errors(folder):
    """(mean relative error, share over 1.5 x, share under 1 / 1.5 x) of the forecasts
    at the periods' starts over a corpus folder's traces (adaptive's rows)."""
    rel, over, under = [], 0, 0
    for _, trace in corpus.trace_folders(folder):
        rows = [r for r in results.read_periods(trace) if r['policy'] == 'adaptive']
        for r in {r['period']: r for r in rows}.values():
            f, c = r['forecast_mbit'], max(r['capacity_mbit'], 0.1)
            rel.append(abs(f - c) / c)
            over += f > 1.5 * c
            under += f < c / 1.5
    return statistics.fmean(rel), over / len(rel), under / len(rel)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('scenario')
    parser.add_argument('--traces', action='append', help='a corpus (default: the '
                        "scenario's traces: list)")
    parser.add_argument('--predictors', default=','.join(PREDICTORS))
    parser.add_argument('--out', default='benchmarks/results/forecasts')
    args = parser.parse_args(argv)
    rows = []
    for predictor in args.predictors.split(','):
        folder = os.path.join(args.out, predictor)
        command = [sys.executable, '-m', 'edgecollab.cli', 'run',
                   scenario_with(args.scenario, predictor, args.out), '--backend', 'fluid',
                   '--out', folder]
        for pattern in args.traces or ():
            command += ['--traces', os.path.abspath(pattern)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        verdict = results.read_json(os.path.join(folder, 'summary.json'))['corpus']
        error, over, under = errors(folder)
        row = {'predictor': predictor, 'error': error, 'over': over, 'under': under,
               'traces': verdict['traces'],
               'captured': verdict['policies']['adaptive'].get('captured')}
        for policy, entry in verdict['policies'].items():
            row[policy] = entry['mean']
        rows.append(row)
    policies = [p for p in rows[0] if p not in ('predictor', 'error', 'over', 'under',
                                                'traces', 'captured')]
    emit(rows, [('predictor', 'predictor', '%s'), ('error', 'rel. error', '%.2f'),
                ('over', '> 1.5x', '%.2f'), ('under', '< 1/1.5x', '%.2f'),
                ('captured', 'adaptive capt.', '%.2f')] +
         [(p, p, '%.2f') for p in policies],
         os.path.join(args.out, 'forecasts.json'),
         'predictors over %d traces of %s (fluid)' % (rows[0]['traces'], args.scenario))


if __name__ == '__main__':
    main()
