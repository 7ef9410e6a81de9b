"""Benchmark: the fleet solvers against generic and exhaustive ones, in the same run.

Continuous sizes: time per allocation for 1..1000 devices against
scipy.optimize.minimize (SLSQP) on the same problem.  A model menu (YOLOv8 fp16, keep
allowed): the exact solver against exhaustive search (small fleets: the largest
shortfall and the time) and against a generic MILP (HiGHS, ``benchmarks/reference.py``)
on random fleets of 10..10,000 devices: time, mean accuracy and the certified gap
(bound - answer).  Prints tables and writes JSON.

    .venv/bin/python -m benchmarks.solver [--sizes 1,10,100,1000]
        [--menu-sizes 10,100,1000,10000] [--milp-sizes 10,100] [--exhaustive 200]
"""

import argparse
import json
import os
import time

import numpy as np
from scipy.optimize import minimize

from benchmarks.reference import exhaustive, milp_fleet
from edgecollab.controller.accuracy import yolov8_menu
from edgecollab.controller.fleet import solve_fleet
from edgecollab.controller.solver import Problem


def slsqp(problem, generated):
    """The same problem as a generic constrained optimisation (the baseline)."""
    n, acc, s = len(generated), problem.accuracy, problem.sample_bits
    budget = problem.budget_bits
    scale = np.concatenate([np.full(n, problem.max_model_bytes), generated])

    def objective(z):
        size, samples = z[:n] * scale[:n], z[n:] * scale[n:]
        return -float(np.mean(acc.accuracy(samples, size)))

    def gradient(z):
        size, samples = z[:n] * scale[:n], z[n:] * scale[n:]
        g_size = acc.size_slope(size) * acc.q(samples) * scale[:n] / n
        g_data = acc.size_term(size) * acc.q_slope(samples) * scale[n:] / n
        return -np.concatenate([g_size, g_data])
    budget_constraint = {'type': 'ineq', 'fun': lambda z: 1 - float(
        np.sum(8 * z[:n] * scale[:n] + s * z[n:] * scale[n:])) / budget,
        'jac': lambda z: -np.concatenate([8 * scale[:n], s * scale[n:]]) / budget}
    lower = problem.min_model_bytes / problem.max_model_bytes
    start = np.concatenate([np.full(n, lower), np.zeros(n)])
    bounds = [(lower, 1.0)] * n + [(0.0, 1.0)] * n
    result = minimize(objective, start, jac=gradient, bounds=bounds,
                      constraints=[budget_constraint], method='SLSQP',
                      options={'maxiter': 500, 'ftol': 1e-12})
    return -result.fun


def timed(func, repeat):
    best = float('inf')
    for _ in range(repeat):
        began = time.perf_counter()
        value = func()
        best = min(best, time.perf_counter() - began)
    return best * 1000, value


def menu_fleet(n, seed):
    """A random menu fleet of n devices: (problem, generated, kept)."""
    rng = np.random.default_rng(seed)
    problem = Problem(capacity_mbit=float(rng.uniform(5, 40)) * n, period_s=10.0,
                      sample_bits=8 * float(rng.choice([1e4, 1e5])),
                      menu=tuple(yolov8_menu('fp16')))
    return problem, rng.integers(10, 3000, n).astype(float), rng.uniform(15, 30, n)


def continuous_rows(sizes):
    rows = []
    print('continuous sizes')
    print('%8s %12s %12s %9s %14s' % ('devices', 'fleet ms', 'SLSQP ms', 'speed-up',
                                       'rel. diff mAP'))
    for n in sizes:
        rng = np.random.default_rng(n)
        generated = rng.uniform(200, 5000, n)
        problem = Problem(capacity_mbit=15.0 * n)
        fleet_ms, fleet = timed(lambda: solve_fleet(problem, generated), 3)
        base_ms, base = timed(lambda: slsqp(problem, generated), 1 if n >= 100 else 3)
        diff = (fleet.mean_accuracy - base) / base
        rows.append({'devices': n, 'fleet_ms': fleet_ms, 'slsqp_ms': base_ms,
                     'speedup': base_ms / fleet_ms, 'fleet_map': fleet.mean_accuracy,
                     'slsqp_map': base, 'relative_difference': diff})
        print('%8d %12.2f %12.2f %9.1fx %+14.2e' % (n, fleet_ms, base_ms, base_ms / fleet_ms,
                                                   diff))
    return rows


