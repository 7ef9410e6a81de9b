"""Re-planning the rest of a period: the closed loop's decision at every control step.

A period's plan is made from a forecast, and on a real link the forecast can be several
times off (a plan from the first 100 ms of a drive: 75 Mbit/s forecast, 15 real); the
period's re-split (``correction.py``) moves shares between the transfers but cannot
change what they are.  At every control step the closed loop (``adaptive``) therefore
also re-solves what each device gets from the rest of the period, from what has
happened: the data each device has brought to the edge, the data it still has waiting,
the checkpoint under way and how much of it has arrived, the accuracy it keeps without
a new one, and the bits the link carries in the time left at the capacity it has just
measured.  For each device the options are: keep its model (a checkpoint under way is
deferred: no share now), finish the checkpoint under way (its remaining bytes cost), or,
where the edge distils on demand (``replace``, the fluid backend) and the scenario has a
menu, any variant of the menu (all of its bytes cost).  With a new checkpoint the
device's accuracy is A(S) q(arrived + d), d the samples it still uploads.

Two rules keep the re-plan from undoing itself on a noisy link: a checkpoint of which
SWITCH_BEFORE or more has arrived is finished (a checkpoint that misses resumes in the
next period: its bytes are never thrown away) unless the re-plan deferred it in the
period (a deferred checkpoint takes only what no other transfer needs, so what it got
does not lock it in), and a change of checkpoints is taken only
when it raises the fleet's mean by SWITCH_MAP over the best plan without one.  So the
re-plan corrects a period's start (a checkpoint ordered from a forecast far above the
link is replaced by one that fits; a device planned with none because the forecast was
far below gets one: the warm start of period 1, planned from one sample, is this) and
then lets the re-split carry the period.  Measured over 12 corpora of traces
(docs/real-traces.md): switching later, or deferring checkpoints that had made
progress, lowered the share of ``oracle``'s lead captured.  But at a high capacity 3%
arrives in the first control step, and a period that then falls steadily below its
forecast left every checkpoint locked to miss: so the lock is lifted (``unlock``) when
the period is sure to be short of what its checkpoints under way still need, the upper
end of a 95% interval of the mean capacity of its control steps so far carrying less
(``loop.Period.short_of``; a bursty link's interval is wide, a steady fall's narrow).
Over the 12 corpora from the start, 60 s and 90 s in, the mean captured rose from 77.0/
80.5/78.2% to 79.1/82.1/81.7% and the lowest corpus from 52-62% to 68-71%.

A dip in a period's first seconds switches its checkpoints to smaller ones, and once
switched (or SWITCH_BEFORE under way) a checkpoint is locked: when the link comes back
it idles with nothing left to send (the Verizon LTE uplink from 60 s in: a first
second at 20 Mbit/s of a period planned at 52 switched three yolov8m to yolov8s, the
period's mean was 60, the link idle 48% of it).  So a locked checkpoint that has not
arrived may still grow to a larger variant, but only within the budget at the
capacity the period is sure of (``loop.Period.sure_mbit``: at most the harmonic mean
of the capacities its steps have seen and the forecast it was planned with; with the
harmonic mean alone a rising first third grew checkpoints that the rest of the period
could not carry).  Measured over the 12 corpora from the start and from 60 s and 90 s
in: no corpus lower, the traces below their best baseline from 1, 4 and 7 to 1, 3 and
6.  Beyond the forecast a checkpoint grows only when the period is sure to be above its
plan: the lower end of the interval of its steps' mean capacity (the one ``short_of``
reads) above the forecast (2026-12-05: over the 12 corpora from the start, 60 s and 90
s in, the mean captured 79.1/82.1/81.7% -> 80.7/82.3/82.6%, the same traces below, no
corpus more than a point lower).  Growing only ever goes up the menu, so it cannot
flip-flop and is not limited by MAX_SWITCHES: a checkpoint grown once grows again
when the period turns out to carry more still (it grew once only until 2026-12-05: the
Verizon LTE uplink ``cellular`` x15 from 60 s then left its link idle in 34% of period
1 with a yolov8m it had grown back to; over the 12 corpora 82.3% -> 82.4% from 60 s,
the traces below from 2 to 1 there, the same from the start and 90 s).  Below the
forecast the harmonic mean is never taken below that interval's lower end either: one
outage step (0.1 Mbit/s) among 19 at 40 makes it 1.9, and nothing grew for the rest of
the period (2026-12-06: over the 12 corpora the same captured shares and traces below;
3 of 564 trace runs moved, +0.31, +0.27 and -0.07 mAP).

A checkpoint that arrives before the period is sure to be above its plan cannot grow:
at a high capacity it arrives within the first control steps (on the T-Mobile LTE
uplink ``default`` x15 from 90 s, a yolov8m planned at 171 Mbit/s arrived in 2 s of a
period at 267, and the link idled 36% of it).  Where the transport can send a device a
second checkpoint in a period (``loop.Transport.upgrades_checkpoints``: both backends;
the device keeps the first, and keeps it still should the second miss), the re-plan
last offers a device whose checkpoint has arrived a larger one (``_after_arrival``):
only within what the rest of its answer leaves of the budget the period is sure of, so
that it never takes what another device's checkpoint or data needs, never while a
checkpoint under way is deferred, and only when it raises the fleet's mean by
SWITCH_MAP.  Offered within the whole of that budget, as a checkpoint under way grows,
it displaced other devices' checkpoints: over the 12 corpora from 90 s in the mean
captured fell from 83.5% to 82.3%, Norway bus 16 ``cellular`` x15 to 1.56 below
``tcp-fair`` (a yolov8x deferred for an upgrade from yolov8l, then missed).  But once
nothing the answer values is left to move (every checkpoint arrived, all the data that
adds accuracy at the edge), the link would idle for the rest of the period: the larger
checkpoint may then take the whole budget, as it displaces nothing and the device keeps
the first should it miss (under Mininet on the T-Mobile LTE trace a period planned at
8.9 Mbit/s had every transfer done 8.5 s before its end and idled at 25-50 Mbit/s, the
period too bursty to be sure of a yolov8m; 2026-12-06, over the 12 corpora from the
start, 60 s and 90 s in: 80.8/82.6/83.9% -> 81.0/82.8/84.5% captured, the same traces
below, 5 of 564 trace runs moved, 4 up by 0.31-0.87 mAP, one down by 0.10).

The budget is the link's bits in the time left; a bit the device uploads costs 1 / the
upload's measured TCP efficiency of them, a checkpoint's bit 1 / the download's
(``goodput``).  Until 2026-12-05 every bit was costed at the lower of the two: under
Mininet the uploads' efficiency (0.54-0.86 on the T-Mobile LTE trace) is below the
checkpoints' (0.79-0.91), so a checkpoint that fitted looked too big and the link idled
late in a rising period (the fluid backend measures 1 both ways: its corpora are
unchanged, docs/real-traces.md).

A duplex link has a budget a direction (``Budget``): the uploads' bits spend one, the
checkpoints' the other (the download's own capacity), so the data never crowds out a
checkpoint.  Over the five Mahimahi uplink/downlink pairs of ../shared/traces as duplex
links (``benchmarks/duplex.py``, 60 cases; docs/real-traces.md) the duplex closed loop
captured 40% of ``oracle``'s lead over the best baseline without the re-plan (4 cases
below it), 73% with it (2; both before a resumed checkpoint was scored by its own data,
2026-12-05).

Method: Lagrangian relaxation of the shared budget, as the period plan's fleet solver
(``fleet.py``); with a budget a direction two prices, met in turn, then the data
water-filled into the uploads' budget with each device held to its checkpoint.  At a
price lambda (mAP per bit) each device picks its best option on its own, its extra
data in closed form from q'(arrived + d) = lambda s / A(S); the price is the lowest at
which the bits asked for fit the budget (bisection on log lambda), then the budget the
relaxation leaves (identical devices switch at one price together) is spent greedily,
one device's change at a time.  Vectorised over devices and options.
"""

