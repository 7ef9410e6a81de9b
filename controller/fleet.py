"""N devices sharing one budget: maximise the mean accuracy, optionally with a floor.

The devices share the period, the accuracy model and the model sizes of a ``Problem``;
each has its own data volume (``generated``, samples in the period).  A shared medium
gives one budget B W of bits for every device and direction; a duplex one a budget per
direction.  ``solve_fleet`` is the entry point: a model menu goes to the exact menu
solver (``menu.py``); continuous model sizes are solved here.  Every answer passes
``check_budget`` before it is returned.

Method for continuous sizes (Lagrangian decomposition, vectorised over the devices).
For a price lambda (accuracy per bit) each device answers on its own

    max  A(S) q(D) - lambda (8 S + s D)       over S in [S_min, S_max],
                                              D in [0, D_gen], or "keep the old model"

For a fixed S the best D is closed form, q'(D) = lambda s / A(S):

    D(S) = (A(S) c alpha / (lambda s)) ** (1 / (1 + alpha)) - d0,  clipped to [0, D_gen].

The size is the root of the envelope derivative A'(S) q(D(S)) - 8 lambda (decreasing
along the expansion path of this family; checked against brute force in the tests); as
D(S) = min(D_free(S), D_gen), that root is the smaller of the root without the cap,
which is the same for every device at one price (one scalar Brent search), and the
closed-form root of A'(S) q(D_gen) = 8 lambda.  The bits the devices ask for fall as
lambda rises, so lambda is found by Brent's method on log lambda until the budget is
met; then the budget left over is water-filled into data (closed form in the price of a
sample, given each device's A(S)) and into models (closed form: A'(S) q(D) = 8 mu).
Each step keeps every constraint.  The keep-or-serve choice is discrete, so the answer
can sit below the optimum by the duality gap of that choice; it is checked against the
equal split of the budget (each device's exact single-device optimum at B/N) for up to
100 devices and the better of the two is returned.

Devices on channels of their own (medium airtime, ``topologies/media.py``): device i's
channel runs at k_i times the capacity, so its bits take w_i = 1 / k_i of their number
of the budget; at a price lambda of the budget its own price is lambda w_i, and every
sum of bits above (the spend, the water-fills, ``check_budget``) weighs each device's
bits by w_i.  On access links each device is solved alone on its own link.  The
keep-or-serve gap is wider when channels differ (a device on a slow channel stops being
served at a price where a split of the budget serves both), so up to 100 devices the
answer with every device served is a candidate too.

A fairness floor F (every device at least F mAP) gives device i its own price
min(lambda, lambda_i), lambda_i the highest price at which its answer still reaches F
(the floor's multiplier, found once by bisection); a device that cannot reach F even
with the whole budget, or floors that together need more than the budget, make the
answer infeasible with the reason, never a crash.
"""

import dataclasses
import functools
import math

import numpy as np

from edgecollab.topologies import media
from edgecollab.controller.accuracy import MB
from edgecollab.controller.solver import (Allocation, FleetAllocation, give_leftover,
                                          solve)
from edgecollab.controller.menu import solve_menu_fleet
from edgecollab.errors import ConfigError, SolverError
from edgecollab.kinds import Reason

_LOG_PRICE = (-30.0, 5.0)     # bracket of log10 lambda (mAP points per bit)
_ITERATIONS = 64
_GUARD_DEVICES = 100          # compare with the equal split up to this many devices


