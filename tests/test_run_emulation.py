"""Emulated runs: the default scenario end to end, agents against tc counters, faults,
sequential timing (and its cancellation on a stop), and trace replay timing."""

import csv
import datetime
import os
import secrets
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
import requests

from edgecollab.topologies import cleanup
from edgecollab.topologies import linkshare
from edgecollab.scenarios.fluid_backend import FluidTransport
from edgecollab.controller.loop import ControlLoop, phases
from edgecollab.controller.service import ControllerState
from edgecollab.wire import GOODPUT_PER_WIRE
from edgecollab.nodes import workload
from edgecollab.nodes.device import PIECE_BYTES
from edgecollab.topologies.emulation import Emulation
from edgecollab.ready import poll
from edgecollab.scenarios import dashboard, experiment, mininet_backend, results, traces
from edgecollab.scenarios.replay import Replayer
from edgecollab.scenarios.mininet_backend import PolicyRun
from edgecollab.scenarios.scenario import load_scenario
from edgecollab.topologies import addressing
from edgecollab.topologies.star import EdgeStar
from tests.conftest import PYTHON, REPO, TEST_PREFIX
from tests.helpers import assert_within, scenario_copy
from tests.test_scenarios import check_summary_matches_rows

pytestmark = pytest.mark.emulation
DEFAULT = os.path.join(REPO, 'scenarios', 'default.yaml')


def rows_of(folder, policy=None):
    with open(os.path.join(folder, 'periods.csv')) as src:
        return [r for r in csv.DictReader(src) if policy is None or r['policy'] == policy]


def window_bytes(scenario, rate_mbit):
    """The most upload bytes of a class of rate_mbit that can have passed its shaper
    and not yet reached the edge's reader: its leaf queue and a round trip of its rate
    (bytes behind a segment lost near a deadline wait for its retransmission, which
    queues behind them).  Late bytes the edge reads in a period may have been counted
    by the class in the period before."""
    return (linkshare.leaf_queue_bytes(rate_mbit, scenario.link.queue_ms) +
            rate_mbit * 1e6 / 8 * 2 * scenario.paths.each[0].delay_ms / 1000)


def our_processes():
    """PIDs of processes running edgecollab's agents (none may outlive a run)."""
    out = subprocess.run(['pgrep', '-f', 'edgecollab.nodes.'], capture_output=True, text=True)
    return out.stdout.split()


