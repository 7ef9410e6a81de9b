"""The runner: the order of events of a scenario, for each policy, on Mininet or fluid.

For each policy, on a fresh emulation (cleaned up between): start the controller
service (root namespace, management address only), the edge agent and one agent per
device; replay the capacity trace from the same start; then, period by period on a
monotonic clock:

1. plan with the policy at the capacity seen now (``planner.plan``), apply the shares
   through the link-share layer, order the checkpoints at the edge and publish the plans;
2. sample the class counters every replay step (achieved goodput per class);
3. at the period end read what arrived in time (edge counts), collect the devices'
   reports (what they sent, whether the checkpoint arrived and verified), score the
   period and append its rows to periods.csv at once.

Timing (``timing`` in the scenario): ``overlap`` runs upload and model download side by
side for the whole period on split shares; the checkpoint sent in period k is distilled
from what arrived up to its start.  ``sequential`` gives the upload phase the upload
share's part of the window at full capacity, then the edge's update time, then the
model phase; the checkpoint is distilled from this period's data.  Deadlines are the
phase ends: late data does not count, a late checkpoint leaves the old model.
"""

import logging
import os
import secrets
import sys
import threading
import time

import requests

from edgecollab import cleanup
from edgecollab.controller import correction, fluid, planner
from edgecollab.controller.linkshare import GOODPUT_PER_WIRE
from edgecollab.controller.service import ControllerState, create_app
from edgecollab.emulation import Emulation
from edgecollab.errors import EdgecollabError
from edgecollab.nodes.ready import poll, wait
from edgecollab.scenarios.replay import Replayer
from edgecollab.scenarios.results import TIMESERIES_FIELDS, CsvLog
from edgecollab.topologies import addressing
from edgecollab.topologies.star import EdgeStar

log = logging.getLogger(__name__)
CONTROLLER_PORT = 8000
EDGE_PORT = 8080
REPORT_GRACE_S = 6.0
START_DELAY_S = 1.0
AGENT_START_S = 20.0             # wait for the device agents: this long
AGENT_START_PER_DEVICE_S = 0.25  # plus this long a device
CHECK_S = 1.0                 # how often the closed loop checks the period's progress
CORRECTING = ('adaptive',)    # policies the controller corrects within a period


