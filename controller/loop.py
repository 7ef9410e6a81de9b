"""The controller's period loop: plan, split the link, publish, measure, correct, score.

One loop for both backends.  Each period the loop takes the policy to use (a ``PUT
/v1/policy`` takes effect here, at the next period's start), plans at the capacity it
can know, turns the plan into link fractions (one split with ``overlap`` timing; the
upload phase, then the model phase with ``sequential``), applies them, publishes the
plans, and hands the period to the backend; at the period's end it takes the efficiency
the backend measured (what a closed-loop policy plans with next) and, when the backend
knows them, what each device got, and scores the period into records.  Within a period,
when the policy that planned it ``corrects``, the backend's measurements of what is left
go through ``correct``, which re-splits the rest of the period when a transfer would
miss its deadline.

A backend is a ``Transport``: the Mininet runner supplies the live link, the agents and
the real clock (``scenarios/runner.py``); the fluid backend supplies ideal transfers on
a virtual clock (``fluid.py``).
"""

import abc
import logging
import threading
from dataclasses import dataclass

from edgecollab.controller import correction, planner, policies
from edgecollab.controller.linkshare import MIN_CAPACITY_MBIT
from edgecollab.wire import GOODPUT_PER_WIRE

log = logging.getLogger(__name__)

RECORD_FIELDS = ('policy', 'period', 'device', 'planned_by', 'predictor', 'forecast_mbit',
                 'capacity_mbit',
                 'upload_share', 'download_share', 'planned_upload_bytes', 'upload_bytes',
                 'planned_model_bytes', 'model_bytes', 'model', 'model_ok', 'deadline_miss',
                 'predicted_accuracy', 'accuracy', 'efficiency_up', 'efficiency_down',
                 'solver_ms', 'status', 'reported_upload_bytes', 'class_up_bytes',
                 'class_down_bytes', 'late_upload_bytes', 'carried_upload_bytes')
MIN_CORRECTION_S = 1.0     # no re-split with less of the period left than this


@dataclass
class Period:
    """One period as planned: its number, start (seconds from the run's start), the
    Plan, the capacity it was planned at, and its (upload, model) phase windows."""
    number: int
    start_s: float
    plan: object
    capacity_mbit: float
    phases: tuple

    @property
    def policy(self):
        """The name of the policy that planned the period."""
        return self.plan.policy


@dataclass
class Outcome:
    """What one device got in a period, as the backend measured it: the data that
    reached the edge in time, the checkpoint bytes that reached the device, whether the
    whole checkpoint arrived and verified, and the backend's own fields of the record."""
    upload_bytes: float
    model_bytes: float
    model_ok: bool
    measured: dict


class Transport(abc.ABC):
    """What a backend gives the loop: the devices, the link, the clock, the transfers."""

    devices = ()

    @abc.abstractmethod
    def wait_until(self, offset_s):
        """Return when the run's clock reads offset_s (seconds from its start)."""

    @abc.abstractmethod
    def wall_time(self, offset_s):
        """The epoch time (s) of offset_s: what the agents' plans carry."""

    @abc.abstractmethod
    def set_shares(self, fractions):
        """Apply {device: {'up': f, 'down': f}} (fractions of the capacity) now."""

    @abc.abstractmethod
    def fractions(self):
        """The fractions applied now."""

    @abc.abstractmethod
    def at(self, offset_s, action):
        """Run action when the run's clock reads offset_s."""

    @abc.abstractmethod
    def start(self, period):
        """The period is planned and its shares applied: start it (the Mininet backend
        orders its checkpoints, which tells the edge its deadlines); the plans are
        published right after."""

    @abc.abstractmethod
    def finish(self, period, done):
        """Carry the period to its end; return {direction: goodput / share} measured
        over it (directions without a measurement left out); call done({device:
        Outcome}) when the outcomes are known (now or later, from another thread)."""


def phases(problem, plan_):
    """((upload start, end), (model start, end)) in seconds from the period start."""
    window = problem.window_s
    if problem.timing == 'overlap':
        return (0.0, window), (0.0, window)
    upload = sum(a.upload_share for a in plan_.devices)
    model = sum(a.download_share for a in plan_.devices)
    total = upload + model
    up_end = window * upload / total if total > 0 else 0.0
    return (0.0, up_end), (up_end + problem.update_s, problem.period_s)


