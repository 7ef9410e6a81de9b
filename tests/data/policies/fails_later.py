"""A policy file whose policy raises (or exits) when it plans."""
import sys

from edgecollab.controller import policies


@policies.register('crashes')
def crashes(state):
    raise ZeroDivisionError('division by zero in the plan')


@policies.register('quits')
def quits(state):
    sys.exit(0)
