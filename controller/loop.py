"""The controller's period loop: plan, split the link, publish, control, score.

One loop for both backends.  Each period the loop takes the policy to use (a ``PUT
/v1/policy`` takes effect here, at the next period's start), plans at the capacity it
can know with the model each device holds (``holding.py``: keeping it is an option worth
its decayed accuracy), turns the plan into link fractions (one split with ``overlap``
timing; the upload phase, then the model phase with ``sequential``), resumes a checkpoint
that missed the last deadline when the plan picks the same model again and it is worth
more than the model the device holds (a closed loop is offered it, deferred, when the
plan keeps the model: ``_offer_resumes``), applies the
shares, publishes the plans and hands the period to the backend.  Every control step
the backend reports what is left; when the policy that planned the period ``corrects``
(``adaptive``), ``control`` re-splits the rest of the period (``correction.py``).  At
the period's end the loop takes the efficiency the backend measured, learns which
checkpoints arrived (what the next plan starts from) and scores the period into records.

A backend is a ``Transport``: the Mininet runner supplies the live link, the agents and
the real clock (``scenarios/mininet_backend.py``); the fluid backend supplies ideal transfers on
a virtual clock (``scenarios/fluid_backend.py``).
"""

import abc
import dataclasses
import logging
import statistics
import threading
from dataclasses import dataclass, field

from edgecollab import confidence
from edgecollab.controller import correction, planner, policies, replan
from edgecollab.controller.holding import Held, InFlight
from edgecollab.kinds import Direction, Outcome, Reason, Timing
from edgecollab.topologies import media
from edgecollab.topologies.linkshare import MIN_CAPACITY_MBIT
from edgecollab.wire import GOODPUT_PER_WIRE

log = logging.getLogger(__name__)

# Each column of a period record (periods.csv) and what it holds.
RECORD_COLUMNS = {
    'policy': 'the policy whose run this is',
    'period': 'the period (1, 2, ...)',
    'device': 'the device (d1, d2, ...)',
    'outcome': 'what happened to its model: delivered, resumed, kept, missed, infeasible '
               'or starved (below)',
    'planned_by': 'the policy that planned the period (another after a switch over the API)',
    'predictor': 'how the controller forecast the capacity (scenario key forecast)',
    'forecast_mbit': 'the capacity it forecast for the period, Mbit/s',
    'planned_mbit': 'the capacity the policy planned with (oracle: the real mean; '
                    'adaptive: the forecast x the measured TCP efficiency), Mbit/s',
    'capacity_mbit': "the period's real mean capacity, Mbit/s (per-device channels: "
                     'their mean)',
    'channel_mbit': "the period's real mean of the device's own channel, Mbit/s (the "
                    'capacity when the fleet has one)',
    'planned_channel': "the device's channel rate the plan assumed, relative to "
                       'planned_mbit (1 when the fleet has one channel)',
    'upload_share': "the device's upload share of the capacity as planned (0-1)",
    'download_share': "its download share as planned (0-1)",
    'planned_upload_bytes': 'the data the plan uploads, bytes',
    'upload_bytes': 'the data that reached the edge by the upload deadline (what trains '
                    'the model), bytes',
    'planned_model_bytes': 'the checkpoint size the plan sends, bytes',
    'model_bytes': 'checkpoint bytes the device received in the period (a larger one '
                   'ordered after one arrived: both), bytes',
    'model': 'the model variant planned (menu name or size)',
    'model_ok': 'True when the checkpoint arrived whole, verified and was deployed',
    'deadline_miss': 'True when a planned checkpoint did not arrive in time',
    'resumed_from': 'the period whose cut checkpoint this period resumed (HTTP Range)',
    'model_age': 'periods since the deployed model was trained',
    'kept_accuracy': 'the accuracy the held model keeps (it drifts), mAP',
    'predicted_accuracy': "the accuracy the plan predicted at its planned capacity, mAP",
    'accuracy': 'the accuracy the device reached from what arrived in time (what counts), '
                'mAP',
    'efficiency_up': 'measured upload goodput / planned upload share (TCP efficiency)',
    'efficiency_down': 'the same for the download',
    'link_bytes': 'the bytes the link could carry in the period (every budget)',
    'demand_bytes': 'the bytes there were to carry in the period: every device\'s data '
                    'and the largest checkpoint of the menu for each',
    'resplits': 'times the closed loop re-split the period',
    'switches': 'times the closed loop changed the checkpoint the device gets within the '
                'period (ordered one where the plan had none, a smaller one, a larger one '
                'after one arrived, ...)',
    'idle_fraction': 'control steps in which the link carried under 5% of capacity',
    'solver_ms': "the policy's planning time, ms",
    'status': "the period's status (ok, or what failed)",
    'reported_upload_bytes': 'the upload bytes the device says it sent in time',
    'retransmitted_upload_bytes': 'upload bytes TCP sent again (TCP_INFO)',
    'class_up_bytes': "the bytes the device's upload class of the shaper carried "
                      '(tc counters, wire bytes)',
    'class_down_bytes': 'the same for its download class',
    'late_upload_bytes': 'upload bytes that arrived after the deadline (not counted)',
    'carried_upload_bytes': "bytes of earlier periods' uploads that arrived in this one",
    'measured_accuracy': "the top-1 accuracy (%) the device measured of the model it "
                         "held at the period's end, on its own test set at the period's "
                         'drift (a workload that learns, e.g. digits; empty with synthetic)',
    'repeat': 'the repetition of the run (--repeat N: 1..N, each with its own seed)',
}
RECORD_FIELDS = tuple(RECORD_COLUMNS)
# What happened to a device in a period (the records' outcome column).
OUTCOMES = {
    Outcome.DELIVERED: 'its new checkpoint arrived and verified',
    Outcome.RESUMED: 'the checkpoint that missed the last deadline arrived (resumed, not '
                     'resent)',
    Outcome.KEPT: 'the plan kept its model (worth more than any it could send)',
    Outcome.MISSED: 'a checkpoint was planned and did not arrive in time (it may resume)',
    Outcome.INFEASIBLE: 'no model fits: the link (or the policy\'s share) cannot carry the '
                        'smallest checkpoint',
    Outcome.STARVED: 'the plan gave it no share at all (and did not choose to keep its '
                     'model)',
}
# The letter the tables count each outcome by (its first: they differ).
OUTCOME_LETTERS = {name: name[0] for name in OUTCOMES}
# The outcomes where something went wrong: the report and the live events name each one.
WENT_WRONG = (Outcome.MISSED, Outcome.INFEASIBLE, Outcome.STARVED)
IDLE_USE = 0.05    # a control step whose link carried less than this of capacity is idle
# What a period is sure of: the 95% confidence interval of the mean capacity of its
# control steps so far (``confidence``), after at least SURE_AFTER_STEPS of them.  Its
# upper end judges the checkpoints under way short (Period.short_of), its lower end
# lets a locked one grow beyond the plan (Period.sure_mbit).
SURE_AFTER_STEPS = 4


