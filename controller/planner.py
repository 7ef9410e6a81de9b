"""A period's plan: every device's shares and transfers under a policy.

The one place a policy meets the devices, used by ``edgecollab solve`` and the control
loop of both backends.  The policy object decides how (``policies.py``); this module
times it and keeps its name with the answer.  Shares are fractions of the capacity (per
direction on a duplex medium).
"""

import dataclasses
import math
import numbers
import time
from dataclasses import dataclass

from edgecollab import userfile
from edgecollab.topologies import media
from edgecollab.controller import policies
from edgecollab.controller.fleet import FleetAllocation
from edgecollab.controller.policies import PolicyState
from edgecollab.controller.solver import Allocation
from edgecollab.errors import PolicyError


@dataclass
class Plan:
    """A policy's answer for one period: the capacity it planned with (Mbit/s; the
    forecast, or what the policy made of it), a FleetAllocation, the time it took and,
    with per-device channels, each device's channel rate relative to capacity_mbit it
    planned with; on a duplex medium, the download's capacity relative to it."""
    policy: str
    capacity_mbit: float
    allocation: FleetAllocation
    solver_ms: float
    rates: tuple = ()
    down_ratio: float = 1.0

    @property
    def devices(self):
        """The per-device Allocations, in device order."""
        return self.allocation.devices


def plan(problem, name, generated, capacity_mbit, future_mbit=None, efficiency=None,
         ratio=0.5, floor=None, kept=None, inflight=None, future_rates=(),
         future_down_ratio=None):
    """The Plan of policy name for devices with the given data volumes (samples), the
    link's capacity seen now capacity_mbit, the period's real mean future_mbit, the
    accuracy each device keeps with its own model (kept; None: the problem's fallback)
    and the checkpoint each has in flight (InFlight or None); future_rates: with
    per-device channels, each one's real mean over the period relative to future_mbit;
    future_down_ratio: on a duplex medium, the download's real mean relative to it.  The
    problem's down_ratio is the download's capacity seen now relative to capacity_mbit."""
    began = time.perf_counter()
    policy = policies.get(name)
    state = PolicyState(dataclasses.replace(problem, capacity_mbit=capacity_mbit),
                        future_capacity_mbit=future_mbit, future_rates=future_rates,
                        future_down_ratio=future_down_ratio,
                        efficiency=efficiency,
                        ratio=ratio, floor=floor, kept=kept, inflight=inflight)
    volumes = [float(g) for g in generated]

    def ask():
        return policy.plan(state, volumes), policy.planning_capacity(state)
    if policy.source is None:
        answer, planned_mbit = ask()
    else:
        # A user's policy is code from a file: time-limited, named when it fails, and
        # never ending the process.
        try:
            answer, planned_mbit = userfile.limited(
                ask, policy.time_limit_s or userfile.DEFAULT_TIME_LIMIT_S,
                'policy %r from %s, planning' % (name, policy.source))
        except userfile.Overran as exc:
            raise PolicyError(str(exc)) from None
        except (Exception, SystemExit) as exc:
            raise PolicyError('policy %r from %s failed: %s: %s' % (
                name, policy.source, type(exc).__name__, exc)) from exc
    why = answer_problem(answer, len(volumes), problem.medium)
    if not why and (isinstance(planned_mbit, bool) or
                    not isinstance(planned_mbit, numbers.Real) or
                    not math.isfinite(planned_mbit) or planned_mbit < 0):
        why = 'a planning capacity of %r Mbit/s (a finite number >= 0 is needed)' % (
            planned_mbit,)
    if why:
        raise PolicyError('policy %r%s answered %s' % (
            name, ' from %s' % policy.source if policy.source else ' (built in)', why))
    planned = policy.planning_problem(state)
    return Plan(name, float(planned_mbit), answer, (time.perf_counter() - began) * 1000,
                planned.rates, planned.down_ratio)


SHARE_SLACK = 1e-6     # rounding a policy's shares may carry past a whole budget


def answer_problem(answer, devices, medium):
    """What is wrong with a policy's answer for devices on medium ('' when nothing): a
    FleetAllocation of one Allocation a device, every number finite, shares and bytes
    >= 0, accuracies in [0, 100], the shares within the medium's budgets.  Built-in and user policies alike."""
    if not isinstance(answer, FleetAllocation):
        return 'a %s, not a FleetAllocation' % type(answer).__name__
    if not isinstance(answer.devices, (list, tuple)) or len(answer.devices) != devices:
        return 'no list of %d device allocations' % devices
    for index, a in enumerate(answer.devices, start=1):
        if not isinstance(a, Allocation):
            return 'a %s for device %d, not an Allocation' % (type(a).__name__, index)
        for field in ('upload_share', 'download_share', 'upload_bytes', 'model_bytes',
                      'accuracy'):
            value = getattr(a, field)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                    not math.isfinite(value) or value < 0:
                return '%s %r for device %d (a finite number >= 0 is needed)' % (
                    field, value, index)
        if a.accuracy > 100:
            return 'accuracy %r for device %d (at most 100 mAP)' % (a.accuracy, index)
    shares = {'device %d' % index: {'up': a.upload_share, 'down': a.download_share}
              for index, a in enumerate(answer.devices, start=1)}
    for what, total in media.get(medium).budgets(shares):
        if total > 1 + SHARE_SLACK:
            return 'shares summing to %.6g of the budget (%s), more than the whole' % (
                total, what)
    return ''