from dataclasses import dataclass

import numpy as np

SWITCH_MAP = 0.1            # mean mAP a change of checkpoint must gain (see above)
SWITCH_BEFORE = 0.03        # the share of a checkpoint arrived after which it is finished
MAX_SWITCHES = 1            # switches of a device's checkpoint a period (no flip-flop)
_LOG_PRICE = (-30.0, 5.0)   # bracket of log10 lambda (mAP per bit)
_ITERATIONS = 60
_DIRECTION_ROUNDS = 8       # a budget a direction: the two prices met in turn
KEEP = ''                   # the option of keeping the held model


@dataclass(frozen=True)
class Standing:
    """A device's position within a period: kept (mAP without a new checkpoint),
    arrived (samples at the edge so far), waiting (samples it can still send this
    period), model / size_bytes / left_bytes (its checkpoint under way, '' for none),
    resumed_accuracy (the accuracy a resumed checkpoint brings, None otherwise), weight
    (the budget a bit of the device takes: 1 / its channel's relative rate on airtime)."""
    kept: float
    arrived: float
    waiting: float
    model: str = KEEP
    size_bytes: float = 0.0
    left_bytes: float = 0.0
    resumed_accuracy: float = None   # a resumed checkpoint brings this, whatever the data
    weight: float = 1.0
    switched: int = 0                # times its checkpoint was switched this period
    deferred: bool = False           # its checkpoint was deferred this period: never locked

    @property
    def delivered(self):
        """Whether its checkpoint of the period has arrived whole."""
        return self.size_bytes > 0 and self.left_bytes <= 0