@dataclass
class Period:
    """One period as planned: its number, start (seconds from the run's start), the
    Plan, the controller's capacity forecast (Mbit/s), its (upload, model) phase
    windows, the models the devices hold at its start, the checkpoints it resumes
    ({device: InFlight}) and what each device has to move in it (bytes: its data, its
    checkpoint's remainder)."""
    number: int
    start_s: float
    plan: object
    forecast_mbit: float
    phases: tuple
    held: list = field(default_factory=list)
    resumed: dict = field(default_factory=dict)
    upload_limit: dict = field(default_factory=dict)
    model_left: dict = field(default_factory=dict)
    resplits: int = 0
    switches: dict = field(default_factory=dict)    # device -> checkpoints switched
    deferred: set = field(default_factory=set)      # devices deferred at any step of it
    rates: tuple = ()       # per-device channels: each one's rate the plan assumed
    steps: int = 0
    idle_steps: int = 0
    seen: list = field(default_factory=list)     # the checkpoints' capacity each step
    waiting: dict = field(default_factory=dict)  # device -> its data still to send (bytes)
    # device -> (its Allocation, the InFlight it resumed or None) of the checkpoint that
    # had arrived when a larger one was ordered: what it keeps if that one misses.
    arrived_before: dict = field(default_factory=dict)

    @property
    def policy(self):
        """The name of the policy that planned the period."""
        return self.plan.policy

    @property
    def idle_fraction(self):
        """The share of its control steps in which the link carried (almost) nothing."""
        return self.idle_steps / self.steps if self.steps else None

    def interval(self):
        """(low, high): the 95% confidence interval of the mean capacity of the
        period's control steps so far, or None before SURE_AFTER_STEPS of them.  On a
        bursty link it is wide, on a steady one narrow."""
        seen = self.seen
        if len(seen) < SURE_AFTER_STEPS:
            return None
        mean, half = statistics.fmean(seen), confidence.half_width(seen)
        return mean - half, mean + half

    def sure_mbit(self, capacity_mbit):
        """The capacity the rest of the period is sure of, for growing a checkpoint
        under way: at most the checkpoints' capacity now (the download's on duplex),
        the harmonic mean of the capacities its control steps have seen (a dip weighs
        more than a peak) and its forecast (a checkpoint grows back to what the plan
        expected); but never below the lower end of the interval of the mean
        (``interval``): beyond the forecast a period sure to be above its plan, and
        below it one outage step does not leave the rest of the period sure of
        nothing (19 steps at 40 Mbit/s and one at 0.1: a harmonic mean of 1.9)."""
        seen = self.seen or [capacity_mbit]
        sure = min(len(seen) / sum(1.0 / c for c in seen),
                   self.forecast_mbit * self.plan.down_ratio)
        interval = self.interval()
        if interval is not None:
            sure = max(sure, interval[0])
        return min(capacity_mbit, sure)

    def short_of(self, need_bits, budget_bits, capacity_mbit):
        """Whether the period is sure to be short of need_bits (what the checkpoints
        under way still need), budget_bits being what the rest of it carries at
        capacity_mbit: when even the upper end of the interval of the mean capacity
        (``interval``) carries less.  On a bursty link this stays False; on one that
        has fallen steadily below the forecast it turns True within a few steps."""
        interval = self.interval()
        if interval is None or capacity_mbit <= 0:
            return False
        return need_bits > budget_bits * interval[1] / capacity_mbit

    def arrived(self, device, waiting_bytes, sample_bytes):
        """The samples device has brought to the edge so far, waiting_bytes of its data
        still to send."""
        return max(self.upload_limit[device] - waiting_bytes, 0.0) / sample_bytes


