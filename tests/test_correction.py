"""The receding-horizon re-split of the closed loop within a period."""

import pytest

from edgecollab.controller.correction import MARGIN, PACE, changed, resplit

FULL = {'up': 1.0, 'down': 1.0}


def carried(share, capacity_mbit, efficiency, seconds):
    return share * capacity_mbit * 1e6 * efficiency * seconds / 8


def test_checkpoints_get_what_carries_them_by_half_the_time_left_and_uploads_the_rest():
    remaining = {('d1', 'down'): 8e6, ('d1', 'up'): 8e6, ('d2', 'down'): 0.0,
                 ('d2', 'up'): 4e6}
    new = resplit(remaining, 20.0, {'up': 0.9, 'down': 0.9}, 10.0)
    assert carried(new['d1']['down'], 20.0, 0.9, 10.0 / PACE) == pytest.approx(8e6 * MARGIN)
    total = sum(v for share in new.values() for v in share.values())
    assert total == pytest.approx(1.0)
    assert new['d1']['up'] == pytest.approx(2 * new['d2']['up'])
    assert new['d2']['down'] == 0.0


def test_impossible_checkpoints_take_the_whole_link_least_needy_first():
    remaining = {('d1', 'down'): 50e6, ('d2', 'down'): 40e6, ('d1', 'up'): 1e6,
                 ('d2', 'up'): 1e6}
    new = resplit(remaining, 10.0, FULL, 5.0)
    assert new['d2']['down'] == pytest.approx(1.0) and new['d1']['down'] == 0.0
    assert new['d1']['up'] == new['d2']['up'] == 0.0


def test_no_data_waiting_gives_the_rest_to_the_checkpoints():
    remaining = {('d1', 'down'): 1e6, ('d1', 'up'): 0.0}
    new = resplit(remaining, 10.0, FULL, 5.0)
    assert new['d1'] == {'up': 0.0, 'down': pytest.approx(1.0)}


def test_data_of_devices_getting_a_checkpoint_goes_first():
    remaining = {('d1', 'down'): 1e6, ('d1', 'up'): 1e6, ('d2', 'down'): 0.0,
                 ('d2', 'up'): 9e6}
    first = resplit(remaining, 10.0, FULL, 5.0, valued={'d1'})
    assert first['d2']['up'] == 0.0
    assert first['d1']['up'] == pytest.approx(1.0 - first['d1']['down'])
    # Once that data is sent, the others' data uses the link rather than leaving it idle.
    remaining[('d1', 'up')] = 0.0
    later = resplit(remaining, 10.0, FULL, 5.0, valued={'d1'})
    assert later['d2']['up'] == pytest.approx(1.0 - later['d1']['down'])
    assert later['d2']['up'] > 0.5


def test_a_deferred_checkpoint_takes_what_no_other_transfer_needs():
    # d1's checkpoint was deferred by the re-plan: the data that counts goes first, then
    # the deferred checkpoint, before data that counts for no checkpoint this period
    # (d3's); a checkpoint short of its need goes before it.
    remaining = {('d1', 'down'): 30e6, ('d1', 'up'): 0.0, ('d2', 'down'): 1e6,
                 ('d2', 'up'): 2e6, ('d3', 'up'): 5e6}
    first = resplit(remaining, 10.0, FULL, 5.0, valued={'d2'}, deferred={'d1'})
    assert first['d1']['down'] == 0.0 and first['d3']['up'] == 0.0
    assert first['d2']['up'] == pytest.approx(1.0 - first['d2']['down'])
    remaining[('d2', 'up')] = 0.0
    later = resplit(remaining, 10.0, FULL, 5.0, valued={'d2'}, deferred={'d1'})
    assert later['d2']['down'] == pytest.approx(first['d2']['down'])
    assert later['d1']['down'] == pytest.approx(1.0 - later['d2']['down'])
    assert later['d3']['up'] == 0.0
    # A checkpoint that cannot arrive in time takes the rest before the deferred one.
    remaining[('d2', 'down')] = 10e6
    assert resplit(remaining, 10.0, FULL, 5.0, valued={'d2'}, deferred={'d1'})['d1'] == {
        'up': 0.0, 'down': 0.0}


