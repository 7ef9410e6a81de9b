"""Each device's path beyond the shaper: one-way delay, jitter and random loss, and the
engine that imposes them.

The shaper (HTB, ``topologies/linkshare.py``) is where a path queues; what a path adds
after it is propagation: a fixed one-way delay per direction, an optional jitter and a
random loss.  Two engines impose them:

    netem      the kernel's netem qdisc on each device's own data interface, each way
               (a delay and loss per device, no jitter); only where the kernel has
               sch_netem
    userspace  the delay line (``topologies/delayline.py``): a process in a host of its own
               between the shaped bridge and the edge, per device and direction, any
               kernel (Mahimahi's mm-delay takes the same user-space approach)

``auto`` picks netem where the kernel has it and it can express the paths, else the
delay line.  A path's delay applies in each direction (the round trip is twice it);
jitter is a uniform extra delay in [0, jitter] that never reorders a device's frames;
loss is a Bernoulli percentage per direction, or bursty (Gilbert-Elliott: ``Bursts``).
A delay trace (``DelaySteps``) varies the delay over time; its clock starts with the
run's first period (``DelayLineSwitch.restart_clock``) and it loops.  Bursts and delay
traces are the delay line's: netem here is given one fixed delay and loss.
"""

from dataclasses import asdict, dataclass

from edgecollab.topologies import linkshare
from edgecollab.errors import ConfigError, UnsupportedError
from edgecollab.kinds import DelayEngine, member
from edgecollab.shell import runner
from edgecollab.topologies import addressing

def _check(name, value, high):
    if not 0 <= value <= high:
        raise ConfigError('%s must be in [0, %g], got %g' % (name, high, value))


@dataclass(frozen=True)
class Bursts:
    """Gilbert-Elliott loss, in percent: p the chance a frame moves the path from the good
    state to the bad one, r from bad back to good, h the chance a frame is delivered in
    the bad state (none is lost in the good state).  Mean loss: p / (p + r) * (100 - h)."""
    p_pct: float
    r_pct: float
    h_pct: float = 0.0

    def __post_init__(self):
        for name in ('p_pct', 'r_pct', 'h_pct'):
            _check('gilbert_elliott.%s' % name[0], getattr(self, name), 100.0)
        if self.p_pct > 0 and self.r_pct == 0:
            raise ConfigError('gilbert_elliott: r is 0, so a path that turns bad '
                              'never recovers')

    @property
    def mean_loss_pct(self):
        if self.p_pct == 0:
            return 0.0
        return self.p_pct / (self.p_pct + self.r_pct) * (100 - self.h_pct)


@dataclass(frozen=True)
class DelaySteps:
    """A delay trace: delay_ms[i] holds from times_s[i] (the first is 0) to the next
    time, the last until duration_s; then it loops (or holds the last value)."""
    times_s: tuple
    delay_ms: tuple
    duration_s: float
    loop: bool = True

    def __post_init__(self):
        if not self.times_s or len(self.times_s) != len(self.delay_ms):
            raise ConfigError('a delay trace needs one delay for each of its times')
        for value in self.delay_ms:
            _check('delay', value, linkshare.DELAY_MS[1])

    @property
    def mean_ms(self):
        ends = self.times_s[1:] + (self.duration_s,)
        total = sum((end - start) * ms for start, end, ms
                    in zip(self.times_s, ends, self.delay_ms))
        return total / self.duration_s if self.duration_s > 0 else self.delay_ms[0]


@dataclass(frozen=True)
class Path:
    """One device's path beyond the shaper (each direction alike).  delay_steps (a
    DelaySteps), when given, replaces delay_ms; bursts (Bursts) replaces loss_pct."""
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    bursts: Bursts = None
    delay_steps: DelaySteps = None

    def __post_init__(self):
        _check('delay', self.delay_ms, linkshare.DELAY_MS[1])
        _check('jitter', self.jitter_ms, linkshare.DELAY_MS[1])
        _check('loss', self.loss_pct, 100.0)

    @property
    def impaired(self):
        return (self.delay_ms > 0 or self.jitter_ms > 0 or self.loss_pct > 0
                or self.bursts is not None or self.delay_steps is not None)

    @property
    def rtt_ms(self):
        """The round trip it adds (without jitter; a delay trace's time-weighted mean)."""
        return 2 * (self.delay_steps.mean_ms if self.delay_steps else self.delay_ms)

    @property
    def mean_loss_pct(self):
        return self.bursts.mean_loss_pct if self.bursts else self.loss_pct

    def line_spec(self):
        """The delay line's spec of one direction (``topologies/delayline.py``)."""
        spec = {'delay_ms': self.delay_ms, 'jitter_ms': self.jitter_ms,
                'loss': self.loss_pct / 100}
        if self.bursts:
            spec['gilbert'] = [self.bursts.p_pct / 100, self.bursts.r_pct / 100,
                               self.bursts.h_pct / 100]
        if self.delay_steps:
            steps = self.delay_steps
            spec['schedule'] = {'times_s': list(steps.times_s),
                                'delay_ms': list(steps.delay_ms),
                                'duration_s': steps.duration_s, 'loop': steps.loop}
        return spec

    def as_dict(self):
        row = {'delay_ms': self.delay_ms, 'jitter_ms': self.jitter_ms,
               'loss_pct': self.loss_pct}
        if self.bursts:
            row['gilbert_elliott_pct'] = asdict(self.bursts)
            row['mean_loss_pct'] = self.bursts.mean_loss_pct
        if self.delay_steps:
            row['delay_trace'] = {'steps': len(self.delay_steps.times_s),
                                  'duration_s': self.delay_steps.duration_s,
                                  'mean_ms': self.delay_steps.mean_ms,
                                  'loop': self.delay_steps.loop}
        return row


def kernel_has_netem(prefix):
    """True when a netem qdisc can be created here (probed on a throwaway IFB device
    named with prefix, so cleanup owns it)."""
    probe = addressing.ifb_name(addressing.data_switch(prefix)) + 'n'
    return linkshare.kernel_has_netem(runner, probe)[0]


def netem_can_express(paths):
    """Why netem cannot impose paths ('' when it can): a delay and a random loss per
    device, no jitter (netem's reorders frames), bursts or delay trace."""
    if any(p.jitter_ms > 0 for p in paths):
        return 'netem here imposes no jitter'
    if any(p.bursts or p.delay_steps for p in paths):
        return 'netem here imposes no bursty loss or delay trace'
    return ''


def choose_engine(requested, paths, has_netem):
    """The DelayEngine (netem or userspace) that imposes paths, or None when no path is
    impaired; has_netem() says whether the kernel has netem (asked only when needed)."""
    requested = member(DelayEngine, requested, 'delay_engine')
    if not any(p.impaired for p in paths):
        return None
    if requested == DelayEngine.USERSPACE:
        return DelayEngine.USERSPACE
    why = netem_can_express(paths)
    if requested == DelayEngine.NETEM:
        if why:
            raise ConfigError('delay_engine netem: %s (use userspace or auto)' % why)
        if not has_netem():
            raise UnsupportedError('delay_engine netem: this kernel has no netem qdisc '
                                   '(sch_netem); use userspace or auto')
        return DelayEngine.NETEM
    return DelayEngine.NETEM if not why and has_netem() else DelayEngine.USERSPACE