@dataclass(frozen=True)
class Budget:
    """The bits the rest of a period can carry: one budget for both directions (down
    None: a shared medium), or one for the uploads and one for the checkpoints (a
    duplex medium)."""
    up: float
    down: float = None

    def fits(self, up_bits, down_bits):
        """Whether bits asked for (arrays or numbers, up and down) fit."""
        if self.down is None:
            return up_bits + down_bits <= self.up
        return (up_bits <= self.up) & (down_bits <= self.down)

    @property
    def checkpoints(self):
        """The bits the checkpoints draw from: the download's budget, or the one."""
        return self.up if self.down is None else self.down

    def capped(self, other):
        """This budget, each part at most other's (the same kind of budget)."""
        return Budget(min(max(self.up, 0.0), other.up), None if self.down is None else
                      min(max(self.down, 0.0), other.down))


def as_budget(bits):
    """A Budget of a number of bits (one budget for both directions) or a Budget."""
    return bits if isinstance(bits, Budget) else Budget(max(float(bits), 0.0))


@dataclass(frozen=True)
class Choice:
    """What the rest of the period does for a device: the checkpoint to deliver (KEEP:
    none now), its size, the bytes it still needs, the samples to upload and the mAP
    the device ends the period with if it all arrives."""
    model: str
    size_bytes: float
    model_bytes: float
    samples: float
    accuracy: float


def _options(problem, standings, replace, unlock=False):
    """(names, sizes, bits, value A(S), allowed, upgrade) arrays of shape (devices,
    options): option 0 keeps, 1 finishes the current checkpoint, 2.. the menu's
    variants.  A checkpoint SWITCH_BEFORE under way (unless unlock: the period is sure
    to be short of what the checkpoints under way need), or switched MAX_SWITCHES times
    already, is locked: its only variants are the larger ones while it has not arrived,
    marked upgrade (taken only within the sure budget, ``replan``; growing only goes up,
    so it is not limited to MAX_SWITCHES)."""
    menu = list(problem.menu or ()) if replace else []
    n, k = len(standings), 2 + len(menu)
    names = np.full((n, k), KEEP, dtype=object)
    sizes = np.zeros((n, k))
    bits = np.zeros((n, k))
    scale = np.zeros((n, k))
    allowed = np.zeros((n, k), dtype=bool)
    upgrade = np.zeros((n, k), dtype=bool)
    allowed[:, 0] = True
    for i, st in enumerate(standings):
        locked = False
        if st.size_bytes > 0:
            names[i, 1], sizes[i, 1] = st.model, st.size_bytes
            bits[i, 1] = 8 * st.left_bytes
            scale[i, 1] = problem.size_map(st.size_bytes)
            allowed[i, 1] = True
            if st.left_bytes < (1 - SWITCH_BEFORE) * st.size_bytes and not st.deferred \
                    and not unlock:
                allowed[i, 0] = False            # well under way: it is finished
                locked = True
            # Switched already: finish or defer it (or grow it, below).
            locked = locked or st.switched >= MAX_SWITCHES
        grows = locked and st.left_bytes > 0
        for j, v in enumerate(menu, 2):
            if v.name == st.model and allowed[i, 1]:
                continue                       # the current one: option 1 costs less
            if locked and not (grows and v.size_bytes > st.size_bytes):
                continue
            names[i, j], sizes[i, j] = v.name, v.size_bytes
            bits[i, j] = 8 * v.size_bytes
            scale[i, j] = problem.size_map(v.size_bytes)
            allowed[i, j] = True
            upgrade[i, j] = locked
    return names, sizes, bits, scale, allowed, upgrade


