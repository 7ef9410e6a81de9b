"""The media a fleet's transfers share, and the budgets each one sets.

A medium says what the shares of a plan are fractions of and which of them must add up
to at most one.  Every share is a fraction f of something the device can use; the
class of a device-direction then carries f x its channel's rate (the fleet's capacity C
where the devices share one channel):

    shared    one capacity C for the fleet, one budget for both directions (the paper's)
    duplex    one capacity C per direction, a budget per direction
    airtime   a cell: each device has its own channel rate r_i(t); the budget is the
              airtime (all shares, both directions, add up to at most 1), and a share f
              gives f x r_i(t) each way
    access    each device has its own link at r_i(t) and splits only that link between
              its upload and its checkpoint (a budget per device)

Per-device channels (a capacity per device) are what airtime and access are for; with
one capacity for the fleet, airtime is shared and access is N links of the same rate.
This module is the one home of these facts: the solver, the link share and the loop ask
a ``Medium`` rather than compare names.
"""

from dataclasses import dataclass

from edgecollab import kinds

UP, DOWN = kinds.Direction.UP, kinds.Direction.DOWN


@dataclass(frozen=True)
class Medium:
    """name; per_direction: a budget per direction (duplex); per_device: a budget per
    device (access); channels: each device may have a channel of its own."""
    name: kinds.Medium
    per_direction: bool = False
    per_device: bool = False
    channels: bool = False

    def budgets(self, fractions):
        """[(what, total)] of {device: {'up': f, 'down': f}}: the sums of shares that
        must each stay at most 1."""
        if self.per_device:
            return [(device, share[UP] + share[DOWN]) for device, share in fractions.items()]
        up = sum(share[UP] for share in fractions.values())
        down = sum(share[DOWN] for share in fractions.values())
        if self.per_direction:
            return [(UP, up), (DOWN, down)]
        return [('both ways', up + down)]

    def groups(self, devices):
        """The devices in groups that each share one budget: each device alone on a
        medium with a budget per device, else the whole fleet together."""
        return [[d] for d in devices] if self.per_device else [list(devices)]

    def __str__(self):
        return self.name


SHARED = Medium(kinds.Medium.SHARED)
DUPLEX = Medium(kinds.Medium.DUPLEX, per_direction=True)
AIRTIME = Medium(kinds.Medium.AIRTIME, channels=True)
ACCESS = Medium(kinds.Medium.ACCESS, per_device=True, channels=True)
MEDIA = {m.name: m for m in (SHARED, DUPLEX, AIRTIME, ACCESS)}


def get(name):
    """The Medium called name; ConfigError naming the known ones otherwise."""
    return MEDIA[kinds.member(kinds.Medium, name, 'medium')]