@dataclass
class Received:
    """What one device got in a period, as the backend measured it: the data that
    reached the edge in time, the checkpoint bytes that reached the device, whether the
    whole checkpoint arrived and verified, and the backend's own fields of the record."""
    upload_bytes: float
    model_bytes: float
    model_ok: bool
    measured: dict


class Transport(abc.ABC):
    """What a backend gives the loop: the devices, the link, the clock, the transfers.

    The loop attaches itself as ``loop`` before the first period: the backend calls
    ``loop.control(...)`` every control step of a period with what is left, and
    ``loop.ended(...)`` when a transfer that had a share ends between two steps."""

    devices = ()
    loop = None
    # Whether the edge can distil and send another checkpoint within a period (the
    # closed loop then re-plans checkpoints too; else it re-splits and defers).
    replaces_checkpoints = False
    # Whether a device whose checkpoint arrived can fetch a larger one in the same period,
    # keeping the one it has should that miss (the closed loop then may send one, within
    # what the rest of its plan leaves: replan._after_arrival).
    upgrades_checkpoints = False

    def replace(self, period, device, size_bytes):
        """The device now gets a checkpoint of size_bytes in period (the loop has put
        it in the plan); only where replaces_checkpoints."""
        raise NotImplementedError

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
        Received}) when the outcomes are known (now or later, from another thread)."""

    @abc.abstractmethod
    def checkpoints(self, period):
        """{device: (checkpoint bytes it holds, whether the whole checkpoint arrived and
        verified)} of the period that just ended, for the devices that had one to fetch:
        what the next plan starts from."""


def phases(problem, plan_):
    """((upload start, end), (model start, end)) in seconds from the period start."""
    window = problem.window_s
    if problem.timing == Timing.OVERLAP:
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
    if problem.timing == Timing.OVERLAP:
        return [(0.0, {name: {'up': a.upload_share, 'down': a.download_share}
                       for name, a in zip(devices, plan_.devices)})]
    (_, _), (m0, _) = phases(problem, plan_)
    return [(0.0, _whole(plan_, devices, 'up')), (m0, _whole(plan_, devices, 'down'))]


def _whole(plan_, devices, direction):
    """One direction's shares of plan_ scaled to the whole capacity, the other's zero."""
    key = 'upload_share' if direction == Direction.UP else 'download_share'
    total = sum(getattr(a, key) for a in plan_.devices)
    other = Direction.DOWN if direction == Direction.UP else Direction.UP
    return {name: {direction: getattr(a, key) / total if total > 0 else 0.0, other: 0.0}
            for name, a in zip(devices, plan_.devices)}


def advance(number, held, a, resumed, got_bytes, model_ok, samples, accuracy):
    """(the model a device holds after period number, the checkpoint it has part of or
    None): held at the start, a its Allocation, resumed the InFlight it resumed (or
    None), got_bytes of its checkpoint arrived this period, model_ok whether all of it
    did; samples and accuracy those of the period's new checkpoint."""
    if model_ok and resumed is not None:
        return Held(resumed.model, resumed.size_bytes, resumed.samples, resumed.accuracy,
                    0), None
    if model_ok:
        return Held(a.model, a.model_bytes, samples, accuracy, 0), None
    if resumed is not None and got_bytes > 0:
        return held.older(), InFlight(resumed.period, resumed.model, resumed.size_bytes,
                                      resumed.got_bytes + got_bytes, resumed.samples,
                                      resumed.accuracy)
    if resumed is not None:
        return held.older(), resumed
    if a.model_bytes > 0 and got_bytes > 0:
        return held.older(), InFlight(number, a.model, a.model_bytes, got_bytes, samples,
                                      accuracy)
    return held.older(), None


def kept_if_missed(period, device, a, model_ok):
    """(Allocation, resumed InFlight or None, whether it arrived) of what device ends
    period with: a (its plan's checkpoint, as last re-planned) when model_ok, else the
    checkpoint that had arrived before a larger one was ordered, when there was one."""
    if not model_ok and device in period.arrived_before:
        a, resumed = period.arrived_before[device]
        return a, resumed, True
    return a, period.resumed.get(device), model_ok


def outcome(problem, capacity_mbit, a, resumed, model_ok):
    """What happened to a device in a period (a key of OUTCOMES)."""
    if model_ok:
        return Outcome.RESUMED if resumed is not None else Outcome.DELIVERED
    if a.model_bytes > 0:
        return Outcome.MISSED
    if 8 * problem.smallest_bytes() > capacity_mbit * 1e6 * problem.window_s:
        return Outcome.INFEASIBLE
    if a.reason == Reason.KEEPS:
        return Outcome.KEPT
    if a.upload_share + a.download_share <= 0:
        return Outcome.STARVED
    return Outcome.INFEASIBLE


