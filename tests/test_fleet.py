"""N devices sharing one budget, the planner, and the fluid backend against the solver."""

import dataclasses

import numpy as np
import pytest

from edgecollab.controller import correction, planner
from edgecollab.scenarios import fluid_backend as fluid
from edgecollab.controller.accuracy import yolov8_menu
from edgecollab.controller.fleet import Fleet, solve_fleet
from edgecollab.controller.solver import Problem, solve
from edgecollab.scenarios.scenario import load_scenario
from tests.conftest import REPO

BASELINES = ['equal', 'upload-first', 'model-first', 'proportional', 'tcp-fair', 'fixed']


def instances(count, seed=11):
    rng = np.random.default_rng(seed)
    for k in range(count):
        menu = tuple(yolov8_menu()) if k % 2 else ()
        n = int(rng.integers(2, 6))
        problem = Problem(capacity_mbit=float(rng.uniform(2, 100)) * n,
                          period_s=float(rng.uniform(10, 120)),
                          sample_bits=float(rng.uniform(1e5, 2e6)), menu=menu)
        yield problem, rng.uniform(10, 5000, size=n)


def two_device_grid(problem, generated, points=801):
    best = -1.0
    for share in np.linspace(0, 1, points):
        values = []
        for part, g in ((share, generated[0]), (1 - share, generated[1])):
            values.append(solve(dataclasses.replace(
                problem, capacity_mbit=problem.capacity_mbit * part, generated=g)).accuracy
                if part > 0 else problem.kept_map())
        best = max(best, float(np.mean(values)))
    return best


@pytest.mark.parametrize('k', range(12))
def test_two_devices_match_a_grid_over_the_budget_split(k):
    rng = np.random.default_rng(100 + k)
    problem = Problem(capacity_mbit=float(rng.uniform(2, 100)), period_s=60,
                      sample_bits=float(rng.uniform(1e5, 2e6)),
                      menu=tuple(yolov8_menu()) if k % 2 else ())
    generated = rng.uniform(10, 5000, size=2)
    assert solve_fleet(problem, generated).mean_accuracy >= \
        two_device_grid(problem, generated) - 1e-4


