"""Corpus runs: a scenario on each of many traces (fluid, in parallel), judged across
them; bad corpora give one line and exit 2 with nothing made."""

import csv
import json
import os

import pytest

from edgecollab.scenarios import corpus
from tests.test_scenarios import run_cli

SCENARIO = """
devices: 2
capacity: {trace: placeholder.csv, column: dl, unit: kbit/s, interval: 1s}
period: 10s
periods: 2
data: {sample_size: 100KB, generated: 100}
model: {menu: yolov8, precision: int8}
policies: [adaptive, oracle, equal, upload-first]
"""


def _recording(path, kbits):
    """A CSV in the shape of a phone's log: no time column, one row a second, kbit/s."""
    with open(path, 'w') as out:
        out.write('cell,dl\n')
        for k in kbits:
            out.write('a,%d\n' % k)


@pytest.fixture
def corpus_dir(tmp_path):
    folder = tmp_path / 'recordings'
    folder.mkdir()
    _recording(folder / 'steady.csv', [20000] * 40)
    _recording(folder / 'dip.csv', [30000] * 8 + [500] * 8 + [30000] * 24)
    _recording(folder / 'low-start.csv', [200] * 5 + [25000] * 35)
    _recording(tmp_path / 'placeholder.csv', [10000] * 40)
    (tmp_path / 'corpus.yaml').write_text(SCENARIO)
    return tmp_path


