"""The link-share layer: one bottleneck capacity split into per-device, per-direction shares.

This module is the only place edgecollab builds tc commands. The tree is built once and
then changed in place with ``tc class change`` (never deleted and re-added during a run:
that drops the backlog and opens an unshaped gap, which is what Mininet's ``intf.config``
does).

Layout on the edge's switch port (``port``) and our own IFB device (``ifb``)::

    medium 'shared' (default, the paper's model: one budget C for both directions)
        port ingress + egress --mirred--> ifb: htb 1: (1:1 rate C)
            per device i and direction d: class 1:4k   rate share  ceil share|C
                ACK child 1:4k+1  prio 0 (the reverse flow's ACKs and control)
                data child 1:4k+2 prio 1 (everything else)
            1:3 other (ARP, unmatched traffic), default class
    medium 'duplex' (separate budgets C per direction)
        port egress (towards the edge, 'up') : htb tree with the up classes
        port ingress --mirred--> ifb ('down'): htb tree with the down classes
    media 'airtime' and 'access' (per-device channels, ``media.py``): the shared layout;
        device i's channel runs at r_i(t) = C x rate_i, a share f gives a class f r_i,
        the root holds every channel (sum r_i), and the replayer changes each device's
        classes in place at every trace step

with k = 2 i + (0 for up, 1 for down).  Directions: ``up`` is every packet from a device
to the edge (data batches, and the ACKs of checkpoint downloads), ``down`` every packet
from the edge to a device (checkpoints, and the ACKs of data uploads).

The ACK child (``ack_priority``, on by default) is a realism knob.  Without it a pure ACK
of the reverse flow waits behind a full queue of data in the same class, and two bulk
flows in opposite directions both collapse to about 40% of their shares (measured on this
machine).  With it the ACKs take a small, prioritised part of their class and both flows
hold their shares.  It carries every short TCP segment (under 128 bytes: pure ACKs and
connection control, SYN, FIN, RST) and every packet marked ``wire.CONTROL_TOS`` (the
agents mark a checkpoint download's connection, so its request is not stuck behind the
device's own upload in a class given almost no share: measured on a 3G trace, a device
with a near-zero upload share uploading its data could not open a download for 90 s).
The ACK child's guaranteed rate is ``ack_fraction`` of the reverse
direction's share (delayed ACKs cost about 2.2% of the reverse data rate, quick ACKs
4.4%).  ACKs use airtime: they come out of their class's share, so a direction's
goodput is its share minus the reverse flow's ACK bytes, times 1448/1514 for headers;
and a class is never smaller than those ACKs need, so a direction given no share does
not stall the reverse flow (the budget may then exceed C by at most ``ack_fraction``).

Share modes: ``strict`` (a class never exceeds its share: ceil = rate) and
``work-conserving`` (a class may borrow unused capacity: ceil = C; with per-device
channels, its own channel's rate).

Queues: each leaf holds a bfifo of ``queue_ms`` worth of its rate (at least 16 full-size
packets), resized in place when the rate changes.  A link whose capacity follows a trace
sizes them from its reference capacity (``queue_mbit``, the trace's mean over the run)
when the capacity now is below it: a bottleneck's buffer is memory, which does not
shrink when the link fades.  Sized from the capacity of each 100 ms step, a dip to a
tenth cut the queue to 16 frames, the packets TCP had in flight were dropped and the
burst that follows a dip in a cellular trace found the queue empty (under Mininet, the
T-Mobile LTE downlink of scenarios/corpus: TCP's goodput per share 0.78, the link's
utilisation 0.69-0.80 over four runs; from the trace's mean: docs/real-traces.md).

A path's delay and loss under the netem engine (``NetemPath``) is no leaf of this tree:
HTB expects work-conserving children, and a netem leaf holds packets the class has already
been charged for (the kernel logs "htb: netem qdisc is non-work-conserving?"), so a
packet's queueing and its delay overlapped instead of adding up.  Each device's path is
a netem root qdisc on the device's own data interface (up) and on an IFB its ingress is
redirected into (down), in the device's namespace: per device, after the shaper going
down and before it going up, which adds the same round trip.

Classification uses u32 hash tables keyed on the device address's last octet (one table
per /24, direction and ACK-ness), so a packet meets a handful of filters, not 4 N.
"""

import ipaddress
import logging
import math
import re
from dataclasses import dataclass, field

