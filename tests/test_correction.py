"""The mid-period re-split of the closed loop."""

import pytest

from edgecollab.controller.correction import needs_resplit, resplit


def test_on_track_transfers_are_left_alone():
    remaining = {('d1', 'down'): 10e6, ('d1', 'up'): 5e6}
    shares = {('d1', 'down'): 0.5, ('d1', 'up'): 0.5}
    # 20 Mbit/s for 10 s: each half carries 12.5 MB at full efficiency.
    assert not needs_resplit(remaining, shares, 20.0, {'up': 1.0, 'down': 1.0}, 10.0,
                             drift=0.1)


def test_a_missing_checkpoint_triggers_a_resplit_that_carries_it():
    remaining = {('d1', 'down'): 12e6, ('d1', 'up'): 8e6, ('d2', 'down'): 0.0,
                 ('d2', 'up'): 4e6}
    shares = {('d1', 'down'): 0.4, ('d1', 'up'): 0.3, ('d2', 'down'): 0.0, ('d2', 'up'): 0.3}
    assert needs_resplit(remaining, shares, 20.0, {'up': 0.9, 'down': 0.9}, 10.0, drift=0.05)
    new = resplit(remaining, 20.0, {'up': 0.9, 'down': 0.9}, 10.0)
    carried = new['d1']['down'] * 20e6 * 0.9 * 10.0 / 8
    assert carried >= 12e6
    total = sum(v for share in new.values() for v in share.values())
    assert total == pytest.approx(1.0)
    assert new['d1']['up'] == pytest.approx(2 * new['d2']['up'])
    assert new['d2']['down'] == 0.0


def test_impossible_checkpoints_share_the_whole_link():
    remaining = {('d1', 'down'): 50e6, ('d2', 'down'): 50e6, ('d1', 'up'): 1e6,
                 ('d2', 'up'): 1e6}
    new = resplit(remaining, 10.0, {'up': 1.0, 'down': 1.0}, 5.0)
    assert new['d1']['down'] == pytest.approx(0.5) and new['d1']['up'] == 0.0


def test_no_time_or_capacity_gives_no_shares():
    assert not needs_resplit({('d1', 'up'): 1.0}, {('d1', 'up'): 0.1}, 10.0, {'up': 1.0},
                             0.0, 0.1)
    assert resplit({('d1', 'up'): 1.0}, 0.0, {'up': 1.0, 'down': 1.0}, 5.0) == \
        {'d1': {'up': 0.0, 'down': 0.0}}