def share_schedule(problem, plan_, devices):
    """[(offset in the period, fractions)]: the link's split over a period.  Overlap:
    the plan's shares for the whole period.  Sequential: each direction's shares scaled
    to the whole capacity, the upload's from the start, the model's from its phase."""
    if problem.timing == 'overlap':
        return [(0.0, {name: {'up': a.upload_share, 'down': a.download_share}
                       for name, a in zip(devices, plan_.devices)})]
    (_, _), (m0, _) = phases(problem, plan_)
    return [(0.0, _whole(plan_, devices, 'up')), (m0, _whole(plan_, devices, 'down'))]


def _whole(plan_, devices, direction):
    """One direction's shares of plan_ scaled to the whole capacity, the other's zero."""
    key = 'upload_share' if direction == 'up' else 'download_share'
    total = sum(getattr(a, key) for a in plan_.devices)
    other = 'down' if direction == 'up' else 'up'
    return {name: {direction: getattr(a, key) / total if total > 0 else 0.0, other: 0.0}
            for name, a in zip(devices, plan_.devices)}


def score(problem, samples, model_bytes, model_ok, previous):
    """A device's period accuracy: A(S) q(D) if its new model arrived, else its old one."""
    if not model_ok or model_bytes <= 0:
        return previous
    return float(problem.size_map(model_bytes) * problem.accuracy.q(samples))


def record(policy, period, device, capacity_mbit, a, solver_ms, upload_bytes, model_bytes,
           model_ok, accuracy, **measured):
    """One device's period record: the plan's fields from its Allocation a, the outcome
    from the arguments, and what the backend measured (efficiencies, status and, in the
    emulated run, the counters) from measured."""
    row = {'policy': policy, 'period': period, 'device': device,
           'capacity_mbit': capacity_mbit, 'upload_share': a.upload_share,
           'download_share': a.download_share, 'planned_upload_bytes': a.upload_bytes,
           'upload_bytes': upload_bytes, 'planned_model_bytes': a.model_bytes,
           'model_bytes': model_bytes, 'model': a.model, 'model_ok': model_ok,
           'deadline_miss': bool(a.model_bytes > 0 and not model_ok),
           'predicted_accuracy': a.accuracy, 'accuracy': accuracy, 'solver_ms': solver_ms}
    row.update(measured)
    return row


