"""The bandwidth-allocation problem of one device and its exact solution.

Problem (per period; a reconstruction of the paper's, see ``accuracy.py``)::

    maximise   mAP(D, S) = A(S) q(D)          over the upload fraction x in [0, 1]
    subject to D = min(x B W / bits_per_sample, D_gen)          samples reaching the edge
               S = (1 - x) B W / 8,  S_min <= S <= S_max        bytes of the model sent

B is the capacity (bit/s) and W the transfer window of the period: the whole period when
upload and model transmission overlap on split shares (``timing: overlap``, the model
sent in period k was distilled after period k-1), or the period less the edge's update
time when they run one after the other (``timing: sequential``, then x splits time
rather than rate; the problem is the same).

Why a 1-D root find is exact.  On the interval where neither the model size nor the data
volume is clipped, log mAP = log A(S(x)) + log q(D(x)).  A and q are positive, increasing
and concave, and S, D are affine in x, so both terms are concave in x and their sum
phi(x) is strictly concave: the maximiser is unique.  Clipping only makes a term constant
beyond a breakpoint, so the feasible interval shrinks to [lo, hi] with
lo = max(0, 1 - 8 S_max / (B W)) (more model share buys nothing) and
hi = min(1 - 8 S_min / (B W), D_gen bits_per_sample / (B W)) (the smallest model must
fit; more upload than the data generated buys nothing).  KKT for max phi on [lo, hi]:
phi'(x*) = 0 inside, or x* = lo with phi'(lo) <= 0, or x* = hi with phi'(hi) >= 0, where

    phi'(x) = (B W / bits_per_sample) q'(D)/q(D)  -  (B W / 8) A'(S)/A(S),

the marginal accuracy of upload equal to that of the model.  phi' is decreasing, so a
bracketing root find (Brent) on [lo, hi] gives x*.

With a menu of model variants the size is discrete: for each variant that fits, the
rest of the budget goes to upload (up to D_gen) and the best variant wins; exact by
enumeration.  A duplex link (separate budgets per direction) decouples the two terms:
upload takes its whole budget (up to D_gen), the model the largest size that fits.

"Nothing fits": when even the smallest model cannot cross in the window (or B = 0),
the answer has ``feasible = False``, the whole budget to upload, model_bytes = 0, and the
accuracy of the model the device keeps (``fallback_map``, default the smallest model's
A(S_min) q(0)); never NaN.
"""

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from edgecollab.kinds import Medium, Timing, member
from edgecollab.topologies import media
from edgecollab.controller.accuracy import AccuracyModel
from edgecollab.errors import ConfigError