def exhaustive_rows(count):
    rows = []
    print('menu, against exhaustive search (%d random fleets a size)' % count)
    print('%8s %14s %14s %18s %8s' % ('devices', 'exact ms mean', 'exhaustive ms',
                                       'largest shortfall', 'exact'))
    for n in (2, 4, 6):
        exact_ms, search_ms, shortfall, proven = [], [], 0.0, 0
        for seed in range(count):
            problem, generated, kept = menu_fleet(n, 1000 * n + seed)
            ms, answer = timed(lambda: solve_fleet(problem, generated, kept=kept), 1)
            ms_search, best = timed(lambda: exhaustive(problem, generated, kept), 1)
            exact_ms.append(ms)
            search_ms.append(ms_search)
            shortfall = max(shortfall, best - answer.mean_accuracy)
            proven += answer.exact
        rows.append({'devices': n, 'fleets': count, 'exact_ms': float(np.mean(exact_ms)),
                     'exhaustive_ms': float(np.mean(search_ms)), 'largest_shortfall': shortfall,
                     'proven_exact': proven})
        print('%8d %14.2f %14.2f %18.2e %8s' % (n, np.mean(exact_ms), np.mean(search_ms),
                                                 shortfall, '%d/%d' % (proven, count)))
    return rows


def menu_rows(sizes, milp_sizes):
    rows = []
    print('menu, large fleets (MILP: HiGHS, q by 12 tangents, 60 s limit)')
    print('%8s %10s %12s %12s %8s %10s %12s %12s' % (
        'devices', 'exact ms', 'mean mAP', 'gap to bound', 'proven', 'MILP ms', 'MILP mAP',
        'MILP bound'))
    for n in sizes:
        problem, generated, kept = menu_fleet(n, n)
        ms, answer = timed(lambda: solve_fleet(problem, generated, kept=kept), 3)
        row = {'devices': n, 'exact_ms': ms, 'mean_map': answer.mean_accuracy,
               'bound': answer.bound, 'gap': answer.bound - answer.mean_accuracy,
               'proven_exact': answer.exact}
        if n in milp_sizes:
            milp_ms, (value, bound) = timed(lambda: milp_fleet(problem, generated, kept), 1)
            row.update(milp_ms=milp_ms, milp_map=value, milp_bound=bound)
        rows.append(row)
        print('%8d %10.2f %12.6f %12.2e %8s %10s %12s %12s' % (
            n, ms, answer.mean_accuracy, row['gap'], answer.exact,
            '%.0f' % row['milp_ms'] if 'milp_ms' in row else '-',
            '%.6f' % row['milp_map'] if 'milp_map' in row else '-',
            '%.6f' % row['milp_bound'] if row.get('milp_bound') is not None else '-'))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='benchmarks/results/solver.json')
    parser.add_argument('--sizes', default='1,10,100,1000')
    parser.add_argument('--menu-sizes', default='10,100,1000,10000')
    parser.add_argument('--milp-sizes', default='10,100')
    parser.add_argument('--exhaustive', type=int, default=200,
                        help='random fleets a size against exhaustive search')
    args = parser.parse_args()
    ints = lambda text: [int(v) for v in text.split(',') if v]      # noqa: E731
    result = {'continuous': continuous_rows(ints(args.sizes)),
              'menu_exhaustive': exhaustive_rows(args.exhaustive),
              'menu': menu_rows(ints(args.menu_sizes), ints(args.milp_sizes))}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as out:
        json.dump(result, out, indent=2)
    print('wrote %s' % args.out)


if __name__ == '__main__':
    main()
