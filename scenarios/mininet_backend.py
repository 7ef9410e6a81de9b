"""The Mininet backend: one policy's run of a scenario on a live emulation.

For each policy, on a fresh emulation (cleaned up between): start the controller
service (root namespace, management address only), the edge agent and one agent per
device; replay the capacity trace from the same start; then run the controller's period
loop (``controller/loop.py``) with this run as its ``Transport``: the live link (shares
through the link-share layer, class counters sampled every replay step), the agents
(checkpoint orders at the edge, the devices' reports, the edge's counts of what arrived
in time) and the real clock (a monotonic clock from the run's start).

Timing (``timing`` in the scenario): ``overlap`` runs upload and model download side by
side for the whole period on split shares; the checkpoint sent in period k is distilled
from what arrived up to its start.  ``sequential`` gives the upload phase the upload
share's part of the window at full capacity, then the edge's update time, then the
model phase; the checkpoint is distilled from this period's data.  Deadlines are the
phase ends: late data does not count, a late checkpoint leaves the old model.
"""

import json
import logging
import os
import secrets
import sys
import threading
import time

import requests

from edgecollab.topologies import cleanup
from edgecollab.controller import policies
from edgecollab.topologies.linkshare import MIN_CAPACITY_MBIT
from edgecollab.controller.loop import RECORD_FIELDS, ControlLoop, Outcome, Transport
from edgecollab.controller.service import ControllerState, create_app
from edgecollab.topologies.emulation import Emulation
from edgecollab.errors import EdgecollabError
from edgecollab.nodes import checkpoint, device, workload
from edgecollab.ready import poll, wait
from edgecollab.scenarios.replay import Replayer
from edgecollab.scenarios import results
from edgecollab.scenarios.results import REPLAY_COLUMNS, TIMESERIES_FIELDS, CsvLog
from edgecollab.topologies import addressing
from edgecollab.topologies.star import EdgeStar
from edgecollab.wire import GOODPUT_PER_WIRE

log = logging.getLogger(__name__)
CONTROLLER_PORT = 8000
EDGE_PORT = 8080
# How long after a period's end its reports are waited for: the latest a device sends
# one, and time for it to arrive.
REPORT_GRACE_S = device.REPORT_LATEST_S + 2.0
FINISHER_MARGIN_S = 5.0    # beyond the grace: the scoring itself (edge counts, a few requests)
START_DELAY_S = 1.0
AGENT_START_S = 20.0             # wait for the device agents: this long
AGENT_START_PER_DEVICE_S = 0.25  # plus this long a device
# How long a period's start waits for the last period's download reports (a device
# sends one the moment its download ends, by the deadline).
CHECKPOINT_REPORT_S = 1.0
TOKEN_FILE = 'token'          # the run's API token in the results folder (mode 0600)


def scenario_topology(s, prefix='ec', mode=None):
    """The EdgeStar of scenario s at its capacity at the start (mode: the link mode a
    policy needs, the scenario's when None; per-device channels have no capacity to lend,
    so they are always strict: there tcp-fair holds its max-min split)."""
    mode = s.mode if s.channels else mode or s.mode
    return EdgeStar(n=s.devices, capacity=max(float(s.capacity.rate_at(0.0)),
                                              MIN_CAPACITY_MBIT),
                    medium=s.medium, mode=mode, ack=s.ack,
                    paths=dict(zip(s.device_names, s.paths)), delay_engine=s.delay_engine,
                    seed=s.seed, queue=s.queue_ms / 1000, prefix=prefix)


