"""Bridges of an edgecollab topology: the shaped shared medium and the management bridge.

Both are Mininet ``LinuxBridge`` switches (no Open vSwitch, no OpenFlow controller).
``MediumBridge`` owns the link-share layer of its edge port: it builds the tree when it
starts (after Mininet has configured every host address) and removes it when it stops.
"""

import logging

from mininet.nodelib import LinuxBridge

from edgecollab.controller.linkshare import Device, LinkShare, ShapingConfig, AccessLink
from edgecollab.errors import ConfigError
from edgecollab.shell import runner
from edgecollab.topologies import addressing

log = logging.getLogger(__name__)


class MediumBridge(LinuxBridge):
    """The data-plane bridge whose port towards the edge is the shaped bottleneck.

    shaping: a ShapingConfig; edge: the edge host's name; access: optional
    {device name: capacity in Mbit/s} of per-device access links; offload: keep TSO/GSO
    on the hosts' data interfaces (off by default, so HTB sees wire-size packets).
    """

    def __init__(self, name, shaping=None, edge=addressing.EDGE, access=None,
                 offload=False, **kwargs):
        if shaping is None:
            raise ConfigError('MediumBridge %s needs a shaping configuration' % name)
        self.shaping, self.edge, self.access = shaping, edge, dict(access or {})
        self.offload = offload
        self.linkshare = None
        self.access_links = {}
        LinuxBridge.__init__(self, name, **kwargs)

    def _peers(self):
        """[(own interface, peer interface)] of every link on this bridge."""
        pairs = []
        for intf in self.intfList():
            link = getattr(intf, 'link', None)
            if link:
                pairs.append((intf, link.intf2 if link.intf1 is intf else link.intf1))
        return pairs

    def start(self, controllers):
        """Start the bridge, then shape its edge port and access links."""
        LinuxBridge.start(self, controllers)
        edge_port, devices, device_ports = None, [], {}
        for own, peer in self._peers():
            if peer.node.name == self.edge:
                edge_port, edge_ip = own, peer.IP()
            else:
                devices.append(Device(peer.node.name, peer.IP()))
                device_ports[peer.node.name] = (own, peer)
            if not self.offload:
                runner.run(['ethtool', '-K', peer.name, 'tso', 'off', 'gso', 'off'],
                           'turn off segmentation offload on %s' % peer.name,
                           ns_pid=peer.node.pid, ns_name=peer.node.name)
        if edge_port is None:
            raise ConfigError('bridge %s has no link to the edge host %r' % (self, self.edge))
        unknown = set(self.access) - set(device_ports)
        if unknown:
            raise ConfigError('access capacity given for unknown device(s): %s'
                              % ', '.join(sorted(unknown)))
        self.linkshare = LinkShare(self.shaping, edge_port.name,
                                   addressing.ifb_name(self.name), edge_ip,
                                   sorted(devices, key=_device_order))
        self.linkshare.start()
        for name, capacity_mbit in sorted(self.access.items()):
            own, peer = device_ports[name]
            access = AccessLink(capacity_mbit, own.name, addressing.access_ifb_name(
                self.name, own.name), name, peer.IP(), edge_ip, self.shaping)
            self.access_links[name] = access
            access.start()

    def stop(self, deleteIntfs=True):
        """Remove the shaping, then the bridge."""
        for access in self.access_links.values():
            access.stop()
        if self.linkshare:
            self.linkshare.stop()
        LinuxBridge.stop(self, deleteIntfs)


class ManagementBridge(LinuxBridge):
    """The unshaped management bridge; the root namespace joins it at address ``ip``."""

    def __init__(self, name, ip=addressing.CONTROLLER_IP, **kwargs):
        self.mgmt_ip = ip
        LinuxBridge.__init__(self, name, **kwargs)

    def start(self, controllers):
        """Start the bridge and give the root namespace its management address."""
        LinuxBridge.start(self, controllers)
        runner.run(['ip', 'addr', 'add', '%s/%d' % (self.mgmt_ip, addressing.PREFIX_LEN),
                    'dev', self.name], 'give %s its management address' % self.name)


def _device_order(device):
    # d2 before d10: order devices by their number, then by name.
    digits = ''.join(ch for ch in device.name if ch.isdigit())
    return (int(digits) if digits else 0, device.name)