def test_default_scenario_run_open_and_closed_loop(tmp_path):
    # The paper's open-loop optimum and the closed loop (equal left out for the suite's
    # time: its plans are the simplest and other tests run it).
    out = tmp_path / 'out'
    done = subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'run', DEFAULT, '--policies',
                           'optimal,adaptive', '--periods', '2', '--out', str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ('summary.json', 'periods.csv', 'timeseries.csv', 'replay.csv',
                 'metadata.json', 'accuracy.png', 'timeseries-optimal.png',
                 'timeseries-adaptive.png', 'report.html', 'README.txt'):
        assert (out / name).exists(), name
    for name in results.LOG_FILES:           # gzip-compressed above 1 MB
        assert (out / name).exists() or (out / (name + '.gz')).exists(), name
        assert name in (out / 'README.txt').read_text()
    check_summary_matches_rows(out)
    assert 'tc class change' in results.read_log(str(out), 'commands.sh')
    # Checkpoints and data are listed with their digests and deleted: a small folder.
    size = sum(p.stat().st_size for p in out.rglob('*') if p.is_file())
    assert size < 10e6, '%.1f MB' % (size / 1e6)
    assert not list(out.rglob('*.npz')) and not list(out.rglob('*.bin'))
    assert '.npz' in (out / 'work' / 'optimal' / 'artifacts.csv').read_text()
    # Issue 4: what the agents report matches the tc class counters within 3%.  A
    # period's upload class carries what arrived in time and the bytes earlier periods'
    # streams still had in flight at their deadlines (they arrive late and do not
    # count).  What TCP retransmitted is not in it twice: the first copy was dropped by
    # the class's queue, before the counter.
    scenario = load_scenario(os.path.join(REPO, 'scenarios', 'default.yaml'))
    previous = {}            # device: the download share of its previous period
    previous_up = {}         # device: the upload share of its previous period
    for row in rows_of(out, 'optimal'):
        carried = float(row['carried_upload_bytes'])
        wire = float(row['class_up_bytes']) * GOODPUT_PER_WIRE
        # Late bytes count in the period the edge reads them (see window_bytes).
        in_flight = 0.0
        if carried > 0:
            in_flight = window_bytes(scenario, previous_up.get(row['device'], 0.0) *
                                     float(row['capacity_mbit']))
        assert abs(float(row['reported_upload_bytes']) + carried - wire) <= max(
            0.03 * wire, PIECE_BYTES) + in_flight, ('upload of %s period %s vs its class' % (
                row['device'], row['period']), in_flight, row)
        previous_up[row['device']] = float(row['upload_share'])
        # A checkpoint cut at a deadline leaves its leaf queue full: those bytes leave
        # the shaper in the next period (counted there) after the device has closed the
        # connection.  So the class may carry up to the previous period's leaf queue more
        # than the device read (the queue is 100 ms of the share, 40 ms RTT here).
        wire = float(row['class_down_bytes']) * GOODPUT_PER_WIRE
        before = previous.get(row['device'], 0.0)
        leftover = linkshare.leaf_queue_bytes(before * float(row['capacity_mbit']),
                                              scenario.link.queue_ms) * GOODPUT_PER_WIRE
        assert wire * 0.97 - leftover <= float(row['model_bytes']) <= wire * 1.03, (
            'checkpoint of %s period %s vs its class' % (row['device'], row['period']),
            leftover, row)
        previous[row['device']] = float(row['download_share'])
        # ... and the plan (whose upload fills its share), within the efficiency the
        # controller measured.  A plan of no upload leaves the class its floor (its ACK
        # child's guarantee, which data may borrow): it carries a little, which the
        # check against the class above accounts for.
        eff = float(row['efficiency_up'] or 1.0)
        planned = float(row['planned_upload_bytes']) * eff
        if float(row['planned_upload_bytes']) > 0:
            assert abs(float(row['upload_bytes']) + carried - planned) <= max(
                0.03 * planned, PIECE_BYTES), ('upload of %s period %s vs plan x efficiency'
                                               % (row['device'], row['period']), row)
    assert not our_processes()
    assert not cleanup.owned_interfaces('ec')


def small_scenario(tmp_path, periods=3, period='6s'):
    return load_scenario(scenario_copy(tmp_path, periods=periods, period=period))


