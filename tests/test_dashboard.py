"""The dashboard: reading a folder as it grows, its data for many devices, its API's
answers to bad requests, and the page in a real browser (headless Chromium)."""

import io
import json
import socket
import subprocess

import numpy as np
import pytest
import requests

from edgecollab.controller.service import ControllerState
from edgecollab.scenarios import dashboard
from edgecollab.scenarios.dashboard import CsvTail, Dashboard, Live, Server
from tests.conftest import PYTHON, REPO
from tests.test_scenarios import GOOD, run_cli

TOKEN = 'a' * 32
SERIES_HEADER = 'policy,time_s,capacity_mbit,device,direction,share_mbit,goodput_mbit\n'


def test_a_growing_csv_is_read_in_whole_lines_once(tmp_path):
    path = tmp_path / 'timeseries.csv'
    tail = CsvTail(str(path))
    assert list(tail.rows()) == []                   # not there yet
    path.write_text(SERIES_HEADER + 'equal,0.5,20,d1,up,10,9.5\nequal,1.0,20,d1,u')
    assert [r['goodput_mbit'] for r in tail.rows()] == [9.5]
    with open(path, 'a') as dst:
        dst.write('p,10,9.0\nequal,1.5,20,d1,up\n')  # the cut row completed; a bad one
    rows = list(tail.rows())
    assert [(r['time_s'], r['goodput_mbit']) for r in rows] == [(1.0, 9.0)]
    assert tail.skipped == 1 and list(tail.rows()) == []


@pytest.fixture(scope='module')
def many_devices(tmp_path_factory):
    """A fluid run's folder of 100 devices with a time series written beside it: device
    d7 carries nothing of its shares, the others more the higher their number."""
    tmp = tmp_path_factory.mktemp('many')
    path = tmp / 'many.yaml'
    path.write_text(GOOD.replace('devices: 2', 'devices: 100').replace(
        'policies: [optimal, equal]', 'policies: [equal]'))
    out = tmp / 'out'
    done = run_cli('run', str(path), '--backend', 'fluid', '--out', str(out))
    assert done.returncode == 0, done.stderr
    lines = [SERIES_HEADER.strip()]
    for step in range(0, 40):
        for d in range(1, 101):
            for direction in ('up', 'down'):
                lines.append('equal,%.1f,20,d%d,%s,0.1,%.4f' % (
                    step * 0.5, d, direction, 0 if d == 7 else 0.1 * d / 100))
    (out / 'timeseries.csv').write_text('\n'.join(lines) + '\n')
    return out


def test_many_devices_are_summed_listed_at_the_extremes_and_mapped(many_devices):
    data = Dashboard(str(many_devices)).snapshot()
    assert data['run'] == 'equal' and data['live'] is False
    assert data['devices'][:3] == ['d1', 'd2', 'd3'] and len(data['devices']) == 100
    assert data['now']['extremes'] and len(data['now']['devices']) == 2 * dashboard.EXTREMES
    assert data['now']['devices'][0]['device'] == 'd7'
    assert data['now']['devices'][-1]['device'] == 'd100'
    heat = data['use_heat']
    assert len(heat['values']) == 100 and len(heat['bins']) <= dashboard.HEAT_BINS + 1
    assert set(heat['values'][6]) <= {0, None} and 0 in heat['values'][6]
    assert heat['values'][99][0] == 1.0
    assert len(data['link']['t']) <= dashboard.LINK_POINTS
    # 100 devices x 2 directions x 0.1 Mbit/s of shares each step
    assert data['link']['share_up'][0] == pytest.approx(10.0)
    assert len(data['accuracy']['grid']['values']) == 100
    assert len(json.dumps(data)) < 200_000


def test_the_api_refuses_bad_requests_and_switches_only_a_live_run(many_devices):
    live = Live()
    server = Server(Dashboard(str(many_devices), live), TOKEN, port=0)
    try:
        url = server.url
        put = lambda body, token=TOKEN: requests.put(
            url + 'policy', json=body, timeout=5,
            headers={'Authorization': 'Bearer ' + token} if token else {})
        assert put({'policy': 'optimal'}, token=None).status_code == 401
        assert put({'policy': 'optimal'}, token='b' * 32).status_code == 403
        assert put({'policy': 'nonsense'}).status_code == 400
        refused = put({'policy': 'optimal'})
        assert refused.status_code == 409 and 'no run is live' in refused.json()['error']
        assert requests.get(url + 'data', params={'run': 'x' * 300},
                            timeout=5).status_code == 400
        assert requests.get(url + 'data', params={'run': 'unknown'},
                            timeout=5).json()['run'] == 'equal'

        class Run:                 # what Live needs of a PolicyRun
            policy, repeat = 'equal', 1
            state = ControllerState(['d1'], 'equal', 'overlap')
        run = Run()
        live.attach(run)
        answer = put({'policy': 'optimal'})
        assert answer.status_code == 200 and answer.json() == {'policy': 'equal',
                                                               'next': 'optimal'}
        assert run.state.take_policy() == 'optimal'
        data = requests.get(url + 'data', timeout=5).json()
        assert data['live'] and data['status']['next_policy'] == 'optimal'
        live.detach(run)
        assert put({'policy': 'equal'}).status_code == 409
    finally:
        server.stop()


