"""Reference solvers for the menu fleet, written apart from ``controller/menu.py``: the
benchmark and the tests hold the exact solver against them.

``exhaustive``: every assignment of options (keep, or a variant) to the devices, each
with its data water-filled by its own bisection on the price of a sample.  Exact, and
(K + 1) ** N assignments: for a few devices only.

``milp``: the same problem as a mixed-integer linear program solved by HiGHS
(``scipy.optimize.milp``): a binary per device and option, the data per device and
variant, and q replaced by the minimum of its tangents at ``tangents`` points, which
lies above the concave q, so the program's optimum is an upper bound; its choice of
options, with the data water-filled exactly, is a feasible answer.
"""

import itertools

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix


def _options(problem):
    variants = sorted(problem.menu, key=lambda v: v.size_bytes)
    maps = np.array([0.0] + [v.map for v in variants])
    bits = np.array([0.0] + [8 * v.size_bytes for v in variants])
    return maps, bits


def water_fill(problem, choices, generated, kept, floor=None, rates=None):
    """The sum of accuracies of each row of choices (C x N option indices, 0 = keep),
    its data water-filled into the budget the models leave; -inf where infeasible.
    rates: each device's channel rate relative to the capacity (airtime: device i's bits
    take 1 / rate_i of their number of the budget)."""
    acc, s, budget = problem.accuracy, problem.sample_bits, problem.budget_bits
    maps, bits = _options(problem)
    choices = np.atleast_2d(choices)
    gen = np.asarray(generated, dtype=float)[None, :]
    cost = np.ones(gen.shape) if rates is None else 1.0 / np.asarray(rates)[None, :]
    served = choices > 0
    weight = maps[choices]
    model_bits = (cost * bits[choices]).sum(axis=1)
    duplex = problem.medium == 'duplex'
    room = np.full(len(choices), budget) if duplex else budget - model_bits
    ok = model_bits <= problem.down_budget_bits if duplex else room >= 0
    need = np.zeros_like(weight)
    if floor is not None:
        # The fewest samples that lift a variant to the floor; keep needs kept >= floor.
        with np.errstate(divide='ignore', invalid='ignore'):
            target = np.where(served, floor / np.where(served, weight, 1.0), 0.0)
            need = np.where(target < 1, np.maximum(
                (acc.c / (1 - np.minimum(target, 1 - 1e-300))) ** (1 / acc.alpha) - acc.d0,
                0.0), np.inf)
        need = np.where(served, need, 0.0)
        ok &= np.all(np.where(served, need <= gen, np.asarray(kept)[None, :] >= floor - 1e-9),
                     axis=1)
    cap = np.where(served, gen, 0.0)
    ok &= s * (cost * need).sum(axis=1) <= room * (1 + 1e-12)
    # D(price) = (A c alpha / (price w s)) ** beta - d0 with beta = 1 / (1 + alpha):
    # (A / w) ** beta once, a scalar factor a row at each step of the bisection.
    beta = 1 / (1 + acc.alpha)
    d = cap.copy()
    tight = np.flatnonzero(ok & (s * (cost * cap).sum(axis=1) > room))
    root, low, high = (weight[tight] / cost) ** beta, need[tight], cap[tight]
    lo = np.full((tight.size, 1), -40.0)
    hi = np.full((tight.size, 1), 10.0)
    for _ in range(64):
        mid = (lo + hi) / 2
        factor = (acc.c * acc.alpha / (10.0 ** mid * s)) ** beta
        fits = s * (cost * np.clip(root * factor - acc.d0, low, high)).sum(
            axis=1, keepdims=True) <= room[tight, None]
        hi, lo = np.where(fits, mid, hi), np.where(fits, lo, mid)
    d[tight] = np.clip(root * (acc.c * acc.alpha / (10.0 ** hi * s)) ** beta - acc.d0,
                       low, high)
    values = np.where(served, weight * acc.q(d), np.asarray(kept)[None, :]).sum(axis=1)
    return np.where(ok, values, -np.inf)


def exhaustive(problem, generated, kept, floor=None, rates=None):
    """The best mean accuracy over every assignment of options (-inf: none feasible)."""
    n = len(generated)
    combos = np.array(list(itertools.product(range(len(problem.menu) + 1), repeat=n)))
    return float(np.max(water_fill(problem, combos, generated, kept, floor, rates))) / n


def milp_fleet(problem, generated, kept, tangents=12, time_limit_s=60.0):
    """(mean accuracy of the MILP's choice with its data water-filled, the MILP's upper
    bound on the mean, seconds) for a shared medium without a floor."""
    acc, s, budget = problem.accuracy, problem.sample_bits, problem.budget_bits
    maps, bits = _options(problem)
    generated = np.asarray(generated, dtype=float)
    n, options = generated.size, maps.size
    variants = options - 1
    # Columns: x[i, o] (binary, o = 0..K), then D[i, v] and y[i, v] for the variants.
    nx, nd = n * options, n * variants
    col_x = lambda i, o: i * options + o                             # noqa: E731
    col_d = lambda i, v: nx + i * variants + v                       # noqa: E731
    col_y = lambda i, v: nx + nd + i * variants + v                  # noqa: E731
    total = nx + 2 * nd
    points = np.geomspace(1.0, max(float(generated.max()), 2.0), tangents) - 1.0
    rows = n + 1 + nd * (1 + tangents)
    a = lil_matrix((rows, total))
    lower, upper = np.full(rows, -np.inf), np.zeros(rows)
    r = 0
    for i in range(n):                                   # one option a device
        for o in range(options):
            a[r, col_x(i, o)] = 1.0
        lower[r] = upper[r] = 1.0
        r += 1
    for i in range(n):                                   # the budget
        for o in range(1, options):
            a[r, col_x(i, o)] = bits[o]
            a[r, col_d(i, o - 1)] = s
    upper[r] = budget
    r += 1
    for i in range(n):
        for v in range(variants):
            a[r, col_d(i, v)] = 1.0                       # D <= G x
            a[r, col_x(i, v + 1)] = -generated[i]
            r += 1
            for p in points:                              # y <= A (tangent of q at p)
                slope = float(acc.q_slope(p))
                a[r, col_y(i, v)] = 1.0
                a[r, col_x(i, v + 1)] = -maps[v + 1] * (float(acc.q(p)) - slope * p)
                a[r, col_d(i, v)] = -maps[v + 1] * slope
                r += 1
    objective = np.zeros(total)
    for i in range(n):
        objective[col_x(i, 0)] = -kept[i]
        for v in range(variants):
            objective[col_y(i, v)] = -1.0
    integrality = np.concatenate([np.ones(nx), np.zeros(2 * nd)])
    high = np.concatenate([np.ones(nx), np.repeat(generated, variants), np.full(nd, np.inf)])
    result = milp(objective, integrality=integrality, bounds=Bounds(np.zeros(total), high),
                  constraints=LinearConstraint(a.tocsr(), lower, upper),
                  options={'time_limit': time_limit_s})
    x = np.round(result.x[:nx]).reshape(n, options)
    choice = np.argmax(x, axis=1)
    value = float(water_fill(problem, choice[None, :], generated, kept)[0]) / n
    bound = -float(result.mip_dual_bound) / n if result.mip_dual_bound is not None else None
    return value, bound
