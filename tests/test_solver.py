"""The allocation solver against brute force, its optimality conditions, monotonicity,
infeasible inputs, the policies, and the accuracy model's fit."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from edgecollab.controller import planner, policies
from edgecollab.controller.accuracy import (AccuracyModel, YOLOV8, fit, fit_size_curve,
                                            yolov8_menu)
from edgecollab.controller.policies import PolicyState
from edgecollab.controller.solver import Problem, evaluate, marginal, solve
from edgecollab.errors import ConfigError
from edgecollab.scenarios.scenario import problem_from
from tests.conftest import REPO

BASELINES = ['equal', 'upload-first', 'model-first', 'proportional', 'tcp-fair', 'fixed']


def random_problem(rng, menu=False):
    return Problem(capacity_mbit=float(rng.uniform(1, 200)),
                   period_s=float(rng.uniform(10, 120)),
                   sample_bits=float(rng.uniform(1e5, 4e6)),
                   generated=float(rng.uniform(10, 20000)),
                   menu=tuple(yolov8_menu()) if menu else (),
                   accuracy=AccuracyModel(d0=float(rng.uniform(20, 2000)),
                                          alpha=float(rng.uniform(0.2, 0.9)),
                                          c=0.01))


def feasible_instances(count, menu=False, seed=7):
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        problem = dataclasses.replace(random_problem(rng, menu))
        problem = dataclasses.replace(problem, accuracy=dataclasses.replace(
            problem.accuracy, c=0.5 * problem.accuracy.d0 ** problem.accuracy.alpha))
        if solve(problem).feasible:
            found.append(problem)
    return found


def brute_force(problem, points=20001):
    best = -1.0
    for x in np.linspace(0, 1, points):
        answer = evaluate(problem, x)
        if answer.feasible:
            best = max(best, answer.accuracy)
    return best


@pytest.mark.parametrize('problem', feasible_instances(200), ids=lambda p: '%.1fMbit' %
                         p.capacity_mbit)
def test_optimum_matches_brute_force(problem):
    answer = solve(problem)
    grid = brute_force(problem)
    assert answer.accuracy >= grid - 1e-4, (answer.accuracy, grid)
    assert answer.accuracy <= grid + 1e-3   # the grid is within a step of the optimum


def test_optimality_conditions_hold():
    for problem in feasible_instances(50, seed=11):
        answer = solve(problem)
        budget = problem.budget_bits
        x = answer.upload_bytes * 8 / budget
        lo = max(0.0, 1 - 8 * problem.max_model_bytes / budget)
        hi = min(1 - 8 * problem.min_model_bytes / budget,
                 problem.generated * problem.sample_bits / budget)
        if lo + 1e-9 < x < hi - 1e-9:
            scale = budget / problem.sample_bits
            assert abs(marginal(problem, x)) <= 1e-6 * scale, 'phi\'(x*) = 0 inside'
        elif x <= lo + 1e-9 and hi > lo:
            assert marginal(problem, lo) <= 1e-9
        elif hi > lo:
            assert marginal(problem, hi) >= -1e-9


def test_menu_optimum_is_best_variant():
    for problem in feasible_instances(40, menu=True, seed=5):
        answer = solve(problem)
        for name in BASELINES:
            other = policies.get(name).allocate(PolicyState(problem, ratio=0.3))
            assert answer.accuracy >= other.accuracy - 1e-9, name


def test_optimum_beats_every_baseline():
    for problem in feasible_instances(100, seed=3):
        best = solve(problem).accuracy
        for name in BASELINES:
            other = policies.get(name).allocate(PolicyState(problem, ratio=0.7))
            assert best >= other.accuracy - 1e-9, (name, best, other.accuracy)


def test_more_capacity_never_lowers_the_optimum():
    for problem in feasible_instances(30, seed=9):
        values = [solve(dataclasses.replace(problem, capacity_mbit=c)).accuracy
                  for c in np.linspace(problem.capacity_mbit, 4 * problem.capacity_mbit, 12)]
        assert all(b >= a - 1e-9 for a, b in zip(values, values[1:]))


@pytest.mark.parametrize('kwargs', [
    {'capacity_mbit': 0.0},
    {'capacity_mbit': 0.1, 'period_s': 1.0},                # 12.5 KB: no model fits
    {'timing': 'sequential', 'update_s': 100.0, 'period_s': 60.0},
])
def test_nothing_fits_is_a_documented_answer(kwargs):
    for menu in ((), tuple(yolov8_menu())):
        problem = Problem(**dict({'capacity_mbit': 20.0}, **kwargs), menu=menu)
        for name in ['optimal'] + BASELINES:
            answer = policies.get(name).allocate(PolicyState(problem))
            assert not answer.feasible and answer.model_bytes == 0
            assert np.isfinite(answer.accuracy) and answer.accuracy == problem.kept_map()


def test_data_saturation_moves_the_optimum_towards_the_model():
    base = Problem(capacity_mbit=20.0, generated=1000.0)
    shares = [solve(dataclasses.replace(base, capacity_mbit=c)).upload_share
              for c in (50.0, 100.0, 200.0)]
    assert shares[0] > shares[1] > shares[2]


def test_duplex_is_the_decoupled_case():
    # 20 Mbit/s x 60 s = 150 MB each way: the largest variant that fits is yolov8m, and
    # the upload takes its whole own budget.
    answer = solve(Problem(capacity_mbit=20.0, medium='duplex', menu=tuple(yolov8_menu())))
    assert answer.model == 'yolov8m' and answer.upload_share == pytest.approx(1.0)
    answer = solve(Problem(capacity_mbit=40.0, medium='duplex', menu=tuple(yolov8_menu())))
    assert answer.model == 'yolov8x'
    # The download at its own capacity: 40 up, 20 down is the 20 Mbit/s model.
    answer = solve(Problem(capacity_mbit=40.0, medium='duplex', menu=tuple(yolov8_menu()),
                           down_ratio=0.5))
    assert answer.model == 'yolov8m' and answer.upload_share == pytest.approx(1.0)
    assert answer.download_share == pytest.approx(
        8 * answer.model_bytes / (20e6 * 60))


def test_bad_problems_are_refused():
    for kwargs in ({'capacity_mbit': -1.0}, {'period_s': 0.0}, {'timing': 'parallel'},
                   {'min_model_bytes': 5.0, 'max_model_bytes': 1.0},
                   {'capacity_mbit': float('nan')}, {'down_ratio': 0.5},
                   {'down_ratio': 0.0, 'medium': 'duplex'},
                   {'down_ratio': float('inf'), 'medium': 'duplex'}):
        with pytest.raises(ConfigError):
            Problem(**dict({'capacity_mbit': 20.0}, **kwargs))


def test_default_size_curve_is_the_yolov8_fit():
    a_inf, b, gamma = fit_size_curve([p * 4e6 for _, p, _ in YOLOV8], [m for *_, m in YOLOV8])
    default = AccuracyModel()
    assert (a_inf, b, gamma) == pytest.approx((default.a_inf, default.b, default.gamma),
                                              rel=1e-3)


def test_fit_recovers_parameters():
    truth = AccuracyModel(a_inf=70, b=50, gamma=0.2, c=3.0, d0=150, alpha=0.4)
    d = np.array([0, 100, 500, 1000, 3000, 10000] * 3, dtype=float)
    s = np.repeat([12.8e6, 44.8e6, 272.8e6], 6)
    fitted = fit(d, s, truth.accuracy(d, s))
    assert fitted.accuracy(2000, 100e6) == pytest.approx(truth.accuracy(2000, 100e6), rel=1e-3)


def test_the_samples_a_model_needs_to_reach_an_accuracy():
    model = AccuracyModel()
    scale = model.size_term(136.4e6)
    needed = model.samples_for(0.65 * scale, scale)
    assert model.accuracy(needed, 136.4e6) == pytest.approx(0.65 * scale)
    assert model.samples_for(0.5 * scale, scale) == 0.0        # q(0) = 0.6 is enough
    assert model.samples_for(scale, scale) == float('inf')      # never reached


def test_unknown_policy_lists_known_ones():
    with pytest.raises(ConfigError, match='known: .*optimal'):
        policies.get('greedy')


def test_solve_cli_json():
    out = subprocess.run([sys.executable, '-m', 'edgecollab.cli', 'solve', '--capacity',
                          '20mbit', '--menu', 'continuous', '--json'], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)['policies']
    assert set(result) >= {'optimal', 'equal', 'upload-first', 'model-first'}
    for answer in result.values():
        assert set(answer) >= {'upload_share', 'download_share', 'upload_bytes',
                               'model_bytes', 'accuracy'}
    assert all(result['optimal']['accuracy'] >= a['accuracy'] - 1e-6 for a in result.values())


def test_solve_plans_a_capacity_trace_at_its_mean_over_the_run(tmp_path):
    # One resolver: a trace (relative to the scenario's folder) counts at its mean over
    # period x periods, not at 0.
    (tmp_path / 'steps.txt').write_text('0 10\n5 30\n10 90\n')
    path = tmp_path / 'trace.yaml'
    path.write_text('capacity: {trace: steps.txt, loop: false}\nperiod: 10s\nperiods: 1\n')
    out = subprocess.run([sys.executable, '-m', 'edgecollab.cli', 'solve', '--scenario',
                          str(path), '--json'], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result['capacity_mbit'] == pytest.approx(20.0)
    assert result['policies']['optimal']['feasible']


@pytest.mark.parametrize('args,message', [
    (['--capacity', 'fast'], 'capacity'),
    (['--policies', 'greedy'], 'unknown policy'),
    (['--scenario', '/nonexistent.yaml'], 'No such file'),
])
def test_solve_cli_bad_input_is_one_line(args, message):
    out = subprocess.run([sys.executable, '-m', 'edgecollab.cli', 'solve'] + args, cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_solve_uses_the_scenarios_devices_and_their_own_data(tmp_path):
    raw = {'devices': 3, 'capacity': '30mbit', 'period': '10s',
           'data': {'sample_size': '10KB', 'generated': [50, 400, 3000]},
           'model': {'menu': 'yolov8', 'precision': 'fp16'}, 'policies': ['equal']}
    path = tmp_path / 'three.yaml'
    path.write_text(yaml.safe_dump(raw))
    out = subprocess.run([sys.executable, '-m', 'edgecollab.cli', 'solve', '--scenario',
                          str(path), '--json'], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)['policies']['optimal']
    expected = planner.plan(problem_from(raw), 'optimal', [50, 400, 3000], 30.0)
    for name, device in zip(('d1', 'd2', 'd3'), expected.devices):
        assert result['devices'][name]['upload_bytes'] == pytest.approx(device.upload_bytes)
    assert result['accuracy'] == pytest.approx(expected.allocation.mean_accuracy, abs=1e-6)
    # A capacity sweep plans the scenario's fleet too.
    out = subprocess.run([sys.executable, '-m', 'edgecollab.cli', 'solve', '--scenario',
                          str(path), '--capacities', '30mbit'], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    swept = float(out.stdout.splitlines()[1].split()[2])
    assert swept == pytest.approx(expected.allocation.mean_accuracy, abs=0.01)