def test_the_data_a_checkpoint_needs_to_be_worth_its_install_goes_with_it():
    # d1's checkpoint can arrive by half the 10 s left, d2's cannot: the late one takes
    # the rest of the link.
    # With a floor, d1's data up to it goes with d1's checkpoint, before d2's (a
    # checkpoint arriving with less leaves d1 worse off than the model it keeps).
    remaining = {('d1', 'down'): 4e6, ('d1', 'up'): 10e6, ('d2', 'down'): 40e6,
                 ('d2', 'up'): 10e6}
    before = resplit(remaining, 10.0, FULL, 10.0)
    assert before['d1']['up'] == before['d2']['up'] == 0.0
    after = resplit(remaining, 10.0, FULL, 10.0, floor={'d1': 1e6})
    assert carried(after['d1']['up'], 10.0, 1.0, 5.0) == pytest.approx(1e6 * MARGIN)
    assert after['d2']['up'] == 0.0
    assert after['d1']['down'] + after['d2']['down'] == pytest.approx(1.0 - after['d1']['up'])
    # Only for a device whose data counts this period; never more than it has waiting.
    assert resplit(remaining, 10.0, FULL, 10.0, valued={'d2'}, floor={'d1': 1e6}) == before
    remaining[('d1', 'up')] = 0.5e6
    small = resplit(remaining, 10.0, FULL, 10.0, floor={'d1': 1e6})
    assert carried(small['d1']['up'], 10.0, 1.0, 5.0) == pytest.approx(0.5e6 * MARGIN)
    # A floor larger than what the checkpoint leaves goes first: the checkpoint gets
    # the rest (arriving without its data it would leave d1 worse off).
    remaining[('d1', 'up')] = 10e6
    big = resplit(remaining, 10.0, FULL, 10.0, floor={'d1': 3e6})
    assert carried(big['d1']['up'], 10.0, 1.0, 5.0) == pytest.approx(3e6 * MARGIN)
    assert big['d1']['down'] == pytest.approx(1.0 - big['d1']['up'])
    assert big['d1']['down'] < before['d1']['down']
    assert big['d2'] == {'up': 0.0, 'down': 0.0}
    # A checkpoint that cannot arrive at this rate goes alone: its data would count
    # for nothing, its bytes resume next period.
    remaining[('d1', 'down')] = 30e6
    alone = resplit(remaining, 10.0, FULL, 10.0, floor={'d1': 1e6})
    assert alone['d1']['up'] == 0.0
    assert alone == resplit(remaining, 10.0, FULL, 10.0)


def test_no_time_or_capacity_gives_no_shares():
    assert resplit({('d1', 'up'): 1.0}, 0.0, FULL, 5.0) == {'d1': {'up': 0.0, 'down': 0.0}}
    assert resplit({('d1', 'up'): 1.0}, 10.0, FULL, 0.0) == {'d1': {'up': 0.0, 'down': 0.0}}


def test_small_changes_are_not_applied():
    old = {'d1': {'up': 0.5, 'down': 0.5}}
    assert not changed(old, {'d1': {'up': 0.505, 'down': 0.495}})
    assert changed(old, {'d1': {'up': 0.6, 'down': 0.4}})


def test_checkpoints_aim_to_arrive_a_control_step_early():
    remaining = {('d1', 'down'): 1e6, ('d1', 'up'): 1e7}
    on_time = resplit(remaining, 10.0, {'down': 1.0}, 8.0)['d1']['down']
    early = resplit(remaining, 10.0, {'down': 1.0}, 8.0, ahead_s=1.0)['d1']['down']
    assert early == pytest.approx(on_time * 8.0 / 7.0)
    # With little time left, at most half of it is held back.
    late = resplit(remaining, 10.0, {'down': 1.0}, 1.0, ahead_s=1.0)['d1']['down']
    assert late == pytest.approx(min(1.0, 2 * resplit(remaining, 10.0, {'down': 1.0},
                                                      1.0)['d1']['down']))