def test_dashboard_of_a_bad_folder_or_a_taken_port_gives_one_line_and_exit_2(
        tmp_path, many_devices):
    for folder, words in ((tmp_path / 'none', 'no such folder'),
                          (tmp_path, 'not a results folder')):
        done = run_cli('dashboard', str(folder))
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        done = run_cli('dashboard', str(many_devices), '--port',
                       str(taken.getsockname()[1]))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and 'choose another' in lines[0], \
        done.stderr


def colourful_fraction(png, rect):
    """The fraction of rect's pixels in a PNG screenshot that are coloured (not grey,
    white or black)."""
    from PIL import Image
    image = np.asarray(Image.open(io.BytesIO(png)).convert('RGB'), dtype=int)
    x, y = int(rect['x']), int(rect['y'])
    crop = image[y:y + int(rect['height']), x:x + int(rect['width'])]
    return float(((crop.max(axis=2) - crop.min(axis=2)) > 60).mean()) if crop.size else 0.0


def test_the_page_shows_a_hundred_devices_readably(many_devices, browser):
    # `edgecollab dashboard DIR` as a user starts it, then the page as a person sees it.
    proc = subprocess.Popen([PYTHON, '-m', 'edgecollab.cli', 'dashboard',
                             str(many_devices), '--port', '0'], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert 'http://127.0.0.1:' in line, (line, proc.stderr.read() if proc.poll() else '')
        browser.get(line.split()[-4])
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(browser, 20).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, '#grid svg rect'))
        # The page redraws its panels as it polls: each is read in one script, not
        # element by element (an element read after a redraw is stale).
        state = browser.execute_script("return document.getElementById('state').innerText")
        assert 'equal' in state and 'not live' in state, state
        # The extremes, not 100 rows: d7 carries nothing, d100 the most.
        cells = browser.execute_script(
            "return Array.from(document.querySelectorAll("
            "'#devices table td:first-child'), c => c.innerText)")
        assert len(cells) == 2 * dashboard.EXTREMES and cells[0] == 'd7', cells
        assert cells[-1] == 'd100'
        assert len(browser.find_elements(By.CSS_SELECTOR, '#use svg rect')) >= 100 * 20
        png = browser.get_screenshot_as_png()
        (many_devices / 'dashboard.png').write_bytes(png)
        # Heatmaps fill their panels with colour; the link chart's lines some of it.
        for panel, least in (('use', 0.3), ('grid', 0.3), ('link', 0.005)):
            rect = browser.execute_script(
                "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
                "return {x: r.x, y: r.y, width: r.width, height: r.height}",
                '#%s .chart' % panel)
            assert rect['height'] > 100, (panel, rect)
            assert colourful_fraction(png, rect) > least, panel
        errors = [e for e in browser.get_log('browser') if e['level'] == 'SEVERE']
        assert not errors, errors
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_learning_workloads_measured_accuracy_is_in_the_page_data(tmp_path):
    from tests.helpers import scenario_copy
    out = tmp_path / 'out'
    done = run_cli('run', scenario_copy(tmp_path, periods=2, extra='workload: digits\n'),
                   '--backend', 'fluid', '--policies', 'equal', '--out', str(out))
    assert done.returncode == 0, done.stderr
    measured = Dashboard(str(out)).snapshot()['accuracy']['measured']
    assert len(measured) == 2 and all(0 < m <= 100 for m in measured), measured


@pytest.fixture
def copy_of(many_devices, tmp_path):
    """A copy of the 100-device folder to damage."""
    import shutil
    out = tmp_path / 'copy'
    shutil.copytree(many_devices, out)
    return out


@pytest.mark.parametrize('damage', [
    lambda f: (f / 'metadata.json').write_text('[1, 2, 3]'),
    lambda f: (f / 'metadata.json').write_text('{"scenario": [1, 2], "arguments": 7}'),
    lambda f: (f / 'metadata.json').write_text('{"scenario": {"period": NaN}}'),
    lambda f: ((f / 'metadata.json').unlink(), __import__('os').mkfifo(f / 'metadata.json')),
    lambda f: ((f / 'timeseries.csv').unlink(), __import__('os').mkfifo(f / 'timeseries.csv')),
    # A time far beyond the run: the heatmap once walked every bin up to it.
    lambda f: open(f / 'timeseries.csv', 'a').write('equal,1e12,20,d1,up,0.1,0.1\n'),
])
def test_a_damaged_folder_is_answered_in_bounded_time_never_500(copy_of, damage):
    import time
    damage(copy_of)
    client = dashboard.create_app(Dashboard(str(copy_of)), TOKEN).test_client()
    began = time.monotonic()
    for _ in range(2):
        answer = client.get('/data')
        assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
        data = answer.get_json()
        assert data['title']
    assert time.monotonic() - began < 60      # wide: a loaded machine; once it blocked
    heat = data.get('use_heat')
    if heat:
        assert len(heat['bins']) <= dashboard.MAX_HEAT_BINS
