"""A policy file whose policies answer what no policy may: NaN shares, more than the
whole budget, something that is no allocation."""
from edgecollab.controller import policies
from edgecollab.controller.solver import Allocation, FleetAllocation


@policies.register('nan-shares')
def nan_shares(state):
    return Allocation(float('nan'), 0.5, 1e6, 1e6, 30.0)


@policies.register('too-much')
def too_much(state):
    return Allocation(0.9, 0.9, 1e6, 1e6, 30.0)


class NoAllocation(policies.FleetPolicy):
    def plan(self, state, generated):
        return {'upload_share': 0.5}


policies.register('no-allocation')(NoAllocation)


class NegativeBytes(policies.FleetPolicy):
    def plan(self, state, generated):
        return FleetAllocation([Allocation(0.4, 0.1, -5.0, 1e6, 30.0) for _ in generated])


policies.register('negative-bytes')(NegativeBytes)


class NanCapacity(policies.FleetPolicy):
    def planning_capacity(self, state):
        return float('nan')


policies.register('nan-capacity')(NanCapacity)