@dataclass(frozen=True)
class Problem:
    """One device's period.

    capacity_mbit: B (Mbit/s); period_s: T (s); update_s: edge update time (s, used by
    sequential timing); timing: a ``kinds.Timing``; sample_bits: bits per data
    sample; generated: D_gen, samples the device produced in the period; min_model_bytes,
    max_model_bytes: S_min, S_max; menu: optional tuple of ModelVariant (discrete sizes);
    medium: a ``kinds.Medium``; rates: in a fleet's problem on a medium with
    channels, each device's channel rate relative to capacity_mbit (empty: every device
    at capacity_mbit); down_ratio: on a duplex medium, the download's capacity
    relative to capacity_mbit (a scenario's ``capacity_down``; 1: both directions at
    capacity_mbit); fallback_map: accuracy kept when no model fits (None: the
    smallest model's with no fresh data).
    """
    capacity_mbit: float
    period_s: float = 60.0
    update_s: float = 0.0
    timing: Timing = Timing.OVERLAP
    sample_bits: float = 800e3
    generated: float = 3000.0
    min_model_bytes: float = 12.8e6
    max_model_bytes: float = 272.8e6
    menu: tuple = ()
    medium: Medium = Medium.SHARED
    accuracy: AccuracyModel = field(default_factory=AccuracyModel)
    fallback_map: float = None
    rates: tuple = ()
    down_ratio: float = 1.0

    def __post_init__(self):
        numbers = {'capacity_mbit': self.capacity_mbit, 'period_s': self.period_s,
                   'update_s': self.update_s, 'sample_bits': self.sample_bits,
                   'generated': self.generated, 'min_model_bytes': self.min_model_bytes,
                   'max_model_bytes': self.max_model_bytes}
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or value < 0:
                raise ConfigError('%s must be a finite number >= 0, got %r' % (name, value))
        for name in ('period_s', 'sample_bits'):
            if getattr(self, name) <= 0:
                raise ConfigError('%s must be > 0, got %r' % (name, getattr(self, name)))
        if self.min_model_bytes <= 0 or self.max_model_bytes < self.min_model_bytes:
            raise ConfigError('need 0 < min_model_bytes <= max_model_bytes')
        medium = media.get(self.medium)
        # The words a caller may give, held as the members they name.
        object.__setattr__(self, 'timing', member(Timing, self.timing, 'timing'))
        object.__setattr__(self, 'medium', medium.name)
        if self.rates and (not medium.channels or not all(
                isinstance(r, (int, float)) and math.isfinite(r) and r > 0
                for r in self.rates)):
            raise ConfigError('rates must be finite numbers > 0, on a medium with channels '
                              '(airtime, access), got %r on %s' % (self.rates, self.medium))
        if isinstance(self.down_ratio, bool) or not isinstance(self.down_ratio, (int, float)) \
                or not math.isfinite(self.down_ratio) or self.down_ratio <= 0 or \
                (self.down_ratio != 1 and not medium.per_direction):
            raise ConfigError('down_ratio must be a finite number > 0, other than 1 only on '
                              'a medium with a budget a direction (duplex), got %r on %s'
                              % (self.down_ratio, self.medium))

    @property
    def window_s(self):
        """W: the time transfers may use in a period (s)."""
        if self.timing == Timing.SEQUENTIAL:
            return max(0.0, self.period_s - self.update_s)
        return self.period_s

    @property
    def budget_bits(self):
        """B W: the bits the link can carry in the window."""
        return self.capacity_mbit * 1e6 * self.window_s

    @property
    def down_budget_bits(self):
        """The bits the download can carry in the window: B W, on a duplex medium B W
        times down_ratio (its own capacity)."""
        return self.budget_bits * self.down_ratio

    def weights(self, n):
        """The budget each of n devices spends on a bit: 1 / its channel's relative rate
        (a device on a channel twice as fast spends half the airtime on a bit)."""
        if not self.rates:
            return np.ones(n)
        if len(self.rates) != n:
            raise ConfigError('rates must give one channel rate per device: %d for %d'
                              % (len(self.rates), n))
        return 1.0 / np.asarray(self.rates, dtype=float)

    def parts(self, n):
        """[(the Problem of device i alone on its part of the medium, the fraction of
        the plan's budget that part is)] when the budget is split equally among n
        devices (one Problem per device with its own channel)."""
        medium = media.get(self.medium)
        rates = self.rates or (1.0,) * n
        if medium.per_device:           # its whole own link
            return [(_alone(self, self.capacity_mbit * r), 1.0) for r in rates]
        if not medium.channels:
            return [(_alone(self, self.capacity_mbit / n), 1.0 / n)] * n
        return [(_alone(self, self.capacity_mbit * r / n), 1.0 / n) for r in rates]

    def smallest_bytes(self):
        """The smallest model the edge can send."""
        return min(v.size_bytes for v in self.menu) if self.menu else self.min_model_bytes

    def largest_bytes(self):
        """The largest model the edge can send."""
        return max(v.size_bytes for v in self.menu) if self.menu else self.max_model_bytes

    def kept_map(self):
        """Accuracy of the model the device keeps when no new one arrives."""
        if self.fallback_map is not None:
            return self.fallback_map
        return self.fresh_accuracy(0.0, self.smallest_bytes())

    def fresh_accuracy(self, samples, model_bytes):
        """A(S) q(D): the accuracy of a new checkpoint of model_bytes trained with
        samples fresh ones."""
        return float(self.size_map(model_bytes) * self.accuracy.q(samples))

    def size_map(self, size_bytes):
        """A(S) for a continuous size, or the menu's figure for a variant of that size."""
        for variant in self.menu:
            if abs(variant.size_bytes - size_bytes) < 0.5:
                return variant.map
        return float(self.accuracy.size_term(size_bytes))

    # the period's outcome for an upload fraction
    def samples(self, upload_fraction):
        """D: samples reaching the edge with upload fraction x of the budget."""
        return min(upload_fraction * self.budget_bits / self.sample_bits, self.generated)