from edgecollab.topologies import media
from edgecollab.errors import ConfigError
from edgecollab.kinds import LinkMode, Medium, member
from edgecollab.shell import runner as default_runner
from edgecollab.units import tc_rate
from edgecollab.wire import CONTROL_TOS, MTU_FRAME

log = logging.getLogger(__name__)

UP, DOWN = media.UP, media.DOWN
DIRECTIONS = (UP, DOWN)

MIN_QUEUE_FRAMES = 16     # floor of a leaf queue, in full-size frames
MIN_RATE_MBIT = 0.008     # floor of any class: HTB needs a positive rate
# Floor of a device class's share: a TCP connection opened while its class has (almost)
# no share sends its initial window (10 full frames, about 15 KB) at once.  At
# MIN_RATE_MBIT a frame takes 1.5 s: the window takes 15 s to drain, the retransmission
# timer fires and backs off meanwhile, the retransmissions overflow the leaf queue, and
# once the share comes back the connection waits out the backed-off timer (measured
# under Mininet on the T-Mobile trace: an upload opened at a period's start in a class
# at the floor for 13 s, then given 1.3-32 Mbit/s for 16 s, carried nothing in them).
# KEEPALIVE_MBIT carries the window in about half a second; at most KEEPALIVE_FRACTION
# of the device's channel.
KEEPALIVE_MBIT = 0.25
KEEPALIVE_FRACTION = 0.01
MIN_CAPACITY_MBIT = 0.1
MAX_CAPACITY_MBIT = 10000.0
QUEUE_MS = (1.0, 10000.0)     # the leaf queue lengths the layer builds, in ms of its rate
DELAY_MS = (0.0, 60000.0)     # one-way delays it accepts (netem)
MAX_DEVICES = 8000        # class minors are 16 bits: 4 (2 N + 1) + 2 <= 0xffff
ROOT, OTHER = 1, 3        # minors of the root class and the default class
# What the priority child carries: short TCP segments (pure ACKs and connection control,
# SYN, FIN, RST) and the packets of connections marked as control (CONTROL_TOS).
PRIORITY_MATCHES = (
    ['match', 'ip', 'protocol', '6', '0xff',                # TCP
     'match', 'u8', '0x05', '0x0f', 'at', '0',              # 20-byte IP header
     'match', 'u16', '0x0000', '0xff80', 'at', '2'],        # total length < 128
    ['match', 'ip', 'protocol', '6', '0xff',
     'match', 'ip', 'tos', '0x%02x' % CONTROL_TOS, '0xfc'],  # marked as control
)


@dataclass(frozen=True)
class ShapingConfig:
    """How the bottleneck is shaped.

    capacity_mbit: total capacity C (Mbit/s), 0.1 .. 10000.
    medium: a ``kinds.Medium`` (topologies/media.py says what each one budgets).
    mode: a ``kinds.LinkMode``: strict (ceil = share) or work-conserving (ceil = C).
    ack_priority: put pure ACKs in a prioritised child of each direction class.
    ack_fraction: guaranteed ACK rate as a fraction of the reverse direction's share.
    queue_ms: leaf queue length in milliseconds of the leaf's rate.
    queue_mbit: the capacity the leaf queues are sized from while the capacity now is
        below it (a trace's mean); 0: always the capacity now.
    queue_down_mbit: the same for the download's own tree (duplex with a download
        capacity of its own); 0: queue_mbit.
    """
    capacity_mbit: float
    medium: Medium = Medium.SHARED
    mode: LinkMode = LinkMode.STRICT
    ack_priority: bool = True
    ack_fraction: float = 0.05
    queue_ms: float = 100.0
    queue_mbit: float = 0.0
    queue_down_mbit: float = 0.0

    def __post_init__(self):
        check_capacity(self.capacity_mbit)
        media.get(self.medium)
        member(LinkMode, self.mode, 'share mode')
        if not 0 < self.ack_fraction <= 0.5:
            raise ConfigError('ack_fraction must be in (0, 0.5], got %r' % self.ack_fraction)
        if not QUEUE_MS[0] <= self.queue_ms <= QUEUE_MS[1]:
            raise ConfigError('queue_ms must be in [%g, %g], got %r' % (QUEUE_MS + (self.queue_ms,)))
        for reference in (self.queue_mbit, self.queue_down_mbit):
            if reference:
                check_capacity(reference)


