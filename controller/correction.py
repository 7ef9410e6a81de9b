"""Receding-horizon control within a period: re-split what is left, every control step.

At a period start a policy splits the link; during the period the capacity changes and
TCP may deliver less than a share.  A closed-loop policy (``adaptive``) re-solves the
rest of the period at every control step from what remains: the bytes each checkpoint
still needs, the data each device still has waiting, the time left, the capacity now and
the efficiency TCP achieves.  A checkpoint is all or nothing, and data counts only for
a device whose checkpoint arrives, so the checkpoints come first: each gets the share
that carries its remaining bytes in half the remaining time (``PACE``, with MARGIN of
headroom), the ones needing least first, until the link is spent, and their shares
pooled go to one after another: a capacity that falls later in the period then finds
the checkpoints through or one whole, not all of them half sent (over bursty traces
with outages, ``benchmarks/outages.py``, the share of ``oracle``'s lead captured rose
from 39% and 3% to 66% and 33%, docs/real-traces.md).  One after another in the order
of what each adds a byte (the mAP the re-plan's choice adds over the model kept, over
its bytes left and its floor; the fewest bytes left first among equals): on the AT&T
LTE uplink x3 a new yolov8n worth 2.6 mAP went ahead of a resumed yolov8s with 0.8 MB
more left and worth 6.9, and in a period with room for one only the yolov8n arrived
(over the 12 corpora from the start ``default`` x3 from 49% to 75% captured,
docs/real-traces.md).
The uploads share the
rest in proportion to the data they still have (the data of devices that get a new
checkpoint this period first: only that data raises this period's accuracy; the others'
when none is left); what no upload needs goes to the
checkpoints (those short of their need first), so the link never idles while bytes
wait.  A checkpoint that does not arrive in time still moved bytes that count: it
resumes in the next period when the plan keeps its model (``holding.InFlight``).  So a
checkpoint the re-plan deferred is not left idle with the link: it takes what no other
transfer needs, after the data that counts and before data that counts for no
checkpoint this period (measured over 12 corpora, docs/real-traces.md: no corpus
lower, the mean share of ``oracle``'s lead captured from 79% to 81%; under Mininet the
T-Mobile trace's utilisation from 0.68 to 0.83).  A checkpoint that arrives with too
little data leaves its device worse off than the model it replaces (A(S) q(D) below
what it keeps), so each device's checkpoint goes together with its floor, the data
that makes it worth installing, the floor first, when the checkpoint can arrive in
what is left; one that cannot goes alone (measured over the 12 corpora and the same
from 60 s into each trace: no corpus lower, the T-Mobile downlink x15 from 0.63 below
its best baseline to 0.04, from 60 s Norway bus 18 and bus 1 from 0.53 and 0.52
below to above).  Which
checkpoint each device gets is decided before, at the same step (``replan.py``): this
module splits the link among the transfers it is given.  A pure function, so it is
tested without a network.
"""

from edgecollab.kinds import Direction

CONTROL_STEP_S = 1.0   # default time between two control steps (scenario: control_step)
STEPS_A_PERIOD = 20    # a period's default control steps, within [SHORTEST_STEP_S, 1 s]
SHORTEST_STEP_S = 0.5
MARGIN = 1.05      # headroom on a checkpoint's needed share
PACE = 2.0         # a checkpoint aims to arrive by 1 / PACE of the time left
MIN_RATE = 0.05    # the lowest efficiency a plan assumes


def default_control_step(period_s, replay_step_s):
    """The control step of a scenario that names none: a STEPS_A_PERIOD-th of the
    period, within [SHORTEST_STEP_S, CONTROL_STEP_S], never longer than the period nor
    shorter than the replay step.
    A checkpoint aims to arrive a control step early and the last step has no re-split
    after it, so in a 10 s period a 1 s step is a tenth of it: measured over the 12
    corpora of ../shared/traces (docs/real-traces.md), the 10 s periods of
    ``default.yaml`` at 0.5 s captured more of ``oracle``'s lead from the start, 60 s
    and 90 s in (the mean over its 6 corpora 80.1/81.9/81.5% -> 82.4/82.2/82.7%, traces
    below 2/1/4 -> 1/1/4), the 30 s periods of ``cellular.yaml`` at 0.5 s less (they
    keep 1 s)."""
    step = min(CONTROL_STEP_S, max(period_s / STEPS_A_PERIOD, SHORTEST_STEP_S), period_s)
    return max(step, replay_step_s)


