"""A policy file that never finishes being imported."""
while True:
    pass