def kernel_has_netem(run, probe):
    """(whether a netem qdisc can be created here, what tc said), probed with run on a
    throwaway IFB device named probe."""
    run.run(['ip', 'link', 'add', probe, 'type', 'ifb'], 'create netem probe device')
    try:
        out = run.run(['tc', 'qdisc', 'add', 'dev', probe, 'root', 'netem', 'delay', '1ms'],
                      'probe for netem', check=False)
        shown = run.run(['tc', 'qdisc', 'show', 'dev', probe], 'probe for netem')
    finally:
        run.run(['ip', 'link', 'del', probe], 'remove netem probe device')
    return re.search(r'\bnetem\b', shown) is not None, out.strip()


def check_capacity(capacity_mbit):
    """Raise ConfigError unless capacity_mbit (Mbit/s) is a rate the layer can shape."""
    if not isinstance(capacity_mbit, (int, float)) or isinstance(capacity_mbit, bool) or \
            not MIN_CAPACITY_MBIT <= capacity_mbit <= MAX_CAPACITY_MBIT:
        raise ConfigError('capacity must be between %g and %g Mbit/s, got %r'
                          % (MIN_CAPACITY_MBIT, MAX_CAPACITY_MBIT, capacity_mbit))


@dataclass(frozen=True)
class Device:
    """A device seen by the link-share layer: its name and data-plane IPv4 address."""
    name: str
    ip: str


@dataclass
class ClassCounters:
    """Counters of one device-direction class, summed over its leaves."""
    bytes: int = 0
    packets: int = 0
    drops: int = 0
    overlimits: int = 0
    backlog_bytes: int = 0
    backlog_packets: int = 0
    ack_bytes: int = 0       # of bytes: those that went through the ACK child


# ---------------------------------------------------------------- pure builders

def class_minor(index, direction):
    """The HTB minor of device number index (1-based) in direction."""
    return 4 * (2 * index + (0 if direction == UP else 1))


def _hex(number):
    return '%x' % number


def _burst_bytes(rate_mbit):
    # 2 ms of the rate, at least two full frames: enough for line rate at 1 Gbit/s.
    return max(2 * MTU_FRAME, int(rate_mbit * 1e6 / 8 * 0.002))


def _quantum_bytes(rate_mbit):
    # 10 ms of the rate as the DRR quantum between borrowing siblings, capped where HTB
    # would warn; set explicitly so tc never prints "quantum is big/small".
    return max(MTU_FRAME, min(200000, int(rate_mbit * 1e6 / 8 * 0.01)))


def htb_class(verb, dev, parent, minor, rate_mbit, ceil_mbit, prio):
    """tc arguments to add or change one HTB class (rates in Mbit/s); parent 0 is the
    qdisc itself (the root class)."""
    ceil_mbit = max(ceil_mbit, rate_mbit)
    return ['class', verb, 'dev', dev, 'parent', '1:%s' % (_hex(parent) if parent else ''),
            'classid', '1:%s' % _hex(minor), 'htb', 'rate', tc_rate(rate_mbit),
            'ceil', tc_rate(ceil_mbit), 'burst', str(_burst_bytes(rate_mbit)),
            'cburst', str(_burst_bytes(ceil_mbit)), 'quantum', str(_quantum_bytes(rate_mbit)),
            'prio', str(prio)]


def leaf_queue_bytes(rate_mbit, queue_ms):
    """The byte limit of a leaf queue: queue_ms of its rate, at least MIN_QUEUE_FRAMES."""
    return max(MIN_QUEUE_FRAMES * MTU_FRAME, int(rate_mbit * 1e6 / 8 * queue_ms / 1000))


def leaf_qdisc(verb, dev, minor, rate_mbit, config):
    """tc arguments to add or change the queue of leaf class minor (rate in Mbit/s)."""
    limit = leaf_queue_bytes(rate_mbit, config.queue_ms)
    return ['qdisc', verb, 'dev', dev, 'parent', '1:%s' % _hex(minor), 'handle',
            '%s:' % _hex(minor), 'bfifo', 'limit', str(limit)]


def netem_limit_packets(rate_mbit, delay_ms, queue_ms):
    """The packet limit of a path's netem qdisc.  netem counts every packet still inside
    its delay, so it must hold what a flow at rate_mbit (Mbit/s) has sent within a round
    trip of the delay (ms) plus the shaper's queue (ms): data frames, and as many ACKs
    again (a quick ACK a frame).  A byte-sized limit of 16 packets dropped 18-30% of the
    ACKs going through a 20 ms netem at 50 Mbit/s."""
    window_bytes = rate_mbit * 1e6 / 8 * (2 * delay_ms + queue_ms) / 1000
    return max(MIN_QUEUE_FRAMES, 2 * int(math.ceil(window_bytes / MTU_FRAME)))


