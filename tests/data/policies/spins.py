"""A policy file whose policy never returns from planning."""
from edgecollab.controller import policies


@policies.register('spins')
def spins(state):
    while True:
        pass