class PolicyRun(Transport):
    """One policy's emulated run of a scenario: the live Transport of the period loop."""
    emulated = True              # real TCP: one at a time, read against the fluid one

    def __init__(self, scenario, policy, folder, prefix='ec', progress=None, on_ready=None,
                 interactive=False, edge_args=(), keep_artifacts=False, repeat=1,
                 token=None):
        self.scenario, self.policy, self.folder = scenario, policy, folder
        self.prefix, self.progress, self.on_ready = prefix, progress, on_ready
        self.interactive = interactive
        self.keep_artifacts = keep_artifacts   # keep the checkpoints and data files
        self.edge_args = list(edge_args)   # extra edge-agent arguments (fault injection)
        self.token = token or secrets.token_hex(16)   # the experiment's, or its own
        self.repeat = repeat
        self.work = os.path.join(folder, 'work', policy if repeat == 1 else
                                 '%s-repeat-%d' % (policy, repeat))
        os.makedirs(self.work, exist_ok=True)
        self.periods_log = CsvLog(os.path.join(folder, 'periods.csv'), RECORD_FIELDS)
        self.series_log = CsvLog(os.path.join(folder, 'timeseries.csv'), TIMESERIES_FIELDS)
        self.replay_log = CsvLog(os.path.join(folder, 'replay.csv'), tuple(REPLAY_COLUMNS))
        self.emu = None
        self.server = None
        self.state = None
        self.loop = None
        self.replayer = None
        self.edge_url = None
        self.edge_log = None
        self.edge_proc = None
        self.t0 = None               # the monotonic time of the run's start (period 1)
        self.epoch0 = None           # the same moment as an epoch time
        self.sampler_stop = threading.Event()
        self.stopping = threading.Event()   # set to end the periods early (the CLI)
        self.timers = []             # pending share switches and checkpoint orders
        self.log_files = []
        self.finisher = None         # the thread scoring the latest period
        self.counters_start = None   # the link's class counters at the period's start
        self.trained_bytes = {}      # device -> the data its period's checkpoint learns
        self.down_offset = {}        # device -> download bytes of a replaced checkpoint
        self.window = None           # (Period, counters at its start) under way
        self.busy_lock = threading.Lock()
        self.busy = {}               # (device, direction) -> [sum of goodput, sum of share]
        self.last_check = 0.0
        self.checked = None          # the counters at the last control step
        self.broken = None           # why the network broke mid-run (EdgecollabError)

    @property
    def plans(self):
        """{period: Plan} of the periods planned so far."""
        return self.loop.plans if self.loop else {}

    # set-up
    def topology(self):
        """The EdgeStar of the scenario, in the link mode the policy needs."""
        return scenario_topology(self.scenario, self.prefix,
                                 policies.get(self.policy).link_mode)

    def run(self):
        """Run every period; return 'completed' (raises on failure, cleaning up)."""
        os.makedirs(self.work, exist_ok=True)
        self.emu = Emulation(self.topology())
        try:
            self.emu.start()
            self._start_services()
            if self.on_ready:
                self.on_ready(self)
            if self.interactive:
                return self._with_cli()
            self._periods()
            return 'completed'
        finally:
            self._stop()

    def _with_cli(self):
        # The periods run behind the Mininet CLI; leaving the CLI ends the run.
        from mininet.cli import CLI
        from mininet.log import setLogLevel
        setLogLevel('output')      # the CLI prints what the hosts answer at this level
        def periods():
            try:
                self._periods()
            except _Stopped:
                pass
        worker = threading.Thread(target=periods, name='periods', daemon=True)
        worker.start()
        print('*** %s running %d periods of %g s; hosts: edge %s; controller API '
              'http://%s:%d/v1/status; exit the CLI to stop' % (
                  self.policy, self.scenario.periods, self.scenario.period_s,
                  ' '.join(self.emu.devices), addressing.CONTROLLER_IP, CONTROLLER_PORT))
        CLI(self.emu.net)
        if not worker.is_alive():
            return 'completed'
        self.stopping.set()
        worker.join(timeout=REPORT_GRACE_S + 5)
        return 'stopped from the CLI'

    def _start_services(self):
        s = self.scenario
        self.state = ControllerState(self.emu.devices, self.policy, s.problem.timing)
        self._write_token()
        from werkzeug.serving import make_server
        logging.getLogger('werkzeug').setLevel(logging.WARNING)   # no line a request
        self.server = make_server(addressing.CONTROLLER_IP, CONTROLLER_PORT,
                                  create_app(self.state, self.token), threaded=True)
        threading.Thread(target=self.server.serve_forever, name='controller-api',
                         daemon=True).start()
        controller_url = 'http://%s:%d' % (addressing.CONTROLLER_IP, CONTROLLER_PORT)
        self.edge_url = 'http://%s:%d' % (addressing.EDGE_MGMT_IP, EDGE_PORT)
        self.edge_log = self._log_file('edge.log')
        self._start_edge()
        self._install_factory_models()
        for index, name in enumerate(self.emu.devices):
            out = self._log_file('%s.log' % name)
            self.emu.popen(name, [
                sys.executable, '-m', 'edgecollab.nodes.device', '--name', name,
                '--controller', controller_url,
                '--edge', 'http://%s:%d' % (addressing.EDGE_DATA_IP, EDGE_PORT),
                '--token', self.token, '--dir', os.path.join(self.work, name),
                '--generated', s.generated[index], '--period', s.period_s,
                '--sample-bytes', s.problem.sample_bits / 8,
                '--workload', json.dumps(s.workload)],
                stdout=out, stderr=out, what='device agent %s' % name)
        # The clock starts when every agent is up (it has asked for its plan): dozens of
        # agents starting on two cores take seconds, which would eat the first period.
        wait_s = AGENT_START_S + AGENT_START_PER_DEVICE_S * len(self.emu.devices)
        if not wait(lambda: not self.state.unseen(), wait_s):
            raise EdgecollabError('device agents %s did not start within %.0f s (their logs: %s)'
                                  % (', '.join(self.state.unseen()[:5]), wait_s, self.work))
        log.debug('device agents up')

    def _install_factory_models(self):
        """With a workload that learns: the model each device ships with, in its folder
        (trained here once, so that dozens of agents do not each train one at start)."""
        work = workload.from_spec(self.scenario.workload)
        if not work.measures:
            return
        for name in self.emu.devices:
            os.makedirs(os.path.join(self.work, name), exist_ok=True)
            checkpoint.write(os.path.join(self.work, name, device.FACTORY_MODEL), 0,
                             {'model': 'factory', 'device': name},
                             weights=work.initial(name))

    def _write_token(self):
        """The run's API token in the results folder, readable by its owner only, so a
        user can script the API while the run goes on."""
        path = os.path.join(self.folder, TOKEN_FILE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as dst:
            os.fchmod(dst.fileno(), 0o600)
            dst.write(self.token + '\n')

    def _log_file(self, name):
        """An agent's log file in the work folder, closed when the run stops."""
        handle = open(os.path.join(self.work, name), 'ab')
        self.log_files.append(handle)
        return handle

    def _start_edge(self):
        s = self.scenario
        self.edge_proc = self.emu.popen(addressing.EDGE, [
            sys.executable, '-m', 'edgecollab.nodes.edge', '--port', EDGE_PORT,
            '--dir', os.path.join(self.work, 'edge'), '--token', self.token,
            '--devices', ','.join(self.emu.devices),
            '--compute-per-sample', s.compute_per_sample_s, '--seed', s.seed,
            '--workload', json.dumps(s.workload)] + self.edge_args,
            stdout=self.edge_log, stderr=self.edge_log, what='edge agent')
        poll(lambda: _healthy(self.edge_url + '/health'), 20, 'edge agent')

    def restart_edge(self):
        """Start the edge agent again (after a fault)."""
        self._start_edge()

    def kill_device(self, name):
        """Kill device name's agent (fault injection)."""
        for proc in self.emu.procs:
            if proc.what == 'device agent %s' % name:
                cleanup.kill_group(proc.pid, proc.start, proc.what)
                proc.popen.wait(timeout=5)
                return
        raise EdgecollabError('no device agent %r' % name)

    def kill_edge(self):
        """Kill the edge agent (fault injection)."""
        proc = self.edge_proc
        cleanup.kill_group(proc.pid, cleanup.process_start_time(proc.pid), 'edge agent')
        proc.wait(timeout=5)

    # the periods
    def _periods(self):
        s = self.scenario
        self.t0 = time.monotonic() + START_DELAY_S
        self.epoch0 = time.time() + START_DELAY_S
        self.replayer = Replayer(s.capacity, s.step_s, s.duration_s,
                                 self.emu.linkshare.set_capacity, self.t0,
                                 dict(zip(s.device_names, s.channels)))
        self.replayer.start()
        self.at(0.0, self.emu.restart_path_clocks)     # delay traces start with period 1
        self.loop = ControlLoop(s, self.state, self, lambda rows: self.periods_log.write(
            dict(r, repeat=self.repeat) for r in rows))
        threading.Thread(target=self._sample, name='sampler', daemon=True).start()
        self.loop.run()
        if self.finisher is not None:
            self.finisher.join()
        self.state.finish()
        self.replayer.stop()
        self.replay_log.write({'policy': self.policy, 'step': k, 'planned_s': p,
                               'applied_s': a, 'late_ms': abs(a - p) * 1000,
                               'capacity_mbit': c, 'clipped': clipped}
                              for k, p, a, c, clipped in self.replayer.steps)

    # the Transport of the period loop
    @property
    def devices(self):
        return self.emu.devices

    def wait_until(self, offset_s):
        self._sleep_until(offset_s)
        if self.replayer.error:
            raise EdgecollabError('trace replay failed: %s' % self.replayer.error)
        self.counters_start = self.emu.linkshare.counters()

    def wall_time(self, offset_s):
        return self.epoch0 + offset_s

    def set_shares(self, fractions):
        self.emu.linkshare.set_shares(fractions)

    def fractions(self):
        return self.emu.linkshare.fractions

    def at(self, offset_s, action):
        self._later(self.t0 + offset_s - time.monotonic(), action)

    def start(self, period):
        """Order the period's checkpoints at the edge; sample its classes from now."""
        s = self.scenario
        k, start = period.number, period.start_s
        sequential = s.problem.timing == 'sequential'
        (_, u1), (m0, _) = period.phases
        # The data a checkpoint is trained on: sequential, this period's upload (it ends
        # before the model phase); overlap, what arrived in time in the previous period.
        if sequential:
            trained_bytes = {name: a.upload_bytes
                             for name, a in zip(self.devices, period.plan.devices)}
        else:
            trained_bytes = {name: c['bytes'] for name, c in self._edge_counts(k - 1).items()}
        self.trained_bytes = trained_bytes
        self.down_offset = {}
        # A device resuming the last checkpoint needs no new one.
        orders = {name: self._checkpoint_order(k, name, a)
                  for name, a in zip(self.devices, period.plan.devices)
                  if a.model_bytes > 0 and name not in period.resumed}
        self._order(k, self.wall_time(start + u1), orders, delay=m0 if sequential else 0.0)
        self.window = (period, self.counters_start)
        log.debug('%s period %d: planned, shares set and checkpoints ordered %.1f ms after '
                  'its start', self.policy, k,
                  (time.monotonic() - self.t0 - start) * 1000)

    def _checkpoint_order(self, k, name, a):
        """The edge's order of device name's checkpoint of period k (Allocation a)."""
        sequential = self.scenario.problem.timing == 'sequential'
        return {'size_bytes': a.model_bytes, 'model': a.model,
                'trained_on': self.trained_bytes.get(name, 0) * 8 /
                self.scenario.problem.sample_bits,
                'data_period': k if sequential else k - 1}

    replaces_checkpoints = True      # the edge distils a replacement on demand

    def replace(self, period, device, size_bytes):
        """Revise device's plan (its download fetches the new revision) and order the
        checkpoint at the edge; the bytes its class carried of the old one no longer
        count towards what is left."""
        k = period.number
        a = period.plan.devices[self.devices.index(device)]
        revision = self.state.revise_plan(k, device, {'model_bytes': size_bytes,
                                                      'model': a.model})
        if revision is None:
            return
        (_, u1), _ = period.phases
        self._order(k, self.wall_time(period.start_s + u1),
                    {device: self._checkpoint_order(k, device, a)}, delay=0.0,
                    revision=revision)
        if self.window is not None:
            got = self._class_goodput(device, self.window[1],
                                      self.emu.linkshare.counters())[1]
            self.down_offset[device] = got['down']

    def checkpoints(self, period):
        """The devices' download reports of period (sent when each download ended)."""
        fetching = [n for n in self.devices if period.model_left[n] > 0]
        reports = self.state.model_reports_of(period.number, fetching, CHECKPOINT_REPORT_S)
        missing = sorted(set(fetching) - set(reports))
        if missing:
            log.warning('%s period %d: no download report from %s: planning as if their '
                        'checkpoints did not arrive', self.policy, period.number,
                        ', '.join(missing))
        return {n: (float(r.get('model_bytes', 0)), bool(r.get('model_ok')))
                for n, r in reports.items()}

    def finish(self, period, done):
        """Wait out the period; score it in the background (the devices' reports arrive
        just after the deadline) while the next period starts on time."""
        self._sleep_until(period.start_s + self.scenario.period_s)
        self.window = None
        counters_after = self.emu.linkshare.counters()
        efficiency, per_class = self._efficiency()
        self.finisher = threading.Thread(
            target=self._finish, name='score-%d' % period.number,
            args=(period, self.counters_start, counters_after, per_class, self.finisher,
                  done))
        self.finisher.start()
        return efficiency

    def _sleep_until(self, offset_s):
        delay = self.t0 + offset_s - time.monotonic()
        if self.stopping.wait(max(0.0, delay)):
            raise self.broken or _Stopped()

    def _order(self, k, upload_deadline, orders, delay, revision=0):
        def send():
            try:
                r = requests.post(self.edge_url + '/v1/periods', json={
                    'period': k, 'upload_deadline': upload_deadline, 'checkpoints': orders,
                    'revision': revision},
                    headers={'Authorization': 'Bearer ' + self.token}, timeout=5)
                r.raise_for_status()
            except requests.RequestException as exc:
                self.state.note('%s period %d: checkpoint order failed: %s' % (
                    self.policy, k, type(exc).__name__))
                log.warning('%s period %d: the edge agent did not take the order: %s',
                            self.policy, k, exc)
        self._later(delay, send)

    def _later(self, delay_s, action):
        """Run action after delay_s on a timer that stopping the run cancels (now when
        delay_s <= 0)."""
        if delay_s <= 0:
            action()
            return
        timer = threading.Timer(delay_s, lambda: None if self.stopping.is_set() else action())
        timer.daemon = True
        self.timers = [t for t in self.timers if t.is_alive()] + [timer]
        timer.start()

    def _edge_counts(self, period):
        """{device: the edge's counts of its data for period}, in one request: {'bytes':
        in time, 'late_bytes': after the deadline, 'carried_bytes': earlier periods' late
        bytes that arrived in this period}; zeros where the edge does not answer."""
        zero = {'bytes': 0, 'late_bytes': 0, 'carried_bytes': 0}
        counts = {}
        if period >= 1:
            try:
                r = requests.get('%s/v1/data/%d' % (self.edge_url, period), timeout=3)
                r.raise_for_status()
                counts = r.json()
            except (requests.RequestException, ValueError):
                pass
        return {name: dict(zero, **counts.get(name, {})) for name in self.emu.devices}

    def _class_goodput(self, name, before, after):
        """Bytes of TCP payload each class of device name carried (ACK child excluded)."""
        wire = {d: (after[(name, d)].bytes - after[(name, d)].ack_bytes) -
                (before[(name, d)].bytes - before[(name, d)].ack_bytes) for d in ('up', 'down')}
        return wire, {d: w * GOODPUT_PER_WIRE for d, w in wire.items()}

    def _efficiency(self):
        """({direction: goodput / share}, {(device, direction): goodput / share}) of the
        period, over the sampling steps where a class still had bytes to deliver
        (directions without such steps left out)."""
        with self.busy_lock:
            busy, self.busy = self.busy, {}
        per_class = {key: got / share for key, (got, share) in busy.items() if share > 0}
        efficiency = {}
        for direction in ('up', 'down'):
            sums = [v for (_, d), v in busy.items() if d == direction]
            share = sum(v[1] for v in sums)
            if share > 0:
                efficiency[direction] = sum(v[0] for v in sums) / share
        return efficiency, per_class

    def _finish(self, period, before, after, per_class, previous_finisher, done):
        if previous_finisher is not None:
            previous_finisher.join()
        s, k = self.scenario, period.number
        wait(lambda: len(self.state.reports_of(k)) == s.devices, REPORT_GRACE_S)
        reports = self.state.reports_of(k)
        this_period = self._edge_counts(k)
        outcomes = {}
        for name, a in zip(self.devices, period.plan.devices):
            report = reports.get(name) or {}
            counts = this_period[name]
            wire = self._class_goodput(name, before, after)[0]
            status = 'ok' if report else 'no report'
            problems = [report.get('upload_error')] + (
                [report.get('model_error')] if a.model_bytes > 0 else [])
            if any(problems):
                status = '; '.join(p for p in problems if p)
            outcomes[name] = Outcome(counts['bytes'], float(report.get('model_bytes', 0)),
                                     bool(report.get('model_ok')), {
                'efficiency_up': per_class.get((name, 'up')),
                'efficiency_down': per_class.get((name, 'down')), 'status': status,
                'reported_upload_bytes': report.get('upload_bytes'),
                'retransmitted_upload_bytes': report.get('upload_retransmitted_bytes'),
                'class_up_bytes': wire['up'], 'class_down_bytes': wire['down'],
                'late_upload_bytes': counts['late_bytes'],
                'measured_accuracy': report.get('measured_accuracy'),
                # Earlier periods' late bytes that this period's class carried.
                'carried_upload_bytes': counts['carried_bytes']})
        done(outcomes)
        if self.progress:
            self.progress(k)

    def _sample(self):
        s = self.scenario
        link = self.emu.linkshare
        last, last_t = None, None
        while not self.sampler_stop.wait(s.step_s):
            try:
                self.emu.check_vital()
            except EdgecollabError as exc:
                # The network is broken (its delay line died): the run stops with it.
                self.broken = exc
                self.stopping.set()
                return
            try:
                now = time.monotonic()
                counters = link.counters()
            except EdgecollabError:
                return
            if last is not None:
                dt = now - last_t
                goodput = {key: (c.bytes - c.ack_bytes - last[key].bytes + last[key].ack_bytes)
                           * 8 / dt / 1e6 * GOODPUT_PER_WIRE for key, c in counters.items()}
                cap = link.capacity_mbit
                self.state.measured(cap, goodput)
                self.series_log.write({
                    'policy': self.policy, 'time_s': now - self.t0, 'capacity_mbit': cap,
                    'device': name, 'direction': d, 'share_mbit': link.share_mbit(name, d),
                    'channel_mbit': link.channel_mbit(name),
                    'goodput_mbit': goodput[(name, d)], 'repeat': self.repeat}
                    for (name, d) in counters)
                window = self.window
                if window is not None:
                    remaining = self._remaining(window, counters)
                    self._account(remaining, goodput)
                    if now - self.last_check >= s.control_step_s * 0.999:
                        carried = (sum(c.bytes for c in counters.values()) - sum(
                            c.bytes for c in self.checked.values())) * 8 / 1e6 / \
                            (now - self.last_check) if self.checked else None
                        self.last_check, self.checked = now, counters
                        period = window[0]
                        self.loop.control(remaining, cap, self.t0 + period.start_s +
                                          s.period_s - now, carried, link.rates)
            last, last_t = counters, now

    def _remaining(self, window, counters):
        """{(device, direction): bytes still to move} of the period under way: the
        device's data and its checkpoint (the part not yet sent, when resumed)."""
        period, before = window
        ended = self.state.model_reports_of(period.number, self.devices, 0.0)
        remaining = {}
        for name in self.devices:
            got = self._class_goodput(name, before, counters)[1]
            # Data within 2% of its volume counts as delivered (HTTP framing, the
            # goodput estimate).  A checkpoint is all or nothing: it keeps a share for
            # at least that 2% until the device reports its download ended.
            left = period.upload_limit[name] - got['up']
            remaining[(name, 'up')] = left if left > 0.02 * period.upload_limit[name] else 0.0
            need = period.model_left[name]
            down = got['down'] - self.down_offset.get(name, 0.0)    # of this checkpoint
            remaining[(name, 'down')] = 0.0 if need <= 0 or name in ended else \
                max(need - down, 0.02 * need)
        return remaining

    def _account(self, remaining, goodput):
        # Efficiency = goodput / the rate the link gave the class (its share, or the wire
        # rate it reached when it borrowed above it on a work-conserving link) over the
        # steps where a class still had bytes to deliver, whatever re-splits happened.
        link = self.emu.linkshare
        with self.busy_lock:
            for (name, d), left in remaining.items():
                share = link.share_mbit(name, d)
                if left > 0 and share > 0:
                    sums = self.busy.setdefault((name, d), [0.0, 0.0])
                    sums[0] += goodput[(name, d)]
                    sums[1] += max(share, goodput[(name, d)] / GOODPUT_PER_WIRE)

    def _stop(self):
        self.stopping.set()
        for timer in self.timers:
            timer.cancel()
        self.sampler_stop.set()
        if self.finisher is not None:
            # The last period's scoring reads the network: it ends before the network
            # does (it waits for the devices' reports at most REPORT_GRACE_S).
            self.finisher.join(REPORT_GRACE_S + FINISHER_MARGIN_S)
        if self.replayer:
            self.replayer.stop()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.emu is not None:
            self.emu.stop()
        for log_file in (self.periods_log, self.series_log, self.replay_log):
            log_file.close()
        for handle in self.log_files:
            handle.close()
        if not self.keep_artifacts:
            freed = results.prune_artifacts(self.work)
            log.debug('%s: %.1f MB of checkpoints and data verified and deleted (listed '
                      'in %s)', self.policy, freed / 1e6, results.ARTIFACTS_FILE)


class _Stopped(Exception):
    """The periods were ended early (the user left the CLI)."""


def _healthy(url):
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False
