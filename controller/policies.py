"""Allocation policies as objects, and their registry.

A policy is a ``Policy`` object that carries its behaviour: how it plans a period for
every device (``plan``), the capacity it plans with, the link mode it needs
(``link_mode``) and whether the controller corrects its split within a period
(``corrects``).  Two kinds: a ``FleetPolicy`` plans all devices together (the fleet
optimum, ``fleet.py``); a ``DevicePolicy`` splits the capacity equally among the devices
and applies its ``allocate`` to each part.  What a policy sees is a ``PolicyState``.

Register your own with ``@register('name')`` in a Python file a scenario names: on a
function ``allocate(state) -> Allocation`` (a per-device policy) or on a subclass of
``DevicePolicy`` or ``FleetPolicy``.  ``POLICIES`` maps every name to its object.

The paper's own baselines are not known (its body is not available); the baselines here
are the ones its notes list: equal split, fixed ratio, upload-first (all to upload but
the smallest model), model-first (largest model first), demand-proportional, and plain
TCP sharing with no split.
"""

import dataclasses
import itertools
from dataclasses import dataclass

from edgecollab.topologies import media
from edgecollab.controller import correction
from edgecollab.controller.fleet import FleetAllocation, solve_fleet
from edgecollab.controller.solver import Allocation, evaluate, nothing_fits, solve
from edgecollab import userfile
from edgecollab.errors import ConfigError
from edgecollab.kinds import LinkMode, Reason
from edgecollab.wire import GOODPUT_PER_WIRE

POLICIES = {}
_loading = None          # the policy file being imported: its policies' source
# The naive splits a planning policy is held against.
BASELINES = ('equal', 'upload-first', 'model-first', 'proportional', 'tcp-fair')
# The policies a scenario compares when it names none.
DEFAULT_POLICIES = ('optimal',) + BASELINES


@dataclass
class PolicyState:
    """What a policy sees at a period start.

    problem: the Problem at the capacity measured now (the whole fleet's in ``plan``, one
    device's part in ``allocate``); future_capacity_mbit: the mean capacity the period
    will really have (only ``oracle`` may look); efficiency: {'up': achieved/allocated,
    'down': ...} measured on the link (``adaptive``); ratio: the upload fraction of
    ``fixed``; floor: the fleet's fairness floor (mAP) or None; kept: the accuracy each
    device has through the period if it keeps its model (None: the problem's fallback;
    in ``allocate`` the problem's fallback_map is the device's own); inflight: per
    device, the checkpoint that missed the last deadline part-way (``holding.InFlight``)
    or None; future_rates: with per-device channels, each one's real mean over the
    period relative to future_capacity_mbit; future_down_ratio: on a duplex medium, the
    download's real mean over the period relative to future_capacity_mbit (both only
    ``oracle`` may look).
    """
    problem: object
    future_capacity_mbit: float = None
    future_rates: tuple = ()
    future_down_ratio: float = None
    efficiency: dict = None
    ratio: float = 0.5
    floor: float = None
    kept: list = None
    inflight: list = None


class Policy:
    """How one policy plans; subclasses say what differs."""
    corrects = False      # the controller re-splits the rest of a period that would miss
    link_mode = None      # the link mode the policy needs (None: the scenario's)
    source = None         # the policy file it came from (None: built in)
    time_limit_s = None   # how long its plan may take (a policy file's: user code)

    def __init__(self, name):
        self.name = name

    def plan(self, state, generated):
        """The FleetAllocation of devices with the given data volumes (samples)."""
        raise NotImplementedError

    def planning_capacity(self, state):
        """The capacity (Mbit/s) the policy plans with: the controller's forecast."""
        return state.problem.capacity_mbit

    def planning_problem(self, state):
        """The fleet's Problem the policy plans: at its planning capacity (and, with
        per-device channels, the channel rates it plans with: the forecast's)."""
        return dataclasses.replace(state.problem,
                                   capacity_mbit=self.planning_capacity(state))

    def allocate(self, state):
        """One device's Allocation for state.problem."""
        raise NotImplementedError

    def __repr__(self):
        return '<%s %s>' % (type(self).__name__, self.name)


class FleetPolicy(Policy):
    """Plans every device together: the fleet optimum at the capacity it plans with."""

    def plan(self, state, generated):
        # The shares of a solve at the planning capacity are applied as fractions of the
        # link's capacity: the link then delivers what the solve planned (oracle: the
        # period's mean capacity; adaptive: the efficiency TCP really gets).
        problem = self.planning_problem(state)
        best = solve_fleet(problem, generated, state.floor, state.kept)
        for subset in resume_choices(state.inflight, problem.medium):
            other = resuming(problem, generated, state, subset)
            if other is not None and other.mean_accuracy > best.mean_accuracy + 1e-9:
                best = other
        return best

    def allocate(self, state):
        return solve(self.planning_problem(state))


RESUME_SUBSETS_UP_TO = 4   # devices with a checkpoint in flight: every subset resumes