def test_corrupt_checkpoint_is_rejected_and_the_old_model_kept(tmp_path):
    # With the digits workload: the edge learns from the samples that really arrived,
    # the devices score the real students they hold.
    scenario = load_scenario(scenario_copy(tmp_path, periods=2, period='6s',
                                           extra='workload: digits\n'))
    run = PolicyRun(scenario, 'equal', str(tmp_path / 'out'), prefix=TEST_PREFIX,
                    edge_args=['--corrupt', 'd1:2'])
    assert run.run() == 'completed'
    rows = {(r['device'], r['period']): r for r in rows_of(tmp_path / 'out')}
    assert rows[('d1', '1')]['model_ok'] == 'True'
    assert rows[('d1', '2')]['model_ok'] == 'False'
    assert 'digest mismatch' in rows[('d1', '2')]['status']
    # The old model is kept, a period older (drift).
    assert float(rows[('d1', '2')]['accuracy']) == pytest.approx(
        scenario.control.drift.decay(float(rows[('d1', '1')]['accuracy']), 1), rel=1e-6)
    assert rows[('d2', '2')]['model_ok'] == 'True'
    work = tmp_path / 'out' / 'work' / 'equal'
    assert 'digest mismatch' in open(work / 'd1.log').read()
    # Period 1's checkpoint knew the factory samples only (overlap: it is distilled from
    # the period before); d1 measures it again in period 2, a period's drift later.
    task = workload.from_spec(scenario.workload.spec)
    first = task.learner('d1').student(float(rows[('d1', '1')]['planned_model_bytes']))
    for period in (1, 2):
        assert float(rows[('d1', str(period))]['measured_accuracy']) == pytest.approx(
            task.score(first, 'd1', period))
    # d2's period-2 model learnt from the whole samples that reached the edge in time.
    learnt = int(float(rows[('d2', '1')]['upload_bytes']) // task.sample_bytes)
    assert learnt > 0
    assert 'model of d2 learnt from %d samples of period 1' % learnt in \
        open(work / 'edge.log').read()
    assert float(rows[('d2', '2')]['measured_accuracy']) != pytest.approx(
        task.score(task.learner('d2').student(
            float(rows[('d2', '2')]['planned_model_bytes'])), 'd2', 2))


def test_killed_edge_agent_fails_the_period_and_the_next_one_works(tmp_path):
    scenario = small_scenario(tmp_path, periods=3)

    def faults(run):
        def inject():
            time.sleep(run.clock.t0 + scenario.control.period_s * 1.3 - time.monotonic())
            run.kill_edge()
            time.sleep(run.clock.t0 + scenario.control.period_s * 1.9 - time.monotonic())
            run.restart_edge()
        threading.Thread(target=lambda: (time.sleep(2), inject()), daemon=True).start()
    run = PolicyRun(scenario, 'equal', str(tmp_path / 'out'), prefix=TEST_PREFIX,
                    on_ready=faults)
    began = time.monotonic()
    assert run.run() == 'completed'
    assert time.monotonic() - began < scenario.duration_s + 30, 'something hung'
    rows = {(r['device'], r['period']): r for r in rows_of(tmp_path / 'out')}
    for device in ('d1', 'd2'):
        assert rows[(device, '1')]['model_ok'] == 'True'
        assert rows[(device, '2')]['status'] != 'ok', rows[(device, '2')]
        assert rows[(device, '3')]['model_ok'] == 'True', rows[(device, '3')]
    assert not our_processes()


def test_trace_replay_holds_its_step_times():
    trace = traces.random_walk(20, 4, 0.1, 10, seed=4)
    with Emulation(EdgeStar(n=2, capacity='20mbit', prefix=TEST_PREFIX)) as emu:
        replayer = Replayer(trace, 0.1, 10.0, emu.linkshare.set_capacity,
                            time.monotonic() + 0.5)
        replayer.start()
        replayer.join(timeout=60)
    late = np.array(replayer.lateness_ms())
    median, p99 = float(np.median(late)), float(np.percentile(late, 99))
    print('replay lateness over %d steps: median %.2f ms, p99 %.2f ms'
          % (len(late), median, p99))
    assert len(late) == 100 and replayer.error is None
    # Every step applied, in order; the lateness bounds are wide: a loaded 2-core machine
    # made p99 75 ms once (the strict figures, median 4.4 / p99 6.2 ms on an idle one,
    # are in docs/scenarios.md with this command).
    applied = [a for _, _, a, _, _ in replayer.steps]
    assert applied == sorted(applied)
    assert median < 100 and p99 < 1000, (median, p99)      # wide


def sequential_scenario(tmp_path, periods):
    return load_scenario(scenario_copy(tmp_path, 'sequential.yaml', periods=periods))


def record_share_changes(run, calls):
    """Wrap run's link-share set_shares to record (monotonic time, fractions)."""
    link = run.emu.linkshare
    original = link.set_shares

    def recording(fractions):
        calls.append((time.monotonic(), fractions))
        return original(fractions)
    link.set_shares = recording


def test_sequential_period_uploads_then_sends_the_model(tmp_path):
    scenario = sequential_scenario(tmp_path, periods=1)
    calls = []
    run = PolicyRun(scenario, 'equal', str(tmp_path / 'out'), prefix=TEST_PREFIX,
                    on_ready=lambda r: record_share_changes(r, calls))
    assert run.run() == 'completed'
    # The period starts with every share on the upload, then (at the model phase's start,
    # after the upload and the edge's update) every share on the model.
    (t_up, up), (t_down, down) = calls[:2]
    assert all(f['down'] == 0 and f['up'] > 0 for f in up.values()), up
    assert all(f['up'] == 0 and f['down'] > 0 for f in down.values()), down
    (u0, u1), (m0, m1) = fluid_phases(run)
    # Never before the model phase, and on time within what a loaded 2-core machine
    # holds a timer to (a strict lateness figure belongs in a benchmark, not a test).
    assert m0 - 0.01 <= t_down - run.clock.t0 <= m0 + 1.0, (t_down - run.clock.t0, m0)
    assert m0 >= u1 + scenario.problem.update_s - 1e-9
    rows = rows_of(tmp_path / 'out')
    assert len(rows) == 2 and all(r['model_ok'] == 'True' for r in rows), rows


def fluid_phases(run):
    """The (upload, model) phase windows of run's first period, offsets in seconds."""
    return phases(run.scenario.problem, run.plans[1])


def test_stopping_a_sequential_run_cancels_its_pending_model_phase(tmp_path):
    # Ctrl-C (a real SIGINT to this process) in the upload phase: the share switch
    # planned for the model phase must not fire on a stopped (or the next) emulation.
    scenario = sequential_scenario(tmp_path, periods=1)
    calls = []

    def ready(run):
        record_share_changes(run, calls)
        threading.Thread(target=lambda: (time.sleep(2.0),
                                         os.kill(os.getpid(), signal.SIGINT)),
                         daemon=True).start()
    run = PolicyRun(scenario, 'equal', str(tmp_path / 'out'), prefix=TEST_PREFIX,
                    on_ready=ready)
    with pytest.raises(KeyboardInterrupt):
        run.run()
    stopped = time.monotonic()
    (_, _), (m0, _) = fluid_phases(run)
    time.sleep(max(0.0, run.clock.t0 + m0 + 0.5 - time.monotonic()))
    assert len(calls) == 1 and all(f['down'] == 0 for f in calls[0][1].values()), calls
    assert run.clock.t0 + m0 > stopped, 'the model phase began before the stop: test too slow'
    assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)
                and t.is_alive()]
    assert not our_processes()
    assert not cleanup.owned_interfaces(TEST_PREFIX)