class Fleet:
    """N devices of one Problem (capacity = the shared total) with their data volumes."""

    def __init__(self, problem, generated, floor=None, kept=None):
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
        # The accuracy each device keeps without a new model (its held model's).
        self.kept = np.full(self.n, problem.kept_map()) if kept is None else \
            np.asarray(kept, dtype=float)
        if self.kept.shape != (self.n,) or not np.all(np.isfinite(self.kept)) or \
                np.any(self.kept < 0):
            raise ConfigError('kept must be one finite accuracy >= 0 per device')
        self.acc = acc
        # Airtime: a device's bit costs the budget 1 / its channel's relative rate, so at
        # a price lambda of the budget its own price is lambda w_i.
        self.w = problem.weights(self.n)
        self.log_w = np.log10(self.w)

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
        from scipy.optimize import brentq     # here: scipy loads when a solve needs it
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
        if self.floor is None or np.all(self.kept >= self.floor):
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

    def prices(self, log_price, caps):
        """Each device's price at the budget's log price: lambda w_i, capped by caps."""
        return 10.0 ** np.minimum(log_price + self.log_w, caps)

    def spent(self, bits):
        """The budget the devices' bits take (each bit weighted by its device's w)."""
        return float(np.sum(self.w * bits))

    def _price_for(self, budget_bits, spend, caps):
        """The lowest log price whose spend fits budget_bits, each device's log price
        capped by caps.  Spend falls as the price rises (with jumps where a device
        switches variant or stops being served): Brent's method on the log price, then
        the feasible side of the root.  Each price is evaluated once (brentq asks for the
        bracket's ends again and the root is checked after)."""
        @functools.lru_cache(maxsize=None)
        def excess(log_price):
            return spend(self.prices(log_price, caps)) - budget_bits
        lo, hi = _LOG_PRICE
        if excess(lo) <= 0:
            return lo
        if excess(hi) > 0:
            return hi
        from scipy.optimize import brentq
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
        size, samples = self._priced(budget, caps)
        if self.floor is not None and np.any(
                self._values(size, samples) < self.floor - 1e-6):
            return self._floor_unreachable('the floors of %.2f mAP together need more '
                                           'than the budget' % self.floor)
        answer = self._allocation(size, samples)
        if self.n > _GUARD_DEVICES:
            return answer
        candidates = [answer, self._equal_split()]
        if not media.get(p.medium).per_direction and np.any(size == 0):
            # The keep-or-serve choice is where the duality gap sits: also every device
            # served (on devices of different channels the price at which one stops
            # being served can leave it nothing while a split of the budget serves both).
            served = Fleet(p, self.generated, self.floor, kept=np.zeros(self.n))
            candidates.append(self._allocation(*served._priced(budget, caps)))
        fair = [c for c in candidates if self.floor is None or
                min(d.accuracy for d in c.devices) >= self.floor - 1e-6]
        return max(fair or [answer], key=lambda c: c.mean_accuracy + (1e-12 if c is answer
                                                                     else 0.0))

    def _priced(self, budget, caps):
        """(sizes, samples) at the price that meets the budget(s), then the budget the
        discrete choices left water-filled."""
        if media.get(self.problem.medium).per_direction:
            return self._solve_duplex(budget, caps)

        def spend(prices):
            size, samples, _ = self.respond(prices)
            return self.spent(8 * size + self.s * samples)
        log_price = self._price_for(budget, spend, caps)
        size, samples, _ = self.respond(self.prices(log_price, caps))
        return self._fill(size, samples, budget, budget)

    def _solve_duplex(self, budget, caps):
        # Two prices, found by alternating bisections (each budget is met in turn).
        down_budget = self.problem.down_budget_bits
        log_up = log_down = _LOG_PRICE[0]
        for _ in range(8):
            log_up = self._price_for(budget, lambda pr: float(np.sum(
                self.s * self.respond(pr, 10.0 ** np.minimum(log_down, caps))[1])), caps)
            log_down = self._price_for(down_budget, lambda pr: float(np.sum(
                8 * self.respond(10.0 ** np.minimum(log_up, caps), pr)[0])), caps)
        size, samples, _ = self.respond(10.0 ** np.minimum(log_up, caps),
                                        10.0 ** np.minimum(log_down, caps))
        return self._fill(size, samples, budget, down_budget, duplex=True)

    # water-filling what the discrete choices left over
    def _fill(self, size, samples, up_budget, down_budget, duplex=False):
        served = size > 0
        model_bits = self.spent(8 * size)
        data_room = up_budget - (0.0 if duplex else model_bits)
        samples = self._fill_data(size, samples, served, data_room)
        room = down_budget - model_bits - (0.0 if duplex else self.spent(self.s * samples))
        if room > 0:
            size = self._fill_models(size, samples, served, model_bits + room)
        return size, samples

    def _fill_data(self, size, samples, served, room_bits):
        """The served devices' data water-filled into room_bits (never below samples,
        never over room_bits unless samples already were)."""
        weights = np.where(served, self.acc.size_term(size), 0.0)
        if room_bits <= 0 or not np.any(served):
            return samples
        everything = np.where(served, self.generated, 0.0)
        if self.spent(self.s * everything) <= room_bits:
            return everything

        def spend(prices):
            return self.spent(self.s * np.where(served, self._data(weights, prices), 0))
        uncapped = np.full(self.n, np.inf)
        log_price = self._price_for(room_bits, spend, uncapped)
        filled = np.maximum(np.where(served, self._data(
            weights, self.prices(log_price, uncapped)), 0.0), samples)
        return filled if self.spent(self.s * filled) <= room_bits else samples

    def _fill_models(self, size, samples, served, model_bits):
        p, acc = self.problem, self.acc
        q = acc.q(samples)

        def sizes_at(price):
            s_mb = np.power(acc.b * acc.gamma * q / (8 * price * 1e6), 1 / (acc.gamma + 1))
            return np.where(served, np.clip(s_mb * 1e6, p.min_model_bytes,
                                            p.max_model_bytes), 0.0)
        uncapped = np.full(self.n, np.inf)
        log_price = self._price_for(model_bits, lambda pr: self.spent(8 * sizes_at(pr)),
                                    uncapped)
        filled = np.maximum(sizes_at(self.prices(log_price, uncapped)), size)
        return filled if self.spent(8 * filled) <= model_bits else size

    # answers
    def _values(self, size, samples):
        return np.where(size > 0, self.acc.size_term(size) * self.acc.q(samples), self.kept)

    def _allocation(self, size, samples):
        budget = self.problem.budget_bits
        values = self._values(size, samples).tolist()
        up_bytes = samples * self.s / 8
        up_share, down_share = give_leftover(
            self.w * up_bytes * 8 / budget, self.w * 8 * size / self.problem.down_budget_bits,
            self.problem.medium)
        names = [''] * self.n
        devices = [Allocation(upload_share=u, download_share=d, upload_bytes=b,
                              model_bytes=m, accuracy=v, feasible=m > 0, model=name,
                              reason='' if m > 0 else Reason.KEEPS)
                   for u, d, b, m, v, name in zip(up_share.tolist(), down_share.tolist(),
                                                  up_bytes.tolist(), size.tolist(), values,
                                                  names)]
        return FleetAllocation(devices)

    def _equal_split(self):
        """Each device's exact single-device optimum at an equal part of the budget."""
        answers, cache = [], {}
        for generated, kept, (part, scale) in zip(self.generated.tolist(), self.kept.tolist(),
                                                  self.problem.parts(self.n)):
            key = (generated, part.capacity_mbit)
            if key not in cache:
                cache[key] = solve(dataclasses.replace(part, generated=generated))
            a = cache[key]
            if a.accuracy < kept:
                a = dataclasses.replace(a, download_share=0.0, model_bytes=0.0, model='',
                                        accuracy=kept, feasible=False, reason=Reason.KEEPS)
            answers.append(dataclasses.replace(a, upload_share=a.upload_share * scale,
                                               download_share=a.download_share * scale))
        return FleetAllocation(answers)

    def _nothing(self, reason):
        return FleetAllocation([Allocation(0.0, 0.0, 0.0, 0.0, k, False, '', reason)
                                for k in self.kept.tolist()], feasible=False, reason=reason)

    def _floor_unreachable(self, reason):
        answer = Fleet(self.problem, self.generated, kept=self.kept).solve()
        answer.feasible, answer.reason = False, reason
        return answer