def _respond(problem, standings, options, price, price_down=None, goodput=(1.0, 1.0)):
    """(option index, (samples, upload bits, checkpoint bits, value, allowed)) per
    device at price (mAP per bit; price_down: the checkpoints' bits' own, None: the
    same); the bits are the link's, a bit moved costing 1 / goodput (upload,
    download) of them."""
    names, sizes, bits, scale, allowed = options[:5]
    acc = problem.accuracy
    s = problem.sample_bits
    arrived = np.array([st.arrived for st in standings])[:, None]
    waiting = np.array([st.waiting for st in standings])[:, None]
    kept = np.array([st.kept for st in standings])
    weight = np.array([st.weight for st in standings])[:, None]
    weight_up, weight_down = weight / goodput[0], weight / goodput[1]
    with np.errstate(divide='ignore', invalid='ignore'):
        free = np.power(np.maximum(scale, 1e-12) * acc.c * acc.alpha / (price * weight_up * s),
                        1 / (1 + acc.alpha)) - acc.d0 - arrived
    data = np.clip(np.nan_to_num(free, nan=0.0, posinf=0.0), 0.0, waiting)
    value = scale * acc.q(arrived + data)
    resumed = np.array([np.nan if st.resumed_accuracy is None else st.resumed_accuracy
                        for st in standings])
    fixed = ~np.isnan(resumed)
    value[fixed, 1] = resumed[fixed]           # trained on its own period's data
    data[fixed, 1] = 0.0
    up_cost = weight_up * s * data
    down_cost = weight_down * bits
    price_down = price if price_down is None else price_down
    net = np.where(allowed, value - price * up_cost - price_down * down_cost, -np.inf)
    net[:, 0] = np.where(allowed[:, 0], kept, -np.inf)   # keeping: no bits, no data
    data[:, 0] = 0.0
    up_cost[:, 0] = 0.0
    down_cost[:, 0] = 0.0
    value[:, 0] = kept
    pick = np.argmax(net, axis=1)
    return pick, (data, up_cost, down_cost, value, allowed)


def _picked(pick, matrices):
    """(pick, samples, upload bits, checkpoint bits, value) per device."""
    rows = np.arange(pick.size)
    data, up_cost, down_cost, value, _ = matrices
    return pick, data[rows, pick], up_cost[rows, pick], down_cost[rows, pick], \
        value[rows, pick]


def _lowest_price(at, fits):
    """(log price, its answer): the lowest log price in _LOG_PRICE whose answer at(log
    price) fits (bisection; the highest when none does)."""
    lo, hi = _LOG_PRICE
    best = at(hi)
    for _ in range(_ITERATIONS):
        mid = (lo + hi) / 2
        answer = at(mid)
        if fits(_picked(*answer)):
            hi, best = mid, answer
        else:
            lo = mid
    return hi, best


def _solve(problem, standings, budget, options, goodput=(1.0, 1.0)):
    """The answer at the lowest price whose bits fit budget (a Budget; with one a
    direction, two prices met in turn), then improved greedily within what is left
    (identical devices all switch at one price: the relaxation leaves budget unspent):
    (pick, samples, upload bits, checkpoint bits, value) per device."""
    def at(log_up, log_down=None):
        return _respond(problem, standings, options, 10.0 ** log_up,
                        None if log_down is None else 10.0 ** log_down, goodput)
    if budget.down is None:
        _, (pick, matrices) = _lowest_price(
            at, lambda p: budget.fits(p[2].sum(), p[3].sum()))
        return _upgrade(pick, matrices, budget)
    log_up = log_down = _LOG_PRICE[0]
    for _ in range(_DIRECTION_ROUNDS):
        log_up, _ = _lowest_price(lambda lp: at(lp, log_down),
                                  lambda p: p[2].sum() <= budget.up)
        log_down, (pick, matrices) = _lowest_price(lambda lp: at(log_up, lp),
                                                   lambda p: p[3].sum() <= budget.down)
    pick = _upgrade(pick, matrices, budget)[0]
    # The checkpoints chosen, the data is the upload's budget water-filled: the lowest
    # price of its bits that fits, every device held to its choice (at one price for
    # both kinds of bits a device could leave the data it wants when its option flips).
    held = options[:4] + (options[4] & (np.arange(options[4].shape[1])[None, :] ==
                                        pick[:, None]),) + options[5:]
    _, answer = _lowest_price(
        lambda lp: _respond(problem, standings, held, 10.0 ** lp, 10.0 ** log_down,
                            goodput),
        lambda p: p[2].sum() <= budget.up)
    return _picked(*answer)


def _upgrade(pick, matrices, budget):
    """Take, while any fits in the budget left, the change of one device's option
    that raises the total most."""
    _, up_cost, down_cost, value, allowed = matrices
    rows = np.arange(pick.size)
    for _ in range(2 * pick.size + 1):
        extra_up = up_cost - up_cost[rows, pick][:, None] + up_cost[rows, pick].sum()
        extra_down = down_cost - down_cost[rows, pick][:, None] + \
            down_cost[rows, pick].sum()
        gain = np.where(allowed & budget.fits(extra_up, extra_down),
                        value - value[rows, pick][:, None], -np.inf)
        i, j = np.unravel_index(np.argmax(gain), gain.shape)
        if not gain[i, j] > 1e-9:
            break
        pick = pick.copy()
        pick[i] = j
    return _picked(pick, matrices)


