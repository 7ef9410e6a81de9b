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

``PolicyRun`` is the Transport (the clock, the shares, the period's transfers and their
scoring); the agents are scenarios/agents.py's ``Agents``, the class counters read
through scenarios/meter.py's ``Meter``, the records written by results' ``Records``.
"""

import logging
import os
import secrets
import threading
import time

from edgecollab.controller import policies
from edgecollab.controller.loop import ControlLoop, Received, Transport
from edgecollab.controller.service import ControllerState
from edgecollab.errors import EdgecollabError
from edgecollab.kinds import Direction, Timing
from edgecollab.nodes import device
from edgecollab.ready import wait
from edgecollab.scenarios import results
from edgecollab.scenarios.agents import CONTROLLER_PORT, Agents
from edgecollab.scenarios.clock import Clock
from edgecollab.scenarios.meter import Meter
from edgecollab.scenarios.replay import Replayer
from edgecollab.scenarios.results import REPLAY_COLUMNS, TIMESERIES_FIELDS, CsvLog
from edgecollab.topologies import addressing
from edgecollab.topologies.emulation import Emulation
from edgecollab.topologies.linkshare import MIN_CAPACITY_MBIT
from edgecollab.topologies.star import EdgeStar
from edgecollab.wire import GOODPUT_PER_WIRE

log = logging.getLogger(__name__)
# How long after a period's end its reports are waited for: the latest a device sends
# one, and time for it to arrive.
REPORT_GRACE_S = device.REPORT_LATEST_S + 2.0
FINISHER_MARGIN_S = 5.0    # beyond the grace: the scoring itself (edge counts, a few requests)
START_DELAY_S = 1.0
# How long a period's start waits for the last period's download reports (a device
# sends one the moment its download ends, by the deadline).
CHECKPOINT_REPORT_S = 1.0
# A replaced checkpoint's old fetch goes on until the device sees the revision (it asks
# this often): what its class carries meanwhile the counters credit to the new one.
REVISION_LAG_S = device.REVISION_POLL_S


def scenario_topology(s, prefix='ec', mode=None):
    """The EdgeStar of scenario s at its capacity at the start, its queues sized from
    the capacity's mean over the run (mode: the link mode a policy needs, the scenario's
    when None; per-device channels have no capacity to lend, so they are always strict:
    there tcp-fair holds its max-min split)."""
    mode = s.link.mode if s.link.channels else mode or s.link.mode
    down = s.link.capacity_down
    return EdgeStar(n=s.devices, capacity=max(float(s.link.capacity.rate_at(0.0)),
                                              MIN_CAPACITY_MBIT),
                    medium=s.link.medium, mode=mode, ack=s.link.ack,
                    paths=dict(zip(s.device_names, s.paths.each)), delay_engine=s.paths.engine,
                    seed=s.seed, queue=s.link.queue_ms / 1000, prefix=prefix,
                    queue_rate=_mean_mbit(s.link.capacity, s.duration_s),
                    queue_down_rate=None if down is None else _mean_mbit(down, s.duration_s),
                    servers=s.cluster.servers,
                    congestion_control=s.paths.congestion_control)


def _mean_mbit(trace, length_s):
    """A capacity trace's mean over a run of length_s, within what the layer shapes."""
    return max(float(trace.mean_between(0.0, length_s)), MIN_CAPACITY_MBIT)


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
        self.records = results.Records(folder, repeat)
        self.series_log = CsvLog(os.path.join(folder, results.TIMESERIES_CSV),
                                 TIMESERIES_FIELDS)
        self.replay_log = CsvLog(os.path.join(folder, results.REPLAY_CSV),
                                 tuple(REPLAY_COLUMNS))
        self.emu = None
        self.agents = None
        self.meter = None
        self.state = None
        self.loop = None
        self.replayer = None
        self.clock = Clock()         # offsets from the start of period 1
        self.sampler_stop = threading.Event()
        self.finisher = None         # the thread scoring the latest period
        self.counters_start = None   # the link's class counters at the period's start
        self.counters_end = None     # those at the last period's end (the next one's start)
        self.trained_bytes = {}      # device -> the data its period's checkpoint learns
        self.down_offset = {}        # device -> download bytes of a replaced checkpoint
        self.revisions = {}          # (period, device) -> the revision its plan names
        self.window = None           # (Period, counters at its start) under way
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
                  self.policy, self.scenario.control.periods, self.scenario.control.period_s,
                  ' '.join(self.emu.devices), addressing.CONTROLLER_IP, CONTROLLER_PORT))
        CLI(self.emu.net)
        if not worker.is_alive():
            return 'completed'
        self.clock.stop()
        worker.join(timeout=REPORT_GRACE_S + 5)
        return 'stopped from the CLI'

    def _start_services(self):
        self.state = ControllerState(self.emu.devices, self.policy,
                                     self.scenario.problem.timing)
        self.meter = Meter(self.emu.linkshare)
        self.agents = Agents(self.emu, self.scenario, self.state, self.work, self.folder,
                             self.token, self.policy, self.edge_args)
        self.agents.start()

    # fault injection
    def restart_edge(self):
        """Start the edge agent again (after a fault)."""
        self.agents.start_edge()

    def kill_device(self, name):
        """Kill device name's agent."""
        self.agents.kill_device(name)

    def kill_edge(self):
        """Kill the edge agent."""
        self.agents.kill_edge()

    # the periods
    def _periods(self):
        s = self.scenario
        self.clock.start(START_DELAY_S)
        self.replayer = Replayer(s.link.capacity, s.link.step_s, s.duration_s,
                                 self.emu.linkshare.set_capacity, self.clock.t0,
                                 s.link.channels, s.device_names, s.link.capacity_down)
        self.replayer.start()
        self.at(0.0, self.emu.restart_path_clocks)     # delay traces start with period 1
        self.loop = ControlLoop(s, self.state, self, self.records.write)
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
        # A period's counter window starts where the last one ended: a byte the link
        # carried while the loop went from one period to the next belongs to one of them.
        self.counters_start = self.counters_end or self.emu.linkshare.counters()
        self.counters_end = None

    def wall_time(self, offset_s):
        return self.clock.wall_time(offset_s)

    def set_shares(self, fractions):
        self.emu.linkshare.set_shares(fractions)

    def fractions(self):
        return self.emu.linkshare.fractions

    def at(self, offset_s, action):
        self.clock.at(offset_s, action)

    def start(self, period):
        """Order the period's checkpoints at the edge; sample its classes from now."""
        s = self.scenario
        k, start = period.number, period.start_s
        sequential = s.problem.timing == Timing.SEQUENTIAL
        (_, u1), (m0, _) = period.phases
        # The data a checkpoint is trained on: sequential, this period's upload (it ends
        # before the model phase); overlap, what arrived in time in the previous period.
        if sequential:
            trained_bytes = {name: a.upload_bytes
                             for name, a in zip(self.devices, period.plan.devices)}
        else:
            trained_bytes = {name: c['bytes']
                             for name, c in self.agents.edge_counts(k - 1).items()}
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
                  (self.clock.now() - start) * 1000)

    def _checkpoint_order(self, k, name, a):
        """The edge's order of device name's checkpoint of period k (Allocation a)."""
        sequential = self.scenario.problem.timing == Timing.SEQUENTIAL
        return {'size_bytes': a.model_bytes, 'model': a.model,
                'trained_on': self.trained_bytes.get(name, 0) * 8 /
                self.scenario.problem.sample_bits,
                'data_period': k if sequential else k - 1}

    replaces_checkpoints = True      # the edge distils a replacement on demand
    upgrades_checkpoints = True      # a device that deployed one fetches a larger one

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
        self.revisions[(k, device)] = revision
        (_, u1), _ = period.phases
        self._order(k, self.wall_time(period.start_s + u1),
                    {device: self._checkpoint_order(k, device, a)}, delay=0.0,
                    revision=revision)
        if self.window is not None:
            got = self.meter.class_goodput(device, self.window[1],
                                           self.emu.linkshare.counters())[1]
            # What the old fetch may still carry counts as not sent of the new one (at
            # most the device's whole channel for REVISION_LAG_S): taken as further
            # along than it is, the new one got too small a share in its last seconds
            # and missed by the old one's last 0.5 MB (15 Mbit/s, under real TCP).
            lag = self.emu.linkshare.channel_mbit(device) * 1e6 / 8 * REVISION_LAG_S
            self.down_offset[device] = got[Direction.DOWN] + lag * GOODPUT_PER_WIRE

    def _of_plan(self, k, device, report):
        """Whether device's download report of period k is of the revision its plan
        names (or a later one): an earlier one's says nothing of a checkpoint ordered
        after it."""
        return report.get('revision', 0) >= self.revisions.get((k, device), 0)

    def _current(self, k, reports):
        """Of reports ({device: download report} of period k), those ``_of_plan``."""
        return {n: r for n, r in reports.items() if self._of_plan(k, n, r)}

    def checkpoints(self, period):
        """The devices' download reports of period (sent when each download ended; a
        device that deployed one before a larger one was ordered, and did not deploy
        that, holds the first: the loop keeps it, ``loop.kept_if_missed``)."""
        fetching = [n for n in self.devices if period.model_left[n] > 0]
        k = period.number
        reports = self.state.model_reports_of(k, fetching, CHECKPOINT_REPORT_S)
        # A report of a revision before the one the plan names last (a larger one a
        # device deployed reports at once) says it did not arrive.
        reports.update({n: dict(r, model_ok=False) for n, r in reports.items()
                        if not self._of_plan(k, n, r)})
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
        self._sleep_until(period.start_s + self.scenario.control.period_s)
        self.window = None
        counters_after = self.counters_end = self.emu.linkshare.counters()
        efficiency, per_class = self.meter.efficiency()
        self.finisher = threading.Thread(
            target=self._finish, name='score-%d' % period.number,
            args=(period, self.counters_start, counters_after, per_class, self.finisher,
                  done))
        self.finisher.start()
        return efficiency

    def _sleep_until(self, offset_s):
        if not self.clock.sleep_until(offset_s):
            raise self.broken or _Stopped()

    def _order(self, k, upload_deadline, orders, delay, revision=0):
        """Order checkpoints at the edge after delay seconds (a timer the run's end
        cancels)."""
        self.clock.later(delay, lambda: self.agents.order(k, upload_deadline, orders,
                                                          revision))

    def _finish(self, period, before, after, per_class, previous_finisher, done):
        if previous_finisher is not None:
            previous_finisher.join()
        s, k = self.scenario, period.number
        wait(lambda: len(self.state.reports_of(k)) == s.devices, REPORT_GRACE_S)
        reports = self.state.reports_of(k)
        # A device's download report, sent when its download ended: what the next
        # plan started from (checkpoints), and what counts when the period's report
        # never came (its upload count from the edge timed out on a link near 0).
        early = self.state.model_reports_of(k, self.devices, 0.0)
        this_period = self.agents.edge_counts(k)
        outcomes = {}
        for name, a in zip(self.devices, period.plan.devices):
            report = reports.get(name)
            status = 'ok'
            if report is None:
                report = early.get(name) or {}
                status = 'no period report, its download report counted' if report \
                    else 'no report'
            counts = this_period[name]
            wire = self.meter.class_goodput(name, before, after)[0]
            problems = [report.get('upload_error')] + (
                [report.get('model_error')] if a.model_bytes > 0 else [])
            model_ok = bool(report.get('model_ok'))
            if model_ok and a.model_bytes > 0 and not self._of_plan(k, name, report):
                # The device deployed a checkpoint its plan no longer names: not the one
                # scored, so not counted as delivered; unless it deployed it before a
                # larger one was ordered, which then missed: it keeps it
                # (``loop.kept_if_missed``), a period that went as it may.
                model_ok = False
                if report.get('upgrade_error'):
                    log.info('%s period %d: %s: %s', self.policy, k, name,
                             report['upgrade_error'])
                else:
                    planned = self.revisions[(k, name)]
                    problems.append('revision %d arrived, the plan names %d' % (
                        report.get('revision', 0), planned))
                    log.warning('%s period %d: %s deployed revision %d of its checkpoint, '
                                'the plan names %d', self.policy, k, name,
                                report.get('revision', 0), planned)
            if any(problems):
                status = '; '.join(p for p in problems if p)
            outcomes[name] = Received(counts['bytes'], float(report.get('model_bytes', 0)),
                                     model_ok, {
                'efficiency_up': per_class.get((name, Direction.UP)),
                'efficiency_down': per_class.get((name, Direction.DOWN)), 'status': status,
                'reported_upload_bytes': report.get('upload_bytes'),
                'retransmitted_upload_bytes': report.get('upload_retransmitted_bytes'),
                'class_up_bytes': wire[Direction.UP],
                'class_down_bytes': wire[Direction.DOWN],
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
        last, last_t, moving = None, None, set()
        while not self.sampler_stop.wait(s.link.step_s):
            try:
                self.emu.check_vital()
            except EdgecollabError as exc:
                # The network is broken (its delay line died): the run stops with it.
                self.broken = exc
                self.clock.stop()
                return
            try:
                now = time.monotonic()
                counters = link.counters()
            except EdgecollabError:
                return
            if last is not None:
                goodput = self.meter.goodput(last, counters, now - last_t)
                cap = link.capacity_mbit
                self.state.measured(cap, goodput)
                self.series_log.write({
                    'policy': self.policy, 'time_s': now - self.clock.t0,
                    'capacity_mbit': cap,
                    'device': name, 'direction': d, 'share_mbit': link.share_mbit(name, d),
                    'channel_mbit': link.channel_mbit(name),
                    'goodput_mbit': goodput[(name, d)], 'repeat': self.repeat}
                    for (name, d) in counters)
                window = self.window
                if window is not None:
                    period, before = window
                    remaining = self.meter.remaining(
                        period, self.devices, before, counters,
                        self._current(period.number, self.state.model_reports_of(
                            period.number, self.devices, 0.0)),
                        self.down_offset)
                    self.meter.account(remaining, goodput)
                    # A transfer that had a share and has ended (its upload arrived,
                    # its device reported its checkpoint): re-split now, as the fluid
                    # backend does, not at the next control step.
                    ended = {key for key in moving if remaining.get(key, 0) <= 0}
                    fractions = link.fractions
                    moving = {key for key, left in remaining.items() if left > 0 and
                              fractions.get(key[0], {}).get(key[1], 0) > 0}
                    step = now - self.last_check >= s.control.control_step_s * 0.999
                    if step or ended:
                        # The link's capacity over the last control step, as the fluid
                        # backend reports it (not the replay step's alone).
                        offset = now - self.clock.t0
                        capacity, rates, down = s.link.step_means(
                            max(offset - s.control.control_step_s, 0.0), offset)
                        left_s = self.clock.t0 + period.start_s + s.control.period_s - now
                        rates = dict(zip(self.devices, rates))
                    if step:
                        carried = (sum(c.bytes for c in counters.values()) - sum(
                            c.bytes for c in self.checked.values())) * 8 / 1e6 / \
                            (now - self.last_check) if self.checked else None
                        self.last_check, self.checked = now, counters
                        self.loop.control(remaining, capacity, left_s, carried, rates,
                                          down_mbit=down)
                    elif ended:
                        self.loop.ended(remaining, capacity, left_s, rates, down_mbit=down)
            last, last_t = counters, now

    def _stop(self):
        self.clock.stop()
        self.sampler_stop.set()
        if self.finisher is not None:
            # The last period's scoring reads the network: it ends before the network
            # does (it waits for the devices' reports at most REPORT_GRACE_S).
            self.finisher.join(REPORT_GRACE_S + FINISHER_MARGIN_S)
        if self.replayer:
            self.replayer.stop()
        if self.agents is not None:
            self.agents.stop()
        if self.emu is not None:
            self.emu.stop()
        for log_file in (self.records, self.series_log, self.replay_log):
            log_file.close()
        if not self.keep_artifacts:
            freed = results.prune_artifacts(self.work)
            log.debug('%s: %.1f MB of checkpoints and data verified and deleted (listed '
                      'in %s)', self.policy, freed / 1e6, results.ARTIFACTS_FILE)


class _Stopped(Exception):
    """The periods were ended early (the user left the CLI)."""
