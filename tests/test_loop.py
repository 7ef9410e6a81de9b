"""The controller's period loop and policies as objects, on the fluid backend."""

import dataclasses

import pytest

from edgecollab.controller import planner, policies
from edgecollab.controller.fleet import solve_fleet
from edgecollab.controller.fluid import FluidTransport, run_policy
from edgecollab.controller.loop import ControlLoop, share_schedule
from edgecollab.controller.service import ControllerState
from edgecollab.errors import ConfigError
from edgecollab.scenarios.scenario import load_scenario
from tests.conftest import REPO


def scenario(name='default.yaml'):
    return load_scenario('%s/scenarios/%s' % (REPO, name))


def loop_of(s, policy):
    """A fluid ControlLoop of scenario s starting with policy, and its records."""
    state = ControllerState(s.device_names, policy, s.problem.timing)
    records = []
    return ControlLoop(s, state, FluidTransport(s, s.device_names), records.extend), \
        state, records


def test_policy_switch_takes_effect_at_the_next_period():
    s = scenario()
    loop, state, records = loop_of(s, 'equal')
    loop.period(1)
    state.set_next_policy('optimal')
    assert state.policies() == ('equal', 'optimal')     # period 1 keeps its policy
    loop.period(2)
    loop.period(3)
    assert [r['planned_by'] for r in records] == ['equal'] * 2 + ['optimal'] * 4
    assert {r['policy'] for r in records} == {'equal'}   # the run's label stays
    # Period 2's plan is optimal's for the models the devices hold after period 1.
    kept = [r['kept_accuracy'] for r in records[2:4]]
    optimal = planner.plan(s.problem, 'optimal', s.generated, s.problem.capacity_mbit,
                           kept=kept)
    for row in records[2:4]:
        device = optimal.devices[int(row['device'][1:]) - 1]
        assert row['upload_share'] == pytest.approx(device.upload_share)
        assert row['model'] == device.model


def test_sequential_schedule_gives_each_phase_the_whole_link():
    s = scenario('sequential.yaml')
    plan_ = planner.plan(s.problem, 'equal', s.generated, s.problem.capacity_mbit)
    (t_up, up), (t_down, down) = share_schedule(s.problem, plan_, s.device_names)
    assert t_up == 0 and t_down > 0
    assert sum(f['up'] for f in up.values()) == pytest.approx(1.0)
    assert sum(f['down'] for f in down.values()) == pytest.approx(1.0)
    assert all(f['down'] == 0 for f in up.values()) and all(f['up'] == 0 for f in down.values())
    overlap = scenario()
    plan_ = planner.plan(overlap.problem, 'equal', overlap.generated, 50.0)
    [(t, shares)] = share_schedule(overlap.problem, plan_, overlap.device_names)
    assert t == 0 and shares['d1'] == {'up': plan_.devices[0].upload_share,
                                       'down': plan_.devices[0].download_share}


def test_policies_carry_their_behaviour():
    assert policies.get('tcp-fair').link_mode == 'work-conserving'
    assert all(policies.get(n).link_mode is None for n in policies.POLICIES if n != 'tcp-fair')
    assert [n for n in sorted(policies.POLICIES) if policies.get(n).corrects] == ['adaptive']
    assert isinstance(policies.get('oracle'), policies.FleetPolicy)
    assert isinstance(policies.get('equal'), policies.DevicePolicy)
    assert set(policies.DEFAULT_POLICIES) <= set(policies.POLICIES)


@pytest.fixture
def user_policies():
    before = dict(policies.POLICIES)
    yield
    policies.POLICIES.clear()
    policies.POLICIES.update(before)


def test_a_users_fleet_policy_plans_every_device_together(user_policies):
    @policies.register('half-capacity')
    class HalfCapacity(policies.FleetPolicy):
        """The fleet optimum at half the capacity seen."""
        def planning_capacity(self, state):
            return state.problem.capacity_mbit / 2

    s = scenario()
    plan_ = planner.plan(s.problem, 'half-capacity', s.generated, 50.0)
    expected = solve_fleet(dataclasses.replace(s.problem, capacity_mbit=25.0), s.generated)
    assert plan_.allocation.mean_accuracy == pytest.approx(expected.mean_accuracy)
    rows = run_policy(s, 'half-capacity')
    assert len(rows) == s.devices * s.periods and rows[0]['planned_by'] == 'half-capacity'


def test_a_users_function_is_a_per_device_policy(user_policies):
    @policies.register('all-upload')
    def all_upload(state):
        return policies.get('fixed').allocate(
            policies.PolicyState(state.problem, ratio=1.0))

    s = scenario()
    plan_ = planner.plan(s.problem, 'all-upload', s.generated, 50.0)
    # Each device gets its equal part of the link, all of it for upload (up to its data).
    assert all(a.download_share == 0 and a.model_bytes == 0 for a in plan_.devices)
    assert all(0 < a.upload_share <= 0.5 for a in plan_.devices)
    assert plan_.devices[0].upload_share == plan_.devices[1].upload_share
    with pytest.raises(ConfigError, match='registered twice'):
        policies.register('all-upload')(all_upload)
    with pytest.raises(ConfigError, match='register a function or a Policy'):
        policies.register('not-a-policy')(42)


def test_only_a_correcting_policy_re_splits_within_a_period():
    s = scenario()
    for name, expected in (('adaptive', True), ('optimal', False)):
        loop, state, _ = loop_of(s, name)
        loop.begin(1, 0.0)
        before = loop.transport.fractions()
        # The whole checkpoint is still to come with 5 s left: it needs more share.
        remaining = {(d, 'down'): 2e7 for d in s.device_names}
        remaining.update({(d, 'up'): 1e6 for d in s.device_names})
        assert loop.control(remaining, 50.0, 5.0, 40.0) is expected, name
        assert (loop.transport.fractions() != before) is expected
        assert loop.current.resplits == int(expected)
        # A step is counted, and one that carried nothing is idle.
        loop.control(remaining, 50.0, 4.0, 0.0)
        assert (loop.current.steps, loop.current.idle_steps) == (2, 1)


