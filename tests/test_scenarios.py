"""Scenario files: the bundled ones load, bad ones give one line and exit 2 with nothing
started, and a fluid run writes a results folder whose summary agrees with its rows."""

import collections
import csv
import glob
import json
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from edgecollab import files
from edgecollab.errors import ConfigError
from edgecollab.scenarios import report, results
from edgecollab.scenarios.results import ARTIFACTS_FILE, prune_artifacts
from edgecollab.scenarios.scenario import load_scenario
from tests.conftest import PYTHON, REPO
from tests.helpers import scenario_copy

BUNDLED = sorted(glob.glob(os.path.join(REPO, 'scenarios', '*.yaml')))

GOOD = """
devices: 2
capacity: 20mbit
period: 10s
periods: 2
policies: [optimal, equal]
"""


def run_cli(*args, cwd=None):
    return subprocess.run([PYTHON, '-m', 'edgecollab.cli'] + list(args), capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_every_key_has_its_default_declared_once_in_a_section():
    """Each key a scenario may hold is either declared with its default by exactly one
    section of the typed Scenario, or one of the few that have none."""
    from edgecollab.scenarios import scenario as scenario_mod, schema
    without_default = {'name', 'description', 'capacity_down', 'traces'}
    keys = set()
    for key, rule in schema.SCHEMA['properties'].items():
        nested = rule.get('properties') if rule.get('type') == 'object' else None
        keys |= {'%s.%s' % (key, inner) for inner in nested} if nested else {key}
    declared = [key for section in scenario_mod.SECTIONS for key in section.DEFAULTS]
    assert len(declared) == len(set(declared))
    assert set(declared) | without_default == keys


def test_a_scenario_that_gives_nothing_resolves_to_the_declared_defaults(tmp_path):
    from edgecollab.kinds import DelayEngine, LinkMode, Medium, Timing
    from edgecollab.scenarios.scenario import problem_from
    path = tmp_path / 'bare.yaml'
    path.write_text('devices: 2\n')
    s = load_scenario(str(path))
    assert (s.link.medium, s.link.mode, s.link.ack, s.link.queue_ms, s.link.step_s) == (
        Medium.SHARED, LinkMode.STRICT, True, 100.0, 0.1)
    assert float(s.link.capacity.rate_at(0.0)) == 20.0 and s.link.channels == ()
    assert (s.control.period_s, s.control.periods, s.control.timing) == (60.0, 3,
                                                                          Timing.OVERLAP)
    assert s.paths.engine == DelayEngine.AUTO and all(not p.impaired for p in s.paths.each)
    assert s.data.generated == (3000.0, 3000.0) and s.data.sample_bytes == 100e3
    assert s.workload.spec['name'] == 'synthetic' and s.raw == {'devices': 2}
    # The one resolver: what solve and the results reader plan with is the run's.
    assert problem_from({'devices': 2}) == s.problem


@pytest.mark.parametrize('path', BUNDLED, ids=os.path.basename)
def test_bundled_scenarios_load_and_run_on_the_fluid_backend(path, tmp_path):
    scenario = load_scenario(path)            # a corpus's every file, too
    assert scenario.devices >= 1 and scenario.control.policies
    # A corpus runs on two of its traces here (tests/test_corpus.py has the rest), and
    # every scenario two periods (the second starts from what the first left).
    corpus = [a for f in scenario.corpus[:2] for a in ('--traces', f)]
    done = run_cli('run', path, '--backend', 'fluid', '--out', str(tmp_path / 'out'),
                   '--periods', '2', *corpus)
    assert done.returncode == 0, done.stderr


BAD = [
    ('unknown key', GOOD + 'colour: blue\n', "Additional properties are not allowed"),
    ('wrong type', GOOD.replace('devices: 2', 'devices: two'), "devices"),
    ('negative rate', GOOD.replace('20mbit', '-5'), 'capacity'),
    ('bad unit', GOOD.replace('20mbit', '20 furlongs'), "unknown unit"),
    ('zero period', GOOD.replace('10s', '0s'), 'period: 0 s is outside [0.01, 86400] s'),
    ('missing trace', GOOD.replace('capacity: 20mbit', 'capacity: {trace: nope.txt}'),
     "no such trace file 'nope.txt'"),
    ('unknown policy', GOOD.replace('[optimal, equal]', '[optimal, magic]'),
     "unknown policy 'magic'"),
    ('generated count', GOOD + 'data: {generated: [1, 2, 3]}\n', '3 values for 2 devices'),
    ('bad medium', GOOD + 'medium: wireless\n', "medium"),
    ('floor too high', GOOD + 'floor: 99\n', 'above what any model reaches'),
    ('drift of one', GOOD + 'drift: 1\n', 'drift: per_period must be a number in [0, 1)'),
    ('negative drift', GOOD + 'drift: {per_period: -0.1}\n', 'drift'),
    ('drift as text', GOOD + 'drift: fast\n', 'drift'),
    ('zero tolerance', GOOD + 'tolerance: 0\n', 'tolerance'),
    ('control step above the period', GOOD + 'control_step: 1h\n',
     'control_step: 3600 s is outside'),
    ('control step below the replay step', GOOD + 'control_step: 1ms\n', 'control_step'),
    ('unknown precision', GOOD + 'model: {precision: int4}\n', 'precision'),
    ('not yaml', 'devices: [1, 2\n', 'not valid YAML'),
    ('not a mapping', '- 1\n- 2\n', 'must be a mapping'),
    ('zero devices', GOOD.replace('devices: 2', 'devices: 0'), 'devices'),
    ('update too long', GOOD + 'timing: sequential\nupdate: 20s\n', 'no transfer time'),
    ('down without duplex', GOOD + 'capacity_down: 5mbit\n', 'only a duplex medium'),
    ('bad accuracy key', GOOD + 'accuracy: {zeta: 1}\n', 'unknown key'),
    ('bad trace content', GOOD.replace('capacity: 20mbit', 'capacity: {trace: bad.txt}'),
     'bad.txt:2'),
    ('a delay per device, too many', GOOD + 'delay: [10ms, 20ms, 30ms]\n',
     'delay: 3 values for 2 devices'),
    ('a delay for an unknown device', GOOD + 'delay: {d7: 10ms}\n', "delay: no device 'd7'"),
    ('a negative jitter', GOOD + 'jitter: {d2: -5ms}\n', 'jitter[d2]'),
    ('a loss above 100%', GOOD + 'loss: [5, 101]\n', 'loss'),
    ('an unknown delay engine', GOOD + 'delay_engine: tc\n', 'delay_engine'),
    ('netem with a jitter', GOOD + 'jitter: {d1: 5ms}\ndelay_engine: netem\n',
     'no jitter'),
    ('a missing delay trace', GOOD + 'delay: {d2: {trace: nope.txt}}\n',
     "delay[d2].trace: no such trace file 'nope.txt'"),
    ('a bad delay trace', GOOD + 'delay: {trace: bad.txt}\n', 'bad.txt:2'),
    ('a delay trace above a minute', GOOD + 'delay: {trace: slow.txt, scale: 1000}\n',
     'above 60000 ms'),
    ('a delay trace with a rate offset', GOOD + 'delay: {trace: slow.txt, offset: 1}\n',
     "'offset' was unexpected"),
    ('a delay trace of one column', GOOD + 'delay: {trace: one.txt}\n',
     'reads as a Mahimahi packet trace'),
    ('a congestion control that is no name', GOOD + "congestion_control: 'bbr; reboot'\n",
     'congestion_control'),
    ('bursty loss without r', GOOD + 'loss: {gilbert_elliott: {p: 1}}\n',
     "loss.gilbert_elliott: 'r' is a required property"),
    ('bursty loss that never recovers', GOOD + 'loss: {d1: {gilbert_elliott: {p: 1, r: 0}}}\n',
     'loss[d1]: gilbert_elliott: r is 0'),
    ('bursty loss above 100%', GOOD + 'loss: [0, {gilbert_elliott: {p: 1, r: 200}}]\n',
     'loss.1.gilbert_elliott.r: 200 is greater than the maximum of 100'),
    ('bursty loss under netem', GOOD + 'loss: {gilbert_elliott: {p: 1, r: 30}}\n'
     'delay_engine: netem\n', 'no bursty loss or delay trace'),
    # NaN passes every range check (a comparison with it is false): refused for any key.
    ('NaN in a list', GOOD + 'data: {generated: [100, .nan]}\n',
     'data.generated.1: nan is not a finite number'),
    ('NaN tolerance', GOOD + 'tolerance: .nan\n', 'tolerance: nan is not a finite number'),
    ('NaN trace scale', GOOD.replace('capacity: 20mbit',
                                     'capacity: {trace: bad.txt, scale: .NaN}'),
     'capacity.scale: nan is not a finite number'),
    ('an infinite loss', GOOD + 'loss: {d1: -.inf}\n', 'loss.d1: -inf is not a finite'),
    ('NaN download scale', GOOD + 'medium: duplex\ncapacity_down: {trace: bad.txt, '
     'scale: .nan}\n', 'capacity_down.scale: nan is not a finite number'),
]


@pytest.mark.parametrize('kind,text,message', BAD, ids=[b[0] for b in BAD])
def test_bad_scenarios_give_one_line_and_exit_2(tmp_path, kind, text, message):
    (tmp_path / 'bad.txt').write_text('0 5\nx 3\n')
    (tmp_path / 'slow.txt').write_text('0 5\n1 70\n')
    (tmp_path / 'one.txt').write_text('0\n5\n9\n')
    path = tmp_path / 'scenario.yaml'
    path.write_text(text)
    done = run_cli('run', str(path), '--out', str(tmp_path / 'out'))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0], lines
    assert not os.path.exists(tmp_path / 'out'), 'a results folder was started'


