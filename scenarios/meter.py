"""What a Mininet run's link carried, read from the link share's class counters.

Each device has an up and a down class; their counters (bytes, and the bytes of the ACK
child) give each class's TCP payload between two readings (``class_goodput``,
``goodput``).  Over a period the ``Meter`` sums, for the sampling steps where a class
still had bytes to deliver, its goodput and the rate the link gave it: their ratio is
the period's TCP efficiency (``efficiency``), what ``adaptive`` plans the next period
with; ``remaining`` is what each class still has to move.
"""

import threading

from edgecollab.kinds import Direction
from edgecollab.wire import GOODPUT_PER_WIRE

DIRECTIONS = (Direction.UP, Direction.DOWN)
# Data within this share of its volume counts as delivered (HTTP framing, the goodput
# estimate); a checkpoint keeps at least this share left until its download ends.
DELIVERED_WITHIN = 0.02
# ... and at least this many bytes (the rest of a small resumed part: its 2% is a few
# KB, a share too small to move its last segments by the deadline; measured: a 134 KB
# rest resumed at a 3G trough missed by 4 KB).
MIN_LEFT_BYTES = 64 * 1024


class Meter:
    """The goodput and efficiency of the classes of linkshare (a LinkShare)."""

    def __init__(self, linkshare):
        self.linkshare = linkshare
        self.lock = threading.Lock()
        self.busy = {}        # (device, direction) -> [sum of goodput, sum of its rate]

    @staticmethod
    def class_goodput(name, before, after):
        """({direction: wire bytes}, {direction: TCP payload bytes}) device name's
        classes carried between the counters before and after (ACK child excluded)."""
        wire = {d: (after[(name, d)].bytes - after[(name, d)].ack_bytes) -
                (before[(name, d)].bytes - before[(name, d)].ack_bytes) for d in DIRECTIONS}
        return wire, {d: w * GOODPUT_PER_WIRE for d, w in wire.items()}

    @staticmethod
    def goodput(last, counters, dt):
        """{(device, direction): Mbit/s of TCP payload} between two readings dt apart."""
        return {key: (c.bytes - c.ack_bytes - last[key].bytes + last[key].ack_bytes)
                * 8 / dt / 1e6 * GOODPUT_PER_WIRE for key, c in counters.items()}

    def account(self, remaining, goodput):
        """Count a sampling step: each class with bytes left adds its goodput and the
        rate the link gave it (its share, or the wire rate it reached when it borrowed
        above it on a work-conserving link), whatever re-splits happened."""
        with self.lock:
            for (name, d), left in remaining.items():
                share = self.linkshare.share_mbit(name, d)
                if left > 0 and share > 0:
                    sums = self.busy.setdefault((name, d), [0.0, 0.0])
                    sums[0] += goodput[(name, d)]
                    sums[1] += max(share, goodput[(name, d)] / GOODPUT_PER_WIRE)

    def efficiency(self):
        """({direction: goodput / share}, {(device, direction): goodput / share}) of the
        steps counted since the last call (directions without such steps left out)."""
        with self.lock:
            busy, self.busy = self.busy, {}
        per_class = {key: got / share for key, (got, share) in busy.items() if share > 0}
        efficiency = {}
        for direction in DIRECTIONS:
            sums = [v for (_, d), v in busy.items() if d == direction]
            share = sum(v[1] for v in sums)
            if share > 0:
                efficiency[direction] = sum(v[0] for v in sums) / share
        return efficiency, per_class

    def remaining(self, period, devices, before, counters, ended, down_offset):
        """{(device, direction): bytes still to move} of each of devices in period (a
        loop Period) from the counters at its start (before) and now: the device's data
        and its checkpoint (the part not yet sent, when resumed); ended: the devices
        whose download has ended; down_offset: {device: download bytes of a checkpoint
        replaced}."""
        remaining = {}
        for name in devices:
            got = self.class_goodput(name, before, counters)[1]
            left = period.upload_limit[name] - got[Direction.UP]
            remaining[(name, Direction.UP)] = \
                left if left > DELIVERED_WITHIN * period.upload_limit[name] else 0.0
            # A checkpoint is all or nothing: it keeps a share for at least that part
            # until the device reports its download ended.
            need = period.model_left[name]
            down = max(got[Direction.DOWN] - down_offset.get(name, 0.0), 0.0)  # of this one
            remaining[(name, Direction.DOWN)] = 0.0 if need <= 0 or name in ended else \
                max(need - down, min(need, max(DELIVERED_WITHIN * need, MIN_LEFT_BYTES)))
        return remaining
