"""A user-space delay line: Ethernet frames relayed between two interfaces, each held
for its device's one-way delay (with optional jitter and random loss) before it goes on.

Kernels without netem (this machine's, many minimal cloud and container kernels) cannot
delay packets in tc.  The delay line does it in user space, as Mahimahi's mm-delay does
with a TUN device: it runs in a namespace of its own between the edge and the shaped
bridge, reads every frame on one side with an AF_PACKET socket, and sends it out of the
other side when it is due.  A frame's device is its IPv4 source address (towards the
edge, 'up') or its destination address (towards the bridge, 'down'); frames of no
device (ARP, IPv6, others' addresses) pass at once.

Per device and direction: ``delay_ms``, ``jitter_ms`` (a uniform extra delay in [0,
jitter]; frames of one device and direction keep their order, so jitter never reorders),
``loss`` (Bernoulli probability) or ``gilbert`` ``[p, r, h]`` (Gilbert-Elliott: p the
chance to enter the bad state, r to leave it, h the chance to deliver in it), and
``schedule`` ``{"times_s", "delay_ms", "duration_s", "loop"}``, a delay trace that
replaces ``delay_ms``: its clock starts when the relay starts and again at each SIGUSR1
(a run's first period); a frame's delay is the one in force when it arrives.

    python -m edgecollab.topologies.delayline --edge IF --bridge IF < CONFIG.json

CONFIG: ``{"devices": {"<IPv4 address>": {"up": {...}, "down": {...}}}, "seed": 0}`` on
standard input (a delay trace may be long).  The process prints ``READY`` once it
relays and runs until killed; SIGTERM ends it at once.
"""

import argparse
import bisect
import heapq
import json
import os
import random
import select
import signal
import socket
import sys
import time

from edgecollab.kinds import Direction

ETH_P_ALL = 0x0003
IPV4 = b'\x08\x00'          # the EtherType of an IPv4 frame (no VLAN tag here)
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23     # linux/if_packet.h: do not read what we send
RCVBUF_BYTES = 8 << 20
MAX_FRAME = 65536
# SCHED_FIFO priority (1-99): above every normal process.  Measured against nice -10
# (docs/benchmarks.md): at 200 devices nice left frames 3-12 ms late and TCP at 0.41 of
# its shares (FIFO: 0.1-0.3 ms, 0.85); with one flow FIFO's p99 is a few ms worse (the
# kernel's softirq thread waits behind it).
PRIORITY = 10
READY = 'delay line ready'


class Path:
    """One device's direction: its delay, jitter, loss and the FIFO it keeps."""

    def __init__(self, spec, rng):
        self.delay_s = float(spec.get('delay_ms', 0.0)) / 1000
        schedule = spec.get('schedule')
        self.times_s = [float(t) for t in schedule['times_s']] if schedule else None
        if schedule:
            self.delays_s = [float(ms) / 1000 for ms in schedule['delay_ms']]
            self.duration_s = float(schedule['duration_s'])
            self.loop = bool(schedule.get('loop', True))
        self.jitter_s = float(spec.get('jitter_ms', 0.0)) / 1000
        self.loss = float(spec.get('loss', 0.0))
        self.gilbert = spec.get('gilbert')
        self.bad = False
        self.rng = rng
        self.last_due = 0.0

    def delay_at(self, elapsed_s):
        """The one-way delay in force elapsed_s into the schedule's clock."""
        if self.times_s is None:
            return self.delay_s
        if self.loop and self.duration_s > 0:
            elapsed_s %= self.duration_s
        return self.delays_s[max(0, bisect.bisect_right(self.times_s, elapsed_s) - 1)]

    def due(self, now, elapsed_s=0.0):
        """When a frame that arrived now (elapsed_s on the schedule's clock) leaves, or
        None when it is lost."""
        if self.gilbert:
            p, r, h = self.gilbert
            self.bad = (self.rng.random() >= r) if self.bad else (self.rng.random() < p)
            if self.bad and self.rng.random() >= h:
                return None
        elif self.loss and self.rng.random() < self.loss:
            return None
        due = now + self.delay_at(elapsed_s) + (self.rng.random() * self.jitter_s if self.jitter_s else 0)
        self.last_due = max(due, self.last_due)      # never before an earlier frame
        return self.last_due


def open_socket(interface):
    """A raw socket reading and writing every frame of interface (not its own sends)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, RCVBUF_BYTES)
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.bind((interface, 0))
    sock.setblocking(False)
    return sock


class DelayLine:
    """The relay between the edge side and the bridge side."""

    def __init__(self, edge_if, bridge_if, config):
        rng = random.Random(config.get('seed', 0))
        self.paths = {}
        for address, spec in config.get('devices', {}).items():
            key = socket.inet_aton(address)
            for direction in ('up', 'down'):
                self.paths[(key, direction)] = Path(spec.get(direction, {}), rng)
        self.edge = open_socket(edge_if)
        self.bridge = open_socket(bridge_if)
        self.queue = []           # (due, sequence, out socket, frame)
        self.sequence = 0
        self.relayed = self.lost = 0
        self.origin = time.monotonic()      # the delay traces' clock

    def restart_clock(self, *_):
        """Start the delay traces' clock again (SIGUSR1: the run's first period)."""
        self.origin = time.monotonic()

    def _take(self, sock, out, direction, now):
        """Read every frame waiting on sock and schedule it on out."""
        while True:
            try:
                frame = sock.recv(MAX_FRAME)
            except BlockingIOError:
                return
            path = None
            if frame[12:14] == IPV4:
                at = 26 if direction == Direction.UP else 30    # source, destination address
                path = self.paths.get((frame[at:at + 4], direction))
            due = now if path is None else path.due(now, now - self.origin)
            if due is None:
                self.lost += 1
                continue
            self.sequence += 1
            heapq.heappush(self.queue, (due, self.sequence, out, frame))

    def _send_due(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(self.queue)
            try:
                out.send(frame)
                self.relayed += 1
            except (BlockingIOError, OSError):
                self.lost += 1

    def run(self):
        """Relay until killed."""
        # select() waits microseconds (epoll and poll whole milliseconds, rounded up: a
        # frame would leave 0.5 ms late on average).
        sides = {self.bridge: (self.edge, 'up'), self.edge: (self.bridge, 'down')}
        while True:
            now = time.monotonic()
            self._send_due(now)
            timeout = max(0.0, self.queue[0][0] - now) if self.queue else 1.0
            ready, _, _ = select.select(list(sides), [], [], timeout)
            for sock in ready:
                out, direction = sides[sock]
                self._take(sock, out, direction, time.monotonic())


def main(argv=None):
    """Run a delay line until killed."""
    parser = argparse.ArgumentParser(prog='edgecollab-delayline')
    parser.add_argument('--edge', required=True, help='interface towards the edge')
    parser.add_argument('--bridge', required=True, help='interface towards the devices')
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        # The line is the wire: it runs before the programs under test, or a loaded
        # machine delays its frames (benchmarks.scale: 3-12 ms late at 100-200 devices).
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
    except OSError as exc:
        print('delay line: no real-time priority (%s): frames may be late when the '
              'machine is loaded' % exc.strerror, file=sys.stderr, flush=True)
    line = DelayLine(args.edge, args.bridge, json.load(sys.stdin))
    signal.signal(signal.SIGUSR1, line.restart_clock)
    print(READY, flush=True)          # its sockets are bound: frames are relayed from now
    line.run()


if __name__ == '__main__':
    main()