def test_paths_are_given_once_as_a_list_or_per_device(tmp_path):
    from edgecollab.topologies.paths import Path
    path = tmp_path / 'paths.yaml'
    path.write_text(GOOD + 'delay: {d2: 40ms}\njitter: 2ms\nloss: [0, 1.5]\n')
    scenario = load_scenario(str(path))
    assert scenario.paths.each == (Path(0, 2, 0), Path(40, 2, 1.5))
    assert scenario.paths.engine == 'auto'
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / 'out' / 'metadata.json').read_text())
    with open('/proc/sys/net/ipv4/tcp_congestion_control') as f:
        assert meta['tcp_congestion_control'] == f.read().strip()
    assert scenario.paths.congestion_control is None
    assert meta['paths']['engine'] == 'fluid (none)'
    assert meta['paths']['devices']['d2'] == {'delay_ms': 40, 'jitter_ms': 2,
                                              'loss_pct': 1.5}


def test_a_scenario_names_the_hosts_tcp_congestion_control(tmp_path):
    path = tmp_path / 'reno.yaml'
    path.write_text(GOOD + 'congestion_control: reno\n')
    assert load_scenario(str(path)).paths.congestion_control == 'reno'
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / 'out' / 'metadata.json').read_text())
    assert meta['tcp_congestion_control'] == 'reno'


