"""Benchmark: the CPU the digits workload costs a period, as the edge agent spends it
(each device's model learns from the period's samples and distils one student) and as
each device spends it (scoring the model it holds), for fleets of N devices; and
(--curve) its accuracy against samples and checkpoint size beside the reconstructed
model's, the shape the controller plans with.  No root.

    .venv/bin/python -m benchmarks.workload [--sizes 2,10,50] [--generated 200] [--curve]
"""

import argparse
import time

from edgecollab.nodes import workload
from benchmarks.report import emit

PERIODS = 3
# The default scenario's YOLOv8 fp16 menu, smallest and largest checkpoint.
SIZES = [6.4e6, 136.4e6]


def curve(out):
    """Top-1 of a device's student against the samples its model learnt from (one
    period, no drift) and the menu's checkpoint sizes, beside the model's mAP."""
    from edgecollab.controller.accuracy import AccuracyModel, yolov8_menu
    menu = yolov8_menu('fp16')
    model = AccuracyModel()
    rows = []
    for samples in (0, 25, 50, 100, 200, 400, 800):
        row = {'samples': samples}
        for seed in range(3):
            work = workload.from_spec({'name': 'digits', 'sample_bytes': 100000,
                                       'sizes': SIZES, 'devices': ['d1'], 'seed': seed,
                                       'drift': 0})
            learner = work.learner('d1')
            learner.add(work.samples('d1', 1, 0, samples))
            for variant in menu:
                row.setdefault(variant.name, []).append(
                    work.score(learner.student(variant.size_bytes), 'd1', 1))
        for variant in menu:
            row[variant.name] = sum(row[variant.name]) / len(row[variant.name])
            row[variant.name + ' mAP'] = float(model.accuracy(samples, variant.size_bytes))
        rows.append(row)
    emit(rows, [('samples', 'samples', '%d')] +
         [(v.name, v.name, '%.1f') for v in menu] +
         [(v.name + ' mAP', v.name[-1] + ' model', '%.1f') for v in menu], out,
         'digits top-1 %% (mean of 3 seeds) by samples learnt and checkpoint, and the '
         "reconstructed model's mAP")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='2,10,50')
    parser.add_argument('--generated', type=int, default=200,
                        help='samples that arrive from each device a period')
    parser.add_argument('--out', default='benchmarks/results/workload.json')
    parser.add_argument('--curve', action='store_true',
                        help='accuracy by samples and size instead of the CPU')
    args = parser.parse_args()
    if args.curve:
        curve(args.out.replace('.json', '-curve.json'))
        return
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