def test_policy_switches_from_the_dashboard_and_the_api_plan_the_next_period(
        tmp_path, browser):
    # A person watches the run in the dashboard (headless Chromium, opened from the link
    # the run prints): its charts move, and its policy switch makes the next period the
    # new policy's; then a script switches back over the API with the token the run
    # writes to its folder.  The plans are the fluid backend's for the same switches
    # (one period loop for both backends).
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
    from tests.test_dashboard import colourful_fraction
    scenario = small_scenario(tmp_path, periods=3, period='8s')
    out = tmp_path / 'out'
    out.mkdir()
    token = secrets.token_hex(16)
    live = dashboard.Live()
    server = dashboard.Server(dashboard.Dashboard(str(out), live), token, port=0)
    seen, errors = {}, []

    def period():
        return live.run.state.current_period()

    def use_page():
        try:
            poll(lambda: live.run is not None and live.run.state is not None, 60, 'the run')
            browser.get(server.url + '#token=' + token)
            poll(lambda: period() >= 1, 30, 'period 1')
            wait = WebDriverWait(browser, 10)
            wait.until(lambda b: b.find_elements(
                By.CSS_SELECTOR, '#link path[data-series="upload goodput"]'))
            first = browser.find_element(By.CSS_SELECTOR, '#link .chart').get_attribute(
                'innerHTML')
            time.sleep(2.0)
            seen['changed'] = first != browser.find_element(
                By.CSS_SELECTOR, '#link .chart').get_attribute('innerHTML')
            png = browser.get_screenshot_as_png()
            seen['colour'] = colourful_fraction(png, browser.find_element(
                By.CSS_SELECTOR, '#link .chart').rect)
            Select(browser.find_element(By.ID, 'policy')).select_by_visible_text('optimal')
            browser.find_element(By.ID, 'switch').click()
            wait.until(lambda b: 'next period: optimal' in b.find_element(
                By.ID, 'switch-msg').text)
            seen['page_switch'] = period()
            wait.until(lambda b: 'next: optimal' in b.find_element(By.ID, 'state').text)
            poll(lambda: period() > seen['page_switch'], 20, 'the next period')
            seen['api_switch'] = period()
            seen['answer'] = requests.put(
                'http://%s:%d/v1/policy' % (addressing.CONTROLLER_IP,
                                            mininet_backend.CONTROLLER_PORT),
                json={'policy': 'equal'}, timeout=5, headers={
                    'Authorization': 'Bearer ' + (out / 'token').read_text().strip()})
        except Exception as exc:              # the test's thread: report, do not hang
            errors.append(exc)
    threading.Thread(target=use_page, daemon=True).start()
    try:
        statuses = experiment.run_scenario(scenario, ['equal'], str(out),
                                           prefix=TEST_PREFIX, live=live, token=token)
    finally:
        server.stop()
    assert statuses == {'equal': 'completed'} and not errors, (statuses, errors)
    assert seen['changed'] and seen['colour'] > 0.005, seen
    assert os.stat(out / 'token').st_mode & 0o777 == 0o600
    assert seen['answer'].status_code == 200, seen['answer'].text
    assert seen['answer'].json() == {'policy': 'optimal', 'next': 'equal'}
    first, second = seen['page_switch'], seen['api_switch']
    assert first < 3, 'the page switched in the last period: test too slow'

    def planner(k):
        return 'optimal' if first < k <= second else 'equal'
    rows = rows_of(out)
    assert [(int(r['period']), r['planned_by']) for r in rows] == [
        (k, planner(k)) for k in (1, 2, 3) for _ in range(2)], rows
    assert {r['policy'] for r in rows} == {'equal'}
    state = ControllerState(scenario.device_names, 'equal', scenario.problem.timing)
    records = []
    loop = ControlLoop(scenario, state, FluidTransport(scenario, scenario.device_names),
                       records.extend)
    for k in (1, 2, 3):
        state.set_next_policy(planner(k))
        loop.period(k)
    # A period starts from what arrived in the one before: compare the plans of the
    # periods both backends start from the same outcomes (period 1 always).
    def outcomes(table, k):
        return [r['outcome'] for r in table if int(r['period']) == k]
    same = {1} | {k for k in (2, 3) if outcomes(rows, k - 1) == outcomes(records, k - 1)}
    for emulated, ideal in zip(rows, records):
        if int(emulated['period']) not in same:
            continue
        for key in ('upload_share', 'download_share', 'planned_upload_bytes',
                    'planned_model_bytes'):
            assert float(emulated[key]) == pytest.approx(ideal[key], rel=1e-5), (key, emulated)
        assert emulated['model'] == ideal['model'] and emulated['planned_by'] == \
            ideal['planned_by']
    assert not our_processes()


