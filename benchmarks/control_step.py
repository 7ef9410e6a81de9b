"""Benchmark: time to apply one full re-split of N devices (every class changed), with
one ``tc -batch`` process (what the link-share layer does) against one ``tc`` process
per command (the baseline), in the same run on the same emulation.  Needs root.

    .venv/bin/python benchmarks/control_step.py [--sizes 10,50,100,200]
"""

import argparse
import statistics
import time

from edgecollab.topologies.emulation import Emulation
from edgecollab.shell import runner
from edgecollab.topologies.star import EdgeStar
from benchmarks.report import emit

REPEAT = 5


def fractions(devices, upload):
    each = 1.0 / len(devices)
    return {d: {'up': each * upload, 'down': each * (1 - upload)} for d in devices}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='10,50,100,200')
    parser.add_argument('--out', default='benchmarks/results/control_step.json')
    args = parser.parse_args()
    rows = []
    for n in [int(v) for v in args.sizes.split(',')]:
        with Emulation(EdgeStar(n=n, capacity='100mbit', prefix='ecb')) as emu:
            link = emu.linkshare
            batch, single = [], []
            for k in range(REPEAT):
                began = time.perf_counter()
                link.set_shares(fractions(emu.devices, 0.3 if k % 2 else 0.7))
                batch.append(time.perf_counter() - began)
                commands = [cmd for tree in link.trees for cmd in tree.class_commands('change')]
                began = time.perf_counter()
                for cmd in commands:
                    runner.run(['tc'] + [str(a) for a in cmd], 'baseline: one tc per command')
                single.append(time.perf_counter() - began)
            rows.append({'devices': n, 'commands': len(commands),
                         'batch_ms': 1000 * statistics.median(batch),
                         'per_command_ms': 1000 * statistics.median(single),
                         'speedup': statistics.median(single) / statistics.median(batch)})
    emit(rows, [('devices', 'devices', '%d'), ('commands', 'tc commands', '%d'),
                ('batch_ms', 'tc -batch ms', '%.1f'), ('per_command_ms', 'one tc each ms', '%.1f'),
                ('speedup', 'ratio', '%.1fx')], args.out,
         'Control-loop step: one full re-split (median of %d)' % REPEAT)


if __name__ == '__main__':
    main()