def _alone(problem, capacity_mbit):
    """problem for one device with capacity_mbit of its own (no channels to weigh)."""
    medium = problem.medium if problem.medium == media.DUPLEX.name else media.SHARED.name
    return dataclasses.replace(problem, capacity_mbit=capacity_mbit, rates=(), medium=medium)


@dataclass
class Allocation:
    """A policy's answer: shares as fractions of the capacity (the split the link gets;
    upload_share + download_share = 1 unless nothing fits) and what they deliver."""
    upload_share: float
    download_share: float
    upload_bytes: float
    model_bytes: float
    accuracy: float
    feasible: bool = True
    model: str = ''
    reason: str = ''

    def as_dict(self):
        """The JSON form used by ``edgecollab solve --json``."""
        return {'upload_share': round(self.upload_share, 6),
                'download_share': round(self.download_share, 6),
                'upload_bytes': round(self.upload_bytes), 'model_bytes': round(self.model_bytes),
                'accuracy': round(self.accuracy, 6), 'feasible': self.feasible,
                'model': self.model, 'reason': self.reason}


def evaluate(problem, upload_fraction, model_bytes=None, model=''):
    """The Allocation of giving upload_fraction of the budget to upload and sending a
    model of model_bytes (default: all the rest, clipped to S_max) in the rest (on a
    duplex medium: upload_fraction of the upload's budget, the rest of the download's)."""
    budget = problem.budget_bits
    x = min(max(upload_fraction, 0.0), 1.0)
    room_bytes = (1 - x) * problem.down_budget_bits / 8
    if model_bytes is None:
        model_bytes = min(room_bytes, problem.max_model_bytes)
    samples = problem.samples(x)
    upload_bytes = samples * problem.sample_bits / 8
    if budget <= 0 or model_bytes > room_bytes * (1 + 1e-9) or \
            model_bytes < problem.smallest_bytes() * (1 - 1e-9):
        return nothing_fits(problem, 'the model does not fit in the window', x)
    # Shares are the split (the model's share holds whatever the upload leaves).
    return Allocation(upload_share=x, download_share=1 - x, upload_bytes=upload_bytes,
                      model_bytes=model_bytes,
                      accuracy=problem.fresh_accuracy(samples, model_bytes),
                      model=model)


def nothing_fits(problem, reason, upload_fraction=1.0):
    """The documented answer when no model reaches the device: keep the old one."""
    budget = problem.budget_bits
    samples = problem.samples(upload_fraction) if budget > 0 else 0.0
    upload_bytes = samples * problem.sample_bits / 8
    return Allocation(upload_share=(upload_bytes * 8 / budget) if budget > 0 else 0.0,
                      download_share=0.0, upload_bytes=upload_bytes, model_bytes=0.0,
                      accuracy=problem.kept_map(), feasible=False, reason=reason)


def solve(problem):
    """The optimal Allocation of problem (see the module docstring)."""
    if problem.budget_bits <= 0:
        return nothing_fits(problem, 'no capacity in the window')
    if media.get(problem.medium).per_direction:
        return _solve_duplex(problem)
    if problem.menu:
        return _solve_menu(problem)
    budget = problem.budget_bits
    hi = min(1 - 8 * problem.min_model_bytes / budget,
             problem.generated * problem.sample_bits / budget)
    lo = max(0.0, 1 - 8 * problem.max_model_bytes / budget)
    if 1 - 8 * problem.min_model_bytes / budget < 0:
        return nothing_fits(problem, 'the smallest model (%d bytes) needs more than the '
                            'window carries' % problem.min_model_bytes)
    if hi <= lo:
        # Enough for all data and the largest model: both saturate.
        return evaluate(problem, min(hi, 1.0) if hi >= 0 else 0.0)
    x = _argmax_concave(lambda u: marginal(problem, u), lo, hi)
    return evaluate(problem, x)


def marginal(problem, x):
    """phi'(x): d log mAP / dx on the unclipped interval."""
    budget = problem.budget_bits
    acc = problem.accuracy
    samples = x * budget / problem.sample_bits
    size = (1 - x) * budget / 8
    return (budget / problem.sample_bits) * acc.q_slope(samples) / acc.q(samples) - \
        (budget / 8) * acc.size_slope(size) / acc.size_term(size)


