"""edgecollab: network emulation for end-edge AI model collaboration.

The package maps the repository's top-level folders into one namespace:
``edgecollab.topologies``, ``edgecollab.controller``, ``edgecollab.nodes`` and
``edgecollab.scenarios``; shared plumbing (errors, units, commands, cleanup) lives here.
"""

__version__ = '0.1.0'

# The repository's folders that setup.py maps into the package, one layer each.
LAYERS = ('topologies', 'controller', 'nodes', 'scenarios')
