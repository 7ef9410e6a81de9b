"""A policy file that is not Python."""
def policy(state:
