"""A star of N IoT devices and one edge server behind one shared bottleneck.

    d1 ... dN --- [ <prefix>s1 ]  ==== bottleneck (shaped, C) ==== edge
      \\            management bridge <prefix>m1 (unshaped)         /
       `----------------------------------------------------------'

Every host has a data interface (eth0, 10.0.0.0/16) on the shaped bridge and a
management interface (eth1, 10.254.0.0/16) on an unshaped bridge that the controller in
the root namespace joins, so control traffic never competes with the data plane.

With a delay, jitter or loss (``topologies/paths.py``) the user-space engine puts a
delay line ``dl`` (a switch to Mininet) between the bridge and the edge, whose delay line holds each device's frames
for its path; the netem engine gives each device's own data interface a netem qdisc each
way instead (``linkshare.NetemPath``), outside the shaper's tree.

Load it as Mininet users expect (no OpenFlow controller is needed)::

    mn --custom topologies/star.py --topo edgestar,4,capacity=20mbit --controller none
    mn --custom topologies/star.py --topo edgestar,2,delay=20ms --controller none
"""

from mininet.topo import Topo

from edgecollab.topologies.linkshare import ShapingConfig, netem_limit_packets
from edgecollab.errors import ConfigError
from edgecollab.kinds import DelayEngine, LinkMode, Medium
from edgecollab.topologies import addressing, paths as paths_mod
from edgecollab.topologies.bridges import ManagementBridge, MediumBridge
from edgecollab.topologies.cluster import LOCALHOST, Servers
from edgecollab.topologies.hosts import check_congestion_control
from edgecollab.topologies.line import DelayLineSwitch
from edgecollab.units import duration_s, rate_mbit

# The rate a netem path's packet limit is sized for, at the least (Mbit/s).
NETEM_RATE_FLOOR_MBIT = 1000.0


def flag(value, what):
    """Read a yes/no topology argument (bool or 'true'/'false'/'on'/'off'/'1'/'0')."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('true', 'on', 'yes', '1'):
        return True
    if text in ('false', 'off', 'no', '0'):
        return False
    raise ConfigError('%s must be true or false, got %r' % (what, value))


def shaping_config(capacity='20mbit', medium=Medium.SHARED, mode=LinkMode.STRICT, ack=True,
                   queue='100ms', queue_rate=None, queue_down_rate=None):
    """A ShapingConfig from topology-style arguments with units (queue_rate: the
    capacity the queues are sized from while the capacity is below it, None: the
    capacity now; queue_down_rate: the download's, on duplex, None: queue_rate's)."""
    def reference(value, what):
        return 0.0 if value is None else rate_mbit(value, what)
    return ShapingConfig(capacity_mbit=rate_mbit(capacity, 'capacity'), medium=medium,
                         mode=mode, ack_priority=flag(ack, 'ack'),
                         queue_ms=duration_s(queue, 'queue') * 1000,
                         queue_mbit=reference(queue_rate, 'queue_rate'),
                         queue_down_mbit=reference(queue_down_rate, 'queue_down_rate'))


class EdgeStar(Topo):
    """N devices d1..dN and one edge server sharing one shaped bottleneck."""

    def build(self, n=2, capacity='20mbit', medium=Medium.SHARED, mode=LinkMode.STRICT,
              ack=True, delay='0ms', jitter='0ms', loss=0.0, queue='100ms', prefix='ec',
              access=None, offload=False, paths=None, delay_engine=DelayEngine.AUTO, seed=0,
              servers=None, queue_rate=None, queue_down_rate=None, congestion_control=None):
        """n: devices; capacity: C with unit; medium: shared|duplex; mode:
        strict|work-conserving; ack: ACK priority child; delay/jitter/loss: every
        device's path (one-way, each direction), or paths {device: paths.Path};
        delay_engine: auto|userspace|netem; queue: leaf queue length (time);
        queue_rate: the capacity the queues are sized from while C is below it (a
        capacity trace's mean; None: C now); queue_down_rate: the download's (duplex
        with a download capacity of its own; None: queue_rate); prefix:
        2-4 letters owning every root-namespace name; access: {device: capacity} of
        per-device access links; offload: keep TSO/GSO; seed: the delay line's losses;
        servers: a cluster.Servers (the edge, bridges and delay line on the first, the
        devices placed on all); congestion_control: the hosts' TCP congestion control
        (None: the machine's default; checked on this machine)."""
        addressing.check_device_count(n)
        if congestion_control:
            check_congestion_control(congestion_control)
        self.prefix = addressing.check_prefix(prefix)
        names = [addressing.device_name(i) for i in range(1, n + 1)]
        if paths is None:
            uniform = paths_mod.Path(duration_s(delay, 'delay') * 1000,
                                     duration_s(jitter, 'jitter') * 1000, float(loss))
            paths = {name: uniform for name in names}
        self.paths = {name: paths.get(name, paths_mod.Path()) for name in names}
        self.servers = servers or Servers()
        self.placement = self.servers.place(names)

        def where(name):
            # A host's class, its server (the edge: this machine) and its TCP.
            server = self.placement.get(name, LOCALHOST)
            return dict(cls=self.servers.host_class(server),
                        congestion_control=congestion_control,
                        **({'server': server} if server != LOCALHOST else {}))
        self.seed = seed
        self.engine = paths_mod.choose_engine(
            delay_engine, list(self.paths.values()),
            lambda: paths_mod.kernel_has_netem(self.prefix))
        shaping = shaping_config(capacity, medium, mode, ack, queue, queue_rate,
                                 queue_down_rate)
        line = self.engine == DelayEngine.USERSPACE
        medium_sw = self.addSwitch(addressing.data_switch(prefix), cls=MediumBridge,
                                   shaping=shaping,
                                   edge=addressing.DELAY_LINE if line else addressing.EDGE,
                                   access=access or {}, offload=flag(offload, 'offload'),
                                   relayed=line)
        mgmt_sw = self.addSwitch(addressing.mgmt_switch(prefix), cls=ManagementBridge)
        edge = self.addHost(addressing.EDGE,
                            ip='%s/%d' % (addressing.EDGE_DATA_IP, addressing.PREFIX_LEN),
                            **where(addressing.EDGE))
        if line:
            relay = self.addSwitch(addressing.DELAY_LINE, cls=DelayLineSwitch, seed=seed,
                                   paths={addressing.device_data_ip(i): {
                                       'up': p.line_spec(), 'down': p.line_spec()}
                                       for i, p in enumerate(self.paths.values(), 1)
                                       if p.impaired})
            self.addLink(relay, medium_sw, port1=0, intfName1='%s-eth0' % relay)
            self.addLink(relay, edge, port1=1, port2=0, intfName1='%s-eth1' % relay,
                         intfName2='%s-eth0' % edge)
            self.addLink(edge, mgmt_sw, port1=1, intfName1='%s-eth1' % edge,
                         params1={'ip': '%s/%d' % (addressing.EDGE_MGMT_IP,
                                                   addressing.PREFIX_LEN)})
        else:
            self._attach(edge, medium_sw, mgmt_sw, addressing.EDGE_MGMT_IP)
        for index in range(1, n + 1):
            name = addressing.device_name(index)
            device = self.addHost(name,
                                  ip='%s/%d' % (addressing.device_data_ip(index),
                                                addressing.PREFIX_LEN),
                                  netem=self._netem(self.paths[name], shaping), **where(name))
            self._attach(device, medium_sw, mgmt_sw, addressing.device_mgmt_ip(index))

    def _netem(self, path, shaping):
        """(delay ms, loss %, limit packets) of a device's netem path, or None."""
        if self.engine != DelayEngine.NETEM or not path.impaired:
            return None
        # Sized for at least NETEM_RATE_FLOOR_MBIT: a trace may rise above the capacity
        # the topology starts with, and the limit costs memory only when packets queue.
        rate = max(shaping.capacity_mbit, shaping.queue_mbit, shaping.queue_down_mbit,
                   NETEM_RATE_FLOOR_MBIT)
        return (path.delay_ms, path.loss_pct,
                netem_limit_packets(rate, path.delay_ms, shaping.queue_ms))

    def _attach(self, host, medium_sw, mgmt_sw, mgmt_ip):
        # Explicit ports keep eth0 on the data plane and eth1 on the management plane
        # whatever order Mininet sorts the links in.
        self.addLink(host, medium_sw, port1=0, intfName1='%s-eth0' % host)
        self.addLink(host, mgmt_sw, port1=1, intfName1='%s-eth1' % host,
                     params1={'ip': '%s/%d' % (mgmt_ip, addressing.PREFIX_LEN)})


topos = {'edgestar': EdgeStar}
