"""Benchmark: the CPU the digits workload costs a period, as the edge agent spends it
(each device's model learns from the period's samples and distils one student) and as
each device spends it (scoring the model it holds), for fleets of N devices.  No root.

    .venv/bin/python -m benchmarks.workload [--sizes 2,10,50] [--generated 200]
"""

import argparse
import time

from edgecollab.nodes import workload
from benchmarks.report import emit

PERIODS = 3
# The default scenario's YOLOv8 fp16 menu, smallest and largest checkpoint.
SIZES = [6.4e6, 136.4e6]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='2,10,50')
    parser.add_argument('--generated', type=int, default=200,
                        help='samples that arrive from each device a period')
    parser.add_argument('--out', default='benchmarks/results/workload.json')
    args = parser.parse_args()
    rows = []
    for n in [int(v) for v in args.sizes.split(',')]:
        devices = ['d%d' % i for i in range(1, n + 1)]
        work = workload.from_spec({'name': 'digits', 'sample_bytes': 100000, 'sizes': SIZES,
                                   'devices': devices, 'seed': 1, 'drift': 10})
        began = time.process_time()
        learners = {d: work.learner(d) for d in devices}
        weights = {d: work.initial(d) for d in devices}
        start_cpu = time.process_time() - began
        edge, score = [], []
        for k in range(1, PERIODS + 1):
            blobs = {d: work.samples(d, k, (k - 1) * args.generated, args.generated)
                     for d in devices}
            began = time.process_time()
            for i, d in enumerate(devices):
                learners[d].add(blobs[d])
                size = SIZES[0] * (SIZES[1] / SIZES[0]) ** (i / max(1, n - 1))
                weights[d] = learners[d].student(size)
            edge.append(time.process_time() - began)
            began = time.process_time()
            accuracy = [work.score(weights[d], d, k) for d in devices]
            score.append(time.process_time() - began)
        rows.append({'devices': n, 'generated': args.generated,
                     'edge_cpu_s': max(edge), 'edge_cpu_per_device_ms': 1000 * max(edge) / n,
                     'device_score_ms': 1000 * max(score) / n,
                     'start_cpu_s': start_cpu,
                     'last_accuracy': sum(accuracy) / len(accuracy)})
    emit(rows, [('devices', 'devices', '%d'), ('generated', 'samples/period', '%d'),
                ('edge_cpu_s', 'edge CPU s', '%.2f'),
                ('edge_cpu_per_device_ms', 'per device ms', '%.0f'),
                ('device_score_ms', 'score ms', '%.1f'),
                ('start_cpu_s', 'start CPU s', '%.2f'),
                ('last_accuracy', 'top-1 %', '%.1f')],
         args.out, 'digits workload: CPU a period (the slowest of %d periods)' % PERIODS)


if __name__ == '__main__':
    main()