def test_checkpoints_go_one_after_another_fewest_bytes_first():
    # Both can arrive: their shares are pooled and the pool goes to the smaller one
    # first (at most what carries it within a control step), then the next.
    remaining = {('d1', 'down'): 4e6, ('d2', 'down'): 2e6, ('d1', 'up'): 9e6,
                 ('d2', 'up'): 9e6}
    new = resplit(remaining, 10.0, FULL, 20.0, ahead_s=1.0)
    paced = [carried(1.0, 10.0, 1.0, (20.0 - 1.0) / PACE)] * 2
    assert new['d2']['down'] == pytest.approx(MARGIN * (4e6 / paced[0] + 2e6 / paced[1]))
    assert new['d1']['down'] == 0.0
    # A small one takes no more than it can use in a step: the next gets the rest.
    remaining[('d2', 'down')] = 0.1e6
    new = resplit(remaining, 10.0, FULL, 20.0, ahead_s=1.0)
    assert carried(new['d2']['down'], 10.0, 1.0, 1.0) == pytest.approx(0.1e6 * MARGIN)
    assert new['d1']['down'] > 0


def test_checkpoints_that_cannot_all_arrive_go_the_most_worth_a_byte_first():
    # 10 Mbit/s for 5 s carries 6.25 MB: a resumed checkpoint with 6 MB left that adds
    # 6.9 mAP, or a new one of 5 MB that adds 2.6: the larger goes first (1.15 against
    # 0.52 mAP a MB), where fewest bytes first would deliver the one worth less.
    remaining = {('d1', 'down'): 6e6, ('d2', 'down'): 5e6, ('d1', 'up'): 0.0,
                 ('d2', 'up'): 1e6}
    worth = {'d1': 6.9, 'd2': 2.6}
    new = resplit(remaining, 10.0, FULL, 5.0, ahead_s=0.5, worth=worth)
    assert new['d1']['down'] == pytest.approx(1.0) and new['d2']['down'] == 0.0
    # Equal worth a byte (or none given): the fewest bytes left first, as before.
    new = resplit(remaining, 10.0, FULL, 5.0, ahead_s=0.5, worth={'d1': 6.0, 'd2': 5.0})
    assert new['d2']['down'] == pytest.approx(1.0) and new['d1']['down'] == 0.0
    assert resplit(remaining, 10.0, FULL, 5.0, ahead_s=0.5)['d2']['down'] == \
        pytest.approx(1.0)
    # A checkpoint worth nothing over the model kept goes last.
    new = resplit(remaining, 10.0, FULL, 5.0, ahead_s=0.5, worth={'d1': 1.0, 'd2': -3.0})
    assert new['d1']['down'] == pytest.approx(1.0)


def test_a_link_that_dies_mid_period_still_delivers_the_checkpoints_it_could_carry():
    # 10 Mbit/s for 4 s, then nothing: 5 MB in all, two checkpoints of 3 MB.  Sent side
    # by side each would miss; one after another, one arrives.
    left = {('d1', 'down'): 3e6, ('d2', 'down'): 3e6, ('d1', 'up'): 20e6,
            ('d2', 'up'): 20e6}
    for second in range(10):
        capacity = 10.0 if second < 4 else 0.0
        shares = resplit(left, max(capacity, 0.01), FULL, 10.0 - second, ahead_s=1.0)
        for (device, direction), bytes_left in left.items():
            sent = carried(shares[device][direction], capacity, 1.0, 1.0)
            left[(device, direction)] = max(bytes_left - sent, 0.0)
    assert sorted([left[('d1', 'down')], left[('d2', 'down')]])[0] == 0.0


def test_a_duplex_link_splits_each_direction_as_a_budget_of_its_own():
    # Up 20, down 10 Mbit/s: the checkpoint's share is sized at the download's
    # capacity and the data takes the whole upload, not what the checkpoint leaves.
    remaining = {('d1', 'down'): 4e6, ('d1', 'up'): 8e6, ('d2', 'down'): 2e6,
                 ('d2', 'up'): 8e6}
    new = resplit(remaining, 20.0, FULL, 10.0, down_mbit=10.0)
    assert carried(new['d2']['down'], 10.0, 1.0, 10.0 / PACE) >= 2e6 * MARGIN * (1 - 1e-9)
    assert sum(s['down'] for s in new.values()) == pytest.approx(1.0)
    assert sum(s['up'] for s in new.values()) == pytest.approx(1.0)
    assert new['d1']['up'] == pytest.approx(new['d2']['up'])
    # One budget for both (no down_mbit): the uploads get what the checkpoints leave.
    shared = resplit(remaining, 20.0, FULL, 10.0)
    assert sum(v for s in shared.values() for v in s.values()) == pytest.approx(1.0)
