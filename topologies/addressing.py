"""Addresses and names of an edgecollab topology, in one place.

Data plane 10.0.0.0/16, management plane 10.254.0.0/16.  Device i (1-based) is
10.0.(i >> 8).(i & 255) on the data plane and 10.254.(i >> 8).(i & 255) on the
management plane; the edge is 10.0.255.254 and 10.254.255.253; the root namespace (the
controller) is 10.254.255.254 on the management bridge.  Every root-namespace name an
emulation creates starts with its prefix, so cleanup can find exactly those.
"""

import re

from edgecollab.topologies.linkshare import MAX_DEVICES
from edgecollab.errors import ConfigError

DATA_NET, MGMT_NET, PREFIX_LEN = '10.0', '10.254', 16
# The address plan holds 65,000 devices; the shaper's class numbering (MAX_DEVICES, in
# the link-share layer) holds fewer, and so bounds a topology.
EDGE = 'edge'
DELAY_LINE = 'dl'     # the host relaying frames between the shaped bridge and the edge
DEVICE_RE = re.compile(r'^d\d+$')
EDGE_DATA_IP = DATA_NET + '.255.254'
EDGE_MGMT_IP = MGMT_NET + '.255.253'
CONTROLLER_IP = MGMT_NET + '.255.254'
PREFIX_RE = re.compile(r'^[a-z]{2,4}$')


def device_name(index):
    """The host name of device number index (1-based)."""
    return 'd%d' % index


def is_device(name):
    """True when host name is a device (d1, d2, ...)."""
    return bool(DEVICE_RE.match(name))


def device_data_ip(index):
    """The data-plane address of device number index."""
    return '%s.%d.%d' % (DATA_NET, index >> 8, index & 255)


def device_mgmt_ip(index):
    """The management-plane address of device number index."""
    return '%s.%d.%d' % (MGMT_NET, index >> 8, index & 255)


def check_prefix(prefix):
    """Raise ConfigError unless prefix is 2-4 lower-case letters."""
    if not isinstance(prefix, str) or not PREFIX_RE.match(prefix):
        raise ConfigError('prefix must be 2 to 4 lower-case letters, got %r' % (prefix,))
    return prefix


def check_device_count(count):
    """Raise ConfigError unless count is a usable number of devices."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_DEVICES:
        raise ConfigError('number of devices must be an integer in [1, %d], got %r'
                          % (MAX_DEVICES, count))
    return count


def data_switch(prefix):
    """Name of the data-plane bridge (the shared medium)."""
    return '%ss1' % prefix


def mgmt_switch(prefix):
    """Name of the management bridge."""
    return '%sm1' % prefix


def ifb_name(switch):
    """Name of the IFB device of a shaped bridge."""
    return '%s-ifb' % switch


def access_ifb_name(switch, port):
    """Name of the IFB shaping the upload of the access link on port of switch."""
    return '%sa%s' % (switch, port.rsplit('-eth', 1)[1])


def owned_name_pattern(prefix):
    """A regex matching every root-namespace interface an emulation with prefix creates
    (<prefix>v<N>: a cluster's VXLAN tunnel before it moves into its host)."""
    return re.compile(r'^%s([sm]\d+(-eth\d+|-ifbn?|a\d+)?|v\d+)$' % re.escape(prefix))