class ControlLoop:
    """One policy's run of a scenario's periods over a Transport.

    scenario: the resolved Scenario; state: the ControllerState the API serves (the
    loop publishes plans into it and takes policy changes from it); write: called with
    each period's records once they are scored."""

    def __init__(self, scenario, state, transport, write):
        self.scenario = scenario
        self.problem = scenario.problem
        self.state = state
        self.transport = transport
        self.write = write
        self.devices = list(transport.devices)
        self.label = state.policy           # the run's policy: the label of its records
        self.plans = {}                     # period -> Plan
        self.lock = threading.Lock()        # efficiency: the backend's sampler reads it
        self.efficiency = {}                # direction -> the latest informative measurement
        self.previous = [self.problem.kept_map()] * len(self.devices)
        self.current = None                 # the Period under way

    def run(self):
        """Every period of the scenario in turn."""
        for k in range(1, self.scenario.periods + 1):
            self.period(k)

    def period(self, k):
        """Plan period k at its start, carry it through the backend, take what it
        measured; return the Period."""
        start = (k - 1) * self.scenario.period_s
        self.transport.wait_until(start)
        period = self.begin(k, start)
        measured = self.transport.finish(period, lambda outcomes: self.score(period,
                                                                             outcomes))
        self.current = None
        self._measured(measured)
        return period

    def forecast_mbit(self, start_s):
        """The capacity the controller plans the period starting at start_s with: the
        scenario's predictor over the capacity seen so far (never below the link
        layer's minimum)."""
        s = self.scenario
        return max(s.forecast.predict(s.capacity, start_s, s.period_s, s.step_s),
                   MIN_CAPACITY_MBIT)

    def begin(self, k, start):
        """Plan period k, split the link, publish the plans, start the transfers."""
        s = self.scenario
        name = self.state.take_policy()
        capacity = self.forecast_mbit(start)
        future = s.capacity.mean_between(start, start + s.period_s)
        with self.lock:
            efficiency = dict(self.efficiency)
        plan_ = planner.plan(self.problem, name, s.generated, capacity, future_mbit=future,
                             efficiency=efficiency, ratio=s.ratio, floor=s.floor)
        period = Period(k, start, plan_, capacity, phases(self.problem, plan_))
        schedule = share_schedule(self.problem, plan_, self.devices)
        self.transport.set_shares(schedule[0][1])
        for offset, fractions in schedule[1:]:
            self.transport.at(start + offset, lambda f=fractions: self.transport.set_shares(f))
        (u0, u1), (m0, m1) = period.phases
        wall = self.transport.wall_time
        plans = {name_: {'upload_bytes': a.upload_bytes, 'model_bytes': a.model_bytes,
                         'model': a.model,
                         'upload_window': [wall(start + u0), wall(start + u1)],
                         'download_window': [wall(start + m0), wall(start + m1)],
                         'deadline': wall(start + s.period_s)}
                 for name_, a in zip(self.devices, plan_.devices)}
        self.plans[k] = plan_
        self.current = period
        # The backend starts the period (the edge learns its deadlines) before the
        # devices learn their plans and start sending.
        self.transport.start(period)
        self.state.begin_period(k, plans, self.transport.fractions(), capacity, name)
        log.debug('%s period %d: planned by %s at %.3f Mbit/s: %s', self.label, k, name,
                  capacity, plans)
        return period

    def _measured(self, measured):
        """Keep the period's measured efficiency per direction (a direction without a
        measurement keeps its last one: a transfer that finished early says only that
        its share sufficed) and note a drift from the plan."""
        with self.lock:
            self.efficiency.update(measured)
            efficiency = dict(self.efficiency)
        self.state.set_efficiency(efficiency)
        drift = {d: e for d, e in efficiency.items() if abs(e - 1) > self.scenario.drift}
        if drift:
            self.state.note('%s: goodput drifts from plan: %s' % (self.label, ', '.join(
                '%s %.3f' % kv for kv in sorted(drift.items()))))

    def correct(self, remaining, capacity_mbit, remaining_s):
        """Within the current period: when its policy corrects (overlap timing), re-split
        the rest of the period if a transfer would miss its deadline.  remaining:
        {(device, direction): bytes still to deliver}; return whether it re-split."""
        period = self.current
        if period is None or not policies.get(period.policy).corrects or \
                self.problem.timing != 'overlap' or remaining_s < MIN_CORRECTION_S:
            return False
        shares = {(n, d): f for n, share in self.transport.fractions().items()
                  for d, f in share.items()}
        with self.lock:
            efficiency = {d: self.efficiency.get(d, GOODPUT_PER_WIRE) for d in ('up', 'down')}
        if not correction.needs_resplit(remaining, shares, capacity_mbit, efficiency,
                                        remaining_s, self.scenario.drift):
            return False
        self.transport.set_shares(correction.resplit(remaining, capacity_mbit, efficiency,
                                                     remaining_s))
        message = '%s period %d: re-split with %.1f s left (a transfer would miss its ' \
                  'deadline)' % (self.label, period.number, remaining_s)
        self.state.note(message)
        log.info(message)
        return True

    def score(self, period, outcomes):
        """Score period from {device: Outcome} and write its records."""
        s = self.scenario
        mean_cap = s.capacity.mean_between(period.start_s, period.start_s + s.period_s)
        rows = []
        for i, (name, a) in enumerate(zip(self.devices, period.plan.devices)):
            got = outcomes[name]
            samples = got.upload_bytes * 8 / self.problem.sample_bits
            accuracy = score(self.problem, samples, a.model_bytes, got.model_ok,
                             self.previous[i])
            self.previous[i] = accuracy
            rows.append(record(self.label, period.number, name, mean_cap, a,
                               period.plan.solver_ms, got.upload_bytes, got.model_bytes,
                               got.model_ok, accuracy, planned_by=period.policy,
                               predictor=s.forecast.name,
                               forecast_mbit=period.capacity_mbit, **got.measured))
            if not got.model_ok and a.model_bytes > 0:
                self.state.note('%s period %d: %s failed: %s' % (
                    self.label, period.number, name, got.measured.get('status', 'missed')))
        self.write(rows)
