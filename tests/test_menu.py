"""The exact menu fleet: against exhaustive search, monotone in capacity, within budget.

The reference (``benchmarks/reference.py``) is written apart from the solver: every
assignment of options (keep or a variant) to the devices, each with its data
water-filled by its own bisection on the price of a sample.
"""

import itertools
import math

import numpy as np
import pytest

from benchmarks.reference import exhaustive, milp_fleet
from edgecollab.controller.accuracy import AccuracyModel, yolov8_menu
from edgecollab.controller.fleet import check_budget, solve_fleet
from edgecollab.controller.solver import Problem
from edgecollab.errors import ConfigError


def random_fleet(rng, n):
    precision = str(rng.choice(['fp16', 'fp32']))
    problem = Problem(capacity_mbit=float(rng.uniform(0.5, 60)) * n, period_s=10.0,
                      sample_bits=8 * float(rng.choice([1e4, 1e5, 3e5])),
                      menu=tuple(yolov8_menu(precision)))
    return problem, rng.integers(0, 3000, n).astype(float), rng.uniform(10, 35, n)


def test_equal_to_exhaustive_search_on_two_hundred_and_fifty_random_fleets():
    rng = np.random.default_rng(2026)
    worst = 0.0
    for index in range(250):
        n = 2 + index % 5
        problem, generated, kept = random_fleet(rng, n)
        answer = solve_fleet(problem, generated, kept=kept)
        best = exhaustive(problem, generated, kept)
        worst = max(worst, best - answer.mean_accuracy)
        assert answer.mean_accuracy >= best - 1e-7, (index, n, answer.mean_accuracy, best)
        assert answer.exact and answer.bound >= answer.mean_accuracy - 1e-9
    print('largest shortfall against exhaustive search: %.3g mAP' % worst)


def test_identical_round_number_fleets_match_exhaustive_search():
    menu = tuple(yolov8_menu('fp16'))
    for n, capacity, generated in itertools.product((2, 3, 4, 5), (5, 10, 20, 40, 80),
                                                    (100, 1000)):
        problem = Problem(capacity_mbit=float(capacity * n), period_s=10.0, sample_bits=8e4,
                          menu=menu)
        kept = [problem.kept_map()] * n
        answer = solve_fleet(problem, [generated] * n)
        assert answer.mean_accuracy >= exhaustive(problem, [generated] * n, kept) - 1e-7


def test_floor_and_duplex_match_exhaustive_search():
    rng = np.random.default_rng(7)
    for index in range(60):
        n = 2 + index % 3
        problem, generated, kept = random_fleet(rng, n)
        if index % 2:
            # A duplex link, its download at its own capacity (0.25-4 times the upload's).
            problem = Problem(**dict(problem.__dict__, medium='duplex',
                                     down_ratio=float(2.0 ** rng.uniform(-2, 2))))
            answer = solve_fleet(problem, generated, kept=kept)
            assert answer.mean_accuracy >= exhaustive(problem, generated, kept) - 1e-7
        else:
            floor = float(rng.uniform(10, 30))
            best = exhaustive(problem, generated, kept, floor)
            answer = solve_fleet(problem, generated, kept=kept, floor=floor)
            if best == -math.inf:
                assert not answer.feasible and 'floor' in answer.reason
            else:
                assert answer.feasible and answer.mean_accuracy >= best - 1e-7
                assert min(a.accuracy for a in answer.devices) >= floor - 1e-6


def test_monotone_in_capacity_over_dense_sweeps():
    rng = np.random.default_rng(11)
    for _ in range(8):
        problem, generated, kept = random_fleet(rng, int(rng.integers(2, 6)))
        last = -math.inf
        for capacity in np.linspace(0.5, 40, 60) * len(generated):
            answer = solve_fleet(Problem(**dict(problem.__dict__, capacity_mbit=capacity)),
                                 generated, kept=kept)
            assert answer.mean_accuracy >= last - 1e-9, (capacity, answer.mean_accuracy, last)
            last = answer.mean_accuracy


def test_the_fleets_the_issue_found():
    fp16 = tuple(yolov8_menu('fp16'))
    # n + n = 25.12 before; yolov8s for one device while the other keeps its model: 26.31.
    two = solve_fleet(Problem(capacity_mbit=20.0, period_s=10.0, sample_bits=8e4,
                              menu=fp16), [100, 100])
    assert round(two.mean_accuracy, 2) == 26.31
    assert sorted(a.model for a in two.devices) == ['', 'yolov8s']
    # 34.40 at 78 Mbit/s and 32.88 at 79 before: more capacity never lowers the optimum.
    at = [solve_fleet(Problem(capacity_mbit=c, period_s=10.0, sample_bits=8e4, menu=fp16),
                      [1000] * 4).mean_accuracy for c in (78.0, 79.0)]
    assert at[1] >= at[0] >= 34.39


def test_large_fleets_come_with_a_certified_bound():
    rng = np.random.default_rng(5)
    problem = Problem(capacity_mbit=20.0 * 300, period_s=10.0, sample_bits=8e5,
                      menu=tuple(yolov8_menu('fp16')))
    answer = solve_fleet(problem, rng.integers(10, 3000, 300).astype(float))
    assert answer.bound >= answer.mean_accuracy
    assert answer.bound - answer.mean_accuracy < 0.01, (answer.bound, answer.mean_accuracy)


@pytest.mark.parametrize('menu', [(), tuple(yolov8_menu('fp16'))])
def test_answers_are_finite_and_within_budget_for_extreme_inputs(menu):
    rng = np.random.default_rng(13)
    for sample_bits in (8.0, 8e4, 8e12, 8e28):
        for capacity in (0.001, 1.0, 100.0, 1e4):
            n = int(rng.integers(1, 8))
            problem = Problem(capacity_mbit=capacity, period_s=10.0, sample_bits=sample_bits,
                              menu=menu)
            answer = solve_fleet(problem, rng.integers(0, 10 ** 6, n).astype(float))
            assert answer is check_budget(problem, answer)
            assert sum(a.upload_share + a.download_share for a in answer.devices) <= 1 + 1e-9


def test_kept_must_be_one_accuracy_a_device():
    problem = Problem(capacity_mbit=20.0, menu=tuple(yolov8_menu('fp16')))
    for kept in ([1.0], [1.0, float('nan')], [-1.0, 2.0]):
        with pytest.raises(ConfigError, match='kept'):
            solve_fleet(problem, [100, 100], kept=kept)


def test_an_answer_over_budget_is_refused():
    from edgecollab.controller.solver import Allocation, FleetAllocation
    from edgecollab.errors import SolverError
    problem = Problem(capacity_mbit=1.0, period_s=1.0, accuracy=AccuracyModel())
    over = FleetAllocation([Allocation(0.6, 0.6, 1e5, 1e5, 30.0, True)])
    with pytest.raises(SolverError, match='over the budget'):
        check_budget(problem, over)


def test_the_generic_milp_agrees_on_small_fleets():
    rng = np.random.default_rng(17)
    for _ in range(5):
        problem, generated, kept = random_fleet(rng, 4)
        answer = solve_fleet(problem, generated, kept=kept)
        value, bound = milp_fleet(problem, generated, kept)
        # The MILP's choice is feasible (never above the optimum) and its tangent model
        # lies above q (its bound is never below the optimum).
        assert value <= answer.mean_accuracy + 1e-7
        assert bound >= answer.mean_accuracy - 1e-6
