"""Bridges of an edgecollab topology: the shaped shared medium and the management bridge.

Both are Mininet ``LinuxBridge`` switches (no Open vSwitch, no OpenFlow controller).
``MediumBridge`` owns the link-share layer of its edge port: it builds the tree when it
starts (after Mininet has configured every host address) and removes it when it stops.
"""

import atexit
import logging

from mininet.nodelib import LinuxBridge

from edgecollab import signals
from edgecollab.topologies.linkshare import AccessLink, Device, LinkShare
from edgecollab.errors import ConfigError
from edgecollab.shell import runner
from edgecollab.topologies import addressing
from edgecollab.topologies.line import offloads_off

log = logging.getLogger(__name__)


class OwnedBridge(LinuxBridge):
    """A Linux bridge that removes what it created when the process exits, whichever way
    (``mn --custom`` ended by a signal or an error runs no ``stop``)."""

    def start(self, controllers):
        """Start the bridge; make its removal part of the process's exit."""
        signals.exit_on_signals()
        atexit.register(self.remove_leftovers)
        LinuxBridge.start(self, controllers)

    def owned_names(self):
        """The root-namespace interfaces this bridge creates: itself and its ports (the
        root ends of its links; deleting one deletes its host's end too)."""
        return [self.name] + [intf.name for intf in self.intfList() if intf.name != 'lo']

    def remove_leftovers(self):
        """Delete what stop() did not (nothing after a normal stop)."""
        present = runner.run(['ip', '-o', 'link', 'show'], 'list interfaces', check=False)
        for name in self.owned_names():
            if (' %s:' % name) in present or (' %s@' % name) in present:
                runner.run(['ip', 'link', 'del', name], 'remove %s at exit' % name,
                           check=False)


class MediumBridge(OwnedBridge):
    """The data-plane bridge whose port towards the edge is the shaped bottleneck.

    shaping: a ShapingConfig; edge: the name of the host on the port towards the edge
    (the edge, or the delay line in front of it); access: optional
    {device name: capacity in Mbit/s} of per-device access links; offload: keep TSO/GSO
    on the hosts' data interfaces (off by default, so HTB sees wire-size packets);
    relayed: the frames cross a user-space delay line, so the hosts' TX checksum offload
    is off too (a relayed frame's checksum must be whole).
    """

    def __init__(self, name, shaping=None, edge=addressing.EDGE, access=None,
                 offload=False, relayed=False, **kwargs):
        if shaping is None:
            raise ConfigError('MediumBridge %s needs a shaping configuration' % name)
        self.shaping, self.edge, self.access = shaping, edge, dict(access or {})
        self.offload, self.relayed = offload, relayed
        self.linkshare = None
        self.access_links = {}
        OwnedBridge.__init__(self, name, **kwargs)

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
        OwnedBridge.start(self, controllers)
        edge_port, devices, device_ports = None, [], {}
        for own, peer in self._peers():
            if peer.node.name == self.edge:
                edge_port, edge_ip = own, addressing.EDGE_DATA_IP
            else:
                devices.append(Device(peer.node.name, peer.IP()))
                device_ports[peer.node.name] = (own, peer)
            if self.relayed and peer.node.name != self.edge:
                offloads_off(peer.node, peer.name)
            elif not self.offload:
                runner.run(['ethtool', '-K', peer.name, 'tso', 'off', 'gso', 'off'],
                           'turn off segmentation offload on %s' % peer.name,
                           node=peer.node)
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

    def owned_names(self):
        """The bridge, its IFB and its access links' IFBs."""
        return OwnedBridge.owned_names(self) + [addressing.ifb_name(self.name)] + [
            addressing.access_ifb_name(self.name, own.name)
            for own, peer in self._peers() if peer.node.name in self.access]

    def stop(self, deleteIntfs=True):
        """Remove the shaping, then the bridge."""
        for access in self.access_links.values():
            access.stop()
        if self.linkshare:
            self.linkshare.stop()
        LinuxBridge.stop(self, deleteIntfs)


class ManagementBridge(OwnedBridge):
    """The unshaped management bridge; the root namespace joins it at address ``ip``."""

    def __init__(self, name, ip=addressing.CONTROLLER_IP, **kwargs):
        self.mgmt_ip = ip
        OwnedBridge.__init__(self, name, **kwargs)

    def start(self, controllers):
        """Start the bridge and give the root namespace its management address."""
        OwnedBridge.start(self, controllers)
        runner.run(['ip', 'addr', 'add', '%s/%d' % (self.mgmt_ip, addressing.PREFIX_LEN),
                    'dev', self.name], 'give %s its management address' % self.name)


def _device_order(device):
    # d2 before d10: order devices by their number, then by name.
    digits = ''.join(ch for ch in device.name if ch.isdigit())
    return (int(digits) if digits else 0, device.name)