def netem_qdisc(verb, dev, delay_ms, loss_pct, limit_packets):
    """tc arguments to add or change the netem root qdisc of dev: a one-way delay (ms)
    and a random loss (percent)."""
    if not DELAY_MS[0] <= delay_ms <= DELAY_MS[1]:
        raise ConfigError('delay must be in [%g, %g] ms, got %r' % (DELAY_MS + (delay_ms,)))
    if not 0 <= loss_pct <= 100:
        raise ConfigError('loss must be in [0, 100] %%, got %r' % loss_pct)
    return ['qdisc', verb, 'dev', dev, 'root', 'handle', '1:', 'netem',
            'limit', str(int(limit_packets)), 'delay', '%gms' % delay_ms,
            'loss', '%g%%' % loss_pct]


@dataclass
class ShareTree:
    """The numbers of one HTB tree: which directions it holds and the rates of its classes.

    Pure: it turns capacities and share fractions into tc argument lists, nothing more.
    """
    dev: str
    directions: tuple
    config: ShapingConfig
    edge_ip: str
    devices: list
    capacity_mbit: float = 0.0
    fractions: dict = field(default_factory=dict)
    # Per-device channels (airtime, access): {device: its channel's rate / C}; a share f
    # then gives f x C x rate.  Empty: every device at C.
    rates: dict = field(default_factory=dict)
    # A tree of one direction (duplex): the capacity the other direction's tree shapes
    # now, which sizes the ACK child of the flow coming the other way (0: this tree's).
    reverse_mbit: float = 0.0
    # The capacity its leaf queues are sized from while C is below it (None: the
    # config's queue_mbit).
    queue_mbit: float = None

    def __post_init__(self):
        self.capacity_mbit = self.config.capacity_mbit
        if self.queue_mbit is None:
            self.queue_mbit = self.config.queue_mbit
        if not self.fractions:
            self.fractions = equal_fractions(self.devices)

    # rates
    def share_mbit(self, name, direction):
        """The share of device name in direction, in Mbit/s."""
        channel = self.channel_mbit(name)
        if direction not in self.directions and self.reverse_mbit:
            channel = self.reverse_mbit
        floor = max(MIN_RATE_MBIT, min(KEEPALIVE_MBIT, KEEPALIVE_FRACTION * channel))
        return max(floor, self.fractions[name][direction] * channel)

    def channel_mbit(self, name):
        """The rate of device name's channel now, in Mbit/s (C without channels)."""
        return self.capacity_mbit * self.rates.get(name, 1.0)

    def root_mbit(self):
        """The root class's rate: C, or with channels all of them together."""
        if not self.rates:
            return self.capacity_mbit
        return max(self.capacity_mbit, sum(self.channel_mbit(d.name) for d in self.devices))

    def _rates(self, name, direction):
        """(class rate, class ceil, ack rate, data rate) in Mbit/s."""
        reverse = DOWN if direction == UP else UP
        ack = max(MIN_RATE_MBIT, self.config.ack_fraction * self.share_mbit(name, reverse))
        # Never smaller than the airtime the reverse flow's ACKs need, or a direction
        # given nothing would also stall the other one.
        rate = max(self.share_mbit(name, direction), ack + MIN_RATE_MBIT)
        strict = self.config.mode == LinkMode.STRICT
        ceil = rate if strict else max(rate, self.channel_mbit(name))
        data = max(MIN_RATE_MBIT, rate - ack)
        return rate, ceil, ack, data

    def _queue_rate(self, rate_mbit):
        """The rate a leaf of rate_mbit sizes its queue from: scaled up to the
        reference capacity while the capacity now is below it."""
        if self.queue_mbit <= self.capacity_mbit or self.capacity_mbit <= 0:
            return rate_mbit
        return rate_mbit * self.queue_mbit / self.capacity_mbit

    def _leaf(self, verb, minor, rate_mbit):
        return leaf_qdisc(verb, self.dev, minor, self._queue_rate(rate_mbit), self.config)

    def _other_mbit(self):
        return max(MIN_RATE_MBIT, 0.01 * self.capacity_mbit)

    # commands
    def class_commands(self, verb):
        """Commands adding (verb 'add') or changing ('change') every class and leaf queue."""
        root = self.root_mbit()
        cmds = [htb_class(verb, self.dev, 0, ROOT, root, root, 0)]
        other = self._other_mbit()
        cmds.append(htb_class(verb, self.dev, ROOT, OTHER, other, self.capacity_mbit, 7))
        cmds.append(self._leaf(verb, OTHER, other))
        for index, device in enumerate(self.devices, start=1):
            for direction in self.directions:
                cmds += self._device_commands(verb, index, device.name, direction)
        return cmds

    def _device_commands(self, verb, index, name, direction):
        share, ceil, ack, data = self._rates(name, direction)
        minor = class_minor(index, direction)
        if not self.config.ack_priority:
            return [htb_class(verb, self.dev, ROOT, minor, share, ceil, 1),
                    self._leaf(verb, minor, share)]
        return [htb_class(verb, self.dev, ROOT, minor, share, ceil, 1),
                htb_class(verb, self.dev, minor, minor + 1, ack, ceil, 0),
                self._leaf(verb, minor + 1, ack),
                htb_class(verb, self.dev, minor, minor + 2, data, ceil, 1),
                self._leaf(verb, minor + 2, data)]

    def build_commands(self):
        """Commands creating the tree from an empty root: qdisc, classes, filters."""
        cmds = [['qdisc', 'add', 'dev', self.dev, 'root', 'handle', '1:', 'htb',
                 'default', _hex(OTHER)]]
        return cmds + self.class_commands('add') + self.filter_commands()

    def filter_commands(self):
        """u32 hash-table filters sending each device's packets to its classes."""
        groups = {}
        for index, device in enumerate(self.devices, start=1):
            net = ipaddress.ip_network(device.ip + '/24', strict=False)
            groups.setdefault(net, []).append((index, device))
        kinds = [(True, 10), (False, 20)] if self.config.ack_priority else [(False, 20)]
        cmds = []
        for gnum, (net, members) in enumerate(sorted(groups.items())):
            for direction in self.directions:
                for is_ack, prio in kinds:
                    table = 0x100 + 4 * gnum + 2 * DIRECTIONS.index(direction) + int(is_ack)
                    if table > 0xfff:
                        raise ConfigError('too many /24 device groups for u32 hash tables')
                    cmds += self._group_filters(net, members, direction, is_ack, prio, table)
        return cmds

    def _group_filters(self, net, members, direction, is_ack, prio, table):
        base = ['filter', 'add', 'dev', self.dev, 'parent', '1:', 'protocol', 'ip',
                'prio', str(prio), 'u32']
        # up: device is the source (offset 12); down: device is the destination (16).
        dev_field, edge_field, offset = ('src', 'dst', 12) if direction == UP else \
            ('dst', 'src', 16)
        cmds = [['filter', 'add', 'dev', self.dev, 'parent', '1:', 'protocol', 'ip',
                 'prio', str(prio), 'handle', '%x:' % table, 'u32', 'divisor', '256']]
        link = base + ['match', 'ip', edge_field, self.edge_ip + '/32',
                       'match', 'ip', dev_field, str(net)]
        for match in PRIORITY_MATCHES if is_ack else ([],):
            cmds.append(link + match + ['hashkey', 'mask', '0x000000ff', 'at', str(offset),
                                        'link', '%x:' % table])
        for index, device in members:
            bucket = int(device.ip.split('.')[-1])
            minor = class_minor(index, direction)
            if self.config.ack_priority:
                minor += 1 if is_ack else 2
            cmds.append(base + ['ht', '%x:%x:' % (table, bucket), 'match', 'ip', dev_field,
                                device.ip + '/32', 'flowid', '1:%s' % _hex(minor)])
        return cmds

    def leaf_minors(self):
        """{minor: (device name, direction, is_ack)} of every leaf class of a device."""
        leaves = {}
        for index, device in enumerate(self.devices, start=1):
            for direction in self.directions:
                minor = class_minor(index, direction)
                if self.config.ack_priority:
                    leaves[minor + 1] = (device.name, direction, True)
                    leaves[minor + 2] = (device.name, direction, False)
                else:
                    leaves[minor] = (device.name, direction, False)
        return leaves


