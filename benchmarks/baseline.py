"""The baseline every shaping benchmark compares with: Mininet's own TCLink.

A star like edgecollab's (devices, a LinuxBridge, the edge) whose device links are
``TCLink``s shaping each direction on its own with ``bw=`` (HTB, as Mininet sets it up):
the per-direction shaping a Mininet user gets without edgecollab.  TSO/GSO are off on
the hosts, as in edgecollab's topologies, so both see wire-size packets.
"""

from mininet.link import TCLink
from mininet.nodelib import LinuxBridge
from mininet.topo import Topo

from edgecollab.shell import runner
from edgecollab.topologies import addressing


class TCLinkStar(Topo):
    """n devices, each on a TCLink of up_mbit (device to switch) / down_mbit."""

    def build(self, n=1, up_mbit=10.0, down_mbit=10.0, prefix='ecb'):
        self.prefix = prefix
        switch = self.addSwitch('%ss1' % prefix, cls=LinuxBridge)
        edge = self.addHost(addressing.EDGE, ip='%s/16' % addressing.EDGE_DATA_IP)
        self.addLink(edge, switch, port1=0, intfName1='edge-eth0')
        for i in range(1, n + 1):
            device = self.addHost(addressing.device_name(i),
                                  ip='%s/16' % addressing.device_data_ip(i))
            self.addLink(device, switch, cls=TCLink, port1=0,
                         intfName1='%s-eth0' % device,
                         params1={'bw': up_mbit}, params2={'bw': down_mbit})


def offload_off(emu):
    """Turn TSO/GSO off on every host's data interface (as edgecollab does)."""
    for host in emu.net.hosts:
        runner.run(['ethtool', '-K', '%s-eth0' % host.name, 'tso', 'off', 'gso', 'off'],
                   'turn off segmentation offload on %s' % host.name, ns_pid=host.pid,
                   ns_name=host.name)


def device_link(emu, name):
    """(host-side interface, switch-side interface) of host name's data link (eth0)."""
    intf = emu.host(name).intf('%s-eth0' % name)
    link = intf.link
    other = link.intf2 if link.intf1 is intf else link.intf1
    return intf, other


def wire_bytes(emu, device):
    """A callable giving (up, down) bytes sent so far on the wire towards the edge and
    towards device: the transmit counters of their switch ports (root namespace; the
    same for edgecollab's topologies and TCLinkStar)."""
    paths = ['/sys/class/net/%s/statistics/tx_bytes' % device_link(emu, host)[1].name
             for host in ('edge', device)]

    def read():
        values = []
        for path in paths:
            with open(path) as src:
                values.append(int(src.read()))
        return tuple(values)
    return read
