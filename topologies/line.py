"""The delay line's node: a forwarding element in its own network namespace that relays
frames between its two interfaces with the user-space delay line
(``topologies/delayline.py``), started when Mininet starts its switches and stopped with
them, so it works in ``mn --custom`` as in edgecollab's own runs.  It forwards and has
no address, so it is a switch to Mininet (``net.switches``): ``pingall`` pings the hosts
it connects, never it.

``DelayedPair`` is the smallest network it runs in, for its tests and benchmark::

    device --- dl --- edge        (10.9.0.1 and 10.9.0.2; dl has no address)

    mn --custom topologies/line.py --topo delayline --controller none --test pingall

``DelayedPair(up=..., down=...)`` gives the device its paths.  In ``EdgeStar`` the
delay line sits between the shaped bridge and the edge (``topologies/star.py``).
"""

import json
import select
import signal
import subprocess
import sys

from mininet.node import Host, Switch
from mininet.topo import Topo

from edgecollab.errors import EdgecollabError
from edgecollab.topologies.delayline import READY
from edgecollab.shell import runner

DEVICE_IP, EDGE_IP = '10.9.0.1', '10.9.0.2'
# Checksums computed by the NIC are left partial on a veth: a frame relayed by a
# user-space socket then reaches the receiver with a bad checksum and is dropped.  TSO,
# GSO and GRO are off so that the relay sees and delays wire-size frames.
OFFLOADS_OFF = ['tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off']
READY_WAIT_S = 20.0      # a relay's start (a Python interpreter) on a loaded machine


def offloads_off(node, intf):
    """Turn the offloads the delay line cannot relay off on intf of node."""
    runner.run(['ethtool', '-K', intf] + OFFLOADS_OFF, 'turn offloads off on %s' % intf,
               node=node)


class DelayLineSwitch(Switch):
    """A switch in its own namespace relaying between eth0 (towards the devices) and
    eth1 (towards the edge), each device's frames held for its path.

    paths: {device IPv4 address: {'up': spec, 'down': spec}} with spec {'delay_ms',
    'jitter_ms', 'loss' or 'gilbert', 'schedule'} (``Path.line_spec``); seed: the losses'
    random seed.  The relay is ``self.relay`` (a Popen); it ends with the switch."""

    def __init__(self, name, paths=None, seed=0, dpid='de1a7', **params):
        self.paths, self.seed = dict(paths or {}), seed
        self.relay = None
        params['inNamespace'] = True       # its interfaces are its own, as a host's
        Switch.__init__(self, name, dpid=dpid, **params)

    def start(self, controllers):
        """Start the relay (Mininet starts its switches once the links are up)."""
        edge_intf, bridge_intf = self.intf('%s-eth1' % self.name), self.intf('%s-eth0' % self.name)
        for intf in (edge_intf, bridge_intf):
            offloads_off(self, intf.name)
            # The other end too: it sends frames the relay must carry whole (a bridge
            # port's hosts are the bridge's to set: MediumBridge ``relayed``).
            link = intf.link
            end = link.intf2 if link.intf1 is intf else link.intf1
            if isinstance(end.node, Host):
                offloads_off(end.node, end.name)
        config = {'devices': self.paths, 'seed': self.seed}
        self.relay = self.popen([sys.executable, '-m', 'edgecollab.topologies.delayline',
                                 '--edge', edge_intf.name, '--bridge', bridge_intf.name],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            self.relay.stdin.write(json.dumps(config))
            self.relay.stdin.close()
        except BrokenPipeError:      # it died at once: its error is read below
            pass
        # The network is not up until the relay is: a frame before it is lost (the first
        # ARP request, and a second comes only a second later).
        ready, _, _ = select.select([self.relay.stdout], [], [], READY_WAIT_S)
        line = self.relay.stdout.readline() if ready else ''
        if line.strip() != READY:
            self.relay.kill()
            _, err = self.relay.communicate(timeout=5)
            raise EdgecollabError('the delay line in %s did not start: %s'
                                  % (self.name, (line + err).strip()[-300:] or 'no answer'))

    def restart_clock(self):
        """Start the delay traces' clock now (a run's first period)."""
        if self.relay is not None and self.relay.poll() is None:
            self.relay.send_signal(signal.SIGUSR1)

    def stop(self, deleteIntfs=True):
        self._stop_relay()
        Switch.stop(self, deleteIntfs)

    def terminate(self):
        self._stop_relay()
        Switch.terminate(self)

    def _stop_relay(self):
        if self.relay is not None and self.relay.poll() is None:
            self.relay.terminate()            # it exits at once on SIGTERM
            try:
                self.relay.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.relay.kill()


class DelayedPair(Topo):
    """device --- dl --- edge; names in the root namespace start with prefix.  up and
    down: the device's paths ({'delay_ms', 'jitter_ms', 'loss' or 'gilbert'})."""

    def build(self, prefix='ec', up=None, down=None, seed=0):
        self.prefix = prefix
        device = self.addHost('device', ip=DEVICE_IP + '/24')
        edge = self.addHost('edge', ip=EDGE_IP + '/24')
        line = self.addSwitch('dl', cls=DelayLineSwitch, seed=seed,
                              paths={DEVICE_IP: {'up': up or {}, 'down': down or {}}})
        self.addLink(device, line, intfName1='device-eth0', intfName2='dl-eth0')
        self.addLink(line, edge, intfName1='dl-eth1', intfName2='edge-eth0')


topos = {'delayline': DelayedPair}