def test_delay_traces_and_bursty_loss_are_per_device_paths(tmp_path):
    from edgecollab.topologies.paths import Bursts, DelaySteps, Path
    (tmp_path / 'delay.txt').write_text('0 10\n2 40\n4 10\n')
    (tmp_path / 'delay.csv').write_text('time_s,delay_ms\n0,5\n1,15\n')
    path = tmp_path / 'paths.yaml'
    path.write_text(GOOD + 'delay: {d1: {trace: delay.txt}, d2: {trace: delay.csv, '
                    'loop: false}}\nloss: {d2: {gilbert_elliott: {p: 2, r: 40, h: 10}}}\n')
    scenario = load_scenario(str(path))
    first, second = scenario.paths.each
    assert first.delay_steps == DelaySteps((0.0, 2.0, 4.0), (10.0, 40.0, 10.0),
                                           first.delay_steps.duration_s)
    assert second.delay_steps.delay_ms == (5.0, 15.0) and not second.delay_steps.loop
    assert second.bursts == Bursts(2, 40, 10) and first.bursts is None
    assert second.mean_loss_pct == pytest.approx(2 / 42 * 90)
    assert scenario.trace_files == {'delay[d1]': str(tmp_path / 'delay.txt'),
                                    'delay[d2]': str(tmp_path / 'delay.csv')}
    once = tmp_path / 'once.yaml'
    once.write_text(GOOD + 'delay: {trace: delay.txt}\n')
    assert all(p.delay_steps == first.delay_steps for p in load_scenario(str(once)).paths.each)
    assert Path(delay_ms=3) == load_scenario(str(once)).paths.each[0].__class__(delay_ms=3)
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / 'out' / 'metadata.json').read_text())
    assert meta['paths']['devices']['d2']['gilbert_elliott_pct'] == {
        'p_pct': 2, 'r_pct': 40, 'h_pct': 10}
    assert meta['paths']['devices']['d1']['delay_trace']['steps'] == 3


def test_fluid_run_writes_a_consistent_results_folder(tmp_path):
    out = tmp_path / 'out'
    done = run_cli('run', os.path.join(REPO, 'scenarios', 'default.yaml'), '--backend',
                   'fluid', '--policies', 'optimal,equal,upload-first', '--out', str(out))
    assert done.returncode == 0, done.stderr
    for name in ('summary.json', 'periods.csv', 'metadata.json', 'accuracy.png',
                 'README.txt', 'run.log', 'commands.sh', 'report.html'):
        assert (out / name).exists(), name
    check_summary_matches_rows(out)
    # Piped (as here), the progress is one line a policy run.
    assert 'upload-first: period 3 of 3 done, mean mAP so far' in done.stderr


def check_summary_matches_rows(out):
    """summary.json's figures recomputed from periods.csv."""
    summary = json.loads((out / 'summary.json').read_text())['policies']
    with open(out / 'periods.csv') as src:
        rows = list(csv.DictReader(src))
    assert set(summary) == {r['policy'] for r in rows}
    for policy, s in summary.items():
        mine = [r for r in rows if r['policy'] == policy]
        mean = sum(float(r['accuracy']) for r in mine) / len(mine)
        assert s['mean_accuracy'] == pytest.approx(mean, rel=1e-5)
        assert s['data_bytes'] == pytest.approx(sum(float(r['upload_bytes']) for r in mine),
                                                rel=1e-5)
        assert s['deadline_misses'] == sum(r['deadline_miss'] == 'True' for r in mine)
        link = {r['period']: float(r['link_bytes']) for r in mine}
        moved = sum(float(r['upload_bytes']) + float(r['model_bytes']) for r in mine)
        assert s['utilisation'] == pytest.approx(moved / sum(link.values()), rel=1e-5)
        assert 0 <= s['utilisation'] <= 1 + 1e-6 and 0 <= s['idle_fraction'] <= 1
        usable = sum(min(float(r['link_bytes']), float(r['demand_bytes']))
                     for r in {r['period']: r for r in mine}.values())
        assert s['utilisation_of_demand'] == pytest.approx(min(1.0, moved / usable),
                                                           rel=1e-5)
        assert s['outcomes'] == dict(collections.Counter(r['outcome'] for r in mine))
        for device, d in s['devices'].items():
            own = sorted((r for r in mine if r['device'] == device),
                         key=lambda r: int(r['period']))
            assert d['accuracy_per_period'] == pytest.approx(
                [float(r['accuracy']) for r in own], rel=1e-5)