def test_efficiency_is_never_above_one_when_classes_borrow(tmp_path):
    # tcp-fair runs on a work-conserving link: a class may borrow above its share, and
    # its efficiency is then measured against what it got (it read 1.11 before).
    scenario = small_scenario(tmp_path, periods=2, period='6s')
    run = PolicyRun(scenario, 'tcp-fair', str(tmp_path / 'out'), prefix=TEST_PREFIX)
    assert run.run() == 'completed'
    values = [float(r[k]) for r in rows_of(tmp_path / 'out') for k in
              ('efficiency_up', 'efficiency_down') if r[k]]
    assert values and all(0 < v <= 1.0 for v in values), values


def test_low_rate_uploads_end_cleanly_and_the_counters_agree(tmp_path):
    # 4 Mbit/s for three devices: a share of 0.67 Mbit/s blocks a send for longer than
    # the old 3 s socket timeout (uploads broke, the devices counted early and reported
    # a third of what the edge counted).  The device's count is the edge's; the wire
    # carried the in-time bytes and at most the bytes still in flight at the deadline.
    path = scenario_copy(tmp_path, periods=2, period='6s')
    text = open(path).read().replace('devices: 2', 'devices: 3').replace(
        'capacity: 50mbit', 'capacity: 4mbit')
    open(path, 'w').write(text)
    scenario = load_scenario(path)
    run = PolicyRun(scenario, 'equal', str(tmp_path / 'out'), prefix=TEST_PREFIX)
    assert run.run() == 'completed'
    for row in rows_of(tmp_path / 'out'):
        what = '%s period %s' % (row['device'], row['period'])
        assert row['status'] == 'ok', (what, row['status'])
        edge, late = float(row['upload_bytes']), float(row['late_upload_bytes'])
        carried = float(row['carried_upload_bytes'])
        wire = float(row['class_up_bytes']) * GOODPUT_PER_WIRE
        assert float(row['reported_upload_bytes']) == edge, what
        assert edge > 0.5 * float(row['planned_upload_bytes']), (what, edge)
        in_flight = window_bytes(scenario, float(row['upload_share']) *
                                 float(row['capacity_mbit'])) if carried else 0
        assert edge + carried <= wire * 1.03 + in_flight, (what, edge, carried, wire)
        assert wire <= (edge + late + carried) * 1.03, (what, edge, late, carried, wire)


