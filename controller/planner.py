"""A period's plan: every device's shares and transfers under a policy.

The one place a policy meets the devices, used by ``edgecollab solve``, the fluid
backend and the live controller alike.  ``optimal`` (and ``oracle``/``adaptive``, which
re-solve it with another capacity) is the fleet optimum over every device
(``fleet.py``); a baseline splits the capacity equally among the devices and applies
itself to each part.  Shares are fractions of the capacity (per direction on a duplex
medium).
"""

import dataclasses
import time
from dataclasses import dataclass

from edgecollab.controller import policies
from edgecollab.controller.fleet import FleetAllocation, solve_fleet
from edgecollab.controller.policies import PolicyState

FLEET_POLICIES = ('optimal', 'oracle', 'adaptive')


@dataclass
class Plan:
    """A policy's answer for one period: a FleetAllocation and the time it took."""
    policy: str
    capacity_mbit: float
    allocation: FleetAllocation
    solver_ms: float

    @property
    def devices(self):
        """The per-device Allocations, in device order."""
        return self.allocation.devices


def effective_capacity(name, capacity_mbit, future_mbit=None, efficiency=None):
    """The capacity a fleet policy plans with: measured now (optimal), the period's
    real mean (oracle), or scaled by the measured efficiency (adaptive)."""
    if name == 'oracle' and future_mbit is not None:
        return future_mbit
    if name == 'adaptive':
        return capacity_mbit * policies.planning_efficiency(efficiency)
    return capacity_mbit


def plan(problem, name, generated, capacity_mbit, future_mbit=None, efficiency=None,
         ratio=0.5, floor=None):
    """The Plan of policy name for devices with the given data volumes."""
    began = time.perf_counter()
    func = policies.get(name)
    if name in FLEET_POLICIES:
        use = effective_capacity(name, capacity_mbit, future_mbit, efficiency)
        # The shares of a solve at the effective capacity are applied as fractions of
        # the link's capacity: the link then delivers what the solve planned (oracle:
        # the period's mean capacity; adaptive: the efficiency TCP really gets).
        answer = solve_fleet(dataclasses.replace(problem, capacity_mbit=use), generated,
                             floor)
    else:
        n = len(generated)
        part = dataclasses.replace(problem, capacity_mbit=capacity_mbit / n)
        devices = [func(PolicyState(dataclasses.replace(part, generated=float(g)),
                                    ratio=ratio)) for g in generated]
        for a in devices:
            a.upload_share /= n
            a.download_share /= n
        answer = FleetAllocation(devices)
    return Plan(name, capacity_mbit, answer, (time.perf_counter() - began) * 1000)