def _argmax_concave(derivative, lo, hi):
    d_lo, d_hi = derivative(lo), derivative(hi)
    if d_lo <= 0:
        return lo
    if d_hi >= 0:
        return hi
    from scipy.optimize import brentq     # here: scipy loads when a solve needs it
    return brentq(derivative, lo, hi, xtol=1e-12, rtol=1e-12)


def _solve_menu(problem):
    budget = problem.budget_bits
    best = None
    for variant in sorted(problem.menu, key=lambda v: v.size_bytes):
        room = 1 - 8 * variant.size_bytes / budget
        if room < 0:
            continue
        x = min(room, problem.generated * problem.sample_bits / budget)
        candidate = evaluate(problem, x, variant.size_bytes, variant.name)
        if best is None or candidate.accuracy > best.accuracy + 1e-12:
            best = candidate
    if best is None:
        return nothing_fits(problem, 'no model variant fits in the window')
    return best


def _solve_duplex(problem):
    # Separate budgets: upload takes its own budget, the model the largest size that fits
    # the download's.
    budget, down = problem.budget_bits, problem.down_budget_bits
    samples = min(budget / problem.sample_bits, problem.generated)
    if problem.menu:
        fitting = [v for v in problem.menu if 8 * v.size_bytes <= down]
        if not fitting:
            return nothing_fits(problem, 'no model variant fits in the window')
        best = max(fitting, key=lambda v: v.map)
        size, name, size_map = best.size_bytes, best.name, best.map
    else:
        if 8 * problem.min_model_bytes > down:
            return nothing_fits(problem, 'the smallest model needs more than the window')
        size, name = min(down / 8, problem.max_model_bytes), ''
        size_map = float(problem.accuracy.size_term(size))
    return Allocation(upload_share=samples * problem.sample_bits / budget,
                      download_share=8 * size / down,
                      upload_bytes=samples * problem.sample_bits / 8, model_bytes=size,
                      accuracy=float(size_map * problem.accuracy.q(samples)), model=name)


@dataclass
class FleetAllocation:
    """Per-device allocations (shares as fractions of the whole capacity)."""
    devices: list
    feasible: bool = True
    reason: str = ''
    exact: bool = True        # proven optimal (a menu fleet: see menu.py)
    bound: float = None       # a certified upper bound on the mean accuracy, where known

    @property
    def mean_accuracy(self):
        """The mean mAP over the devices."""
        return float(np.mean([d.accuracy for d in self.devices]))

    def as_dict(self, names):
        """JSON form: totals and one entry per device, under its name in names."""
        return {'upload_share': round(sum(d.upload_share for d in self.devices), 6),
                'download_share': round(sum(d.download_share for d in self.devices), 6),
                'upload_bytes': round(sum(d.upload_bytes for d in self.devices)),
                'model_bytes': round(sum(d.model_bytes for d in self.devices)),
                'accuracy': round(self.mean_accuracy, 6), 'feasible': self.feasible,
                'reason': self.reason, 'exact': self.exact,
                'bound': None if self.bound is None else round(self.bound, 6),
                'devices': {name: d.as_dict() for name, d in zip(names, self.devices)}}


def give_leftover(up, down, medium):
    """(up, down) shares with the budget the plan does not use handed to the model shares
    (in proportion to them; to the uploads when no model is sent), as the single-device
    split does; duplex: each direction's rest to that direction's shares; access: each
    device's rest of its own link to its checkpoint (its upload without one)."""
    kind = media.get(medium)
    if kind.per_device:
        left = np.maximum(1.0 - up - down, 0.0)
        return np.where(down > 0, up, up + left), np.where(down > 0, down + left, down)
    if not kind.per_direction:
        left = 1.0 - float(np.sum(up) + np.sum(down))
        if left > 1e-12:
            if np.sum(down) > 0:
                down = down + left * down / np.sum(down)
            elif np.sum(up) > 0:
                up = up + left * up / np.sum(up)
        return up, down
    return tuple(shares + (1.0 - np.sum(shares)) * shares / np.sum(shares)
                 if 1.0 - np.sum(shares) > 1e-12 and np.sum(shares) > 0 else shares
                 for shares in (up, down))
