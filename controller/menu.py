"""N devices with a model menu: the exact fleet optimum, "keep the current model" included.

The problem of one period (N devices, a menu of variants o with accuracy A_o and
checkpoint bits m_o = 8 S_o; data samples of s bits; the accuracy model's q)::

    maximise   sum_i v_i                      (N times the mean accuracy)
    v_i = kept_i                              device i keeps its model: 0 bits, or
    v_i = A_o q(D_i),  L_io <= D_i <= G_i     it receives variant o and D_i samples of
                                              its G_i reach the edge
    subject to sum_i (m_{o_i} + s D_i) <= B   shared medium (duplex: sum m <= B and
                                              sum s D <= B, a budget each; airtime:
                                              each device's bits weighted by w_i, 1 /
                                              its channel's relative rate)

L_io is the data variant o needs to reach the fairness floor F (0 without one); an
option that cannot reach F is not allowed.

Why the answer is exact.  Give a price lambda >= 0 to the bits (duplex: one price a
direction).  For each device and option let
``psi_io(lambda) = max_{L <= D <= G} A_o q(D) - lambda (m_o + s D)`` (closed form: q is
concave, the best D is q's marginal condition clipped to [L, G]; keeping gives kept_i)
and ``r_io = max_o' psi_io'(lambda) - psi_io(lambda) >= 0``, the option's *regret*.  For
every feasible solution (o_i, D_i),

    sum_i v_i = sum_i (v_i - lambda c_i) + lambda sum_i c_i
             <= sum_i psi_{i o_i}(lambda) + lambda B  =  Lambda(lambda) - sum_i r_{i o_i},

with Lambda(lambda) = lambda B + sum_i max_o psi_io(lambda), the Lagrangian dual.  So a
solution better than an incumbent of value V has total regret below Lambda - V.  The
solver (1) finds the price where the best responses' bits meet the budget, (2) builds
an incumbent from the best responses on both sides of that price and improves it by
moving single devices, (3) enumerates every choice of options whose total regret is
below Lambda - V (identical devices by how many take each option, not which), and
evaluates each exactly: for fixed options the data part is a concave resource
allocation, solved by the price of a sample (water-filling to the budget left by the
models).  When the enumeration completes, no solution is better than the best it saw:
the answer is the optimum (``exact``).  Its size is bounded (``MAX_EVALUATIONS``); past
it the answer keeps the best solution found and says so, with ``bound``, the certified
upper bound Lambda / N on the mean accuracy.
"""

import math

import numpy as np

from edgecollab.controller.solver import Allocation, FleetAllocation, give_leftover
from edgecollab.kinds import Reason
from edgecollab.topologies import media

_LOG_PRICE = (-30.0, 5.0)     # bracket of log10 lambda (mAP points per bit)
_BISECTIONS = 64
_BATCH = 2048                 # choice vectors evaluated together
MAX_EVALUATIONS = 100000      # choice vectors the enumeration may evaluate
ENUMERATED_GROUPS = 64        # enumerate fleets with up to this many distinct devices
_SEARCH_DEVICES = 64          # single-device moves on the incumbent up to this many devices
_TOL = 1e-9