def link_capacity_mbit(problem, capacity_mbit, channels_mbit=(), down_mbit=None):
    """What a link of capacity_mbit carries at most (Mbit/s): one budget on a shared
    medium, one per direction on a duplex one (the download's at down_mbit, None: at
    capacity_mbit); with per-device channels (their rates channels_mbit) the access
    links' together, or on airtime the fastest channel's (all the airtime to it: the
    most the cell carries)."""
    kind = media.get(problem.medium)
    if channels_mbit and kind.per_device:
        capacity_mbit = sum(channels_mbit)
    elif channels_mbit:
        capacity_mbit = max(channels_mbit)
    if kind.per_direction:
        capacity_mbit += capacity_mbit if down_mbit is None else down_mbit
    return capacity_mbit


def link_capacity_bytes(problem, capacity_mbit, seconds, channels_mbit=(), down_mbit=None):
    """The bytes a link of mean capacity_mbit could carry in seconds
    (``link_capacity_mbit``)."""
    return link_capacity_mbit(problem, capacity_mbit, channels_mbit, down_mbit) * 1e6 / 8 * \
        seconds


def period_demand_bytes(problem, generated):
    """The bytes there are to carry in a period: every device's data (generated: each
    device's samples in a period) and, for each, the largest checkpoint it could be
    sent; a link that carries more than this has nothing left to carry."""
    return sum(generated) * problem.sample_bits / 8 + len(generated) * problem.largest_bytes()


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
        transport.loop = self
        self.write = write
        self.devices = list(transport.devices)
        self.label = state.policy           # the run's policy: the label of its records
        self.plans = {}                     # period -> Plan
        self.lock = threading.Lock()        # efficiency: the backend's sampler reads it
        self.efficiency = {}                # direction -> the latest informative measurement
        start = Held('', self.problem.smallest_bytes(), 0.0, self.problem.kept_map())
        # What the controller knows at a period start (the devices' checkpoint reports)
        # and what the scores use (the data that reached the edge, known later).
        self.known = [start] * len(self.devices)
        self.inflight = {}                  # device -> InFlight, as known
        self.truth = [start] * len(self.devices)
        self.scored = {}                    # device -> InFlight, as the scores have it
        self.current = None                 # the Period under way
        self.last = None                    # the Period before it
        self.medium = media.get(self.problem.medium)

    def run(self):
        """Every period of the scenario in turn."""
        for k in range(1, self.scenario.control.periods + 1):
            self.period(k)

    def period(self, k):
        """Plan period k at its start, carry it through the backend, take what it
        measured; return the Period."""
        start = (k - 1) * self.scenario.control.period_s
        self.transport.wait_until(start)
        if self.last is not None:
            self._settle(self.last)
        period = self.begin(k, start)
        measured = self.transport.finish(period, lambda outcomes: self.score(period,
                                                                             outcomes))
        self.current = None
        self.last = period
        self._measured(measured)
        return period

    def forecast_mbit(self, start_s):
        """The capacity the controller plans the period starting at start_s with: the
        scenario's predictor over the capacity seen so far (never below the link
        layer's minimum)."""
        return self.forecast(start_s)[0]

    def forecast(self, start_s):
        """(capacity, rates): the fleet's capacity the controller plans the period
        starting at start_s with and, with per-device channels, each device's channel
        relative to it (else ()): the scenario's predictor over each channel seen so far
        (never below the link layer's minimum)."""
        link, control = self.scenario.link, self.scenario.control

        def predict(trace):
            return max(control.forecast.predict(trace, start_s, control.period_s, link.step_s),
                       MIN_CAPACITY_MBIT)
        if not link.channels:
            return predict(link.capacity), ()
        each = [predict(c) for c in link.channels]
        mean = sum(each) / len(each)
        return mean, tuple(e / mean for e in each)

    def future(self, start_s):
        """(mean capacity, rates) the period starting at start_s will really have (what
        only oracle may know)."""
        link = self.scenario.link
        end = start_s + self.scenario.control.period_s
        return link.capacity.mean_between(start_s, end), link.rates_between(start_s, end)

    def download(self, start_s, capacity_mbit, future_mbit):
        """(forecast, real): on a duplex link with a download capacity of its own
        (``capacity_down``), the download's capacity relative to the fleet's, as the
        predictor sees it over the download seen so far (relative to the forecast
        capacity_mbit) and as the period will really have it (relative to its real
        mean future_mbit: what only oracle may know); else (1, None)."""
        link, control = self.scenario.link, self.scenario.control
        if link.capacity_down is None:
            return 1.0, None
        predicted = max(control.forecast.predict(link.capacity_down, start_s,
                                                 control.period_s, link.step_s),
                        MIN_CAPACITY_MBIT)
        real = link.capacity_down.mean_between(start_s, start_s + control.period_s)
        return predicted / capacity_mbit, \
            max(real, MIN_CAPACITY_MBIT) / max(future_mbit, MIN_CAPACITY_MBIT)

    def _settle(self, period):
        """Learn which of period's checkpoints arrived (the devices' reports): the
        models the next plan starts from and the checkpoints it may resume."""
        got = self.transport.checkpoints(period)
        drift = self.scenario.control.drift
        inflight = {}
        sample_bytes = self.problem.sample_bits / 8
        for i, (name, a) in enumerate(zip(self.devices, period.plan.devices)):
            got_bytes, ok = got.get(name, (0.0, False))
            a, resumed, ok = kept_if_missed(period, name, a, ok)
            # The data the checkpoint was trained on: under a policy that corrects
            # (measurements feed the closed loop, as its efficiency does), what had
            # reached the edge at the last control step; else the plan's.
            samples, accuracy = a.upload_bytes / sample_bytes, a.accuracy
            if name in period.waiting and self.corrects(period.policy):
                samples = period.arrived(name, period.waiting[name], sample_bytes)
                if a.model_bytes > 0:
                    accuracy = self.problem.fresh_accuracy(samples, a.model_bytes)
            self.known[i], partial = advance(period.number, self.known[i], a,
                                             resumed, got_bytes, ok,
                                             samples, accuracy)
            if partial is not None:
                inflight[name] = partial
        self.inflight = inflight
        log.debug('%s after period %d: models %s, in flight %s', self.label,
                  period.number, [round(h.now(drift), 3) for h in self.known], inflight)

    def begin(self, k, start):
        """Plan period k, split the link, publish the plans, start the transfers."""
        s = self.scenario
        name = self.state.take_policy()
        capacity, rates = self.forecast(start)
        future, future_rates = self.future(start)
        down_ratio, future_down_ratio = self.download(start, capacity, future)
        with self.lock:
            efficiency = dict(self.efficiency)
        problem = dataclasses.replace(self.problem, rates=rates, down_ratio=down_ratio)
        plan_ = planner.plan(problem, name, s.data.generated, capacity, future_mbit=future,
                             future_rates=future_rates, future_down_ratio=future_down_ratio,
                             efficiency=efficiency, ratio=s.control.ratio,
                             floor=s.control.floor,
                             kept=[h.kept(s.control.drift) for h in self.known],
                             inflight=[self.inflight.get(d) for d in self.devices])
        offered = self._offer_resumes(name, plan_)
        period = Period(k, start, plan_, capacity, phases(self.problem, plan_),
                        held=list(self.known), rates=plan_.rates, deferred=offered)
        sample_bytes = self.problem.sample_bits / 8
        for i, (name_, a, generated) in enumerate(zip(self.devices, plan_.devices,
                                                      s.data.generated)):
            partial = self.inflight.get(name_)
            # A checkpoint that missed resumes when the plan sends the same model again,
            # unless it is worth no more than the model the device holds (its data was
            # short): the plan's new one is sent instead.
            if partial is not None and a.model_bytes > 0 and a.model == partial.model and \
                    abs(a.model_bytes - partial.size_bytes) < 0.5 and \
                    partial.accuracy > self.known[i].kept(s.control.drift):
                period.resumed[name_] = partial
            period.upload_limit[name_] = generated * sample_bytes
            period.model_left[name_] = partial.left_bytes if name_ in period.resumed \
                else a.model_bytes
        schedule = share_schedule(self.problem, plan_, self.devices)
        self.transport.set_shares(schedule[0][1])
        for offset, fractions in schedule[1:]:
            self.transport.at(start + offset, lambda f=fractions: self.transport.set_shares(f))
        (u0, u1), (m0, m1) = period.phases
        wall = self.transport.wall_time
        plans = {}
        for name_, a in zip(self.devices, plan_.devices):
            plans[name_] = {'upload_bytes': a.upload_bytes,
                            'upload_limit_bytes': period.upload_limit[name_],
                            'model_bytes': a.model_bytes, 'model': a.model,
                            'upload_window': [wall(start + u0), wall(start + u1)],
                            'download_window': [wall(start + m0), wall(start + m1)],
                            'deadline': wall(start + s.control.period_s)}
            if name_ in period.resumed:
                partial = period.resumed[name_]
                plans[name_]['resume'] = {'period': partial.period,
                                          'offset': partial.got_bytes}
        self.plans[k] = plan_
        self.current = period
        # The backend starts the period (the edge learns its deadlines) before the
        # devices learn their plans and start sending.
        self.transport.start(period)
        self.state.begin_period(k, plans, self.transport.fractions(), capacity, name)
        log.debug('%s period %d: planned by %s at %.3f Mbit/s: %s', self.label, k, name,
                  capacity, plans)
        return period

    def corrects(self, name):
        """Whether a period planned by policy name is corrected within (re-split and
        re-planned): a policy that corrects, with overlapping transfers."""
        return policies.get(name).corrects and self.problem.timing == Timing.OVERLAP

    def _offer_resumes(self, name, plan_):
        """For a policy that re-plans within the period (``adaptive``): each checkpoint
        that missed its deadline, is worth more than the model its device keeps, and
        that plan_ neither resumes nor replaces (the forecast was too low to fit it) is
        put in plan_ deferred: it takes only what no other transfer needs, unless the
        re-plan finishes it (replan.py), rather than being thrown away with the bytes
        it got.  Returns the devices it was offered to."""
        if not self.corrects(name):
            return set()
        drift = self.scenario.control.drift
        offered = set()
        allocations = plan_.allocation.devices
        for i, (device, a) in enumerate(zip(self.devices, plan_.devices)):
            partial = self.inflight.get(device)
            if partial is None or a.model_bytes > 0 or \
                    partial.accuracy <= self.known[i].kept(drift):
                continue
            allocations[i] = dataclasses.replace(
                a, download_share=0.0, model_bytes=partial.size_bytes, model=partial.model,
                accuracy=partial.accuracy, feasible=True, reason=Reason.RESUMES)
            offered.add(device)
        return offered

    def _measured(self, measured):
        """Keep the period's measured efficiency per direction (a direction without a
        measurement keeps its last one: a transfer that finished early says only that
        its share sufficed) and note a drift from the plan."""
        with self.lock:
            self.efficiency.update(measured)
            efficiency = dict(self.efficiency)
        self.state.set_efficiency(efficiency)
        tolerance = self.scenario.control.tolerance
        off = {d: e for d, e in efficiency.items() if abs(e - 1) > tolerance}
        if off:
            self.state.note('%s: goodput differs from plan: %s' % (self.label, ', '.join(
                '%s %.3f' % kv for kv in sorted(off.items()))))

    def control(self, remaining, capacity_mbit, remaining_s, carried_mbit=None, rates=None,
                down_mbit=None):
        """One control step within the current period.  remaining: {(device,
        direction): bytes still to move (data waiting, checkpoint bytes left)};
        capacity_mbit: the link's capacity now; carried_mbit: what the link carried over
        the last step (counts idle steps); rates: with per-device channels, {device: its
        channel now relative to capacity_mbit}; down_mbit: on a duplex link, the
        download's capacity now (None: capacity_mbit).  When the period's policy
        corrects (overlap timing), re-split the rest of the period; return whether the
        shares changed."""
        period, down_mbit = self._take_stock(remaining, capacity_mbit, down_mbit)
        if period is None:
            return False
        if carried_mbit is not None:
            period.steps += 1
            if carried_mbit < IDLE_USE * link_capacity_mbit(self.problem, capacity_mbit,
                                                            down_mbit=down_mbit):
                period.idle_steps += 1
        if not self.corrects(period.policy) or remaining_s <= 0:
            return False
        period.seen.append(max(down_mbit, MIN_CAPACITY_MBIT))
        return self._resplit(period, remaining, capacity_mbit, remaining_s, rates,
                             down_mbit)

    def ended(self, remaining, capacity_mbit, remaining_s, rates=None, down_mbit=None):
        """A transfer that had a share ended between control steps: re-split the rest
        of the current period now rather than leave its share idle until the next step
        (arguments as ``control``'s; nothing is measured or counted: it is no control
        step).  Return whether the shares changed."""
        period, down_mbit = self._take_stock(remaining, capacity_mbit, down_mbit)
        if period is None or not self.corrects(period.policy) or remaining_s <= 0:
            return False
        return self._resplit(period, remaining, capacity_mbit, remaining_s, rates,
                             down_mbit)

    def _take_stock(self, remaining, capacity_mbit, down_mbit):
        """(the current period with the data still waiting noted, the checkpoints'
        capacity now: down_mbit on a medium with a budget per direction, else
        capacity_mbit); (None, down_mbit) between periods."""
        period = self.current
        if period is None:
            return None, down_mbit
        if not self.medium.per_direction or down_mbit is None:
            down_mbit = capacity_mbit
        period.waiting.update({d: left for (d, direction), left in remaining.items()
                               if direction == Direction.UP})
        return period, down_mbit

    def _resplit(self, period, remaining, capacity_mbit, remaining_s, rates, down_mbit):
        """Re-plan and re-split the rest of period (``control``'s arguments); return
        whether the shares changed."""
        with self.lock:
            efficiency = {d: self.efficiency.get(d, GOODPUT_PER_WIRE) for d in ('up', 'down')}
        rates = rates or {}
        arrived = {d for d, a in zip(self.devices, period.plan.devices)
                   if a.model_bytes > 0 and remaining.get((d, 'down'), 0) <= 0}
        remaining, deferred, worth = self._replan(period, remaining, capacity_mbit,
                                                  efficiency, remaining_s, rates, down_mbit)
        # The devices whose data counts this period: a fresh checkpoint (not a resumed
        # one, trained on its own period's data) that has arrived or is still being
        # sent (not deferred).
        valued = {d for d, a in zip(self.devices, period.plan.devices)
                  if a.model_bytes > 0 and d not in period.resumed and d not in deferred
                  and (d in arrived or remaining.get((d, 'down'), 0) > 0)}
        floor = self._floor(period, remaining, valued)
        shares = {}
        for group in self.medium.groups(self.devices):
            # Each group splits its budget (the cell's airtime, a device's own link);
            # a device's bytes (its floor too) take 1 / its channel's relative rate of it.
            weight = {d: 1.0 / rates.get(d, 1.0) for d in group}
            airtime = {k: v * weight[k[0]] for k, v in remaining.items() if k[0] in weight}
            shares.update(correction.resplit(
                airtime, capacity_mbit, efficiency, remaining_s, valued,
                ahead_s=self.scenario.control.control_step_s, deferred=deferred,
                floor={d: f * weight[d] for d, f in floor.items() if d in weight},
                down_mbit=down_mbit if self.medium.per_direction else None,
                worth={d: w for d, w in worth.items() if d in weight}))
        if not correction.changed(self.transport.fractions(), shares):
            return False
        self.transport.set_shares(shares)
        self.state.resplit(shares)
        period.resplits += 1
        log.debug('%s period %d: re-split with %.1f s left: %s', self.label, period.number,
                  remaining_s, shares)
        return True

    def _floor(self, period, remaining, valued):
        """{device: the upload bytes its checkpoint still needs to be worth more than
        the model the device keeps}, for the devices in valued: a checkpoint that
        arrives with less data leaves the device worse off than none."""
        sample_bytes = self.problem.sample_bits / 8
        drift = self.scenario.control.drift
        floor = {}
        for name, held in zip(self.devices, period.held):
            if name not in valued:
                continue
            waiting = remaining.get((name, 'up'), 0.0)
            needed = self.problem.accuracy.samples_for(
                held.kept(drift), self.problem.size_map(period.model_left[name]))
            floor[name] = min(max(needed - period.arrived(name, waiting, sample_bytes),
                                  0.0) * sample_bytes, waiting)
        return floor

    def _replan(self, period, remaining, capacity_mbit, efficiency, remaining_s, rates,
                down_mbit):
        """Re-plan what each device gets from the rest of period (replan.py): order,
        replace or defer checkpoints; return (remaining, the devices whose checkpoints
        are deferred: they take only what no other transfer needs, and the plan keeps
        them, so one may still arrive or resume; {device: the mAP its checkpoint adds
        over the model it keeps, as re-planned}).  rates: each
        device's channel relative to capacity_mbit (airtime: a device's bit weighs 1 /
        its rate; access: each device is re-planned alone on its own link); down_mbit:
        the checkpoints' capacity now (duplex: the download's, a budget of its own)."""
        s = self.scenario
        sample_bytes = self.problem.sample_bits / 8
        horizon = remaining_s - min(s.control.control_step_s, remaining_s / 2)

        # The link's bits in the time left; a bit moved costs 1 / its direction's
        # measured efficiency of them (replan.py).
        goodput = tuple(max(efficiency[d], correction.MIN_RATE)
                        for d in (Direction.UP, Direction.DOWN))

        def bits(mbit):
            return mbit * 1e6 * horizon / correction.MARGIN

        def sure(budget):
            # Growing a locked checkpoint is judged at the capacity the period is sure of.
            return budget * period.sure_mbit(down_mbit) / down_mbit if down_mbit > 0 else 0.0
        if self.medium.per_direction:
            budget_bits = replan.Budget(bits(capacity_mbit), bits(down_mbit))
            sure_bits = replan.Budget(budget_bits.up, sure(budget_bits.down))
        else:
            budget_bits = bits(capacity_mbit)
            sure_bits = sure(budget_bits)
        standings = []
        for name, a, held in zip(self.devices, period.plan.devices, period.held):
            waiting = remaining.get((name, 'up'), 0.0)
            partial = period.resumed.get(name)
            standings.append(replan.Standing(
                kept=held.kept(s.control.drift),
                arrived=period.arrived(name, waiting, sample_bytes),
                waiting=waiting / sample_bytes,
                model=a.model if a.model_bytes > 0 else replan.KEEP,
                size_bytes=period.model_left[name] if partial is None else
                partial.size_bytes,
                left_bytes=remaining.get((name, 'down'), 0.0),
                resumed_accuracy=partial.accuracy if partial else None,
                weight=1.0 / rates.get(name, 1.0), switched=period.switches.get(name, 0),
                deferred=name in period.deferred))
        replace = bool(self.transport.replaces_checkpoints and self.problem.menu)
        chosen = {}
        down_budget = replan.as_budget(budget_bits).checkpoints
        for group in self.medium.groups(self.devices):
            # Each group re-planned within its budget (airtime: a device's bit weighs
            # 1 / its channel's relative rate; access: each device on its own link).
            index = [self.devices.index(name) for name in group]
            # Its checkpoints under way are unlocked when the period is sure to be
            # short of what they still need (replan.py).
            need = sum(8 * remaining.get((name, Direction.DOWN), 0.0) / rates.get(name, 1.0)
                       for name in group if name not in period.deferred) / goodput[1]
            chosen.update(zip(index, replan.replan(
                self.problem, [standings[i] for i in index], budget_bits, replace,
                sure_bits=sure_bits,
                unlock=period.short_of(need, down_budget, down_mbit), goodput=goodput,
                after_arrival=replace and self.transport.upgrades_checkpoints)))
        choices = [chosen[i] for i in range(len(standings))]
        remaining = dict(remaining)
        deferred = set()
        # (correction.resplit takes a worth below 0 as 0)
        worth = {name: choice.accuracy - st.kept
                 for name, st, choice in zip(self.devices, standings, choices)
                 if choice.model != replan.KEEP}
        for name, st, choice in zip(self.devices, standings, choices):
            if st.delivered and choice.size_bytes > st.size_bytes:
                # A larger one after this one arrived adds what the larger model adds.
                worth[name] = choice.accuracy * (1 - self.problem.size_map(st.size_bytes) /
                                                 self.problem.size_map(choice.size_bytes))
        allocations = period.plan.allocation.devices
        for i, (name, st, choice) in enumerate(zip(self.devices, standings, choices)):
            if choice.model == replan.KEEP:
                if remaining.get((name, 'down'), 0.0) > 0:
                    deferred.add(name)
                    # What it then gets of the link no other transfer needed: it does
                    # not lock it in (replan.SWITCH_BEFORE).
                    period.deferred.add(name)
                continue
            if choice.model == st.model and choice.size_bytes == st.size_bytes:
                continue
            # Another checkpoint: the edge distils it now and the device fetches it.
            if st.delivered:
                # A larger one after this one arrived: the device keeps this one should
                # the larger miss.
                period.arrived_before[name] = (allocations[i], period.resumed.get(name))
            allocations[i] = dataclasses.replace(
                allocations[i], model=choice.model, model_bytes=choice.size_bytes,
                accuracy=choice.accuracy, feasible=True, reason='')
            period.resumed.pop(name, None)
            period.model_left[name] = choice.size_bytes
            period.switches[name] = period.switches.get(name, 0) + 1
            remaining[(name, 'down')] = choice.size_bytes
            self.transport.replace(period, name, choice.size_bytes)
            log.debug('%s period %d: %s now gets %s (%.0f bytes) with %.1f s left',
                      self.label, period.number, name, choice.model, choice.size_bytes,
                      remaining_s)
        return remaining, deferred, worth

    def score(self, period, outcomes):
        """Score period from {device: Received} and write its records."""
        s = self.scenario
        end = period.start_s + s.control.period_s
        mean_cap = s.link.capacity.mean_between(period.start_s, end)
        own = s.link.channel_means_between(period.start_s, end)
        down = s.link.capacity_down
        link_bytes = link_capacity_bytes(
            self.problem, mean_cap, s.control.period_s, own,
            None if down is None else down.mean_between(period.start_s, end))
        channels = own or [mean_cap] * len(self.devices)
        demand_bytes = period_demand_bytes(self.problem, s.data.generated)
        rows = []
        for i, (name, a) in enumerate(zip(self.devices, period.plan.devices)):
            got = outcomes[name]
            a, resumed, model_ok = kept_if_missed(period, name, a, got.model_ok)
            got = dataclasses.replace(got, model_ok=model_ok)
            samples = got.upload_bytes * 8 / self.problem.sample_bits
            new = self.problem.fresh_accuracy(samples, a.model_bytes) \
                if a.model_bytes > 0 else 0.0
            kept_accuracy = self.truth[i].kept(s.control.drift)
            # A resumed checkpoint scores what the data that reached the edge in its own
            # period made of it (the controller's InFlight holds what it knew).
            scored = self.scored.get(name)
            if resumed is not None and (scored is None or (scored.period, scored.model) !=
                                        (resumed.period, resumed.model)):
                scored = resumed
            self.truth[i], self.scored[name] = advance(
                period.number, self.truth[i], a, scored if resumed is not None else None,
                got.model_bytes, got.model_ok, samples, new)
            accuracy = self.truth[i].now(s.control.drift)
            happened = outcome(self.problem, period.plan.capacity_mbit * (
                period.rates[i] if period.rates else 1.0) * period.plan.down_ratio, a,
                resumed, got.model_ok)
            rows.append(record(self.label, period.number, name, mean_cap, a,
                               period.plan.solver_ms, got.upload_bytes, got.model_bytes,
                               got.model_ok, accuracy, outcome=happened,
                               planned_by=period.policy, predictor=s.control.forecast.name,
                               forecast_mbit=period.forecast_mbit,
                               planned_mbit=period.plan.capacity_mbit,
                               resumed_from=resumed.period if resumed else None,
                               model_age=self.truth[i].age, kept_accuracy=kept_accuracy,
                               link_bytes=link_bytes, demand_bytes=demand_bytes,
                               resplits=period.resplits,
                               switches=period.switches.get(name, 0),
                               channel_mbit=channels[i],
                               planned_channel=period.rates[i] if period.rates else 1.0,
                               idle_fraction=period.idle_fraction,
                               **got.measured))
            if happened in WENT_WRONG:
                self.state.note('%s period %d: %s %s%s' % (
                    self.label, period.number, name, happened,
                    ': %s' % got.measured.get('status') if happened == Outcome.MISSED else ''))
        delivered = sum(r['upload_bytes'] + r['model_bytes'] for r in rows)
        log.debug('%s period %d: %s; %.0f%% of what the link could carry, idle %s',
                  self.label, period.number,
                  ', '.join('%s %s' % (r['device'], r['outcome']) for r in rows),
                  100 * delivered / link_bytes if link_bytes else 0,
                  '%.0f%%' % (100 * period.idle_fraction)
                  if period.idle_fraction is not None else 'not measured')
        self.write(rows)