def redirect_commands(port, ifb, hooks):
    """Commands redirecting the port's ingress and/or egress (hooks) into the IFB."""
    cmds = [['qdisc', 'add', 'dev', port, 'clsact']]
    for hook in hooks:
        cmds.append(['filter', 'add', 'dev', port, hook, 'protocol', 'all', 'prio', '1',
                     'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress',
                     'redirect', 'dev', ifb])
    return cmds


def equal_fractions(devices):
    """Every device-direction class gets 1 / (2 N) of the capacity."""
    each = 1.0 / (2 * max(1, len(devices)))
    return {d.name: {UP: each, DOWN: each} for d in devices}


def check_fractions(fractions, devices, medium):
    """Raise ConfigError unless fractions cover exactly the devices and fit the budget."""
    names = {d.name for d in devices}
    unknown = set(fractions) - names
    if unknown:
        raise ConfigError('unknown device(s) %s (known: %s)'
                          % (', '.join(sorted(unknown)), ', '.join(sorted(names))))
    for name, share in fractions.items():
        if set(share) != set(DIRECTIONS):
            raise ConfigError('share of %s must give exactly up and down' % name)
        for direction, value in share.items():
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError('share %s/%s must be a fraction in [0, 1], got %r'
                                  % (name, direction, value))
    over = [(what, total) for what, total in media.get(medium).budgets(fractions)
            if total > 1 + 1e-9]
    if over:
        raise ConfigError('shares add up to more than the capacity (%s medium: %s)'
                          % (medium, ', '.join('%s %.4f' % pair for pair in over)))


