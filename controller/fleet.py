"""N devices sharing one budget: maximise the mean accuracy, optionally with a floor.

The devices share the period, the accuracy model and the model menu of a ``Problem``;
each has its own data volume (``generated``, samples in the period).  A shared medium
gives one budget B W of bits for every device and direction; a duplex one a budget per
direction.

Method (Lagrangian decomposition, vectorised over the devices).  For a price lambda
(accuracy per bit) each device answers on its own

    max  A(S) q(D) - lambda (8 S + s D)       over S (menu variant or [S_min, S_max]),
                                              D in [0, D_gen], or "keep the old model"

For a fixed S the best D is closed form, q'(D) = lambda s / A(S):

    D(S) = (A(S) c alpha / (lambda s)) ** (1 / (1 + alpha)) - d0,  clipped to [0, D_gen];

a menu is enumerated.  A continuous size is the root of the envelope derivative
A'(S) q(D(S)) - 8 lambda (decreasing along the expansion path of this family; checked
against brute force in the tests); as D(S) = min(D_free(S), D_gen), that root is the
smaller of the root without the cap, which is the same for every device at one price
(one scalar Brent search), and the closed-form root of A'(S) q(D_gen) = 8 lambda.
The bits the devices ask for fall as lambda rises, so lambda is found by Brent's method
on log lambda until the budget is met; then the
budget the discrete choices left over is water-filled into data (closed form in the
price of a sample, given each device's A(S)) and, for continuous sizes, into models
(closed form: A'(S) q(D) = 8 mu).  Each step keeps every constraint, and the answer is
checked against the equal split of the budget (each device's exact single-device
optimum at B/N) for up to 100 devices: the better of the two is returned, so the fleet
optimum is never below any baseline that splits the budget equally.  (Beyond 100
devices the check, one exact solve a device, would cost more than the rest; the
Lagrangian answer is then returned as it is: exact for continuous sizes, within the
duality gap of the variant choices for a menu.)

A fairness floor F (every device at least F mAP) gives device i its own price
min(lambda, lambda_i), lambda_i the highest price at which its answer still reaches F
(the floor's multiplier, found once by bisection); a device that cannot reach F even
with the whole budget, or floors that together need more than the budget, make the
answer infeasible with the reason, never a crash.
"""

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from edgecollab.controller.accuracy import MB
from edgecollab.controller.solver import Allocation, solve
from edgecollab.errors import ConfigError

_LOG_PRICE = (-30.0, 5.0)     # bracket of log10 lambda (mAP points per bit)
_ITERATIONS = 64
_SEARCH_DEVICES = 20          # local search over menu variants up to this many devices
_GUARD_DEVICES = 100          # compare with the equal split up to this many devices


@dataclass
class FleetAllocation:
    """Per-device allocations (shares as fractions of the whole capacity)."""
    devices: list
    feasible: bool = True
    reason: str = ''

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
                'reason': self.reason,
                'devices': {name: d.as_dict() for name, d in zip(names, self.devices)}}