def replan(problem, standings, budget_bits, replace=True, sure_bits=None, unlock=False,
           goodput=(1.0, 1.0), after_arrival=False):
    """[Choice] per device for the rest of a period with budget_bits to spend (the
    link's bits, or a Budget a direction; each device's bits weighed by its Standing's
    weight, and a bit moved up or down costs 1 / goodput (upload, download) of the
    link's: each direction's measured TCP efficiency): the best with checkpoints
    switched (replace) when that gains SWITCH_MAP, else the best that keeps each
    device's current checkpoint or defers it; then, when sure_bits (the budget at a
    capacity the period is sure of, at most budget_bits) is given, the best with locked
    checkpoints grown too, within sure_bits, when that gains SWITCH_MAP over the answer
    so far.  unlock: the period is sure to be short of what its checkpoints under way
    need (``loop.Period.short_of``): what has arrived of them locks none.
    after_arrival: last, a device whose checkpoint has arrived may be sent a larger one
    (the transport fetches a second checkpoint in a period,
    ``loop.Transport.upgrades_checkpoints``), within what the answer leaves of
    sure_bits, or of budget_bits when the answer moves nothing (``_after_arrival``)."""
    budget_bits = as_budget(budget_bits)
    options = _options(problem, standings, replace, unlock)
    names, sizes, upgrade = options[0], options[1], options[5]
    stay = tuple(a.copy() for a in options)
    stay[4][:, 2:] = False
    answer = _solve(problem, standings, budget_bits, stay, goodput)
    if replace and (options[4][:, 2:] & ~upgrade[:, 2:]).any():
        switch = tuple(a.copy() for a in options)
        switch[4][upgrade] = False
        free = _solve(problem, standings, budget_bits, switch, goodput)
        if free[4].mean() > answer[4].mean() + SWITCH_MAP:
            answer = free
    if replace and sure_bits is not None and upgrade.any():
        grown = _solve(problem, standings, as_budget(sure_bits).capped(budget_bits),
                       options, goodput)
        if grown[4].mean() > answer[4].mean() + SWITCH_MAP:
            answer = grown
    pick, data, _, model_bits, value = answer
    choices = [Choice(names[i, j], float(sizes[i, j]),
                      max(model_bits[i] * goodput[1] / standings[i].weight, 0.0) / 8,
                      float(data[i]), float(value[i])) for i, j in enumerate(pick)]
    if replace and after_arrival and sure_bits is not None:
        larger = _after_arrival(problem, standings, answer, budget_bits,
                                as_budget(sure_bits).capped(budget_bits), goodput)
        for i, (variant, accuracy) in larger.items():
            choices[i] = Choice(variant.name, variant.size_bytes, variant.size_bytes,
                                float(data[i]), accuracy)
    return choices


def _after_arrival(problem, standings, answer, budget, sure, goodput):
    """{device index: (menu variant, the device's accuracy with it)}: for devices whose
    checkpoint has arrived, larger variants sent after it, one device at a time, the
    one that adds most first, each only within what answer (and those before it) leave
    of sure (the budget the period is sure of), or of budget when answer moves nothing
    (the link would idle: the device keeps the first should the larger miss), and only
    when it raises the fleet's mean by SWITCH_MAP: a second checkpoint in a period uses
    what nothing else planned needs, never displaces it, and waits while a checkpoint
    under way is deferred (it takes what is left)."""
    pick, data, up_cost, down_cost, value = answer
    if any(st.left_bytes > 0 and j == 0 for st, j in zip(standings, pick)):
        return {}
    up, down = float(up_cost.sum()), float(down_cost.sum())
    if up + down > 0:
        budget = sure
    larger = {}
    while True:
        best = None
        for i, st in enumerate(standings):
            if not st.delivered or i in larger:
                continue
            for variant in problem.menu or ():
                bits = 8 * variant.size_bytes * st.weight / goodput[1]
                if variant.size_bytes <= st.size_bytes or not budget.fits(up, down + bits):
                    continue
                gain = problem.fresh_accuracy(st.arrived + data[i], variant.size_bytes) - \
                    value[i]
                if best is None or gain > best[0]:
                    best = (gain, i, variant, bits)
        if best is None or best[0] / len(standings) <= SWITCH_MAP:
            return larger
        gain, i, variant, bits = best
        larger[i] = (variant, float(value[i] + gain))
        down += bits