_CLASS_LINE = re.compile(r'^class htb 1:([0-9a-f]+) ')
_SENT = re.compile(r'Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)')
_BACKLOG = re.compile(r'backlog (\d+)b (\d+)p')


def parse_class_stats(text):
    """Parse ``tc -s class show`` output into {minor: ClassCounters}."""
    stats, current = {}, None
    for line in text.splitlines():
        match = _CLASS_LINE.match(line)
        if match:
            current = ClassCounters()
            stats[int(match.group(1), 16)] = current
            continue
        if current is None:
            continue
        sent = _SENT.search(line)
        if sent:
            current.bytes, current.packets, current.drops, current.overlimits = \
                (int(x) for x in sent.groups())
        backlog = _BACKLOG.search(line)
        if backlog:
            current.backlog_bytes, current.backlog_packets = (int(x) for x in backlog.groups())
    return stats


# ---------------------------------------------------------------- the live layer

class LinkShare:
    """A bottleneck port shaped by one or two HTB trees, changed live.

    port: the edge's switch port (root namespace); ifb: the name of our own IFB device;
    edge_ip: the edge's data-plane address; devices: list of Device.
    """

    def __init__(self, config, port, ifb, edge_ip, devices, run=default_runner):
        if not devices:
            raise ConfigError('a link share needs at least one device')
        if len(devices) > MAX_DEVICES:
            raise ConfigError('at most %d devices per link share, got %d'
                              % (MAX_DEVICES, len(devices)))
        if len({d.name for d in devices}) != len(devices):
            raise ConfigError('device names must be unique')
        self.config = config
        self.port, self.ifb, self.edge_ip = port, ifb, edge_ip
        self.devices = list(devices)
        self.run = run
        if not media.get(config.medium).per_direction:
            self.trees = [ShareTree(ifb, DIRECTIONS, config, edge_ip, self.devices)]
            # On the edge's port, egress carries 'up' packets and ingress 'down' ones.
            self.redirected = ('ingress', 'egress')
        else:
            self.trees = [ShareTree(port, (UP,), config, edge_ip, self.devices),
                          ShareTree(ifb, (DOWN,), config, edge_ip, self.devices,
                                    queue_mbit=config.queue_down_mbit or config.queue_mbit)]
            self.redirected = ('ingress',)
        self.started = False

    @property
    def capacity_mbit(self):
        """The capacity C now in force, in Mbit/s."""
        return self.trees[0].capacity_mbit

    @property
    def down_mbit(self):
        """The download's capacity now in force, in Mbit/s (C but on a duplex link with
        a download capacity of its own)."""
        return self._tree_of(DOWN).capacity_mbit

    @property
    def fractions(self):
        """{device: {'up': f, 'down': f}}: the shares now in force, as fractions of C."""
        return {name: dict(share) for name, share in self.trees[0].fractions.items()}

    def share_mbit(self, name, direction):
        """The share of a device in a direction now in force, in Mbit/s."""
        return self._tree_of(direction).share_mbit(name, direction)

    def _tree_of(self, direction):
        """The tree that shapes direction."""
        return next(tree for tree in self.trees if direction in tree.directions)

    def start(self):
        """Create the IFB, the trees and the filters."""
        create_ifb(self.ifb, self.run)
        self.started = True
        cmds = []
        for tree in self.trees:
            cmds += tree.build_commands()
        cmds += redirect_commands(self.port, self.ifb, self.redirected)
        self.run.tc_batch(cmds, 'build the %s share tree on %s' % (self.config.medium, self.port))
        log.info('*** Link share: %s medium, %s mode, C = %g Mbit/s, %d devices, ACK priority %s',
                 self.config.medium, self.config.mode, self.capacity_mbit, len(self.devices),
                 'on' if self.config.ack_priority else 'off')

    def set_capacity(self, capacity_mbit, rates=None, down_mbit=None):
        """Change C in place (Mbit/s), keeping every share's fraction; rates: with
        per-device channels, {device: its channel's rate / C} now; down_mbit: on a
        medium with a budget per direction (duplex), the download's own C."""
        check_capacity(capacity_mbit)
        if rates is not None and not media.get(self.config.medium).channels:
            raise ConfigError('per-device channel rates need a medium with channels '
                              '(airtime, access), not %s' % self.config.medium)
        if down_mbit is not None:
            check_capacity(down_mbit)
            if not media.get(self.config.medium).per_direction:
                raise ConfigError('a download capacity of its own needs a medium with a '
                                  'budget per direction (duplex), not %s' % self.config.medium)
        for tree in self.trees:
            down = DOWN in tree.directions
            own = down_mbit if down_mbit is not None and down else None
            tree.capacity_mbit = float(capacity_mbit if own is None else own)
            tree.reverse_mbit = 0.0 if down_mbit is None else \
                float(capacity_mbit if down else down_mbit)
            if rates is not None:
                tree.rates = dict(rates)
        self._apply('set capacity to %g Mbit/s%s%s' % (
            capacity_mbit, '' if down_mbit is None else ' up, %g down' % down_mbit,
            ' with %d channels' % len(rates) if rates else ''))

    def channel_mbit(self, name):
        """The rate of device name's channel now (C without per-device channels)."""
        return self.trees[0].channel_mbit(name)

    @property
    def rates(self):
        """{device: its channel now relative to C} ({} without per-device channels)."""
        return dict(self.trees[0].rates)

    def set_shares(self, fractions):
        """Change shares in place: {device: {'up': f, 'down': f}}, fractions of C.

        Devices not named keep their shares.
        """
        merged = self.fractions
        merged.update({name: dict(share) for name, share in fractions.items()})
        check_fractions(merged, self.devices, self.config.medium)
        for tree in self.trees:
            tree.fractions = {name: dict(share) for name, share in merged.items()}
        self._apply('set shares of %s' % ', '.join(sorted(fractions)) if len(fractions) <= 4
                    else 'set shares of %d devices' % len(fractions))

    def _apply(self, doing):
        cmds = []
        for tree in self.trees:
            cmds += tree.class_commands('change')
        self.run.tc_batch(cmds, doing)

    def counters(self):
        """{(device, direction): ClassCounters}, read from the kernel now."""
        return tree_counters(self.trees, self.devices, self.run)

    def qdisc_handles(self):
        """Sorted 'dev handle kind' strings of every qdisc on our devices (for checks)."""
        handles = []
        for dev in (self.port, self.ifb):
            text = self.run.run(['tc', 'qdisc', 'show', 'dev', dev], 'list qdiscs of %s' % dev)
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == 'qdisc':
                    handles.append('%s %s %s' % (dev, parts[2], parts[1]))
        return sorted(handles)

    def stop(self):
        """Remove the IFB and our qdiscs from the port; safe to call twice."""
        if not self.started:
            return
        self.started = False
        self.run.run(['tc', 'qdisc', 'del', 'dev', self.port, 'clsact'],
                     'remove redirect from %s' % self.port, check=False)
        if media.get(self.config.medium).per_direction:
            self.run.run(['tc', 'qdisc', 'del', 'dev', self.port, 'root'],
                         'remove share tree from %s' % self.port, check=False)
        self.run.run(['ip', 'link', 'del', self.ifb], 'remove IFB device %s' % self.ifb,
                     check=False)