def resplit(remaining, capacity_mbit, efficiency, remaining_s, valued=None, ahead_s=0.0,
            deferred=(), floor=None, down_mbit=None, worth=None):
    """{device: {'up': f, 'down': f}} for the rest of the period (fractions of the
    capacity); remaining: {(device, direction): bytes still to deliver}; efficiency:
    {direction: goodput / share}; valued: the devices whose data counts this period
    (None: every device's); ahead_s: how long before the deadline a checkpoint aims to
    arrive (at most half the time left), so that a dip in the last control step, when
    no re-split can follow, does not cost it; deferred: devices whose checkpoints the
    re-plan deferred: they take only what no other transfer needs; floor: {device:
    upload bytes its checkpoint still needs to be worth more than the model it
    replaces}: it goes first, with its checkpoint, when that checkpoint can arrive;
    down_mbit: on a medium with a budget a direction (duplex), the download's capacity:
    each direction then splits a whole budget of its own (None: the two share one, at
    capacity_mbit); worth: {device: the mAP its checkpoint adds over the model it keeps
    when it arrives}: the checkpoints go one after another, the most worth a byte first
    (None or equal worth a byte: the fewest bytes left first)."""
    devices = sorted({device for device, _ in remaining})
    shares = {d: {'up': 0.0, 'down': 0.0} for d in devices}
    down_capacity = capacity_mbit if down_mbit is None else down_mbit
    if remaining_s <= 0 or capacity_mbit <= 0 or down_capacity <= 0:
        return shares
    # The budget each direction draws from: one for both, or one each (duplex).
    pool = {Direction.UP: Direction.DOWN, Direction.DOWN: Direction.DOWN} \
        if down_mbit is None else {Direction.UP: Direction.UP, Direction.DOWN: Direction.DOWN}
    free = {Direction.UP: 1.0, Direction.DOWN: 1.0}
    up, down_pool = pool[Direction.UP], pool[Direction.DOWN]
    rate = down_capacity * 1e6 * max(efficiency.get('down', 1.0), MIN_RATE) / 8
    rate_up = capacity_mbit * 1e6 * max(efficiency.get('up', 1.0), MIN_RATE) / 8
    step = ahead_s if ahead_s > 0 else CONTROL_STEP_S
    # A checkpoint aims to arrive by 1 / PACE of the time left (a control step at the
    # soonest), its floor with it: bytes sent now are not lost to a drop later.
    horizon = remaining_s - min(ahead_s, remaining_s / 2)
    horizon = max(horizon / PACE, min(step, horizon))
    down = {d: left for (d, direction), left in remaining.items()
            if direction == Direction.DOWN and left > 0}
    # A device's checkpoint and the data that makes it worth installing (its floor)
    # go together, the floor first, when the checkpoint can arrive at this rate;
    # a checkpoint that cannot goes alone (data counts only with a checkpoint that
    # arrives; its bytes resume next period if it misses).
    floors = {d: MARGIN * min(need, remaining.get((d, Direction.UP), 0.0)) / horizon /
              rate_up for d, need in (floor or {}).items()
              if d not in deferred and (valued is None or d in valued)}
    models = sorted((MARGIN * down.get(d, 0.0) / horizon / rate, d)
                    for d in set(down) | set(floors) if d not in deferred)
    held_back = sorted(d for d in down if d in deferred)
    on_time, late = [], []
    for need, d in models:
        if need <= free[down_pool]:
            shares[d]['up'] = min(floors.get(d, 0.0), free[up])
            free[up] -= shares[d]['up']
        shares[d]['down'] = min(need, free[down_pool])
        free[down_pool] -= shares[d]['down']
        if d in down:
            (on_time if shares[d]['down'] >= need else late).append(d)
    # The checkpoints' share goes to one after another, the most worth a byte (with
    # its floor) first, else the fewest bytes left: when the link falls short, the
    # ones that arrive are worth the most it could carry.
    within_step = {d: MARGIN * left / min(step, horizon) / rate for d, left in down.items()}
    order = {d: (-max((worth or {}).get(d, 0.0), 0.0) / max(
        left + (floor or {}).get(d, 0.0), 1.0), left, d) for d, left in down.items()}
    free[down_pool] += _serial(shares, on_time + late,
                               sum(shares[d]['down'] for d in on_time + late), order,
                               within_step)
    uploads = {d: left for (d, direction), left in remaining.items()
               if direction == Direction.UP and left > 0}
    first = {d: left for d, left in uploads.items() if valued is None or d in valued}
    # The deferred checkpoints come before the data that counts for no checkpoint this
    # period (a byte of a checkpoint is not lost: it arrives or resumes next period),
    # where the two draw from one budget.
    uploads = first or ({} if held_back and up == down_pool else uploads)
    total_up = sum(uploads.values())
    if total_up > 0:
        for d, left in uploads.items():
            shares[d]['up'] += free[up] * left / total_up
        free[up] = 0.0
    # What no data needs goes to the checkpoints short of their need, else to the
    # deferred ones, else speeds up the others.
    takers = late or held_back or on_time
    if free[down_pool] <= 0 or not takers:
        return shares
    left = _serial(shares, takers, free[down_pool], order,
                   {d: within_step[d] - shares[d]['down'] for d in takers}, add=True)
    for d in takers:
        shares[d]['down'] += left / len(takers)
    return shares


def _serial(shares, devices, pool, order, most, add=False):
    """Give pool (a share of the link) to devices' checkpoints one after another in
    the order of their keys in order (most: {device: the share it takes at most, what
    carries the bytes it has left within a control step}); set their shares (add: add
    to them); return what is left of pool."""
    for d in sorted(devices, key=order.get):
        part = min(pool, max(most[d], 0.0))
        shares[d]['down'] = shares[d]['down'] + part if add else part
        pool -= part
    return pool


def changed(old, new, tolerance=0.01):
    """Whether new shares differ from old by more than tolerance in any class."""
    for device, share in new.items():
        for direction, value in share.items():
            if abs(old.get(device, {}).get(direction, 0.0) - value) > tolerance:
                return True
    return False