class PolicyRun:
    """One policy's emulated run of a scenario."""

    def __init__(self, scenario, policy, folder, prefix='ec', progress=None, on_ready=None,
                 interactive=False, edge_args=()):
        self.scenario, self.policy, self.folder = scenario, policy, folder
        self.prefix, self.progress, self.on_ready = prefix, progress, on_ready
        self.interactive = interactive
        self.edge_args = list(edge_args)   # extra edge-agent arguments (fault injection)
        self.token = secrets.token_hex(16)
        self.work = os.path.join(folder, 'work', policy)
        os.makedirs(self.work, exist_ok=True)
        self.periods_log = CsvLog(os.path.join(folder, 'periods.csv'), fluid.RECORD_FIELDS)
        self.series_log = CsvLog(os.path.join(folder, 'timeseries.csv'), TIMESERIES_FIELDS)
        self.replay_log = CsvLog(os.path.join(folder, 'replay.csv'),
                                 ('policy', 'step', 'planned_s', 'applied_s', 'late_ms',
                                  'capacity_mbit', 'clipped'))
        self.emu = None
        self.server = None
        self.replayer = None
        self.sampler_stop = threading.Event()
        self.stopping = threading.Event()   # set to end the periods early (the CLI)
        self.timers = []         # pending share switches and checkpoint orders
        self.log_files = []
        self.plans = {}
        self.efficiency = {}     # direction -> the latest informative measurement
        self.current = None      # (period, plan, counters at its start, start offset)
        self.busy = {}           # direction -> [sum of goodput, sum of share] while busy
        self.last_check = 0.0

    # set-up
    def topology(self):
        """The EdgeStar of the scenario."""
        s = self.scenario
        return EdgeStar(n=s.devices, capacity='%fmbit' % max(s.capacity.rate_at(0.0), 0.1),
                        medium=s.medium, mode=self._mode(), ack=s.ack,
                        delay='%fms' % s.delay_ms, loss=s.loss_pct,
                        queue='%fms' % s.queue_ms, prefix=self.prefix)

    def _mode(self):
        # tcp-fair: no controller split; both directions compete, borrowing freely.
        return 'work-conserving' if self.policy == 'tcp-fair' else self.scenario.mode

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
        for index, name in enumerate(self.emu.devices):
            out = self._log_file('%s.log' % name)
            self.emu.popen(name, [
                sys.executable, '-m', 'edgecollab.nodes.device', '--name', name,
                '--controller', controller_url,
                '--edge', 'http://%s:%d' % (addressing.EDGE_DATA_IP, EDGE_PORT),
                '--token', self.token, '--dir', os.path.join(self.work, name),
                '--generated', s.generated[index], '--period', s.period_s,
                '--sample-bytes', s.problem.sample_bits / 8, '--seed', s.seed + index],
                stdout=out, stderr=out, what='device agent %s' % name)
        # The clock starts when every agent is up (it has asked for its plan): dozens of
        # agents starting on two cores take seconds, which would eat the first period.
        wait_s = AGENT_START_S + AGENT_START_PER_DEVICE_S * len(self.emu.devices)
        if not wait(lambda: not self.state.unseen(), wait_s):
            raise EdgecollabError('device agents %s did not start within %.0f s (their logs: %s)'
                                  % (', '.join(self.state.unseen()[:5]), wait_s, self.work))
        log.debug('device agents up')

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
            '--compute-per-sample', s.compute_per_sample_s, '--seed', s.seed] + self.edge_args,
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
        link = self.emu.linkshare
        self.t0 = time.monotonic() + START_DELAY_S
        self.epoch0 = time.time() + START_DELAY_S
        self.replayer = Replayer(s.capacity, s.step_s, s.duration_s, link.set_capacity,
                                 self.t0)
        self.replayer.start()
        sampler = threading.Thread(target=self._sample, name='sampler', daemon=True)
        sampler.start()
        self.previous = [s.problem.kept_map()] * s.devices
        efficiency, finisher = None, None
        for k in range(1, s.periods + 1):
            start = (k - 1) * s.period_s
            self._sleep_until(start)
            if self.replayer.error:
                raise EdgecollabError('trace replay failed: %s' % self.replayer.error)
            counters_before = link.counters()
            plan_ = self._begin(k, start, efficiency)
            log.debug('period %d: planned, shares set, checkpoints ordered and plans '
                      'published %.1f ms after its start', k,
                      (time.monotonic() - self.t0 - start) * 1000)
            self.current = (k, plan_, counters_before, start)
            self._sleep_until(start + s.period_s)
            self.current = None
            counters_after = link.counters()
            efficiency, per_class = self._efficiency()
            # Reports arrive just after the deadline: score in the background while
            # the next period starts on time.
            finisher = threading.Thread(target=self._finish, name='score-%d' % k, args=(
                k, plan_, counters_before, counters_after, per_class, finisher))
            finisher.start()
        finisher.join()
        self.state.finish()
        self.replayer.stop()
        self.replay_log.write({'policy': self.policy, 'step': k, 'planned_s': p,
                               'applied_s': a, 'late_ms': abs(a - p) * 1000,
                               'capacity_mbit': c, 'clipped': clipped}
                              for k, p, a, c, clipped in self.replayer.steps)

    def _sleep_until(self, offset_s):
        delay = self.t0 + offset_s - time.monotonic()
        if self.stopping.wait(max(0.0, delay)):
            raise _Stopped()

    def _begin(self, k, start, efficiency):
        s = self.scenario
        now = max(float(s.capacity.rate_at(start)), 0.1)
        future = s.capacity.mean_between(start, start + s.period_s)
        plan_ = planner.plan(s.problem, self.policy, s.generated, now, future_mbit=future,
                             efficiency=efficiency, ratio=s.ratio, floor=s.floor)
        (u0, u1), (m0, m1) = fluid.phases(s.problem, plan_)
        link = self.emu.linkshare
        sequential = s.problem.timing == 'sequential'
        if sequential:
            link.set_shares(_normalised(plan_, 'up'))
            self._later(self.t0 + start + m0 - time.monotonic(),
                        lambda: link.set_shares(_normalised(plan_, 'down')))
        else:
            link.set_shares({name: {'up': a.upload_share, 'down': a.download_share}
                             for name, a in zip(self.emu.devices, plan_.devices)})
        period_epoch = self.epoch0 + start
        # The data a checkpoint is trained on: sequential, this period's upload (it ends
        # before the model phase); overlap, what arrived in time in the previous period.
        if sequential:
            trained_bytes = {name: a.upload_bytes
                             for name, a in zip(self.emu.devices, plan_.devices)}
        else:
            trained_bytes = {name: c['bytes'] for name, c in self._edge_counts(k - 1).items()}
        orders = {name: {'size_bytes': a.model_bytes, 'model': a.model,
                         'trained_on': trained_bytes[name] * 8 / s.problem.sample_bits}
                  for name, a in zip(self.emu.devices, plan_.devices) if a.model_bytes > 0}
        self._order(k, period_epoch + u1, orders, delay=m0 if sequential else 0.0)
        plans = {name: {'upload_bytes': a.upload_bytes, 'model_bytes': a.model_bytes,
                        'model': a.model, 'upload_window': [period_epoch + u0, period_epoch + u1],
                        'download_window': [period_epoch + m0, period_epoch + m1],
                        'deadline': period_epoch + s.period_s}
                 for name, a in zip(self.emu.devices, plan_.devices)}
        self.state.begin_period(k, plans, link.fractions, now)
        self.plans[k] = plan_
        log.debug('period %d: %s', k, plans)
        return plan_

    def _order(self, k, upload_deadline, orders, delay):
        def send():
            try:
                r = requests.post(self.edge_url + '/v1/periods', json={
                    'period': k, 'upload_deadline': upload_deadline, 'checkpoints': orders},
                    headers={'Authorization': 'Bearer ' + self.token}, timeout=5)
                r.raise_for_status()
            except requests.RequestException as exc:
                self.state.note('period %d: checkpoint order failed: %s' % (
                    k, type(exc).__name__))
                log.warning('period %d: the edge agent did not take the order: %s', k, exc)
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
        in time, 'late_bytes': after the deadline, 'late_next_bytes': after it but before
        the next period's deadline}; zeros where the edge does not answer."""
        zero = {'bytes': 0, 'late_bytes': 0, 'late_next_bytes': 0}
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
        period, over the sampling steps where a class still had bytes to deliver;
        directions without such steps keep the last estimate (a transfer that finished
        early says only that its share sufficed)."""
        busy, self.busy = self.busy, {}
        per_class = {key: got / share for key, (got, share) in busy.items() if share > 0}
        for direction in ('up', 'down'):
            sums = [v for (_, d), v in busy.items() if d == direction]
            share = sum(v[1] for v in sums)
            if share > 0:
                self.efficiency[direction] = sum(v[0] for v in sums) / share
        self.state.measured(self.state.capacity_mbit, self.state.goodput, dict(self.efficiency))
        drift = {d: e for d, e in self.efficiency.items() if abs(e - 1) > self.scenario.drift}
        if drift:
            self.state.note('goodput drifts from plan: %s' % ', '.join(
                '%s %.3f' % kv for kv in sorted(drift.items())))
        return dict(self.efficiency), per_class

    def _finish(self, k, plan_, before, after, per_class, previous_finisher):
        if previous_finisher is not None:
            previous_finisher.join()
        s = self.scenario
        wait(lambda: len(self.state.reports_of(k)) == s.devices, REPORT_GRACE_S)
        reports = self.state.reports_of(k)
        start = (k - 1) * s.period_s
        mean_cap = s.capacity.mean_between(start, start + s.period_s)
        this_period, last_period = self._edge_counts(k), self._edge_counts(k - 1)
        rows = []
        for i, (name, a) in enumerate(zip(self.emu.devices, plan_.devices)):
            report = reports.get(name) or {}
            counts, previous = this_period[name], last_period[name]
            arrived = counts['bytes']
            model_ok = bool(report.get('model_ok'))
            wire, got = self._class_goodput(name, before, after)
            samples = arrived * 8 / s.problem.sample_bits
            accuracy = fluid.score(s.problem, samples, a.model_bytes, model_ok,
                                   self.previous[i])
            self.previous[i] = accuracy
            status = 'ok' if report else 'no report'
            problems = [report.get('upload_error')] + (
                [report.get('model_error')] if a.model_bytes > 0 else [])
            if any(problems):
                status = '; '.join(p for p in problems if p)
            rows.append(fluid.record(
                self.policy, k, name, mean_cap, a, plan_.solver_ms, arrived,
                float(report.get('model_bytes', 0)), model_ok, accuracy,
                efficiency_up=per_class.get((name, 'up')),
                efficiency_down=per_class.get((name, 'down')), status=status,
                reported_upload_bytes=report.get('upload_bytes'),
                class_up_bytes=wire['up'], class_down_bytes=wire['down'],
                late_upload_bytes=counts['late_bytes'],
                # The previous period's late bytes that this period's class carried.
                carried_upload_bytes=previous['late_next_bytes']))
            if not model_ok and a.model_bytes > 0:
                self.state.note('period %d: %s failed: %s' % (k, name, status))
        self.periods_log.write(rows)
        if self.progress:
            self.progress(k)

    def _sample(self):
        s = self.scenario
        link = self.emu.linkshare
        last, last_t = None, None
        while not self.sampler_stop.wait(s.step_s):
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
                self.state.measured(cap, goodput, self.state.efficiency)
                self.series_log.write({
                    'policy': self.policy, 'time_s': now - self.t0, 'capacity_mbit': cap,
                    'device': name, 'direction': d, 'share_mbit': link.share_mbit(name, d),
                    'goodput_mbit': goodput[(name, d)]} for (name, d) in counters)
                self._account(counters, goodput)
                if self.policy in CORRECTING and now - self.last_check >= CHECK_S:
                    self.last_check = now
                    self._correct(counters, now)
            last, last_t = counters, now

    def _remaining(self, counters):
        """{(device, direction): bytes still to deliver} of the current period."""
        k, plan_, before, start = self.current
        remaining = {}
        for name, a in zip(self.emu.devices, plan_.devices):
            got = self._class_goodput(name, before, counters)[1]
            # Within 2% counts as delivered (HTTP framing, the goodput estimate).
            for d, planned in (('up', a.upload_bytes), ('down', a.model_bytes)):
                left = planned - got[d]
                remaining[(name, d)] = left if left > 0.02 * planned else 0.0
        return remaining

    def _account(self, counters, goodput):
        # Efficiency = goodput / share over the steps where a class still had bytes to
        # deliver (the share limited it), whatever re-splits happened.
        if self.current is None:
            return
        link = self.emu.linkshare
        for (name, d), left in self._remaining(counters).items():
            share = link.share_mbit(name, d)
            if left > 0 and share > 0:
                sums = self.busy.setdefault((name, d), [0.0, 0.0])
                sums[0] += goodput[(name, d)]
                sums[1] += share

    def _correct(self, counters, now):
        """Re-split the rest of the period when a transfer would miss its deadline."""
        current = self.current
        if current is None or self.scenario.problem.timing != 'overlap':
            return
        k, plan_, before, start = current
        remaining_s = self.t0 + start + self.scenario.period_s - now
        if remaining_s < 1.0:
            return
        remaining = self._remaining(counters)
        link = self.emu.linkshare
        shares = {(n, d): f for n, share in link.fractions.items() for d, f in share.items()}
        efficiency = {d: self.efficiency.get(d, GOODPUT_PER_WIRE) for d in ('up', 'down')}
        capacity = link.capacity_mbit
        if correction.needs_resplit(remaining, shares, capacity, efficiency, remaining_s,
                                    self.scenario.drift):
            link.set_shares(correction.resplit(remaining, capacity, efficiency, remaining_s))
            self.state.note('period %d: re-split with %.1f s left (a transfer would miss '
                            'its deadline)' % (k, remaining_s))
            log.info('period %d: re-split with %.1f s left', k, remaining_s)

    def _stop(self):
        self.stopping.set()
        for timer in self.timers:
            timer.cancel()
        self.sampler_stop.set()
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


class _Stopped(Exception):
    """The periods were ended early (the user left the CLI)."""


def _normalised(plan_, direction):
    """Sequential phases: the direction's shares scaled to the whole capacity."""
    key = 'upload_share' if direction == 'up' else 'download_share'
    total = sum(getattr(a, key) for a in plan_.devices)
    shares = {}
    for i, a in enumerate(plan_.devices):
        value = getattr(a, key) / total if total > 0 else 0.0
        shares['d%d' % (i + 1)] = {'up': value if direction == 'up' else 0.0,
                                   'down': value if direction == 'down' else 0.0}
    return shares


def _healthy(url):
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False
