"""Benchmark: the cost of real TCP against the round trip.

Runs a scenario's policies under Mininet with every device's one-way delay set to half
of each round trip asked for (the delay line on a kernel without netem), and once on
the fluid backend (which models no round trip), and prints per round trip and policy:
mean mAP emulated and fluid, the gap (the cost of real TCP), the measured TCP
efficiency (goodput / share) and the link utilisation.  Needs root.

    .venv/bin/python -m benchmarks.rtt_sweep [scenarios/default.yaml] \\
        [--rtts 0,10,40,100,300] [--policies optimal,adaptive,equal] [--out DIR]
"""

import argparse
import os
import subprocess
import sys

import yaml

from edgecollab.scenarios import results
from benchmarks.report import emit


def run(scenario, backend, policies, out):
    subprocess.run([sys.executable, '-m', 'edgecollab.cli', 'run', scenario, '--backend',
                    backend, '--policies', policies, '--out', out], check=True,
                   stdout=subprocess.DEVNULL)
    return results.summarise(results.read_periods(out))


def with_delay(scenario, one_way_ms, folder):
    """A copy of scenario in folder with every device's one-way delay set (its trace and
    policy-file paths made absolute so that they still resolve)."""
    with open(scenario, encoding='utf-8') as src:
        raw = yaml.safe_load(src)
    here = os.path.dirname(os.path.abspath(scenario))
    for key in ('capacity', 'capacity_down'):
        if isinstance(raw.get(key), dict) and 'trace' in raw[key]:
            raw[key]['trace'] = os.path.join(here, raw[key]['trace'])
    if 'policy_file' in raw:
        raw['policy_file'] = os.path.join(here, raw['policy_file'])
    raw['delay'] = '%gms' % one_way_ms
    path = os.path.join(folder, 'rtt-%g.yaml' % (2 * one_way_ms))
    with open(path, 'w', encoding='utf-8') as dst:
        yaml.safe_dump(raw, dst)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('scenario', nargs='?', default='scenarios/default.yaml')
    parser.add_argument('--rtts', default='0,10,40,100,300', help='round trips in ms')
    parser.add_argument('--policies', default='optimal,adaptive,equal')
    parser.add_argument('--out', default='benchmarks/results/rtt-sweep')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    fluid = run(args.scenario, 'fluid', args.policies, os.path.join(args.out, 'fluid'))
    rows = []
    for rtt in [float(v) for v in args.rtts.split(',')]:
        path = with_delay(args.scenario, rtt / 2, args.out)
        real = run(path, 'mininet', args.policies, os.path.join(args.out, 'rtt-%g' % rtt))
        for policy in args.policies.split(','):
            s, f = real[policy], fluid[policy]
            rows.append({'rtt_ms': rtt, 'policy': policy, 'map': s['mean_accuracy'],
                         'fluid_map': f['mean_accuracy'],
                         'gap': f['mean_accuracy'] - s['mean_accuracy'],
                         'efficiency': s['mean_efficiency'],
                         'utilisation': s['utilisation']})
    emit(rows, [('rtt_ms', 'RTT ms', '%g'), ('policy', 'policy', '%s'),
                ('map', 'mAP', '%.2f'), ('fluid_map', 'fluid mAP', '%.2f'),
                ('gap', 'fluid - real', '%+.2f'), ('efficiency', 'TCP eff', '%.2f'),
                ('utilisation', 'util', '%.2f')],
         os.path.join(args.out, 'rtt-sweep.json'),
         'Real TCP against the fluid ideal by round trip (%s)' % args.scenario)


if __name__ == '__main__':
    main()