def tree_counters(trees, devices, run):
    """{(device, direction): ClassCounters} of the devices' classes in trees, read from
    the kernel now (a class's leaves summed; its ACK child's bytes also in ack_bytes)."""
    result = {(d.name, direction): ClassCounters() for d in devices
              for direction in DIRECTIONS}
    for tree in trees:
        text = run.run(['tc', '-s', 'class', 'show', 'dev', tree.dev],
                       'read class counters of %s' % tree.dev)
        stats = parse_class_stats(text)
        for minor, (name, direction, is_ack) in tree.leaf_minors().items():
            if minor in stats:
                total, leaf = result[(name, direction)], stats[minor]
                for attr in vars(total):
                    setattr(total, attr, getattr(total, attr) + getattr(leaf, attr))
                if is_ack:
                    total.ack_bytes += leaf.bytes
    return result


def create_ifb(name, run):
    """Create and bring up our own IFB device called name."""
    run.run(['ip', 'link', 'add', name, 'type', 'ifb'], 'create IFB device %s' % name)
    run.run(['ip', 'link', 'set', name, 'up'], 'bring up %s' % name)


class AccessLink:
    """One device's own access link, shaped at capacity_mbit (Mbit/s) each way.

    Down (towards the device) is shaped on the bridge port's egress; up on our IFB that
    the port's ingress is redirected into, so the device's own stack never sees a local
    qdisc drop.  Each has the same ACK child as the bottleneck, since the ACKs of one
    direction queue behind the other's data.
    """

    def __init__(self, capacity_mbit, port, ifb, name, device_ip, edge_ip, shaping,
                 run=default_runner):
        config = ShapingConfig(capacity_mbit, medium=Medium.DUPLEX, mode=LinkMode.STRICT,
                               ack_priority=shaping.ack_priority,
                               ack_fraction=shaping.ack_fraction, queue_ms=shaping.queue_ms)
        device = [Device(name, device_ip)]
        full = {name: {UP: 1.0, DOWN: 1.0}}
        self.up = ShareTree(ifb, (UP,), config, edge_ip, device, fractions=full)
        self.down = ShareTree(port, (DOWN,), config, edge_ip, device, fractions=full)
        self.name, self.port, self.ifb, self.run = name, port, ifb, run

    def start(self):
        """Build both trees and the redirect."""
        create_ifb(self.ifb, self.run)
        self.run.tc_batch(self.down.build_commands() + self.up.build_commands() +
                          redirect_commands(self.port, self.ifb, ('ingress',)),
                          'shape access link of %s' % self.name)

    def counters(self):
        """{(device, direction): ClassCounters} of this access link, read now."""
        return tree_counters((self.up, self.down), self.up.devices, self.run)

    def set_capacity(self, capacity_mbit):
        """Change the access capacity in place (Mbit/s)."""
        check_capacity(capacity_mbit)
        for tree in (self.up, self.down):
            tree.capacity_mbit = float(capacity_mbit)
        self.run.tc_batch(self.down.class_commands('change') + self.up.class_commands('change'),
                          'set access capacity of %s to %g Mbit/s' % (self.name, capacity_mbit))

    def stop(self):
        """Remove the IFB (the port goes with the link); safe to call twice."""
        self.run.run(['ip', 'link', 'del', self.ifb], 'remove IFB device %s' % self.ifb,
                     check=False)