def test_float_slope_is_the_vectorised_slope():
    fleet = Fleet(Problem(capacity_mbit=20.0), [100.0, 3000.0])
    rng = np.random.default_rng(3)
    for _ in range(200):
        log_size = float(rng.uniform(np.log(1e4), np.log(1e9)))
        up, down = 10.0 ** rng.uniform(-12, -4, size=2)
        assert fleet._free_slope_one(log_size, up, down) == pytest.approx(
            float(fleet._free_slope(np.array([log_size]), up, down)[0]), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize('log_price', [-10.0, -9.0, -8.5, -8.0, -7.0])
def test_each_device_answer_to_a_price_is_its_best(log_price):
    # The shared root of the free slope and the closed-form capped root against a
    # brute-force search over sizes, D at its best for each size (clipped to D_gen).
    problem = Problem(capacity_mbit=20.0)
    generated = np.array([0.0, 50.0, 400.0, 2000.0, 6000.0, 1e6])
    fleet = Fleet(problem, generated)
    price = 10.0 ** log_price
    size, samples, _ = fleet.respond(price)
    acc = problem.accuracy
    grid = np.geomspace(problem.min_model_bytes, problem.max_model_bytes, 20001)
    for i, cap in enumerate(generated):
        d = np.clip(np.power(acc.size_term(grid) * acc.c * acc.alpha /
                             (price * problem.sample_bits), 1 / (1 + acc.alpha)) - acc.d0,
                    0, cap)
        net = acc.accuracy(d, grid) - price * (8 * grid + problem.sample_bits * d)
        best = max(float(np.max(net)), problem.kept_map())
        if size[i] > 0:
            got = float(acc.accuracy(samples[i], size[i]) -
                        price * (8 * size[i] + problem.sample_bits * samples[i]))
        else:
            got = problem.kept_map()
        assert got >= best - 1e-9 * max(1.0, abs(best)), (i, got, best)


def test_fleet_beats_or_equals_every_baseline():
    for problem, generated in instances(30):
        best = planner.plan(problem, 'optimal', list(generated), problem.capacity_mbit)
        for name in BASELINES:
            other = planner.plan(problem, name, list(generated), problem.capacity_mbit)
            assert best.allocation.mean_accuracy >= other.allocation.mean_accuracy - 1e-9, name


def test_fleet_keeps_the_budget():
    for problem, generated in instances(20, seed=5):
        answer = solve_fleet(problem, generated)
        bits = sum(8 * (d.upload_bytes + d.model_bytes) for d in answer.devices)
        assert bits <= problem.budget_bits * (1 + 1e-9)
        assert sum(d.upload_share + d.download_share for d in answer.devices) <= 1 + 1e-9


def test_identical_devices_get_the_single_device_optimum():
    problem = Problem(capacity_mbit=40.0)
    one = solve(dataclasses.replace(problem, capacity_mbit=10.0))
    fleet = solve_fleet(problem, [problem.generated] * 4)
    assert fleet.mean_accuracy == pytest.approx(one.accuracy, abs=1e-6)


def test_fairness_floor_lifts_the_worst_device():
    problem = Problem(capacity_mbit=30.0, menu=tuple(yolov8_menu()))
    generated = [50, 5000, 5000]
    free = solve_fleet(problem, generated)
    floor = min(d.accuracy for d in free.devices) + 1.0
    fair = solve_fleet(problem, generated, floor=floor)
    assert fair.feasible
    assert min(d.accuracy for d in fair.devices) >= floor - 1e-6
    assert fair.mean_accuracy <= free.mean_accuracy + 1e-9


def test_unreachable_floor_is_a_documented_answer():
    answer = solve_fleet(Problem(capacity_mbit=5.0), [3000, 3000], floor=70.0)
    assert not answer.feasible and 'floor' in answer.reason
    assert all(np.isfinite(d.accuracy) for d in answer.devices)


def test_zero_capacity_keeps_the_old_models():
    answer = solve_fleet(Problem(capacity_mbit=0.0), [100, 100])
    assert not answer.feasible and answer.mean_accuracy == Problem(0.0).kept_map()


def test_duplex_fleet_meets_both_budgets():
    for ratio in (1.0, 0.4, 2.5):
        # The download at its own capacity (a scenario's capacity_down): the models fill
        # its budget, the uploads the upload's.
        problem = Problem(capacity_mbit=20.0, medium='duplex', down_ratio=ratio)
        answer = solve_fleet(problem, [1000, 3000])
        models = sum(8 * d.model_bytes for d in answer.devices)
        assert models <= problem.down_budget_bits * (1 + 1e-9)
        assert sum(8 * d.upload_bytes for d in answer.devices) <= \
            problem.budget_bits * (1 + 1e-9)
        if ratio < 1:
            assert models > 0.9 * problem.down_budget_bits
            assert sum(d.download_share for d in answer.devices) == pytest.approx(1.0)


def test_fluid_backend_delivers_what_the_plan_predicts_on_constant_capacity():
    scenario = load_scenario('%s/scenarios/default.yaml' % REPO)
    for name in ('optimal', 'equal', 'upload-first', 'model-first'):
        # Open-loop policies on ideal transfers: every period gets what its plan said,
        # including what keeping a model is worth (the plan knows each held model).
        for row in fluid.run_policy(scenario, name):
            assert row['accuracy'] == pytest.approx(row['predicted_accuracy'], rel=1e-12), \
                (name, row)
            assert row['upload_bytes'] >= row['planned_upload_bytes'] * (1 - 1e-9)
            assert row['model_ok'] == (row['planned_model_bytes'] > 0)
            assert row['planned_by'] == name
        first = planner.plan(scenario.problem, name, scenario.data.generated,
                             scenario.problem.capacity_mbit)
        row = fluid.run_policy(scenario, name)[0]
        assert row['predicted_accuracy'] == first.devices[0].accuracy


def test_oracle_knows_the_period_and_adaptive_uses_efficiency():
    scenario = load_scenario('%s/scenarios/default.yaml' % REPO)
    low = planner.plan(scenario.problem, 'oracle', scenario.data.generated, 50.0, future_mbit=20.0)
    now = planner.plan(scenario.problem, 'optimal', scenario.data.generated, 20.0)
    assert low.allocation.mean_accuracy == pytest.approx(now.allocation.mean_accuracy)
    # adaptive plans at the lower efficiency, with the re-split's headroom kept.
    tight = planner.plan(scenario.problem, 'adaptive', scenario.data.generated, 50.0,
                         efficiency={'up': 0.8, 'down': 0.9})
    at_80 = planner.plan(scenario.problem, 'optimal', scenario.data.generated,
                         40.0 / correction.MARGIN)
    assert tight.allocation.mean_accuracy == pytest.approx(at_80.allocation.mean_accuracy)