class Fleet:
    """N devices of one Problem (capacity = the shared total) with their data volumes."""

    def __init__(self, problem, generated, floor=None):
        self.problem = problem
        self.generated = np.asarray(generated, dtype=float)
        if self.generated.ndim != 1 or self.generated.size < 1 or \
                np.any(~np.isfinite(self.generated)) or np.any(self.generated < 0):
            raise ConfigError('generated must be one finite number >= 0 per device')
        if floor is not None and not 0 <= floor < problem.accuracy.a_inf:
            raise ConfigError('fairness floor must be in [0, %.1f) mAP, got %r'
                              % (problem.accuracy.a_inf, floor))
        self.floor = floor
        self.n = self.generated.size
        acc = problem.accuracy
        self.s = problem.sample_bits
        self.kept = problem.kept_map()
        if problem.menu:
            variants = sorted(problem.menu, key=lambda v: v.size_bytes)
            self.sizes = np.array([v.size_bytes for v in variants])
            self.size_maps = np.array([v.map for v in variants])
            self.names = [v.name for v in variants]
        else:
            self.sizes = None
        self.acc = acc

    # the per-device answer to a price
    def _free_data(self, weight, price):
        """Best D >= 0 for a model term weight A and a price of a sample, without the
        device's own cap D_gen (vectorised)."""
        acc = self.acc
        with np.errstate(divide='ignore', over='ignore', invalid='ignore'):
            d = np.power(weight * acc.c * acc.alpha / (price * self.s),
                         1 / (1 + acc.alpha)) - acc.d0
        return np.fmax(d, 0.0)        # a NaN (a negative weight) gives 0

    def _data(self, weight, price):
        """Best D in [0, D_gen] for a model term weight A and a price of a sample."""
        return np.minimum(self._free_data(weight, price), self.generated)

    def _continuous_size(self, price_up, price_down):
        """Best continuous S for each device at the given prices.

        The envelope derivative is A'(S) q(min(D_free(S), D_gen)) - 8 price, and
        q(min(x, D_gen)) = min(q(x), q(D_gen)): the minimum of two decreasing functions
        of S, so its root is the smaller of their roots.  The first, A'(S) q(D_free(S)),
        does not depend on the device: one root for each distinct pair of prices (one,
        without a floor).  The second, A'(S) q(D_gen) = 8 price, is closed form.  Both
        are clipped to [S_min, S_max]."""
        p, acc = self.problem, self.acc
        if np.all(price_up == price_up[0]) and np.all(price_down == price_down[0]):
            free = self._free_root_one(float(price_up[0]), float(price_down[0]))
        else:
            pairs, index = np.unique(np.stack([price_up, price_down]), axis=1,
                                     return_inverse=True)
            free = self._free_root(pairs[0], pairs[1])[np.ravel(index)]
        with np.errstate(divide='ignore', over='ignore'):
            capped = np.power(acc.b * acc.gamma * acc.q(self.generated) /
                              (8 * price_down * MB), 1 / (acc.gamma + 1)) * MB
        return np.clip(np.minimum(free, capped), p.min_model_bytes, p.max_model_bytes)

    def _free_slope(self, log_size, price_up, price_down):
        """A'(S) q(D_free(S)) / (8 price_down) - 1 at S = exp(log_size): decreasing in S,
        relative to the price so one tolerance fits every scale (vectorised)."""
        size = np.exp(log_size)
        d = self._free_data(self.acc.size_term(size), price_up)
        return self.acc.size_slope(size) * self.acc.q(d) / (8 * price_down) - 1

    def _free_slope_one(self, log_size, price_up, price_down):
        """_free_slope for one size and one pair of prices, in floats: the root search
        calls it a dozen times a price, where numpy's per-call cost would dominate."""
        acc = self.acc
        size_mb = max(math.exp(log_size) / MB, 1.0 / MB)
        weight = acc.a_inf - acc.b * size_mb ** -acc.gamma                  # A(S)
        base = weight * acc.c * acc.alpha / (price_up * self.s)
        d = max(base ** (1 / (1 + acc.alpha)) - acc.d0, 0.0) if base > 0 else 0.0
        q = 1 - acc.c * (acc.d0 + d) ** -acc.alpha
        return acc.b * acc.gamma * size_mb ** (-acc.gamma - 1) / MB * q / \
            (8 * price_down) - 1

    def _free_root_one(self, price_up, price_down):
        """The root of _free_slope for one pair of prices (Brent's method on floats), or
        a bound of [S_min, S_max]."""
        p = self.problem
        lo, hi = np.log(p.min_model_bytes), np.log(p.max_model_bytes)
        if self._free_slope_one(lo, price_up, price_down) <= 0:
            return p.min_model_bytes
        if self._free_slope_one(hi, price_up, price_down) >= 0:
            return p.max_model_bytes
        return math.exp(brentq(self._free_slope_one, lo, hi, args=(price_up, price_down),
                               xtol=1e-11))

    def _free_root(self, price_up, price_down):
        """Root in log S of A'(S) q(D_free(S)) / (8 price_down) - 1 (decreasing) for each
        pair of prices, by the Illinois variant of regula falsi (vectorised, bracketed),
        or a bound of [S_min, S_max]."""
        p = self.problem

        def slope(log_size):
            return self._free_slope(log_size, price_up, price_down)
        count = price_up.size
        a = np.full(count, np.log(p.min_model_bytes))
        b = np.full(count, np.log(p.max_model_bytes))
        fa, fb = slope(a), slope(b)
        answer = np.where(fa <= 0, a, np.where(fb >= 0, b, np.nan))
        active = np.isnan(answer)
        side = np.zeros(count)
        c = answer.copy()
        for _ in range(100):
            if not np.any(active):
                break
            c_new = np.where(active, (a * fb - b * fa) / np.where(active, fb - fa, 1.0), c)
            fc = slope(c_new)
            done = active & ((np.abs(c_new - c) < 1e-11) | (fc == 0))
            c = c_new
            right = active & (fc < 0)          # the root is left of c: c replaces b
            left = active & (fc > 0)
            fa = np.where(right & (side == -1), fa / 2, fa)
            fb = np.where(left & (side == 1), fb / 2, fb)
            b, fb = np.where(right, c, b), np.where(right, fc, fb)
            a, fa = np.where(left, c, a), np.where(left, fc, fa)
            side = np.where(right, -1, np.where(left, 1, side))
            active &= ~done
        return np.exp(np.where(np.isnan(answer), c, answer))

    def respond(self, price_up, price_down=None):
        """Each device's (size, samples, value) at the prices; size 0 = keep the old model."""
        price_down = price_up if price_down is None else price_down
        price_up = np.broadcast_to(price_up, (self.n,)).astype(float)
        price_down = np.broadcast_to(price_down, (self.n,)).astype(float)
        if self.sizes is not None:
            weights = self.size_maps[None, :]
            d = np.stack([self._data(np.full(self.n, w), price_up) for w in self.size_maps],
                         axis=1)
            value = weights * self.acc.q(d)
            net = value - price_up[:, None] * self.s * d - price_down[:, None] * 8 * \
                self.sizes[None, :]
            best = np.argmax(net, axis=1)
            rows = np.arange(self.n)
            size, samples, val, gain = (self.sizes[best], d[rows, best], value[rows, best],
                                        net[rows, best])
        else:
            size = self._continuous_size(price_up, price_down)
            samples = self._data(self.acc.size_term(size), price_up)
            val = self.acc.accuracy(samples, size)
            gain = val - price_up * self.s * samples - price_down * 8 * size
        keep = gain < self.kept
        size = np.where(keep, 0.0, size)
        samples = np.where(keep, 0.0, samples)
        val = np.where(keep, self.kept, val)
        return size, samples, val

    # prices meeting the budgets
    def _floor_prices(self):
        """Per device, the highest log price at which its answer reaches the floor."""
        if self.floor is None or self.kept >= self.floor:
            return np.full(self.n, np.inf)
        lo = np.full(self.n, _LOG_PRICE[0])
        hi = np.full(self.n, _LOG_PRICE[1])
        reachable = self.respond(10.0 ** lo)[2] >= self.floor - 1e-9
        for _ in range(_ITERATIONS):
            mid = 0.5 * (lo + hi)
            ok = self.respond(10.0 ** mid)[2] >= self.floor - 1e-9
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        return np.where(reachable, lo, -np.inf)

    def _price_for(self, budget_bits, spend, caps):
        """The lowest log price whose spend fits budget_bits, each device's log price
        capped by caps.  Spend falls as the price rises (with jumps where a device
        switches variant or stops being served): Brent's method on the log price, then
        the feasible side of the root.  Each price is evaluated once (brentq asks for the
        bracket's ends again and the root is checked after)."""
        @functools.lru_cache(maxsize=None)
        def excess(log_price):
            return spend(10.0 ** np.minimum(log_price, caps)) - budget_bits
        lo, hi = _LOG_PRICE
        if excess(lo) <= 0:
            return lo
        if excess(hi) > 0:
            return hi
        root = brentq(excess, lo, hi, xtol=1e-12, rtol=4 * np.finfo(float).eps)
        step = 1e-12
        while excess(root) > 0 and root < hi:
            root, step = root + step, step * 2
        return min(root, hi)

    def solve(self):
        """The FleetAllocation maximising the mean accuracy (see the module docstring)."""
        p = self.problem
        budget = p.budget_bits
        if budget <= 0:
            return self._nothing('no capacity in the window')
        caps = self._floor_prices()
        if np.any(caps == -np.inf):
            return self._floor_unreachable('a device cannot reach the floor %.2f mAP even '
                                           'with the whole budget' % self.floor)
        if p.medium == 'duplex':
            size, samples = self._solve_duplex(budget, caps)
        else:
            def spend(prices):
                size, samples, _ = self.respond(prices)
                return float(np.sum(8 * size + self.s * samples))
            log_price = self._price_for(budget, spend, caps)
            size, samples, _ = self.respond(10.0 ** np.minimum(log_price, caps))
            size, samples = self._fill(size, samples, budget, budget)
        if self.sizes is not None and self.n <= _SEARCH_DEVICES:
            size, samples = self._switch_variants(size, samples, budget)
        if self.floor is not None and np.any(
                self._values(size, samples) < self.floor - 1e-6):
            return self._floor_unreachable('the floors of %.2f mAP together need more '
                                           'than the budget' % self.floor)
        answer = self._allocation(size, samples)
        if self.n > _GUARD_DEVICES:
            return answer
        equal = self._equal_split()
        if equal.mean_accuracy > answer.mean_accuracy + 1e-12 and (
                self.floor is None or min(d.accuracy for d in equal.devices) >= self.floor):
            return equal
        return answer

    def _solve_duplex(self, budget, caps):
        # Two prices, found by alternating bisections (each budget is met in turn).
        log_up = log_down = _LOG_PRICE[0]
        for _ in range(8):
            log_up = self._price_for(budget, lambda pr: float(np.sum(
                self.s * self.respond(pr, 10.0 ** np.minimum(log_down, caps))[1])), caps)
            log_down = self._price_for(budget, lambda pr: float(np.sum(
                8 * self.respond(10.0 ** np.minimum(log_up, caps), pr)[0])), caps)
        size, samples, _ = self.respond(10.0 ** np.minimum(log_up, caps),
                                        10.0 ** np.minimum(log_down, caps))
        return self._fill(size, samples, budget, budget, duplex=True)

    # water-filling what the discrete choices left over
    def _fill(self, size, samples, up_budget, down_budget, duplex=False):
        served = size > 0
        model_bits = float(np.sum(8 * size))
        data_room = up_budget - (0.0 if duplex else model_bits)
        samples = self._fill_data(size, samples, served, data_room)
        if self.sizes is None:
            room = down_budget - model_bits - (0.0 if duplex else float(np.sum(
                self.s * samples)))
            if room > 0:
                size = self._fill_models(size, samples, served, model_bits + room)
        return size, samples

    def _fill_data(self, size, samples, served, room_bits):
        weights = np.where(served, self._size_maps(size), 0.0)
        if room_bits <= 0 or not np.any(served):
            return samples

        def spend(prices):
            return float(np.sum(self.s * np.where(served, self._data(weights, prices), 0)))
        if spend(10.0 ** _LOG_PRICE[0]) <= room_bits:
            return np.where(served, self.generated, 0.0)
        log_price = self._price_for(room_bits, spend, np.full(self.n, np.inf))
        filled = np.where(served, self._data(weights, 10.0 ** log_price), 0.0)
        return np.maximum(filled, samples) if spend(10.0 ** log_price) <= room_bits \
            else samples

    def _fill_models(self, size, samples, served, model_bits):
        p, acc = self.problem, self.acc
        q = acc.q(samples)

        def sizes_at(price):
            s_mb = np.power(acc.b * acc.gamma * q / (8 * price * 1e6), 1 / (acc.gamma + 1))
            return np.where(served, np.clip(s_mb * 1e6, p.min_model_bytes,
                                            p.max_model_bytes), 0.0)
        log_price = self._price_for(model_bits, lambda pr: float(np.sum(8 * sizes_at(pr))),
                                    np.full(self.n, np.inf))
        filled = sizes_at(10.0 ** log_price)
        return np.maximum(filled, size) if np.sum(8 * filled) <= model_bits + 1 else size

    def _switch_variants(self, size, samples, budget):
        # The menu makes each device's value a step function of its budget, so the
        # price may leave a gap; switch one device's variant at a time (data
        # re-filled) while the mean improves.
        duplex = self.problem.medium == 'duplex'
        best = float(np.mean(self._values(size, samples)))
        for _ in range(3):
            improved = False
            for i in range(self.n):
                for option in np.concatenate(([0.0], self.sizes)):
                    if option == size[i]:
                        continue
                    trial = size.copy()
                    trial[i] = option
                    model_bits = float(np.sum(8 * trial))
                    if model_bits > budget * (1 + 1e-12):
                        continue
                    room = budget if duplex else budget - model_bits
                    filled = self._fill_data(trial, np.zeros(self.n), trial > 0, room)
                    value = float(np.mean(self._values(trial, filled)))
                    if self.floor is not None and np.any(
                            self._values(trial, filled) < self.floor - 1e-9):
                        continue
                    if value > best + 1e-12:
                        best, size, samples, improved = value, trial, filled, True
            if not improved:
                break
        return size, samples

    # answers
    def _size_maps(self, size):
        if self.sizes is None:
            return self.acc.size_term(size)
        index = np.clip(np.searchsorted(self.sizes, size - 0.5), 0, len(self.sizes) - 1)
        return self.size_maps[index]

    def _values(self, size, samples):
        return np.where(size > 0, self._size_maps(size) * self.acc.q(samples), self.kept)

    def _allocation(self, size, samples):
        budget = self.problem.budget_bits
        values = self._values(size, samples).tolist()
        up_bytes = samples * self.s / 8
        up_share, down_share = _give_leftover(up_bytes * 8 / budget, 8 * size / budget,
                                              self.problem.medium)
        names = [''] * self.n
        if self.sizes is not None:
            index = np.argmin(np.abs(self.sizes[None, :] - size[:, None]), axis=1)
            names = [self.names[k] if served else '' for k, served in zip(index, size > 0)]
        devices = [Allocation(upload_share=u, download_share=d, upload_bytes=b,
                              model_bytes=m, accuracy=v, feasible=m > 0, model=name,
                              reason='' if m > 0 else 'keeps its previous model')
                   for u, d, b, m, v, name in zip(up_share.tolist(), down_share.tolist(),
                                                  up_bytes.tolist(), size.tolist(), values,
                                                  names)]
        return FleetAllocation(devices)

    def _equal_split(self):
        """Each device's exact single-device optimum at an equal part of the budget."""
        part = self.problem.capacity_mbit / self.n
        answers, cache = [], {}
        for generated in self.generated:
            key = float(generated)
            if key not in cache:
                cache[key] = solve(dataclasses.replace(self.problem, capacity_mbit=part,
                                                       generated=key))
            a = cache[key]
            answers.append(dataclasses.replace(a, upload_share=a.upload_share / self.n,
                                               download_share=a.download_share / self.n))
        return FleetAllocation(answers)

    def _nothing(self, reason):
        return FleetAllocation([Allocation(0.0, 0.0, 0.0, 0.0, self.kept, False, '', reason)
                                for _ in range(self.n)], feasible=False, reason=reason)

    def _floor_unreachable(self, reason):
        answer = Fleet(self.problem, self.generated).solve()
        answer.feasible, answer.reason = False, reason
        return answer


def _give_leftover(up, down, medium):
    """(up, down) shares with the budget the plan does not use handed to the model shares
    (in proportion to them; to the uploads when no model is sent), as the single-device
    split does; duplex: each direction's rest to that direction's shares."""
    if medium == 'shared':
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


def solve_fleet(problem, generated, floor=None):
    """The mean-accuracy optimum of devices with the given data volumes sharing problem's
    capacity (a FleetAllocation)."""
    return Fleet(problem, generated, floor).solve()