def test_readme_examples_run(tmp_path):
    # The README's scenario, saved beside the bundled ones as it says, runs on the fluid
    # backend; its Python example runs as written.
    with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as src:
        readme = src.read()
    [yaml_block] = re.findall(r'```yaml\n(.*?)```', readme, re.S)
    [python_block] = re.findall(r'```python\n(.*?)```', readme, re.S)
    shutil.copytree(os.path.join(REPO, 'scenarios', 'traces'), tmp_path / 'traces')
    (tmp_path / 'my.yaml').write_text(yaml_block)
    done = subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'run', str(tmp_path / 'my.yaml'),
                           '--backend', 'fluid', '--out', str(tmp_path / 'out')],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'out' / 'summary.json').exists()
    done = subprocess.run([PYTHON, '-c', python_block], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 6, done.stderr


def test_artifacts_are_listed_with_their_digests_then_deleted(tmp_path):
    work = tmp_path / 'work'
    (work / 'edge' / 'checkpoints').mkdir(parents=True)
    (work / 'd1').mkdir()
    (work / 'edge' / 'checkpoints' / 'd1-1.npz').write_bytes(b'x' * 1000)
    (work / 'edge' / 'data').mkdir()
    (work / 'edge' / 'data' / 'd1-1.bin').write_bytes(b'y' * 500)
    (work / 'd1.log').write_text('kept\n')
    digest = files.sha256(work / 'edge' / 'checkpoints' / 'd1-1.npz')
    assert prune_artifacts(str(work)) == 1500
    with open(work / ARTIFACTS_FILE) as src:
        listed = {r['path']: r for r in csv.DictReader(src)}
    assert listed[os.path.join('edge', 'checkpoints', 'd1-1.npz')]['sha256'] == digest
    assert listed[os.path.join('edge', 'data', 'd1-1.bin')]['size_bytes'] == '500'
    assert not list(work.rglob('*.npz')) and not list(work.rglob('*.bin'))
    assert (work / 'd1.log').read_text() == 'kept\n'
    assert prune_artifacts(str(work)) == 0          # nothing left: the list stays


BAD_FILES = sorted(glob.glob(os.path.join(REPO, 'tests', 'data', 'bad-scenarios', '*.yaml')))


@pytest.mark.parametrize('path', BAD_FILES, ids=os.path.basename)
def test_hostile_scenario_files_give_one_line_and_exit_2(tmp_path, path):
    # Each file's first line says what its one line of error must contain.
    with open(path, encoding='utf-8') as src:
        expected = src.readline().split('# expect: ', 1)[1].strip()
    began = time.monotonic()
    done = run_cli('run', path, '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and expected in lines[0] and path in lines[0], lines
    assert not os.path.exists(tmp_path / 'out'), 'a results folder was started'
    assert time.monotonic() - began < 60      # wide: seconds, not the 30 s of a bomb


def test_out_must_be_a_folder_and_policies_distinct(tmp_path):
    default = os.path.join(REPO, 'scenarios', 'default.yaml')
    (tmp_path / 'afile').write_text('x')
    for args, words in ((['--out', str(tmp_path / 'afile')], 'is a file'),
                        (['--policies', 'equal,equal', '--out', str(tmp_path / 'o')],
                         'names a policy twice')):
        done = run_cli('run', default, '--backend', 'fluid', *args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert not os.path.exists(tmp_path / 'o')


POLICY_FILES = os.path.join(REPO, 'tests', 'data', 'policies')


@pytest.mark.parametrize('name,words', [
    ('raises.py', 'the policy file failed: ValueError: no policies today'),
    ('exits.py', 'the policy file failed: SystemExit: 0'),
    ('broken_syntax.py', 'the policy file failed: SyntaxError'),
])
def test_a_policy_file_that_fails_is_named_and_never_ends_the_run(tmp_path, name, words):
    path = scenario_copy(tmp_path, extra='policy_file: %s\n'
                         % os.path.join(POLICY_FILES, name))
    done = run_cli('run', path, '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert name in lines[0] and words in lines[0], lines


@pytest.mark.parametrize('policy,words', [
    ('nan-shares', 'upload_share nan for device 1'),
    ('too-much', 'shares summing to 1.8 of the budget'),
    ('no-allocation', 'a dict, not a FleetAllocation'),
    ('negative-bytes', 'upload_bytes -5.0 for device 1'),
    ('nan-capacity', 'capacity_mbit must be a finite number >= 0, got nan'),
])
def test_a_user_policy_that_lies_is_refused_by_name(tmp_path, policy, words):
    # Every answer goes through the checks a built-in's does (fluid backend: there is
    # no shaper to refuse a share either).
    path = scenario_copy(tmp_path, extra='policy_file: %s\n'
                         % os.path.join(POLICY_FILES, 'lies.py'))
    done = run_cli('run', path, '--backend', 'fluid', '--policies', 'equal,' + policy,
                   '--out', str(tmp_path / 'out'))
    assert done.returncode == 1, done.stderr
    assert "policy '%s' from " % policy in done.stderr and 'lies.py' in done.stderr
    assert words in done.stderr, done.stderr
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['policies']['equal']['status'] == 'completed'
    assert summary['policies'][policy]['status'] != 'completed'


def test_a_user_policy_that_spins_is_stopped_at_its_time_limit(tmp_path):
    path = scenario_copy(tmp_path, extra='policy_file: %s\nuser_code_time_limit: 1s\n'
                         % os.path.join(POLICY_FILES, 'spins.py'))
    began = time.monotonic()
    done = run_cli('run', path, '--backend', 'fluid', '--policies', 'spins,equal',
                   '--out', str(tmp_path / 'out'))
    assert time.monotonic() - began < 60
    assert done.returncode == 1, done.stderr
    assert "policy 'spins' from " in done.stderr and 'did not return within 1 s' in \
        done.stderr, done.stderr
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['policies']['equal']['status'] == 'completed'


def test_a_policy_file_that_spins_on_import_gives_one_line(tmp_path):
    path = scenario_copy(tmp_path, extra='policy_file: %s\nuser_code_time_limit: 1s\n'
                         % os.path.join(POLICY_FILES, 'spins_on_import.py'))
    began = time.monotonic()
    done = run_cli('run', path, '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    lines = done.stderr.strip().splitlines()
    assert time.monotonic() - began < 60
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert 'spins_on_import.py: the policy file did not return within 1 s' in lines[0]
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('policy,words', [('crashes', 'ZeroDivisionError'),
                                          ('quits', 'SystemExit')])
def test_a_user_policy_that_fails_while_planning_names_its_file(tmp_path, policy, words):
    path = scenario_copy(tmp_path, extra='policy_file: %s\n'
                         % os.path.join(POLICY_FILES, 'fails_later.py'))
    done = run_cli('run', path, '--backend', 'fluid', '--policies', 'equal,' + policy,
                   '--out', str(tmp_path / 'out'))
    assert done.returncode == 1, done.stderr
    assert 'fails_later.py' in done.stderr and words in done.stderr, done.stderr
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['policies']['equal']['status'] == 'completed'


@pytest.fixture(scope='module')
def fluid_run(tmp_path_factory):
    """A results folder of a fluid run of the default scenario (two policies), run once
    for the module."""
    out = tmp_path_factory.mktemp('fluid') / 'out'
    done = run_cli('run', os.path.join(REPO, 'scenarios', 'default.yaml'), '--backend',
                   'fluid', '--policies', 'optimal,equal', '--out', str(out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def fluid_folder(fluid_run, tmp_path):
    """A copy of that folder, for a test to damage."""
    return pathlib.Path(shutil.copytree(fluid_run, tmp_path / 'out'))


def test_report_of_a_killed_runs_folder_keeps_the_whole_rows(fluid_folder):
    periods = fluid_folder / 'periods.csv'
    text = periods.read_text()
    periods.write_text(text[:-40])                 # the last row cut mid-write
    whole = len(text.splitlines()) - 2               # header and the cut row out
    done = run_cli('report', str(fluid_folder))
    assert done.returncode == 0, done.stderr
    assert 'last row was cut' in done.stderr and 'the %d whole rows' % whole in done.stderr
    summary = json.loads((fluid_folder / 'summary.json').read_text())['policies']
    # The cut row was equal's d2 in period 3: its two whole periods are reported.
    assert len(summary['equal']['devices']['d2']['accuracy_per_period']) == 2
    assert len(summary['optimal']['devices']['d2']['accuracy_per_period']) == 3


@pytest.mark.parametrize('damage,words', [
    (lambda p: p.write_text(p.read_text().replace('optimal,1,', 'optimal,one,', 1)),
     'period'),
    (lambda p: p.write_bytes(b'\x00\x01binary' * 100), 'binary data'),
    (lambda p: (p.unlink(), p.mkdir()), 'a directory, not a regular file'),
    # A named pipe opened the ordinary way blocks until a writer comes: forever.
    (lambda p: (p.unlink(), os.mkfifo(p)), 'a named pipe, not a regular file'),
    (lambda p: p.write_text(p.read_text().splitlines()[0] + '\n'), 'no period finished'),
    (lambda p: p.write_text(''), 'missing column'),
    (lambda p: p.unlink(), 'no such file'),
])
def test_report_of_a_damaged_folder_gives_one_line_and_exit_2(fluid_folder, damage, words):
    damage(fluid_folder / 'periods.csv')
    done = run_cli('report', str(fluid_folder))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr


@pytest.mark.parametrize('name', ['metadata.json', 'summary.json'])
def test_report_reads_a_folder_whose_json_is_a_named_pipe_without_waiting(fluid_folder,
                                                                         name):
    (fluid_folder / name).unlink()
    os.mkfifo(fluid_folder / name)
    done = run_cli('report', str(fluid_folder))      # run_cli's timeout: no hang
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize('make', [os.mkfifo, os.mkdir,
                                  lambda p: os.symlink('/dev/zero', p)])
def test_a_scenario_path_that_is_no_regular_file_gives_one_line(tmp_path, make):
    path = tmp_path / 'scenario.yaml'
    make(path)
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert 'scenario.yaml: a ' in lines[0] and 'not a regular file' in lines[0], lines
    assert not (tmp_path / 'out').exists()


def test_a_trace_that_is_a_named_pipe_gives_one_line(tmp_path):
    os.mkfifo(tmp_path / 'fifo.txt')
    path = tmp_path / 'scenario.yaml'
    path.write_text(GOOD.replace('capacity: 20mbit', 'capacity: {trace: fifo.txt}'))
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    assert done.returncode == 2 and "'fifo.txt' is not a regular file" in done.stderr, \
        done.stderr


def set_first_cell(path, column, value):
    with open(path, newline='') as src:
        rows = list(csv.DictReader(src))
    rows[0][column] = value
    with open(path, 'w', newline='') as out:
        writer = csv.DictWriter(out, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


SERIES_HEAD = 'policy,time_s,capacity_mbit,device,direction,share_mbit,goodput_mbit\n'


@pytest.mark.parametrize('name,damage,words', [
    ('periods.csv', lambda p: set_first_cell(p, 'accuracy', 'nan'),
     "periods.csv:2: accuracy 'nan' is not a number in [0, 100]"),
    ('periods.csv', lambda p: set_first_cell(p, 'accuracy', '250'),
     "accuracy '250' is not a number in [0, 100]"),
    ('periods.csv', lambda p: set_first_cell(p, 'upload_bytes', '-inf'),
     "upload_bytes '-inf' is not a number"),
    # Once an endless loop growing past 800 MB (a boundary line a period up to inf).
    ('timeseries.csv', lambda p: p.write_text(
        SERIES_HEAD + 'optimal,0.1,50,d1,up,10,9.5\noptimal,inf,50,d1,up,10,9.6\n'
        'optimal,0.3,50,d1,up,10,9.6\n'), "timeseries.csv:3: time_s 'inf' is not a number"),
    # 100 MB of these once took 30 s and 1 GB: a results CSV never holds a blank line.
    ('periods.csv', lambda p: p.write_text(p.read_text() + '\n' * 5000000),
     'a blank line: not a results CSV row'),
])
def test_report_refuses_impossible_cells_with_file_and_line(fluid_folder, name, damage,
                                                            words):
    damage(fluid_folder / name)
    began = time.monotonic()
    done = run_cli('report', str(fluid_folder))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert time.monotonic() - began < 60


def test_report_of_times_far_beyond_the_run_draws_in_bounded_time(fluid_folder):
    (fluid_folder / 'timeseries.csv').write_text(
        SERIES_HEAD + 'optimal,0.1,50,d1,up,10,9.5\noptimal,1e15,50,d1,up,10,9.6\n')
    began = time.monotonic()
    done = run_cli('report', str(fluid_folder))
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began < 120


def test_report_plots_a_cut_timeseries(fluid_folder):
    (fluid_folder / 'timeseries.csv').write_text(
        'policy,time_s,capacity_mbit,device,direction,share_mbit,goodput_mbit\n'
        'optimal,0.1,50,d1,up,10,9.5\noptimal,0.2,50,d1,up,10,9.6\noptimal,0.3,5')
    done = run_cli('report', str(fluid_folder))
    assert done.returncode == 0 and 'timeseries.csv: the last row was cut' in done.stderr
    assert (fluid_folder / 'timeseries-optimal.png').exists()


def test_a_link_faster_than_the_devices_need_is_fully_used_of_what_there_was():
    """A link that carries all there was to carry (every device's data and the largest
    checkpoint) is used to the full of its demand, however much of its capacity idled."""
    from edgecollab.scenarios.results import summarise
    rows = [{'policy': 'adaptive', 'device': d, 'period': k, 'accuracy': 30.0,
             'predicted_accuracy': 30.0, 'upload_bytes': 15e6, 'model_bytes': 68.2e6,
             'deadline_miss': False, 'solver_ms': 1.0, 'outcome': 'delivered',
             'link_bytes': 1000e6 if k == 1 else 100e6, 'demand_bytes': 2 * 83.2e6,
             'idle_fraction': 0.5} for d in ('d1', 'd2') for k in (1, 2)]
    rows[-1]['model_bytes'] = 0.0           # the last checkpoint did not arrive
    s = summarise(rows)['adaptive']
    delivered = 4 * 83.2e6 - 68.2e6
    assert s['utilisation'] == pytest.approx(delivered / 1100e6)
    assert s['utilisation_of_demand'] == pytest.approx(delivered / (2 * 83.2e6 + 100e6))


def test_the_table_explains_each_column_and_counts_outcomes():
    from edgecollab.scenarios.results import COLUMNS, summarise, table
    rows = [{'policy': 'equal', 'device': d, 'period': 1, 'accuracy': 20.0,
             'predicted_accuracy': 21.0, 'upload_bytes': 1e6, 'model_bytes': 2e6,
             'deadline_miss': False, 'solver_ms': 1.0, 'outcome': o, 'link_bytes': 8e6,
             'idle_fraction': 0.25} for d, o in (('d1', 'kept'), ('d2', 'infeasible'))]
    summary = summarise(rows)
    assert summary['equal']['utilisation'] == pytest.approx(6e6 / 8e6)
    assert summary['equal']['utilisation_of_demand'] is None     # no demand_bytes
    text = table(summary)
    assert '1i 1k' in text and '0.25' in text
    for heading, _, meaning in COLUMNS[2:]:
        assert any(line.split(None, 1)[0] == heading.split()[0] and meaning in line
                   for line in text.splitlines() if line.startswith('  ')), heading


def test_a_policy_with_fewer_periods_than_asked_is_stopped():
    from edgecollab.scenarios.results import summarise
    rows = [{'policy': 'equal', 'device': 'd1', 'period': 1, 'accuracy': 20.0,
             'predicted_accuracy': 21.0, 'upload_bytes': 1.0, 'model_bytes': 2.0,
             'deadline_miss': False, 'solver_ms': 1.0}]
    assert summarise(rows, {}, expected=3)['equal']['status'] == \
        'stopped after 1 of 3 periods'
    assert summarise(rows, {}, expected=1)['equal']['status'] == 'completed'


def test_report_html_and_readme_explain_what_the_folder_holds(fluid_folder):
    from edgecollab.controller.loop import RECORD_COLUMNS
    from edgecollab.scenarios.results import COLUMNS
    # An emulated run's folder has a fluid reference; this fluid one stands in for it.
    (fluid_folder / 'fluid-reference.csv').write_text(
        (fluid_folder / 'periods.csv').read_text())
    done = run_cli('report', str(fluid_folder))
    assert done.returncode == 0, done.stderr
    page = (fluid_folder / 'report.html').read_text()
    assert page.count('data:image/png;base64,') >= 1       # the plots are inside it
    assert 'http://' not in page and 'https://' not in page  # nothing to fetch: offline
    for heading, _, meaning in COLUMNS:
        assert '<th>%s</th>' % heading in page and meaning in page
    assert 'fluid mAP' in page
    readme = (fluid_folder / 'README.txt').read_text()
    for column in RECORD_COLUMNS:
        assert '\n    %s ' % column in readme, column
    # It lists the files there are and only those.
    assert 'report.html' in readme and 'summary.json' in readme
    for absent in ('timeseries.csv', 'replay.csv', 'token', 'work'):      # emulated only
        assert '\n    %s ' % absent not in readme, absent


def test_plots_stay_readable_with_many_devices(tmp_path):
    import matplotlib.image
    path = tmp_path / 'many.yaml'
    path.write_text(GOOD.replace('devices: 2', 'devices: 12'))
    out = tmp_path / 'out'
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(out))
    assert done.returncode == 0, done.stderr
    lines = ['policy,time_s,capacity_mbit,device,direction,share_mbit,goodput_mbit']
    for step in range(1, 60):
        for d in range(1, 13):
            for direction in ('up', 'down'):
                lines.append('equal,%.1f,20,d%d,%s,0.8,%.2f' % (step * 0.5, d, direction,
                                                               0.1 * d))
    (out / 'timeseries.csv').write_text('\n'.join(lines) + '\n')
    done = run_cli('report', str(out))
    assert done.returncode == 0, done.stderr
    image = matplotlib.image.imread(str(out / 'timeseries-equal.png'))
    # Totals and a band, not 24 lines: the picture is mostly background, with colour.
    colourful = ((image[..., :3].max(axis=2) - image[..., :3].min(axis=2)) > 0.2).mean()
    assert 0.005 < colourful < 0.5, colourful


def test_repeat_gives_intervals_and_how_often_the_ranking_held(tmp_path):
    out = tmp_path / 'out'
    done = run_cli('run', os.path.join(REPO, 'scenarios', 'default.yaml'), '--backend',
                   'fluid', '--policies', 'optimal,equal', '--repeat', '3', '--out', str(out))
    assert done.returncode == 0, done.stderr
    content = json.loads((out / 'summary.json').read_text())
    for policy, s in content['policies'].items():
        assert s['repeats'] == 3 and len(s['repeat_accuracy']) == 3
        assert s['mean_accuracy'] == pytest.approx(sum(s['repeat_accuracy']) / 3)
        assert s['ci95'] >= 0
        assert '%.2f+-%.2f' % (s['mean_accuracy'], s['ci95']) in done.stdout
    ranking = content['ranking']
    assert ranking['order'] == sorted(content['policies'], key=lambda p: -content[
        'policies'][p]['mean_accuracy'])
    assert ranking['repeats'] == 3 and 0 <= ranking['held'] <= 1
    assert 'the same in %d of 3 repetitions' % round(3 * ranking['held']) in done.stdout
    with open(out / 'periods.csv') as src:
        rows = list(csv.DictReader(src))
    assert sorted({r['repeat'] for r in rows}) == ['1', '2', '3']
    # Piped, the progress is a line a run of a policy, naming it and its repetition.
    assert 'optimal #2: period 3 of 3 done, mean mAP so far' in done.stderr
    assert 'ranking by mean mAP' in (out / 'report.html').read_text()


@pytest.mark.parametrize('value', ['0', '101', 'many'])
def test_a_bad_repeat_gives_one_line_and_exit_2(tmp_path, value):
    done = run_cli('run', os.path.join(REPO, 'scenarios', 'default.yaml'), '--backend',
                   'fluid', '--repeat', value, '--out', str(tmp_path / 'out'))
    lines = done.stderr.strip().splitlines()
    # One line (argparse adds its usage above a value that is no number, as for every
    # option); no traceback, no folder.
    assert done.returncode == 2 and 'repeat' in lines[-1], done.stderr
    assert 'Traceback' not in done.stderr and not (tmp_path / 'out').exists()


@pytest.mark.parametrize('args,words', [
    (['--periods', '100000000'], 'periods: 100000000 is greater than the maximum of 10000'),
    (['--periods', '0'], 'periods: 0 is less than the minimum of 1'),
    (['--out', '/proc/edgecollab-results'], '--out /proc/edgecollab-results: cannot write'),
    (['--dashboard', '99999'], 'dashboard port must be in [0, 65535]'),
])
def test_bad_command_line_values_give_one_line_and_write_nothing(tmp_path, args, words):
    path = scenario_copy(tmp_path)
    done = run_cli('run', path, '--backend', 'fluid', *args, cwd=str(tmp_path))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert not (tmp_path / 'results').exists()


def test_a_scenario_name_cannot_place_its_results_outside_results(tmp_path):
    (tmp_path / 'work').mkdir()
    path = scenario_copy(tmp_path / 'work', periods=1, extra="name: '../../escaped'\n")
    done = run_cli('run', path, '--backend', 'fluid', '--policies', 'equal',
                   cwd=str(tmp_path / 'work'))
    assert done.returncode == 0, done.stderr
    [folder] = os.listdir(tmp_path / 'work' / 'results')
    assert '/' not in folder and not folder.startswith('.') and 'escaped' in folder
    assert not list(tmp_path.glob('escaped*')) and not list(tmp_path.parent.glob('escaped*'))


def test_large_logs_are_compressed_and_listed(tmp_path):
    (tmp_path / 'run.log').write_text('debug line of a long run\n' * 100000)   # 2.5 MB
    (tmp_path / 'commands.sh').write_text('tc class change\n')
    assert results.compress_logs(str(tmp_path), limit_bytes=1 << 20) == ['run.log']
    assert not (tmp_path / 'run.log').exists() and (tmp_path / 'commands.sh').exists()
    import gzip
    with gzip.open(tmp_path / 'run.log.gz', 'rt') as src:
        assert src.read() == 'debug line of a long run\n' * 100000
    assert os.path.getsize(tmp_path / 'run.log.gz') < 100000
    assert 'run.log.gz' in dict(report.present_files(str(tmp_path)))


def test_a_trace_above_what_a_link_may_have_is_refused(tmp_path):
    # A kbit/s recording read as Mbit/s: 20000 "Mbit/s", above a constant's 10 Gbit/s.
    (tmp_path / 'kbit.txt').write_text('0 20000\n1 18000\n2 21000\n')
    path = tmp_path / 'scenario.yaml'
    path.write_text(GOOD.replace('capacity: 20mbit', 'capacity: {trace: kbit.txt}'))
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert 'reaches 21000 Mbit/s' in lines[0] and 'scale: 0.001' in lines[0], lines
    path.write_text(GOOD.replace('capacity: 20mbit',
                                 'capacity: {trace: kbit.txt, scale: 0.001}'))
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize('args,words', [
    (['--generated', 'nan'], 'data.generated: nan is not a finite number'),
    (['--generated', '1e300'], 'data.generated: 1e+300 is greater than the maximum'),
    (['--generated-list', '100,nan'], "--generated-list: 'nan' is not a number of samples"),
    (['--capacities', '20mbit,nanmbit'], "cannot read 'nanmbit' as a quantity"),
])
def test_solve_flags_meet_the_scenario_rules(args, words):
    done = run_cli('solve', *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr


def test_a_results_file_past_its_row_bound_is_refused_or_left_unplotted(fluid_folder,
                                                                        monkeypatch, caplog):
    # Every row read is held (about 1 KB): a file past MAX_ROWS is refused (periods.csv)
    # or its plots left out (timeseries.csv), never read into gigabytes.
    monkeypatch.setattr(results, 'MAX_ROWS', 3)
    with pytest.raises(ConfigError, match='more than 3 rows'):
        results.read_periods(str(fluid_folder))
    monkeypatch.setattr(results, 'MAX_ROWS', 1000)
    (fluid_folder / 'timeseries.csv').write_text(SERIES_HEAD + ''.join(
        'optimal,%g,50,d1,up,10,9.5\n' % (0.1 * i) for i in range(2000)))
    results.plot(str(fluid_folder))
    assert 'the time series plots are left out' in caplog.text
    assert not (fluid_folder / 'timeseries-optimal.png').exists()


def test_a_recording_runs_as_it_is_with_its_keys(tmp_path):
    # A 5G recording: whole-second timestamps that repeat, kbit/s, a window cut from it.
    rows = ['Timestamp,DL_bitrate']
    for second in range(300):
        for part in range(1 + second % 2):
            rows.append('2021.03.01_10.%02d.%02d,%d' % (second // 60, second % 60,
                                                      20000 + 1000 * (second % 7)))
    (tmp_path / 'fiveg.csv').write_text('\n'.join(rows) + '\n')
    path = tmp_path / 'scenario.yaml'
    path.write_text(GOOD.replace('capacity: 20mbit', (
        "capacity: {trace: fiveg.csv, column: DL_bitrate, unit: kbit/s, time: {column: "
        "Timestamp, format: '%Y.%m.%d_%H.%M.%S'}, start: 60s, duration: 40s}")))
    scenario = load_scenario(str(path))
    assert scenario.link.capacity.duration_s == 40.0
    assert 20 <= scenario.link.capacity.mean_between(0, 40) <= 26
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(tmp_path / 'out'))
    assert done.returncode == 0, done.stderr
    path.write_text(GOOD.replace('capacity: 20mbit', 'capacity: {trace: fiveg.csv, column: '
                                 'DL_bitrate, unit: kbit/s, interval: 500ms}'))
    assert load_scenario(str(path)).link.capacity.duration_s == pytest.approx(
        0.5 * (len(rows) - 1))
    path.write_text(GOOD.replace('capacity: 20mbit', 'capacity: {trace: fiveg.csv, column: '
                                 'DL_bitrate, unit: kbit/s}'))
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(tmp_path / 'o2'))
    assert done.returncode == 2 and "needs a 'time_s' column" in done.stderr, done.stderr


def test_repeats_on_a_trace_start_at_different_offsets(tmp_path):
    (tmp_path / 'steps.txt').write_text('0 40\n20 5\n40 20\n')           # 60 s
    path = tmp_path / 'scenario.yaml'
    path.write_text(GOOD.replace('capacity: 20mbit', 'capacity: {trace: steps.txt}')
                    .replace('policies: [optimal, equal]', 'policies: [equal]'))
    out = tmp_path / 'out'
    done = run_cli('run', str(path), '--backend', 'fluid', '--repeat', '3', '--out', str(out))
    assert done.returncode == 0, done.stderr
    meta = json.loads((out / 'metadata.json').read_text())
    assert meta['repeat_offsets_s'] == [0.0, 20.0, 40.0]
    with open(out / 'periods.csv') as src:
        capacity = {(r['repeat'], r['period']): float(r['capacity_mbit'])
                    for r in csv.DictReader(src)}
    # Period 1 (10 s) of each repetition sees another part of the trace.
    assert len({capacity[(str(r), '1')] for r in (1, 2, 3)}) == 3, capacity


@pytest.mark.parametrize('command,name', [('fit', 'periods.csv'),
                                          ('report', 'timeseries.csv')])
def test_fit_and_report_refuse_a_named_pipe_in_the_folder(fluid_folder, command, name):
    target = fluid_folder / name
    if target.exists():
        target.unlink()
    os.mkfifo(target)
    done = run_cli(command, str(fluid_folder))          # run_cli's timeout: no hang
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert '%s: a named pipe, not a regular file' % name in lines[0], lines


def test_no_nan_or_infinity_is_ever_written_to_json(tmp_path):
    from edgecollab import files
    path = tmp_path / 'x.json'
    files.write_json(str(path), {'a': float('nan'), 'b': [1.0, float('inf')],
                                 'c': {'d': -float('inf'), 'e': 2.5}})
    assert json.loads(path.read_text(), parse_constant=lambda c: 1 / 0) == {
        'a': None, 'b': [1.0, None], 'c': {'d': None, 'e': 2.5}}


@pytest.mark.parametrize('keys,step_s', [
    ('period: 10s\n', 0.5),          # a twentieth of the period, at least 0.5 s
    ('period: 15s\n', 0.75),
    ('period: 30s\n', 1.0),          # at most 1 s
    ('period: 300ms\nstep: 100ms\n', 0.3),    # never longer than the period
    ('period: 30s\ncontrol_step: 250ms\n', 0.25)])    # as named
def test_the_control_step_follows_the_period_unless_named(tmp_path, keys, step_s):
    path = tmp_path / 'scenario.yaml'
    path.write_text('devices: 2\ncapacity: 20mbit\n' + keys)
    assert load_scenario(str(path)).control.control_step_s == pytest.approx(step_s)