class NetemPath:
    """One device's path imposed by netem on the device's own data interface: a netem
    root on its egress (up) and on an IFB in the device's namespace that its ingress is
    redirected into (down).  Both live in the device's namespace and go with it.

    intf: the device's data interface; ifb: the IFB's name; delay_ms: one-way delay each
    direction (ms); loss_pct: random loss each direction (percent); limit_packets: each
    netem's limit (``netem_limit_packets``); node: the device's Mininet host (on any
    server of a cluster).
    """

    def __init__(self, intf, ifb, delay_ms, loss_pct, limit_packets, node,
                 run=default_runner):
        self.intf, self.ifb, self.node, self.ns_name = intf, ifb, node, node.name
        self.delay_ms, self.loss_pct, self.limit_packets = delay_ms, loss_pct, limit_packets
        self.run = run

    def commands(self):
        """tc commands: both netem roots and the ingress redirect."""
        return ([netem_qdisc('add', self.intf, self.delay_ms, self.loss_pct,
                             self.limit_packets),
                 netem_qdisc('add', self.ifb, self.delay_ms, self.loss_pct,
                             self.limit_packets)]
                + redirect_commands(self.intf, self.ifb, ('ingress',)))

    def start(self):
        """Create the IFB in the device's namespace and impose the path."""
        where = {'node': self.node}
        self.run.run(['ip', 'link', 'add', self.ifb, 'type', 'ifb'],
                     'create IFB device %s in %s' % (self.ifb, self.ns_name), **where)
        self.run.run(['ip', 'link', 'set', self.ifb, 'up'], 'bring up %s' % self.ifb, **where)
        self.run.tc_batch(self.commands(), 'impose the path of %s with netem (%g ms, %g%%)'
                          % (self.ns_name, self.delay_ms, self.loss_pct), **where)
