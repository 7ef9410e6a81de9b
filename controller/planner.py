"""A period's plan: every device's shares and transfers under a policy.

The one place a policy meets the devices, used by ``edgecollab solve`` and the control
loop of both backends.  The policy object decides how (``policies.py``); this module
times it and keeps its name with the answer.  Shares are fractions of the capacity (per
direction on a duplex medium).
"""

import dataclasses
import time
from dataclasses import dataclass

from edgecollab.controller import policies
from edgecollab.controller.fleet import FleetAllocation
from edgecollab.controller.policies import PolicyState
from edgecollab.errors import PolicyError


@dataclass
class Plan:
    """A policy's answer for one period: the capacity it planned with (Mbit/s; the
    forecast, or what the policy made of it), a FleetAllocation and the time it took."""
    policy: str
    capacity_mbit: float
    allocation: FleetAllocation
    solver_ms: float

    @property
    def devices(self):
        """The per-device Allocations, in device order."""
        return self.allocation.devices


def plan(problem, name, generated, capacity_mbit, future_mbit=None, efficiency=None,
         ratio=0.5, floor=None, kept=None, inflight=None):
    """The Plan of policy name for devices with the given data volumes (samples), the
    link's capacity seen now capacity_mbit, the period's real mean future_mbit, the
    accuracy each device keeps with its own model (kept; None: the problem's fallback)
    and the checkpoint each has in flight (InFlight or None)."""
    began = time.perf_counter()
    policy = policies.get(name)
    state = PolicyState(dataclasses.replace(problem, capacity_mbit=capacity_mbit),
                        future_capacity_mbit=future_mbit, efficiency=efficiency,
                        ratio=ratio, floor=floor, kept=kept, inflight=inflight)
    try:
        answer = policy.plan(state, [float(g) for g in generated])
    except (Exception, SystemExit) as exc:
        if policy.source is None:
            raise
        # A user's policy is code from a file: name it, and never end the process.
        raise PolicyError('policy %r from %s failed: %s: %s' % (
            name, policy.source, type(exc).__name__, exc)) from exc
    return Plan(name, policy.planning_capacity(state), answer,
                (time.perf_counter() - began) * 1000)
