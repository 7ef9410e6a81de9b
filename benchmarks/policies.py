"""Benchmark: every policy of a scenario under real TCP against its fluid evaluation.

Runs the scenario on both backends (or reads folders already run) and prints, per
policy: mean mAP emulated and fluid and the fluid-vs-emulated gap (the cost of real
TCP), utilisation (bytes delivered / bytes the link could carry), idle fraction and the
device-period outcomes, then the oracle-vs-adaptive gap (the cost of forecasting) and
whether adaptive is at least every baseline.  Needs root for the emulated run.

    .venv/bin/python -m benchmarks.policies scenarios/cellular.yaml \\
        [--emulated DIR] [--fluid DIR] [--out DIR]
"""

import argparse
import os
import subprocess
import sys

from edgecollab.controller.policies import BASELINES
from edgecollab.scenarios import results
from benchmarks.report import emit


def folder(scenario, backend, given, out):
    """The results folder of scenario on backend: given, or a new run into out."""
    if given:
        return given
    path = os.path.join(out, '%s-%s' % (os.path.splitext(os.path.basename(scenario))[0],
                                        backend))
    subprocess.run([sys.executable, '-m', 'edgecollab.cli', 'run', scenario, '--backend',
                    backend, '--out', path], check=True)
    return path


def compare(emulated, fluid):
    """Rows (one a policy, best emulated mAP first) from two results folders."""
    real = results.summarise(results.read_periods(emulated))
    ideal = results.summarise(results.read_periods(fluid))
    rows = []
    for name, s in sorted(real.items(), key=lambda kv: -kv[1]['mean_accuracy']):
        f = ideal.get(name, {})
        rows.append({'policy': name, 'map': s['mean_accuracy'],
                     'fluid_map': f.get('mean_accuracy'),
                     'gap': f['mean_accuracy'] - s['mean_accuracy'] if f else None,
                     'utilisation': s['utilisation'], 'fluid_utilisation':
                         f.get('utilisation'), 'idle': s['idle_fraction'],
                     'outcomes': ' '.join('%d%s' % (n, results.OUTCOME_LETTERS.get(o, o))
                                          for o, n in sorted(s['outcomes'].items()))})
    return rows


def per_period(folder):
    """Rows (one a period): the forecast and real mean capacity and each policy's mean
    mAP over the devices: where in the trace each policy wins and loses."""
    rows = results.read_periods(folder)
    table = []
    for k in sorted({r['period'] for r in rows}):
        mine = [r for r in rows if r['period'] == k]
        row = {'period': k, 'forecast': mine[0]['forecast_mbit'],
               'capacity': mine[0]['capacity_mbit']}
        for policy in dict.fromkeys(r['policy'] for r in mine):
            values = [r['accuracy'] for r in mine if r['policy'] == policy]
            row[policy] = sum(values) / len(values)
        table.append(row)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('scenario')
    parser.add_argument('--emulated', help='a results folder of the scenario under Mininet')
    parser.add_argument('--fluid', help='a results folder of the scenario on the fluid backend')
    parser.add_argument('--out', default='benchmarks/results')
    args = parser.parse_args(argv)
    fluid = folder(args.scenario, 'fluid', args.fluid, args.out)
    emulated = folder(args.scenario, 'mininet', args.emulated, args.out)
    rows = compare(emulated, fluid)
    name = os.path.splitext(os.path.basename(args.scenario))[0]
    emit(rows, [('policy', 'policy', '%s'), ('map', 'mAP', '%.2f'),
                ('fluid_map', 'fluid mAP', '%.2f'), ('gap', 'fluid - real', '%+.2f'),
                ('utilisation', 'util', '%.2f'), ('fluid_utilisation', 'fluid util', '%.2f'),
                ('idle', 'idle', '%.2f'), ('outcomes', 'outcomes', '%s')],
         os.path.join(args.out, 'policies-%s.json' % name),
         '%s: emulated %s, fluid %s' % (args.scenario, emulated, fluid))
    periods = per_period(emulated)
    policies = [r['policy'] for r in rows]
    emit(periods, [('period', 'period', '%d'), ('forecast', 'forecast Mbit/s', '%.2f'),
                   ('capacity', 'real Mbit/s', '%.2f')] +
         [(p, p, '%.2f') for p in policies],
         os.path.join(args.out, 'policies-%s-periods.json' % name),
         'mean mAP per period (emulated)')
    by = {r['policy']: r for r in rows}
    if 'adaptive' in by and 'oracle' in by:
        print('oracle - adaptive: %+.2f mAP emulated, %+.2f fluid' % (
            by['oracle']['map'] - by['adaptive']['map'],
            by['oracle']['fluid_map'] - by['adaptive']['fluid_map']))
    if 'adaptive' in by:
        beaten = [b for b in BASELINES if b in by and by[b]['map'] > by['adaptive']['map']]
        print('adaptive >= every baseline: %s' % (
            'yes' if not beaten else 'no (%s above)' % ', '.join(beaten)))


if __name__ == '__main__':
    main()
