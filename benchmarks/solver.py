"""Benchmark: time per allocation of the fleet solver for 1..1000 devices against
scipy.optimize.minimize (SLSQP) on the same problem (continuous model sizes, devices
with different data volumes), in the same run; prints a table and writes JSON.

    .venv/bin/python -m benchmarks.solver [--sizes 1,10,100,1000]
"""

import argparse
import json
import time

import numpy as np
from scipy.optimize import minimize

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='benchmarks/results/solver.json')
    parser.add_argument('--sizes', default='1,10,100,1000')
    args = parser.parse_args()
    rows = []
    print('%8s %12s %12s %9s %14s' % ('devices', 'fleet ms', 'SLSQP ms', 'speed-up',
                                       'rel. diff mAP'))
    for n in [int(v) for v in args.sizes.split(',')]:
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
    with open(args.out, 'w') as out:
        json.dump(rows, out, indent=2)


if __name__ == '__main__':
    main()
