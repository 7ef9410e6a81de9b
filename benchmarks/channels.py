"""Benchmark: the fleet solvers with a channel per device (medium airtime) against one
channel for the fleet (shared), same fleets: time per allocation (best of --repeat) for
the YOLOv8 menu and for continuous sizes, and, on small fleets, the largest shortfall
against exhaustive search with per-device rates.

    .venv/bin/python -m benchmarks.channels [--sizes 10,100,1000] [--exhaustive 200]
"""

import argparse
import dataclasses
import time

import numpy as np

from benchmarks.reference import exhaustive
from edgecollab.controller.accuracy import yolov8_menu
from edgecollab.controller.fleet import solve_fleet
from edgecollab.controller.solver import Problem


def fleet(rng, n, menu):
    """A random airtime fleet of n devices: channels 0.1-3 x the mean."""
    problem = Problem(capacity_mbit=float(rng.uniform(2, 20)) * n, period_s=30.0,
                      sample_bits=8e5, menu=tuple(yolov8_menu('fp16')) if menu else (),
                      medium='airtime',
                      rates=tuple(float(r) for r in rng.uniform(0.1, 3.0, n)))
    return problem, rng.integers(0, 3000, n).astype(float), rng.uniform(10, 35, n)


def best_time(func, repeat):
    best = float('inf')
    for _ in range(repeat):
        began = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - began)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='10,100,1000')
    parser.add_argument('--exhaustive', type=int, default=200)
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    print('%8s %10s %14s %14s' % ('devices', 'sizes', 'airtime ms', 'shared ms'))
    for n in (int(v) for v in args.sizes.split(',')):
        for menu in (True, False):
            problem, generated, kept = fleet(rng, n, menu)
            shared = dataclasses.replace(problem, medium='shared', rates=())
            air = best_time(lambda: solve_fleet(problem, generated, kept=kept), args.repeat)
            one = best_time(lambda: solve_fleet(shared, generated, kept=kept), args.repeat)
            print('%8d %10s %14.1f %14.1f' % (n, 'menu' if menu else 'continuous',
                                               1000 * air, 1000 * one))
    worst = 0.0
    for index in range(args.exhaustive):
        problem, generated, kept = fleet(rng, 2 + index % 4, True)
        answer = solve_fleet(problem, generated, kept=kept).mean_accuracy
        worst = max(worst, exhaustive(problem, generated, kept, rates=problem.rates) - answer)
    print('largest shortfall against exhaustive search over %d fleets of 2-5 devices: '
          '%.3g mAP' % (args.exhaustive, worst))


if __name__ == '__main__':
    main()
