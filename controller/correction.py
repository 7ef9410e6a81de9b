"""Mid-period correction (the closed loop inside a period): re-split what is left.

At a period start a policy splits the link; during the period the capacity may change
and TCP may deliver less than a share.  The controller then checks, every second,
whether each transfer still finishes by its deadline at the rate its share really
gives (share x capacity x measured efficiency).  When one would miss by more than the
drift threshold, it re-splits the rest of the period: each unfinished checkpoint first
gets the share that carries its remaining bytes in the remaining time (a checkpoint is
all or nothing), the uploads share what is left in proportion to their remaining bytes.
A pure function, so it is tested without a network.
"""

MARGIN = 1.05     # headroom on a checkpoint's needed share


def needs_resplit(remaining, shares, capacity_mbit, efficiency, remaining_s, drift):
    """True when some transfer's remaining bytes would miss the deadline by more than
    drift at its current share; remaining/shares: {(device, direction): bytes/fraction};
    efficiency: {direction: goodput / share}."""
    if remaining_s <= 0 or capacity_mbit <= 0:
        return False
    for key, left in remaining.items():
        if left <= 0:
            continue
        deliverable = shares.get(key, 0.0) * capacity_mbit * 1e6 * efficiency[key[1]] * \
            remaining_s / 8
        if deliverable < left * (1 - drift):
            return True
    return False


def resplit(remaining, capacity_mbit, efficiency, remaining_s):
    """{device: {'up': f, 'down': f}}: shares that finish the checkpoints first, then
    the uploads in proportion to their remaining bytes (fractions of the capacity)."""
    devices = sorted({device for device, _ in remaining})
    shares = {d: {'up': 0.0, 'down': 0.0} for d in devices}
    if remaining_s <= 0 or capacity_mbit <= 0:
        return shares
    # Useful bytes/s of the whole link for a checkpoint.
    rate = capacity_mbit * 1e6 * max(efficiency['down'], 0.05) / 8
    free = 1.0
    models = [(d, left) for (d, direction), left in remaining.items()
              if direction == 'down' and left > 0]
    need = {d: min(1.0, MARGIN * left / remaining_s / rate) for d, left in models}
    total_need = sum(need.values())
    scale = min(1.0, free / total_need) if total_need > 0 else 1.0
    for d, value in need.items():
        shares[d]['down'] = value * scale
    free -= sum(shares[d]['down'] for d in need)
    uploads = {d: left for (d, direction), left in remaining.items()
               if direction == 'up' and left > 0}
    total_up = sum(uploads.values())
    for d, left in uploads.items():
        shares[d]['up'] = max(0.0, free) * left / total_up
    return shares
