"""Workloads: the digits task learns from the samples that arrive, its students grow with
the checkpoint size, a held model wears down with drift, a device refuses a damaged
checkpoint and keeps its model, and the fluid backend measures the same at a seed."""

import csv
import json
import os

import pytest

from edgecollab.scenarios import fluid_backend as fluid
from edgecollab.nodes import checkpoint, workload
from edgecollab.nodes.device import DeviceAgent, SampleBuffer
from edgecollab.scenarios.scenario import load_scenario
from tests.helpers import scenario_copy
from tests.test_scenarios import GOOD, run_cli

SIZES = [6.4e6, 136.4e6]


def digits(drift=10.0, seed=0, sample_bytes=1000):
    return workload.from_spec({'name': 'digits', 'sample_bytes': sample_bytes,
                               'sizes': SIZES, 'devices': ['d1', 'd2'], 'seed': seed,
                               'drift': drift})


def test_more_samples_in_time_give_a_better_model_and_larger_students_do_better():
    work = digits()
    scores = {}
    for count in (20, 400):
        learner = work.learner('d1')
        assert learner.add(work.samples('d1', 1, 0, count)) == count
        scores[count] = [work.score(learner.student(size), 'd1', 1)
                         for size in (SIZES[0], 30e6, SIZES[1])]
    assert scores[400][2] >= scores[20][2] + 10, scores
    assert scores[400][0] < scores[400][1] <= scores[400][2] + 2, scores


def test_a_held_model_keeps_its_accuracy_without_drift_and_loses_it_with_drift():
    for drift, check in ((0.0, lambda s: max(s) == min(s)),
                         (15.0, lambda s: s[0] > s[2] + 20 and s[2] > s[4])):
        work = digits(drift)
        learner = work.learner('d1')
        learner.add(work.samples('d1', 1, 0, 300))
        weights = learner.student(SIZES[1])
        scores = [work.score(weights, 'd1', k) for k in range(1, 6)]
        assert check(scores), (drift, scores)


def test_only_whole_samples_of_the_task_are_learnt():
    work = digits()
    blob = work.samples('d1', 1, 0, 5)
    learner = work.learner('d1')
    # The sample cut at the deadline and bytes that are no samples (noise) are not
    # learnt from.
    assert learner.add(blob[:-10]) == 4
    assert learner.add(os.urandom(5000)) == 0
    assert learner.arrived == 4


def test_the_device_refuses_a_damaged_or_empty_checkpoint_and_keeps_its_model(tmp_path):
    work = digits(sample_bytes=1000)
    agent = DeviceAgent('d1', 'http://127.0.0.1:1', 'http://127.0.0.1:1', 'a' * 32,
                        str(tmp_path / 'dev'), SampleBuffer(10, 1.0, 1000), work)
    before = work.score(agent.weights, 'd1', 1)
    assert before == work.score(work.initial('d1'), 'd1', 1)
    learner = work.learner('d1')
    learner.add(work.samples('d1', 1, 0, 300))
    plan = {'period': 1}
    for damage in ('corrupt', 'no weights'):
        path = str(tmp_path / 'dev' / 'model.part')
        weights = None if damage == 'no weights' else learner.student(SIZES[1])
        digest = checkpoint.write(path, 200000, {'model': 'x'}, weights=weights)
        if damage == 'corrupt':
            with open(path, 'r+b') as out:
                out.seek(5000)
                out.write(b'\xde\xad\xbe\xef' * 4)
        result = agent._deploy(path, digest, plan)
        assert result['model_ok'] is False and result['rejected'], result
        assert work.score(agent.weights, 'd1', 1) == before
    path = str(tmp_path / 'dev' / 'model.part')
    digest = checkpoint.write(path, 200000, {'model': 'x'},
                              weights=learner.student(SIZES[1]))
    assert agent._deploy(path, digest, plan)['model_ok'] is True
    assert work.score(agent.weights, 'd1', 1) > before + 20


def fluid_measured(tmp_path, extra):
    scenario = load_scenario(scenario_copy(tmp_path, periods=3, extra=extra))
    return [(r['period'], r['device'], r['outcome'], r['measured_accuracy'])
            for r in fluid.run_policy(scenario, 'equal')]


def test_the_fluid_backend_measures_the_same_at_a_seed_and_differently_at_another(
        tmp_path):
    first = fluid_measured(tmp_path, 'workload: digits\nseed: 3\n')
    assert all(isinstance(m, float) for *_, m in first), first
    assert first == fluid_measured(tmp_path, 'workload: digits\nseed: 3\n')
    assert first != fluid_measured(tmp_path, 'workload: digits\nseed: 4\n')
    # synthetic (the default) measures nothing
    assert {m for *_, m in fluid_measured(tmp_path, '')} == {None}