def solve_fleet(problem, generated, floor=None, kept=None):
    """The mean-accuracy optimum of devices with the given data volumes sharing problem's
    capacity (a FleetAllocation); kept: the accuracy each device keeps without a new
    model (default: problem.kept_map() for every device).  A menu is solved exactly
    (``menu.py``), continuous sizes by ``Fleet``."""
    fleet = Fleet(problem, generated, floor, kept)    # validates the arguments
    kept = fleet.kept
    if media.get(problem.medium).per_device:
        return check_budget(problem, _solve_apart(problem, fleet.generated, floor, kept))
    if not problem.menu:
        return check_budget(problem, fleet.solve())
    if problem.budget_bits <= 0:
        return _keep_all(kept, 'no capacity in the window')
    answer = solve_menu_fleet(problem, fleet.generated, kept, floor)
    if answer is None:
        answer = solve_menu_fleet(problem, fleet.generated, kept)
        answer.feasible = False
        answer.reason = 'no split gives every device the floor of %.2f mAP' % floor
    return check_budget(problem, answer)


def _solve_apart(problem, generated, floor, kept):
    """Each device alone on its own link (a budget per device): its own optimum, its
    shares fractions of its link."""
    answers, cache = [], {}
    for g, k, (part, _) in zip(generated.tolist(), kept.tolist(), problem.parts(len(kept))):
        key = (g, k, part.capacity_mbit)
        if key not in cache:
            cache[key] = solve_fleet(part, [g], floor, [k])
        answers.append(cache[key])
    devices = [a.devices[0] for a in answers]
    failed = [a for a in answers if not a.feasible]
    return FleetAllocation(devices, feasible=not failed,
                           reason=failed[0].reason if failed else '',
                           exact=all(a.exact for a in answers))


def _keep_all(kept, reason):
    """Every device keeps its model."""
    return FleetAllocation([Allocation(0.0, 0.0, 0.0, 0.0, float(k), False, '', reason)
                            for k in kept], feasible=False, reason=reason)


def check_budget(problem, answer):
    """answer, after checking that it is finite, within its bounds and within the budget
    (a violation is a solver bug: SolverError names it)."""
    budget, down = problem.budget_bits, problem.down_budget_bits
    numbers = [x for a in answer.devices for x in (a.upload_share, a.download_share,
                                                  a.upload_bytes, a.model_bytes, a.accuracy)]
    if not all(math.isfinite(x) and x >= 0 for x in numbers):
        raise SolverError('an answer with a non-finite or negative share, volume or accuracy')
    n = len(answer.devices)
    # Each device's bits as the part of the budget they take (a bit weighs 1 / its
    # channel's relative rate; on access that is the part of its own link).
    medium = media.get(problem.medium)
    w = problem.weights(n)
    spent = {i: {'up': w[i] * 8 * a.upload_bytes / budget if budget > 0 else 0.0,
                 'down': w[i] * 8 * a.model_bytes / down if down > 0 else 0.0}
             for i, a in enumerate(answer.devices)}
    shares = {i: {'up': a.upload_share, 'down': a.download_share}
              for i, a in enumerate(answer.devices)}
    over = [(what, total) for book in (spent, shares)
            for what, total in medium.budgets(book) if total > 1 + 1e-9 + 1 / max(budget, 1)]
    if over:
        raise SolverError('an answer over the budget (%s medium): %s at %.6g of 1'
                          % (medium, over[0][0], over[0][1]))
    return answer
