"""A star whose devices each have their own access link of a different capacity.

Each device's access link (to the bridge) is shaped at its own capacity in both
directions, and the edge's link is the shared bottleneck as in ``star.py``.  Capacities
are given as a list cycled over the devices (Mbit/s)::

    mn --custom topologies/access.py --topo edgeaccess,4,capacity=50mbit,rates=5/10/20 \\
       --controller none
"""

from edgecollab.errors import ConfigError
from edgecollab.topologies import addressing
from edgecollab.topologies.star import EdgeStar
from edgecollab.units import rate_mbit


def access_rates(n, rates):
    """{device name: Mbit/s} cycling rates (a list or 'a/b/c' with units) over n devices."""
    if isinstance(rates, str):
        rates = [r for r in rates.split('/') if r]
    if isinstance(rates, (int, float)):
        rates = [rates]
    if not rates:
        raise ConfigError('rates must list at least one access capacity')
    parsed = [rate_mbit(r, 'access rate') for r in rates]
    return {addressing.device_name(i): parsed[(i - 1) % len(parsed)] for i in range(1, n + 1)}


class EdgeAccessStar(EdgeStar):
    """EdgeStar with a per-device access link of its own capacity."""

    def build(self, n=2, rates='5mbit/10mbit', **kwargs):
        """rates: access capacities cycled over the devices; other arguments as EdgeStar."""
        addressing.check_device_count(n)
        EdgeStar.build(self, n=n, access=access_rates(n, rates), **kwargs)


topos = {'edgeaccess': EdgeAccessStar}