def logged_at(folder, name, text):
    """The time (epoch seconds) of the first line of the agent's log name in folder
    that contains text, or None."""
    for line in results.read_log(str(folder), name).splitlines():
        if text in line:
            stamp = datetime.datetime.strptime(line[:23], '%Y-%m-%d %H:%M:%S,%f')
            return stamp.timestamp()
    return None


def test_an_upload_cut_at_its_deadline_does_not_drain_into_the_next_period(tmp_path):
    # Half a second before period 1's deadline the link falls to 0.1 Mbit/s and stays
    # there: what each upload's socket still holds at the deadline (a piece unsent, a
    # window in flight) would take tens of seconds at its share, in its class through
    # period 2.  It can only arrive late, so the device resets the connection at the
    # deadline: the edge sees period 1's stream end before the device reports the
    # period (a second after the deadline).
    (tmp_path / 'fall.txt').write_text('0 20\n5.5 0.1\n')
    path = scenario_copy(tmp_path, periods=2, period='6s')
    text = open(path).read().replace('capacity: 50mbit',
                                     'capacity: {trace: fall.txt, loop: false}')
    open(path, 'w').write(text)
    scenario = load_scenario(path)
    run = PolicyRun(scenario, 'equal', str(tmp_path / 'out'), prefix=TEST_PREFIX)
    assert run.run() == 'completed'
    work = tmp_path / 'out' / 'work' / 'equal'
    for device in scenario.device_names:
        reported = logged_at(work, '%s.log' % device, 'period 1: sent')
        ended = logged_at(work, 'edge.log', 'data %s period 1: stream ended' % device)
        assert reported is not None and ended is not None, (device, reported, ended)
        assert ended <= reported, (device, ended - reported)


def one_device_scenario(tmp_path, trace, period, periods):
    """One device over trace ('time rate' lines) with the int8 menu, planned from the
    capacity at each period's start."""
    (tmp_path / 'trace.txt').write_text(trace)
    path = tmp_path / 'scenario.yaml'
    path.write_text(
        'name: test\ndevices: 1\ncapacity: {trace: trace.txt, loop: false}\nstep: 100ms\n'
        'forecast: last\nperiod: %s\nperiods: %d\n'
        'data: {sample_size: 100KB, generated: 300}\n'
        'model: {menu: yolov8, precision: int8}\n' % (period, periods))
    return load_scenario(str(path))


@pytest.mark.parametrize('trace, period, first', [
    ('0 0.2\n0.1 30\n', 6, 'infeasible'),     # planned from a trough: no checkpoint
    ('0 200\n0.1 15\n', 10, 'missed'),        # from a peak: one that cannot arrive
], ids=['trough', 'peak'])
def test_the_edge_distils_a_replacement_within_the_period_and_it_arrives(
        tmp_path, trace, period, first):
    # The plan made from the first 100 ms is far off; the closed loop re-plans in its
    # first control steps, the edge distils the new checkpoint (revision 1) and the
    # device fetches it in the same period, under real TCP.
    scenario = one_device_scenario(tmp_path, trace, '%ds' % period, 1)
    records = []
    ControlLoop(scenario, ControllerState(scenario.device_names, 'optimal', 'overlap'),
                FluidTransport(scenario, scenario.device_names), records.extend).run()
    assert [r['outcome'] for r in records] == [first]
    run = PolicyRun(scenario, 'adaptive', str(tmp_path / 'out'), prefix=TEST_PREFIX)
    assert run.run() == 'completed'
    [row] = rows_of(tmp_path / 'out')
    assert row['outcome'] == 'delivered' and row['model_ok'] == 'True', row
    assert int(row['switches']) >= 1
    assert float(row['planned_model_bytes']) * 8 <= 30e6 * period
    log = open(tmp_path / 'out' / 'work' / 'adaptive' / 'd1.log').read()
    assert 'within the period (revision 1' in log or 'replaced (revision 1' in log, \
        log[-2000:]