def test_a_device_whose_checkpoints_never_arrive_keeps_its_first_model(tmp_path):
    # 1 Mbit/s cannot carry the smallest checkpoint in a period: the devices keep their
    # factory models, which lose accuracy as the stream turns.
    rows = fluid_measured(tmp_path, 'workload: {name: digits, drift: 20}\n'
                                    'capacity: 1mbit\n')
    scenario = load_scenario(scenario_copy(tmp_path, periods=3, extra=(
        'workload: {name: digits, drift: 20}\ncapacity: 1mbit\n')))
    work = workload.from_spec(scenario.workload.spec)
    for period, device, outcome, measured in rows:
        assert outcome == 'infeasible', rows
        assert measured == work.score(work.initial(device), device, period)
    assert rows[0][3] > rows[-1][3]


@pytest.mark.parametrize('extra,words', [
    ('workload: digits\ndata: {sample_size: 50B, generated: 10}\n', 'workload: digits: data.sample_size must be at least 75 bytes'),
    ('workload: nonsense\n', "unknown workload 'nonsense'"),
    ('workload: {name: digits, drift: 400}\n', 'drift'),
    ('workload: {name: mine, file: absent.py}\n', 'no such file'),
])
def test_bad_workloads_give_one_line_and_exit_2(tmp_path, extra, words):
    path = tmp_path / 'bad.yaml'
    path.write_text(GOOD + extra)
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr


def user_workload(path, name, score_line):
    """Write a user's workload file at path registering name, whose score runs
    score_line (the weights hold the checkpoint size)."""
    path.write_text(
        'from edgecollab.nodes import workload\n'
        '@workload.register(%r)\n'
        'class Mine(workload.Workload):\n'
        '    measures = True\n'
        '    def samples(self, device, period, first, count):\n'
        '        return bytes(int(self.sample_bytes) * count)\n'
        '    def learner(self, device):\n'
        '        return self\n'
        '    def add(self, blob):\n'
        '        return 0\n'
        '    def student(self, size):\n'
        '        return {"size": size}\n'
        '    def initial(self, device):\n'
        '        return {"size": 0}\n'
        '    def score(self, weights, device, period):\n'
        '        %s\n' % (name, score_line))


def test_a_users_workload_registers_and_runs_on_the_fluid_backend(tmp_path):
    user_workload(tmp_path / 'mine.py', 'constant', 'return 50.0 + weights["size"] / 1e7')
    rows = fluid_measured(tmp_path, 'workload: {name: constant, file: mine.py}\n')
    assert all(m > 50.0 for _, _, outcome, m in rows if outcome == 'delivered'), rows
    out = tmp_path / 'out'
    done = run_cli('run', scenario_copy(tmp_path, periods=2, extra=(
        'workload: {name: constant, file: %s}\n' % (tmp_path / 'mine.py'))),
        '--backend', 'fluid', '--out', str(out))
    assert done.returncode == 0, done.stderr
    with open(out / 'periods.csv') as src:
        assert all(float(r['measured_accuracy']) >= 50 for r in csv.DictReader(src))
    assert 'top-1' in done.stdout


def test_fit_finds_the_formula_that_a_runs_measurements_follow(tmp_path):
    out = tmp_path / 'out'
    done = run_cli('run', scenario_copy(tmp_path, periods=3, extra=(
        'workload: digits\npolicies: [optimal, equal, model-first]\n')),
        '--backend', 'fluid', '--out', str(out))
    assert done.returncode == 0, done.stderr
    done = run_cli('fit', str(out), '--json')
    assert done.returncode == 0, done.stderr
    fitted = json.loads(done.stdout)
    assert fitted['rows'] >= 6 and fitted['rmse'] < 15, fitted
    assert set(fitted['parameters']) == {'a_inf', 'b', 'gamma', 'c', 'd0', 'alpha'}
    # synthetic measures nothing: one line, exit 2
    plain = tmp_path / 'plain'
    assert run_cli('run', scenario_copy(tmp_path, periods=1), '--backend', 'fluid',
                   '--policies', 'equal', '--out', str(plain)).returncode == 0
    done = run_cli('fit', str(plain))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and 'measured accuracy' in lines[0], \
        done.stderr


def test_the_devices_read_the_same_digits_as_scikit_learn_without_importing_it():
    from sklearn.datasets import load_digits
    images, labels = workload.bundled_digits()
    reference = load_digits()
    assert (images == reference.images).all() and (labels == reference.target).all()


@pytest.mark.parametrize('answer,words', [
    ('return float("nan")', 'score answered nan (a finite percentage in [0, 100])'),
    ('return 250.0', 'score answered 250.0'),
])
def test_a_users_workload_that_lies_is_named_with_its_file(tmp_path, answer, words):
    user_workload(tmp_path / 'liar.py', 'liar', answer)
    out = tmp_path / 'out'
    done = run_cli('run', scenario_copy(tmp_path, periods=1, extra=(
        'workload: {name: liar, file: %s}\npolicies: [equal]\n' % (tmp_path / 'liar.py'))),
        '--backend', 'fluid', '--out', str(out))
    assert done.returncode != 0
    assert "workload 'liar' from " in done.stderr and 'liar.py' in done.stderr, done.stderr
    assert words in done.stderr, done.stderr
