"""Each device's path beyond the shaper: one-way delay, jitter and random loss, and the
engine that imposes them.

The shaper (HTB, ``controller/linkshare.py``) is where a path queues; what a path adds
after it is propagation: a fixed one-way delay per direction, an optional jitter and a
random loss.  Two engines impose them:

    netem      the kernel's netem qdisc as each shaper leaf (one delay and loss for
               every device, no jitter); only where the kernel has sch_netem
    userspace  the delay line (``nodes/delayline.py``): a process in a host of its own
               between the shaped bridge and the edge, per device and direction, any
               kernel (Mahimahi's mm-delay takes the same user-space approach)

``auto`` picks netem where the kernel has it and it can express the paths, else the
delay line.  A path's delay applies in each direction (the round trip is twice it);
jitter is a uniform extra delay in [0, jitter] that never reorders a device's frames;
loss is a Bernoulli percentage per direction.
"""

from dataclasses import asdict, dataclass

from edgecollab.controller import linkshare
from edgecollab.errors import ConfigError, UnsupportedError
from edgecollab.shell import runner
from edgecollab.topologies import addressing

ENGINES = ('auto', 'userspace', 'netem')


@dataclass(frozen=True)
class Path:
    """One device's path beyond the shaper (each direction alike)."""
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0

    def __post_init__(self):
        for name, value, high in (('delay', self.delay_ms, linkshare.DELAY_MS[1]),
                                  ('jitter', self.jitter_ms, linkshare.DELAY_MS[1]),
                                  ('loss', self.loss_pct, 100.0)):
            if not 0 <= value <= high:
                raise ConfigError('%s must be in [0, %g], got %g' % (name, high, value))

    @property
    def impaired(self):
        return self.delay_ms > 0 or self.jitter_ms > 0 or self.loss_pct > 0

    @property
    def rtt_ms(self):
        """The round trip it adds (without jitter)."""
        return 2 * self.delay_ms

    def line_spec(self):
        """The delay line's spec of one direction."""
        return {'delay_ms': self.delay_ms, 'jitter_ms': self.jitter_ms,
                'loss': self.loss_pct / 100}

    def as_dict(self):
        return asdict(self)


def kernel_has_netem(prefix):
    """True when a netem qdisc can be created here (probed on a throwaway IFB device
    named with prefix, so cleanup owns it)."""
    probe = addressing.ifb_name(addressing.data_switch(prefix)) + 'n'
    return linkshare.kernel_has_netem(runner, probe)[0]


def netem_can_express(paths):
    """Why netem cannot impose paths ('' when it can): one delay and loss for all, no
    jitter."""
    if any(p.jitter_ms > 0 for p in paths):
        return 'netem here imposes no jitter'
    if len({(p.delay_ms, p.loss_pct) for p in paths}) > 1:
        return 'netem here imposes one delay and loss on every device'
    return ''


def choose_engine(requested, paths, has_netem):
    """The engine ('netem' or 'userspace') that imposes paths, or None when no path is
    impaired; has_netem() says whether the kernel has netem (asked only when needed)."""
    if requested not in ENGINES:
        raise ConfigError('delay_engine %r is unknown (known: %s)'
                          % (requested, ', '.join(ENGINES)))
    if not any(p.impaired for p in paths):
        return None
    if requested == 'userspace':
        return 'userspace'
    why = netem_can_express(paths)
    if requested == 'netem':
        if why:
            raise ConfigError('delay_engine netem: %s (use userspace or auto)' % why)
        if not has_netem():
            raise UnsupportedError('delay_engine netem: this kernel has no netem qdisc '
                                   '(sch_netem); use userspace or auto')
        return 'netem'
    return 'netem' if not why and has_netem() else 'userspace'
