"""A device and an edge joined through a delay line: the smallest network the user-space
delay line (``nodes/delayline.py``) runs in, for its tests and benchmark::

    device --- dl --- edge        (10.9.0.1 and 10.9.0.2; dl has no address)

    mn --custom topologies/line.py --topo delayline --controller none

``start_delay_line`` starts the relay in ``dl`` with the device's up and down paths.
"""

import json
import sys

from mininet.topo import Topo

DEVICE_IP, EDGE_IP = '10.9.0.1', '10.9.0.2'
# Checksums computed by the NIC are left partial on a veth: a frame relayed by a
# user-space socket then reaches the receiver with a bad checksum and is dropped.  TSO,
# GSO and GRO are off so that the relay sees and delays wire-size frames.
OFFLOADS_OFF = ['tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off']


class DelayedPair(Topo):
    """device --- dl --- edge; names in the root namespace start with prefix."""

    def build(self, prefix='ec'):
        self.prefix = prefix
        device = self.addHost('device', ip=DEVICE_IP + '/24')
        edge = self.addHost('edge', ip=EDGE_IP + '/24')
        line = self.addHost('dl', ip=None)
        self.addLink(device, line, intfName1='device-eth0', intfName2='dl-eth0')
        self.addLink(line, edge, intfName1='dl-eth1', intfName2='edge-eth0')


def start_delay_line(emu, up, down, seed=0):
    """Turn the offloads off and start the delay line in dl with the device's up and
    down paths ({'delay_ms', 'jitter_ms', 'loss' or 'gilbert'}); return its Popen
    (recorded by the emulation: stopped and cleaned up with it)."""
    for host, intf in (('device', 'device-eth0'), ('edge', 'edge-eth0'),
                       ('dl', 'dl-eth0'), ('dl', 'dl-eth1')):
        emu.cmd(host, ['ethtool', '-K', intf] + OFFLOADS_OFF,
                'turn offloads off on %s' % intf)
    mac = emu.host('device').intf('device-eth0').MAC()
    config = {'devices': {mac: {'up': up, 'down': down}}, 'seed': seed}
    return emu.popen('dl', [sys.executable, '-m', 'edgecollab.nodes.delayline',
                            '--edge', 'dl-eth1', '--bridge', 'dl-eth0',
                            '--config', json.dumps(config)], what='delay line')


topos = {'delayline': DelayedPair}