class MenuFleet:
    """The menu fleet of a Problem (its capacity the shared total): devices with data
    volumes generated, the accuracy kept_i each keeps without a new model, a floor."""

    def __init__(self, problem, generated, kept, floor=None):
        self.problem = problem
        self.acc = problem.accuracy
        self.s = float(problem.sample_bits)
        self.duplex = media.get(problem.medium).per_direction
        self.budget = float(problem.budget_bits)
        # The models' budget: the same one on a shared medium, the download's on duplex.
        self.down_budget = float(problem.down_budget_bits)
        variants = sorted(problem.menu, key=lambda v: v.size_bytes)
        self.names = [''] + [v.name for v in variants]
        self.sizes = np.array([0.0] + [v.size_bytes for v in variants])
        self.mbits = 8 * self.sizes
        self.weight = np.array([0.0] + [v.map for v in variants])   # A_o; keep: no data
        self.beta = 1 / (1 + self.acc.alpha)
        self.root = np.power(self.weight, self.beta)
        self.generated = np.asarray(generated, dtype=float)
        self.kept = np.asarray(kept, dtype=float)
        self.n = self.generated.size
        # Airtime: device i's bit takes w_i of the budget (1 / its channel's relative
        # rate); its price of a bit is lambda w_i.
        self.w = problem.weights(self.n)
        self.wcol = self.w[:, None]
        options = self.sizes.size
        self.upper = np.where(np.arange(options)[None, :] == 0, 0.0, self.generated[:, None])
        self.lower = np.zeros((self.n, options))
        self.allowed = np.ones((self.n, options), dtype=bool)
        self.allowed[:, 1:] &= self.wcol * self.mbits[None, 1:] <= \
            self.down_budget * (1 + 1e-12)
        if floor is not None:
            need = self._samples_for(floor / self.weight[1:])             # per variant
            self.lower[:, 1:] = need[None, :]
            self.allowed[:, 1:] &= need[None, :] <= self.generated[:, None]
            self.allowed[:, 0] = self.kept >= floor - _TOL

    def _samples_for(self, q_target):
        """The fewest samples D with q(D) >= q_target (inf where q cannot reach it)."""
        acc = self.acc
        with np.errstate(divide='ignore', invalid='ignore'):
            d = np.power(acc.c / np.maximum(1 - q_target, 0.0), 1 / acc.alpha) - acc.d0
        return np.where(q_target >= 1, np.inf, np.maximum(d, 0.0))

    def _data(self, root, price, lower, upper):
        """Best D in [lower, upper] for a model term A (given as root = A ** beta,
        beta = 1 / (1 + alpha)) and a price of a bit of data: the marginal condition
        A q'(D) = price s, D = (A c alpha / (price s)) ** beta - d0, clipped."""
        scale = np.power(self.acc.c * self.acc.alpha / (np.maximum(price, 1e-300) * self.s),
                         self.beta)
        return np.clip(root * scale - self.acc.d0, lower, upper)

    # prices and the bound
    def net(self, price_up, price_down):
        """(net value, data samples) of every device and option at the prices; -inf
        where the option is not allowed."""
        up, down = price_up * self.wcol, price_down * self.wcol
        d = self._data(self.root[None, :], up, self.lower, self.upper)
        value = np.where(np.arange(self.sizes.size)[None, :] == 0, self.kept[:, None],
                         self.weight[None, :] * self.acc.q(d))
        net = value - up * self.s * d - down * self.mbits[None, :]
        return np.where(self.allowed, net, -np.inf), d

    def respond(self, price_up, price_down):
        """Each device's best option at the prices, with the budget its bits take (up,
        down)."""
        net, d = self.net(price_up, price_down)
        best = np.argmax(net, axis=1)
        rows = np.arange(self.n)
        return best, self.w * self.s * d[rows, best], self.w * self.mbits[best]

    def dual(self, price_up, price_down):
        """Lambda: an upper bound on the sum of accuracies for any prices >= 0."""
        net, _ = self.net(price_up, price_down)
        priced = price_up * self.budget + (price_down * self.down_budget if self.duplex
                                           else 0.0)       # a budget a price
        return priced + float(np.sum(np.max(net, axis=1)))

    def _price(self, spend, budget):
        """(log price on the feasible side, on the other) where spend(price) meets
        budget; spend falls as the price rises."""
        lo, hi = _LOG_PRICE
        if spend(10.0 ** lo) <= budget:
            return lo, lo
        for _ in range(_BISECTIONS):
            mid = 0.5 * (lo + hi)
            if spend(10.0 ** mid) <= budget:
                hi = mid
            else:
                lo = mid
        return hi, lo

    def prices(self):
        """The prices of the tightest bound found, and candidate prices for the primal."""
        if not self.duplex:
            def spend(price):
                _, up, down = self.respond(price, price)
                return float(np.sum(up + down))
            hi, lo = self._price(spend, self.budget)
            pairs = [(10.0 ** hi, 10.0 ** hi), (10.0 ** lo, 10.0 ** lo)]
        else:
            log_up = log_down = _LOG_PRICE[0]
            for _ in range(8):       # one budget a direction, met in turn
                log_up = self._price(lambda pr: float(np.sum(
                    self.respond(pr, 10.0 ** log_down)[1])), self.budget)[0]
                log_down = self._price(lambda pr: float(np.sum(
                    self.respond(10.0 ** log_up, pr)[2])), self.down_budget)[0]
            pairs = [(10.0 ** log_up, 10.0 ** log_down)]
        bounds = [self.dual(*p) for p in pairs]
        return pairs[int(np.argmin(bounds))], min(bounds), pairs

    # exact value of fixed choices
    def evaluate(self, choices):
        """(sum of accuracies, samples, feasible) of each row of choices (C x N option
        indices): the data water-filled into the budget the models leave."""
        choices = np.atleast_2d(choices)
        rows = np.arange(self.n)[None, :]
        weight, root = self.weight[choices], self.root[choices]
        lower, upper = self.lower[rows, choices], self.upper[rows, choices]
        w = self.w[None, :]
        model_bits = np.sum(w * self.mbits[choices], axis=1)
        room = np.full(choices.shape[0], self.budget) if self.duplex else \
            self.budget - model_bits
        feasible = np.all(self.allowed[rows, choices], axis=1) & \
            (self.s * np.sum(w * lower, axis=1) <= room * (1 + 1e-12))
        if self.duplex:
            feasible &= model_bits <= self.down_budget * (1 + 1e-12)
        d = upper.copy()
        over = feasible & (self.s * np.sum(w * upper, axis=1) > room)
        if np.any(over):
            r_, lo_d, up_d, r = root[over], lower[over], upper[over], room[over][:, None]
            lo = np.full((r_.shape[0], 1), _LOG_PRICE[0])
            hi = np.full((r_.shape[0], 1), _LOG_PRICE[1])
            for _ in range(_BISECTIONS):
                mid = 0.5 * (lo + hi)
                fits = self.s * np.sum(w * self._data(r_, 10.0 ** mid * w, lo_d, up_d),
                                       axis=1, keepdims=True) <= r
                hi, lo = np.where(fits, mid, hi), np.where(fits, lo, mid)
            d[over] = self._data(r_, 10.0 ** hi * w, lo_d, up_d)
        values = np.where(choices == 0, self.kept[None, :], weight * self.acc.q(d))
        total = np.where(feasible, np.sum(values, axis=1), -np.inf)
        return total, d, feasible

    # the search
    def solve(self):
        """The FleetAllocation of the optimum (see the module docstring), or None when no
        choice meets the floor."""
        (price_up, price_down), bound, pairs = self.prices()
        best_value, best = self._incumbent(pairs)
        exact = best_value >= bound - _TOL * (1 + abs(bound))
        if not exact:
            best_value, best, exact = self._enumerate(price_up, price_down, bound,
                                                      best_value, best)
        if best_value == -np.inf:
            return None
        values, samples, _ = self.evaluate(best[None, :])
        # Proven optimal: the value is the bound; else the dual's certificate.
        return self._allocation(best, samples[0], exact,
                                values[0] if exact else max(bound, values[0]))

    def _incumbent(self, pairs):
        """The best of the best responses at the prices (and of mixes of the two sides
        of the shared price, devices switching in order of the bits they add), improved
        by moving one device at a time."""
        candidates = [np.where(self.allowed[:, 0], 0, np.argmax(self.allowed, axis=1))]
        for pair in pairs:
            candidates.append(self.respond(*pair)[0])
        if len(pairs) == 2:
            poor, rich = candidates[1], candidates[2]
            switch = np.flatnonzero(poor != rich)
            if switch.size:
                extra = self.w[switch] * (self.mbits[rich[switch]] - self.mbits[poor[switch]])
                order = switch[np.argsort(extra, kind='stable')]
                steps = np.unique(np.linspace(0, order.size, min(order.size, 63) + 1)
                                  .astype(int))
                for k in steps:
                    mix = poor.copy()
                    mix[order[:k]] = rich[order[:k]]
                    candidates.append(mix)
        values, _, _ = self.evaluate(np.array(candidates))
        k = int(np.argmax(values))
        best_value, best = float(values[k]), np.array(candidates[k])
        if self.n <= _SEARCH_DEVICES:
            best_value, best = self._improve(best_value, best)
        return best_value, best

    def _improve(self, best_value, best):
        """Move one device to another option while that raises the total."""
        options = self.sizes.size
        while True:
            trials = np.repeat(best[None, :], self.n * options, axis=0)
            trials[np.arange(self.n * options), np.repeat(np.arange(self.n), options)] = \
                np.tile(np.arange(options), self.n)
            values, _, _ = self.evaluate(trials)
            k = int(np.argmax(values))
            floor = best_value + _TOL * (1 + abs(best_value)) if math.isfinite(best_value) \
                else best_value
            if values[k] <= floor:
                return best_value, best
            best_value, best = float(values[k]), trials[k]

    def _enumerate(self, price_up, price_down, bound, best_value, best):
        """Evaluate every choice whose total regret at the prices is below the bound
        less the incumbent; identical devices by count.  Returns (value, choice,
        complete): complete is False when the fleet has more groups of identical devices
        than ENUMERATED_GROUPS or the choices to try exceed MAX_EVALUATIONS."""
        net, _ = self.net(price_up, price_down)
        regret = np.max(net, axis=1, keepdims=True) - net            # inf: not allowed
        groups = _groups(self.generated, self.kept, self.w)
        if len(groups) > ENUMERATED_GROUPS:
            return best_value, best, False
        value, evaluated, batch = best_value, 0, []
        tol = _TOL * (1 + abs(bound))

        def flush(value, best):
            if batch:
                values, _, _ = self.evaluate(np.array(batch))
                k = int(np.argmax(values))
                if values[k] > value:
                    value, best = float(values[k]), np.array(batch[k])
                batch.clear()
            return value, best

        # Depth-first over the groups: a frame is (group, regret used, choice so far).
        stack = [(0, 0.0, np.zeros(self.n, dtype=int))]
        while stack:
            g, used, choice = stack.pop()
            if g == len(groups):
                batch.append(choice)
                evaluated += 1
                if evaluated > MAX_EVALUATIONS:
                    return value, best, False
                if len(batch) >= _BATCH:
                    value, best = flush(value, best)
                continue
            members = groups[g]
            r = regret[members[0]]
            slack = bound - value + tol - used
            cheap = [o for o in np.argsort(r, kind='stable') if r[o] <= slack]
            for counts in _compositions(len(members), [float(r[o]) for o in cheap], slack):
                child = choice.copy()
                at = 0
                for option, count in zip(cheap, counts):
                    child[members[at:at + count]] = option
                    at += count
                stack.append((g + 1, used + sum(c * float(r[o])
                                                for o, c in zip(cheap, counts)), child))
        value, best = flush(value, best)
        return value, best, True

    def _allocation(self, choice, samples, exact, bound):
        """The FleetAllocation of a choice of options and its data."""
        budget = self.budget
        sizes = self.sizes[choice]
        up_bytes = samples * self.s / 8
        values = np.where(choice == 0, self.kept, self.weight[choice] * self.acc.q(samples))
        up, down = give_leftover(self.w * up_bytes * 8 / budget,
                                 self.w * 8 * sizes / self.down_budget, self.problem.medium)
        devices = [Allocation(upload_share=u, download_share=d, upload_bytes=b,
                              model_bytes=m, accuracy=v, feasible=m > 0,
                              model=self.names[o],
                              reason='' if m > 0 else Reason.KEEPS)
                   for u, d, b, m, v, o in zip(up.tolist(), down.tolist(), up_bytes.tolist(),
                                               sizes.tolist(), values.tolist(),
                                               choice.tolist())]
        return FleetAllocation(devices, exact=exact, bound=bound / self.n)


def _groups(generated, kept, w):
    """Indices of identical devices (same data volume, kept accuracy and channel), in
    groups."""
    order = np.lexsort((w, kept, generated))
    groups, start = [], 0
    for k in range(1, order.size + 1):
        if k == order.size or generated[order[k]] != generated[order[start]] or \
                kept[order[k]] != kept[order[start]] or w[order[k]] != w[order[start]]:
            groups.append(order[start:k])
            start = k
    return groups


def _compositions(total, costs, budget):
    """Every way to split total devices among options of the given regret costs
    (ascending) with sum of count x cost <= budget, as count tuples."""
    if not costs:
        return
    if len(costs) == 1:
        if total * costs[0] <= budget:
            yield (total,)
        return
    for first in range(total, -1, -1):
        spent = first * costs[0]
        rest = total - first
        if spent + rest * costs[1] > budget:
            continue                    # costs ascend: the rest costs at least this
        for tail in _compositions(rest, costs[1:], budget - spent):
            yield (first,) + tail


def solve_menu_fleet(problem, generated, kept, floor=None):
    """The exact mean-accuracy optimum of a menu fleet (see the module docstring)."""
    return MenuFleet(problem, generated, kept, floor).solve()