def test_a_corpus_runs_every_policy_on_every_trace_and_is_judged_across_them(corpus_dir):
    out = corpus_dir / 'out'
    done = run_cli('run', str(corpus_dir / 'corpus.yaml'), '--backend', 'fluid',
                   '--traces', str(corpus_dir / 'recordings' / '*.csv'), '--out', str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'trace 3 of 3 done' in done.stderr            # progress names the traces
    names = sorted(os.listdir(out / 'traces'))
    assert names == ['dip.csv', 'low-start.csv', 'steady.csv']
    for name in names:                  # each trace: a results folder of its own
        for f in ('periods.csv', 'summary.json', 'report.html', 'metadata.json'):
            assert (out / 'traces' / name / f).exists(), (name, f)
        meta = json.loads((out / 'traces' / name / 'metadata.json').read_text())
        assert meta['traces']['capacity']['path'].endswith(name)
    with open(out / 'corpus.csv') as src:
        rows = list(csv.DictReader(src))
    assert len(rows) == 3 * 4
    steady = {r['policy']: r for r in rows if r['trace'] == 'steady.csv'}
    # The file's kbit/s were read with the scenario's keys: 20 Mbit/s.
    assert float(steady['equal']['capacity_mbit']) == pytest.approx(20.0, rel=1e-6)
    assert float(steady['oracle']['regret']) == 0.0
    verdict = json.loads((out / 'summary.json').read_text())['corpus']
    assert verdict['traces'] == 3
    for a, against in verdict['versus'].items():
        for b, count in against.items():
            assert count['wins'] + count['ties'] + count['losses'] == 3
            assert count['wins'] == verdict['versus'][b][a]['losses']
    assert set(verdict['policies']) == {'adaptive', 'oracle', 'equal', 'upload-first'}
    assert 'captured' in verdict['policies']['adaptive']
    assert 'captured' not in verdict['policies']['equal']         # a baseline
    for name in corpus.PLOTS:
        assert (out / name).stat().st_size > 5000
    page = (out / 'report.html').read_text()
    assert 'Across the corpus' in page and 'traces/dip.csv/report.html' in page
    assert 'over 3 traces' in done.stdout and 'captured' in done.stdout
    # The report is rebuilt from the folder alone.
    (out / 'corpus.csv').unlink()
    again = run_cli('report', str(out))
    assert again.returncode == 0, again.stderr
    assert (out / 'corpus.csv').exists() and 'over 3 traces' in again.stdout
    # The dashboard shows one run: on the corpus folder it says where the runs are.
    shown = run_cli('dashboard', str(out), '--port', '0')
    assert shown.returncode == 2 and 'traces/<trace>' in shown.stderr, shown.stderr


def test_the_window_flags_cut_each_trace_of_a_corpus(corpus_dir):
    out = corpus_dir / 'out'
    done = run_cli('run', str(corpus_dir / 'corpus.yaml'), '--backend', 'fluid',
                   '--traces', str(corpus_dir / 'recordings' / 'dip.csv'),
                   '--trace-start', '8s', '--trace-duration', '8s', '--periods', '1',
                   '--policies', 'equal', '--out', str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / 'corpus.csv') as src:
        rows = list(csv.DictReader(src))
    # Only the dip (0.5 Mbit/s) is left, looped.
    assert float(rows[0]['capacity_mbit']) == pytest.approx(0.5, rel=1e-6)
    # The folder holds a run now: another corpus run, or a single one, into it is
    # refused (its rows would join the old ones' and the verdict mix the two).
    before = (out / 'traces' / 'dip.csv' / 'periods.csv').read_bytes()
    for flags in (['--traces', str(corpus_dir / 'recordings' / 'dip.csv')], []):
        again = run_cli('run', str(corpus_dir / 'corpus.yaml'), '--backend', 'fluid',
                        '--periods', '1', '--policies', 'equal', '--out', str(out), *flags)
        lines = again.stderr.strip().splitlines()
        assert again.returncode == 2 and len(lines) == 1, again.stderr
        assert 'already holds a run' in lines[0]
    assert (out / 'traces' / 'dip.csv' / 'periods.csv').read_bytes() == before


def test_a_duplex_corpus_pairs_each_upload_with_its_download(corpus_dir):
    # Two drives, each an uplink and a downlink recording: --traces-down pairs them in
    # name order; each download is read with the scenario's capacity keys (kbit/s) and
    # the window flags cut both directions.
    rec = corpus_dir / 'recordings'
    for name, up, down in (('a', 20000, 8000), ('b', 30000, 12000)):
        _recording(rec / ('%s-up.csv' % name), [up] * 40)
        _recording(rec / ('%s-down.csv' % name), [down] * 10 + [down // 2] * 30)
    (corpus_dir / 'duplex.yaml').write_text(SCENARIO + 'medium: duplex\n')
    out = corpus_dir / 'out'
    done = run_cli('run', str(corpus_dir / 'duplex.yaml'), '--backend', 'fluid',
                   '--traces', str(rec / '*-up.csv'), '--traces-down', str(rec / '*-down.csv'),
                   '--trace-start', '10s', '--periods', '1', '--policies', 'oracle,equal',
                   '--out', str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(os.listdir(out / 'traces')) == ['a-up.csv', 'b-up.csv']
    with open(out / 'corpus.csv') as src:
        rows = list(csv.DictReader(src))
    assert {(os.path.basename(r['file']), os.path.basename(r['file_down'])) for r in rows} \
        == {('a-up.csv', 'a-down.csv'), ('b-up.csv', 'b-down.csv')}
    for name, down_mbit in (('a', 4.0), ('b', 6.0)):
        folder = out / 'traces' / ('%s-up.csv' % name)
        meta = json.loads((folder / 'metadata.json').read_text())
        assert meta['traces']['capacity_down']['path'].endswith('%s-down.csv' % name)
        with open(folder / 'periods.csv') as src:
            oracle = [r for r in csv.DictReader(src) if r['policy'] == 'oracle']
        # From 10 s in, the download carries down_mbit: what oracle's checkpoints take.
        planned = sum(float(r['planned_model_bytes']) for r in oracle)
        assert 0 < planned <= down_mbit * 1e6 / 8 * 10 * (1 + 1e-9), oracle
    listed = json.loads((out / 'metadata.json').read_text())['corpus']
    assert [os.path.basename(e['down']['path']) for e in listed] == ['a-down.csv',
                                                                     'b-down.csv']


def test_the_window_flags_cut_a_duplex_links_download_trace_too(corpus_dir):
    # A duplex scenario with a download trace of its own: --trace-start cuts both
    # directions, or the download would run from the recording's start.
    rec = corpus_dir / 'recordings'
    _recording(rec / 'up.csv', [20000] * 40)
    _recording(rec / 'down.csv', [16000] * 10 + [4000] * 30)
    own = SCENARIO.replace('placeholder.csv', 'recordings/up.csv')
    (corpus_dir / 'own.yaml').write_text(own + 'medium: duplex\ncapacity_down: {trace: '
                                         'recordings/down.csv, column: dl, unit: kbit/s, '
                                         'interval: 1s}\n')
    out = corpus_dir / 'out'
    done = run_cli('run', str(corpus_dir / 'own.yaml'), '--backend', 'fluid',
                   '--trace-start', '10s', '--periods', '1', '--policies', 'oracle',
                   '--out', str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / 'periods.csv') as src:
        rows = list(csv.DictReader(src))
    # 4 Mbit/s from 10 s: 5 MB in the period (16 Mbit/s, 20 MB, before the cut).
    assert 0 < sum(float(r['planned_model_bytes']) for r in rows) <= 5e6 * (1 + 1e-9)


@pytest.mark.parametrize('scenario, flags, words', [
    ('duplex', ['--traces', 'recordings/*-up.csv', '--traces-down', 'recordings/a-down.csv'],
     'matches 2 upload and 1 download files'),
    ('duplex', ['--traces-down', 'recordings/a-down.csv'], 'pairs with --traces'),
    ('corpus', ['--traces', 'recordings/a-up.csv', '--traces-down', 'recordings/a-down.csv'],
     'use medium: duplex'),
    ('half-pair', [], "'down' is a required property"),
], ids=['counts differ', 'no uploads', 'not duplex', 'a pair missing a side'])
def test_a_bad_duplex_corpus_gives_one_line_and_exit_2(corpus_dir, scenario, flags, words):
    for name in ('a', 'b'):
        _recording(corpus_dir / 'recordings' / ('%s-up.csv' % name), [20000] * 40)
    _recording(corpus_dir / 'recordings' / 'a-down.csv', [5000] * 40)
    (corpus_dir / 'duplex.yaml').write_text(SCENARIO + 'medium: duplex\n')
    (corpus_dir / 'half-pair.yaml').write_text(
        SCENARIO + 'medium: duplex\ntraces: [{up: recordings/a-up.csv}]\n')
    out = corpus_dir / 'out'
    done = run_cli('run', str(corpus_dir / ('%s.yaml' % scenario)), '--backend', 'fluid',
                   '--out', str(out), *flags, cwd=str(corpus_dir))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert not out.exists()


@pytest.mark.parametrize('flags, words', [
    (['--traces', 'nowhere/*.csv'], "matches no file"),
    (['--traces', '{bad}'], "garbage.csv"),
    (['--trace-start', '5s', '--traces', 'nowhere/x.csv'], 'no such trace file'),
], ids=['no match', 'a bad file', 'window of no file'])
def test_a_bad_corpus_gives_one_line_and_exit_2_with_nothing_made(corpus_dir, flags, words):
    (corpus_dir / 'garbage.csv').write_text('cell,dl\nx,not a number\n')
    flags = [str(corpus_dir / 'garbage.csv') if f == '{bad}' else f for f in flags]
    out = corpus_dir / 'out'
    done = run_cli('run', str(corpus_dir / 'corpus.yaml'), '--backend', 'fluid',
                   '--out', str(out), *flags, cwd=str(corpus_dir))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert not out.exists()


def test_a_constant_capacity_has_no_trace_to_cut(corpus_dir):
    (corpus_dir / 'flat.yaml').write_text('capacity: 20mbit\nperiods: 1\n')
    done = run_cli('run', str(corpus_dir / 'flat.yaml'), '--backend', 'fluid',
                   '--trace-start', '5s', '--out', str(corpus_dir / 'out'))
    assert done.returncode == 2 and 'add --traces' in done.stderr


def _rows(means):
    return [{'trace': t, 'policy': p, 'accuracy': v} for t, m in means.items()
            for p, v in m.items()]


def test_judge_counts_wins_ties_and_the_share_of_oracles_lead_captured():
    means = {'a': {'oracle': 30.0, 'adaptive': 29.0, 'equal': 26.0, 'upload-first': 28.0},
             'b': {'oracle': 25.0, 'adaptive': 24.0, 'equal': 24.0, 'upload-first': 20.0},
             # oracle leads the best baseline by 0.2 only: left out of the share
             'c': {'oracle': 20.2, 'adaptive': 20.0, 'equal': 20.0, 'upload-first': 20.03}}
    verdict = corpus.judge(_rows(means))
    adaptive = verdict['policies']['adaptive']
    # a: (29 - 28) / (30 - 28) = 0.5; b: (24 - 24) / (25 - 24) = 0
    assert adaptive['captured'] == pytest.approx(0.25)
    assert adaptive['captured_over'] == 2
    assert adaptive['below_best_baseline'] == []
    assert verdict['best_baseline'] == {'a': 'upload-first', 'b': 'equal',
                                        'c': 'upload-first'}
    assert verdict['versus']['adaptive']['equal'] == {'wins': 1, 'ties': 2, 'losses': 0}
    assert adaptive['regret_mean'] == pytest.approx((1 + 1 + 0.2) / 3)
    # A trace some policy did not finish is left out, and said so.
    rows = _rows(means) + [{'trace': 'd', 'policy': 'oracle', 'accuracy': 1.0}]
    assert corpus.judge(rows)['traces_left_out'] == ['d']


def test_trace_folder_names_stay_apart_when_files_share_a_name():
    names = corpus.names_of(['/x/up/trace.csv', '/x/down/trace.csv', '/x/other.csv'])
    assert names == ['up-trace.csv', 'down-trace.csv', 'x-other.csv']
    assert len(set(names)) == 3