def resume_choices(inflight, medium):
    """The sets of devices (indices) whose checkpoints in flight a plan may resume:
    every non-empty subset for up to RESUME_SUBSETS_UP_TO of them, else each alone and
    all together.  None where each device is planned alone on a link of its own
    (access)."""
    waiting = [i for i, f in enumerate(inflight or []) if f is not None]
    if not waiting or media.get(medium).per_device:
        return []
    if len(waiting) <= RESUME_SUBSETS_UP_TO:
        return [tuple(c) for k in range(1, len(waiting) + 1)
                for c in itertools.combinations(waiting, k)]
    return [(i,) for i in waiting] + [tuple(waiting)]


def resuming(problem, generated, state, subset):
    """The fleet plan in which the devices in subset finish their checkpoints in flight
    (the bytes left, no data: the checkpoint's training data is behind it) and the
    others share the rest of the budget optimally (on a duplex medium the resumed bytes
    take the download's budget only: the others keep the whole upload); None when it
    does not fit or breaks the floor."""
    w = problem.weights(len(generated))
    left_bits = sum(w[i] * 8 * state.inflight[i].left_bytes for i in subset)
    duplex = media.get(problem.medium).per_direction
    budget = problem.down_budget_bits       # the whole budget on a shared medium
    if budget <= 0 or left_bits >= budget or (state.floor is not None and any(
            state.inflight[i].accuracy < state.floor for i in subset)):
        return None
    rest = 1 - left_bits / budget
    others = [i for i in range(len(generated)) if i not in subset]
    kept = state.kept or [problem.kept_map()] * len(generated)
    rates = tuple(problem.rates[i] for i in others) if problem.rates else ()
    smaller = dataclasses.replace(problem, down_ratio=problem.down_ratio * rest) if duplex \
        else dataclasses.replace(problem, capacity_mbit=problem.capacity_mbit * rest)
    up_scale = 1.0 if duplex else rest
    solved = solve_fleet(dataclasses.replace(smaller, rates=rates),
                         [generated[i] for i in others], state.floor,
                         [kept[i] for i in others]) if others else None
    devices = [None] * len(generated)
    for i in subset:
        f = state.inflight[i]
        devices[i] = Allocation(0.0, w[i] * 8 * f.left_bytes / budget, 0.0, f.size_bytes,
                                f.accuracy,
                                model=f.model, reason=Reason.RESUMES)
    for i, a in zip(others, solved.devices if solved else []):
        devices[i] = dataclasses.replace(a, upload_share=a.upload_share * up_scale,
                                         download_share=a.download_share * rest)
    return FleetAllocation(devices, feasible=solved.feasible if solved else True,
                           reason=solved.reason if solved else '',
                           exact=solved.exact if solved else True)


class DevicePolicy(Policy):
    """Splits the capacity equally among the devices (airtime: the airtime; access:
    each has its own link) and allocates each part alone."""

    def plan(self, state, generated):
        n = len(generated)
        devices = []
        kept = state.kept or [None] * n
        for g, k, (part, scale) in zip(generated, kept, state.problem.parts(n)):
            a = self.allocate(dataclasses.replace(
                state, problem=dataclasses.replace(part, generated=float(g), fallback_map=k)))
            a.upload_share *= scale
            a.download_share *= scale
            devices.append(a)
        return FleetAllocation(devices)


class FunctionPolicy(DevicePolicy):
    """A per-device policy written as a function ``allocate(state) -> Allocation``."""

    def __init__(self, name, func):
        super().__init__(name)
        self.func = func

    def allocate(self, state):
        return self.func(state)


def register(name):
    """Decorator adding a policy under name: a function allocate(state) (a per-device
    policy) or a subclass of DevicePolicy or FleetPolicy."""
    def add(obj):
        if name in POLICIES:
            raise ConfigError('policy %r is registered twice' % name)
        if isinstance(obj, type) and issubclass(obj, Policy):
            POLICIES[name] = obj(name)
        elif callable(obj):
            POLICIES[name] = FunctionPolicy(name, obj)
        else:
            raise ConfigError('policy %r: register a function or a Policy subclass, '
                              'not %r' % (name, obj))
        POLICIES[name].source = _loading
        return obj
    return add


def get(name):
    """The Policy called name, or ConfigError listing the known ones."""
    try:
        return POLICIES[name]
    except (KeyError, TypeError):
        raise ConfigError('unknown policy %r (known: %s)'
                          % (name, ', '.join(sorted(POLICIES)))) from None


def load_file(path, time_limit_s=userfile.DEFAULT_TIME_LIMIT_S):
    """Import a user's Python file whose @register calls add policies (its errors are a
    ConfigError naming it); its import and each of its policies' plans may take
    time_limit_s at most."""
    global _loading
    _loading = path
    try:
        module = userfile.load(path, 'edgecollab_user_policies', 'policy file',
                               time_limit_s)
    finally:
        _loading = None
    for policy in POLICIES.values():
        if policy.source == path:
            policy.time_limit_s = time_limit_s
    return module


