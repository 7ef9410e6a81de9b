"""Allocation policies behind one small interface, and their registry.

A policy is a callable ``allocate(state) -> Allocation`` where ``state`` is a
``PolicyState``: the period's Problem as the controller knows it at the period start,
plus what some policies may use (the future mean capacity of the period for ``oracle``,
the measured efficiency per direction for ``adaptive``).  Register your own with
``@register('name')`` in a Python file a scenario names; ``POLICIES`` lists them all.

The paper's own baselines are not known (its body is not available); the baselines here
are the ones its notes list: equal split, fixed ratio, upload-first (all to upload but
the smallest model), model-first (largest model first), demand-proportional, and plain
TCP sharing with no split.
"""

import dataclasses
import importlib.util
from dataclasses import dataclass

from edgecollab.controller.linkshare import GOODPUT_PER_WIRE
from edgecollab.controller.solver import evaluate, nothing_fits, solve
from edgecollab.errors import ConfigError

POLICIES = {}


def register(name):
    """Decorator adding a policy under name."""
    def add(func):
        if name in POLICIES:
            raise ConfigError('policy %r is registered twice' % name)
        POLICIES[name] = func
        return func
    return add


@dataclass
class PolicyState:
    """What a policy sees at a period start.

    problem: the Problem at the capacity measured now; future_capacity_mbit: the mean
    capacity the period will really have (only ``oracle`` may look); efficiency:
    {'up': achieved/allocated, 'down': ...} measured on the link (``adaptive``);
    ratio: the upload fraction of ``fixed``.
    """
    problem: object
    future_capacity_mbit: float = None
    efficiency: dict = None
    ratio: float = 0.5


def get(name):
    """The policy called name, or ConfigError listing the known ones."""
    try:
        return POLICIES[name]
    except KeyError:
        raise ConfigError('unknown policy %r (known: %s)'
                          % (name, ', '.join(sorted(POLICIES)))) from None


def load_file(path):
    """Import a user's Python file whose @register calls add policies."""
    spec = importlib.util.spec_from_file_location('edgecollab_user_policies', path)
    if spec is None or spec.loader is None:
        raise ConfigError('%s: cannot load as a Python file of policies' % path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except OSError as exc:
        raise ConfigError('%s: %s' % (path, exc.strerror)) from None
    return module


def _split(problem, upload_fraction):
    """Allocation of a fixed split: upload up to its fraction, the largest model that
    fits in the rest (the menu's largest fitting variant where there is a menu)."""
    budget = problem.budget_bits
    if budget <= 0:
        return nothing_fits(problem, 'no capacity in the window')
    room_bytes = (1 - upload_fraction) * budget / 8
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
def optimal(state):
    """The paper's optimum for the capacity known at the period start."""
    return solve(state.problem)


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


def _fraction(problem, bits):
    """bits as a fraction of the period's budget (0 when there is no budget)."""
    budget = problem.budget_bits
    return bits / budget if budget > 0 else 0.0


@register('upload-first')
def upload_first(state):
    """Everything to upload but the smallest model."""
    problem = state.problem
    return _split(problem, max(0.0, 1 - _fraction(problem, 8 * problem.smallest_bytes())))


@register('model-first')
def model_first(state):
    """The largest model that fits first, the rest to upload."""
    problem = state.problem
    if problem.menu:
        sizes = sorted((v.size_bytes for v in problem.menu), reverse=True)
    else:
        sizes = [min(problem.max_model_bytes, problem.budget_bits / 8)]
    for size in sizes:
        if _fraction(problem, 8 * size) <= 1 and problem.budget_bits > 0:
            return _split(problem, 1 - _fraction(problem, 8 * size))
    return nothing_fits(problem, 'no model fits in the window')


@register('proportional')
def proportional(state):
    """Split in proportion to demand: the data generated and the largest model."""
    problem = state.problem
    data_bits = problem.generated * problem.sample_bits
    return _split(problem, data_bits / (data_bits + 8 * problem.largest_bytes()))


@register('tcp-fair')
def tcp_fair(state):
    """No controller split: the two directions share as TCP flows would (max-min fair:
    half each, and what one direction does not need goes to the other)."""
    problem = state.problem
    data_need = _fraction(problem, problem.generated * problem.sample_bits)
    model_need = _fraction(problem, 8 * problem.largest_bytes())
    if data_need < 0.5:
        upload = data_need
    elif model_need < 0.5:
        upload = 1 - model_need
    else:
        upload = 0.5
    return _split(problem, upload)


@register('oracle')
def oracle(state):
    """The optimum for the capacity the period will really have (knows the future)."""
    if state.future_capacity_mbit is None:
        return solve(state.problem)
    return solve(dataclasses.replace(state.problem,
                                     capacity_mbit=state.future_capacity_mbit))


@register('adaptive')
def adaptive(state):
    """Closed loop: re-solve with the effective capacity TCP really achieves, the
    measured efficiency (achieved / allocated) of each direction weighting the budget."""
    # Shares of the solve at the effective capacity, applied as fractions of the real
    # one, deliver what the solve planned.
    return solve(dataclasses.replace(state.problem, capacity_mbit=state.problem.capacity_mbit *
                                     planning_efficiency(state.efficiency)))


def planning_efficiency(efficiency):
    """The efficiency a closed-loop plan assumes: the lowest measured direction (clipped
    to [0.05, 1]); before any measurement the header overhead of full-size segments."""
    measured = [min(max(v, 0.05), 1.0) for v in (efficiency or {}).values() if v is not None]
    return min(measured) if measured else GOODPUT_PER_WIRE
