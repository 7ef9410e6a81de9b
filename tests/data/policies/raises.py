"""A policy file that raises while it is imported."""
raise ValueError('no policies today')