def _split(problem, upload_fraction):
    """Allocation of a fixed split: upload up to its fraction, the largest model that
    fits in the rest (the menu's largest fitting variant where there is a menu; duplex:
    the rest of the download's budget)."""
    if problem.budget_bits <= 0:
        return nothing_fits(problem, 'no capacity in the window')
    room_bytes = (1 - upload_fraction) * problem.down_budget_bits / 8
    if problem.menu:
        fitting = [v for v in problem.menu if v.size_bytes <= room_bytes * (1 + 1e-9)]
        if not fitting:
            return nothing_fits(problem, 'no variant fits in the model share', upload_fraction)
        best = max(fitting, key=lambda v: v.size_bytes)
        return evaluate(problem, upload_fraction, best.size_bytes, best.name)
    if room_bytes < problem.min_model_bytes * (1 - 1e-9):
        return nothing_fits(problem, 'the model share cannot carry the smallest model',
                            upload_fraction)
    return evaluate(problem, upload_fraction)


@register('optimal')
class Optimal(FleetPolicy):
    """The paper's optimum for the capacity known at the period start."""


@register('equal')
def equal(state):
    """50/50 between upload and model."""
    return _split(state.problem, 0.5)


@register('fixed')
def fixed(state):
    """A given upload fraction (state.ratio)."""
    if not 0 <= state.ratio <= 1:
        raise ConfigError('fixed ratio must be in [0, 1], got %r' % state.ratio)
    return _split(state.problem, state.ratio)


def _fraction(bits, budget_bits):
    """bits as a fraction of a period's budget (0 when there is no budget): the
    upload's ``budget_bits``, or the models' ``down_budget_bits`` (the download's on a
    duplex medium)."""
    return bits / budget_bits if budget_bits > 0 else 0.0


@register('upload-first')
def upload_first(state):
    """Everything to upload but the smallest model."""
    problem = state.problem
    return _split(problem, max(0.0, 1 - _fraction(8 * problem.smallest_bytes(),
                                                  problem.down_budget_bits)))


@register('model-first')
def model_first(state):
    """The largest model that fits first, the rest to upload."""
    problem = state.problem
    if problem.menu:
        sizes = sorted((v.size_bytes for v in problem.menu), reverse=True)
    else:
        sizes = [min(problem.max_model_bytes, problem.down_budget_bits / 8)]
    for size in sizes:
        share = _fraction(8 * size, problem.down_budget_bits)
        if share <= 1 and problem.budget_bits > 0:
            return _split(problem, 1 - share)
    return nothing_fits(problem, 'no model fits in the window')


@register('proportional')
def proportional(state):
    """Split in proportion to demand: the data generated and the largest model."""
    problem = state.problem
    data_bits = problem.generated * problem.sample_bits
    return _split(problem, data_bits / (data_bits + 8 * problem.largest_bytes()))


@register('tcp-fair')
class TcpFair(DevicePolicy):
    """No controller split: the two directions share as TCP flows would (max-min fair:
    half each, and what one direction does not need goes to the other); the link
    borrows freely between them."""
    link_mode = LinkMode.WORK_CONSERVING

    def allocate(self, state):
        """The max-min fair split of state.problem."""
        return _tcp_fair(state.problem)


def _tcp_fair(problem):
    data_need = _fraction(problem.generated * problem.sample_bits, problem.budget_bits)
    model_need = _fraction(8 * problem.largest_bytes(), problem.down_budget_bits)
    if data_need < 0.5:
        upload = data_need
    elif model_need < 0.5:
        upload = 1 - model_need
    else:
        upload = 0.5
    return _split(problem, upload)


@register('oracle')
class Oracle(FleetPolicy):
    """The optimum for the capacity the period will really have (knows the future)."""

    def planning_capacity(self, state):
        if state.future_capacity_mbit is None:
            return state.problem.capacity_mbit
        return state.future_capacity_mbit

    def planning_problem(self, state):
        problem = super().planning_problem(state)
        if state.future_rates and problem.rates:
            problem = dataclasses.replace(problem, rates=tuple(state.future_rates))
        if state.future_down_ratio is not None and state.future_capacity_mbit is not None:
            problem = dataclasses.replace(problem, down_ratio=state.future_down_ratio)
        return problem


@register('adaptive')
class Adaptive(FleetPolicy):
    """Closed loop: plan with the effective capacity TCP really achieves (the measured
    efficiency, achieved / allocated, weighting the budget) and re-split within a period
    when a transfer would miss its deadline.  The plan keeps the headroom the re-split
    gives a checkpoint (``correction.MARGIN``): a plan that fills the forecast exactly
    leaves its data short as soon as the period is a few percent below it (measured
    over 12 corpora of traces, docs/real-traces.md)."""
    corrects = True

    def planning_capacity(self, state):
        return state.problem.capacity_mbit * planning_efficiency(state.efficiency) / \
            correction.MARGIN


def planning_efficiency(efficiency):
    """The efficiency a closed-loop plan assumes: the lowest measured direction (clipped
    to [0.05, 1]); before any measurement the header overhead of full-size segments."""
    measured = [min(max(v, 0.05), 1.0) for v in (efficiency or {}).values() if v is not None]
    return min(measured) if measured else GOODPUT_PER_WIRE