def test_a_larger_checkpoint_follows_one_that_arrived(tmp_path):
    # Planned at 20 Mbit/s, the link at 200 from 1 s: the planned checkpoint arrives
    # within seconds, and the period, sure to be far above its plan, has the edge
    # distil a larger one (revision 1), which the device fetches after deploying the
    # first and deploys in turn, under real TCP.
    scenario = one_device_scenario(tmp_path, '0 20\n1 200\n', '10s', 1)
    run = PolicyRun(scenario, 'adaptive', str(tmp_path / 'out'), prefix=TEST_PREFIX)
    assert run.run() == 'completed'
    [row] = rows_of(tmp_path / 'out')
    log = open(tmp_path / 'out' / 'work' / 'adaptive' / 'd1.log').read()
    assert 'after this one arrived (revision 1' in log, log[-2000:]
    assert row['outcome'] == 'delivered' and row['model_ok'] == 'True', row
    assert row['status'] == 'ok', row
    assert float(row['model_bytes']) > float(row['planned_model_bytes']), row


def test_a_checkpoint_cut_at_the_deadline_resumes_without_resending(tmp_path):
    # 20 Mbit/s for 2 s, then 2 until period 2 starts at 20 again: period 1's checkpoint
    # (yolov8s int8, 11.2 MB) misses its deadline part-way; period 2 plans the same
    # model at the same capacity and resumes it (HTTP Range) from what the device holds.
    scenario = one_device_scenario(tmp_path, '0 20\n2 2\n8 20\n', '8s', 2)
    run = PolicyRun(scenario, 'optimal', str(tmp_path / 'out'), prefix=TEST_PREFIX)
    assert run.run() == 'completed'
    first, second = rows_of(tmp_path / 'out')
    assert (first['outcome'], first['model']) == ('missed', 'yolov8s'), first
    assert (second['outcome'], second['resumed_from'], second['model_ok']) == \
        ('resumed', '1', 'True'), second
    got_before, got_now = float(first['model_bytes']), float(second['model_bytes'])
    assert got_before > 0
    # The device got each byte once: what it held plus what came now is the checkpoint
    # the edge distilled in period 1 (same size and sha256), and the wire carried only
    # what came now.
    with open(tmp_path / 'out' / 'work' / 'optimal' / 'artifacts.csv') as src:
        artifacts = {r['path']: r for r in csv.DictReader(src)}
    deployed, sent = artifacts['d1/model.npz'], artifacts['edge/checkpoints/d1-1.npz']
    assert deployed['sha256'] == sent['sha256']
    assert got_before + got_now == int(deployed['size_bytes'])
    assert_within(got_now, float(second['class_down_bytes']) * GOODPUT_PER_WIRE, 0.05,
                  'resumed bytes vs the download class counter')
    assert not list((tmp_path / 'out').rglob('*.part'))


def test_capacity_halving_mid_period_changes_the_split_and_the_checkpoint_arrives(
        tmp_path, monkeypatch):
    # 20 Mbit/s for 3 s, then 10: the one-shot split misses the checkpoint even on ideal
    # transfers; adaptive re-splits within two control steps and it arrives.
    scenario = one_device_scenario(tmp_path, '0 20\n3 10\n', '10s', 1)
    records = []
    ControlLoop(scenario, ControllerState(scenario.device_names, 'optimal', 'overlap'),
                FluidTransport(scenario, scenario.device_names), records.extend).run()
    assert [r['outcome'] for r in records] == ['missed']
    resplits = []            # the period's time of each re-split (the loop's own clock)
    control = ControlLoop.control

    def recording(loop, remaining, capacity_mbit, remaining_s, *args, **kwargs):
        changed = control(loop, remaining, capacity_mbit, remaining_s, *args, **kwargs)
        if changed:
            resplits.append(scenario.control.period_s - remaining_s)
        return changed
    monkeypatch.setattr(ControlLoop, 'control', recording)
    run = PolicyRun(scenario, 'adaptive', str(tmp_path / 'out'), prefix=TEST_PREFIX)
    assert run.run() == 'completed'
    # The control steps come every control_step of the period (the capacity is sampled
    # at each): one of the first two after the halving re-splits.
    step = scenario.control.control_step_s
    assert any(3.0 < t <= 3.0 + 2 * step + scenario.link.step_s for t in resplits), resplits
    [row] = rows_of(tmp_path / 'out')
    assert row['model_ok'] == 'True' and row['outcome'] == 'delivered', row
