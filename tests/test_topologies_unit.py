"""Topology naming and arguments, without root."""

import pytest

from edgecollab.errors import ConfigError
from edgecollab.topologies import addressing
from edgecollab.topologies.access import access_rates
from edgecollab.topologies.star import EdgeStar, flag


@pytest.mark.parametrize('prefix', ['ec', 'ect', 'abcd'])
def test_interface_names_fit_15_characters_at_500_devices(prefix):
    topo = EdgeStar(n=500, prefix=prefix)
    switch = addressing.data_switch(prefix)
    names = ['%s-eth%d' % (switch, 501), addressing.ifb_name(switch) + 'n',
             addressing.access_ifb_name(switch, '%s-eth501' % switch)]
    assert all(len(n) <= 15 for n in names), names
    pattern = addressing.owned_name_pattern(prefix)
    assert all(pattern.match(n) for n in names + [switch, addressing.mgmt_switch(prefix)])
    assert not pattern.match('eth0') and not pattern.match('ifb0')
    assert len(topo.hosts()) == 501


def test_device_addresses_are_unique_and_apart_from_management():
    data = {addressing.device_data_ip(i) for i in range(1, 1001)}
    mgmt = {addressing.device_mgmt_ip(i) for i in range(1, 1001)}
    assert len(data) == len(mgmt) == 1000
    assert addressing.EDGE_DATA_IP not in data and not data & mgmt


def test_bad_topology_arguments():
    for kwargs in ({'n': 0}, {'n': 'many'}, {'prefix': 'EC'}, {'prefix': 'toolong'},
                   {'capacity': 'fast'}, {'medium': 'radio'}, {'ack': 'maybe'}):
        with pytest.raises(ConfigError):
            EdgeStar(**kwargs)


def test_flags_and_access_rates():
    assert flag('False', 'ack') is False and flag('on', 'ack') is True
    assert access_rates(3, '5mbit/10mbit') == {'d1': 5.0, 'd2': 10.0, 'd3': 5.0}
    with pytest.raises(ConfigError):
        access_rates(2, '')


def test_the_path_engine_is_chosen_once_by_what_the_paths_need():
    from edgecollab.errors import UnsupportedError
    from edgecollab.topologies.paths import Path, choose_engine

    def never():
        raise AssertionError('the kernel was probed when nothing depended on it')
    uniform, jittery = [Path(20), Path(20)], [Path(20, 5), Path(20)]
    assert choose_engine('auto', [Path(), Path()], never) is None
    assert choose_engine('userspace', uniform, never) == 'userspace'
    assert choose_engine('auto', jittery, never) == 'userspace'
    assert choose_engine('auto', [Path(5), Path(50, loss_pct=1)], lambda: True) == 'netem'
    assert choose_engine('auto', [Path(5), Path(50)], lambda: False) == 'userspace'
    assert choose_engine('auto', uniform, lambda: True) == 'netem'
    assert choose_engine('auto', uniform, lambda: False) == 'userspace'
    with pytest.raises(UnsupportedError, match='no netem'):
        choose_engine('netem', uniform, lambda: False)
    with pytest.raises(ConfigError, match='no jitter'):
        choose_engine('netem', jittery, never)
    with pytest.raises(ConfigError, match='delay_engine'):
        choose_engine('tc', uniform, never)
    with pytest.raises(ConfigError, match='loss'):
        Path(loss_pct=120)


def test_a_trace_driven_link_sizes_its_queues_from_the_trace_mean(tmp_path):
    from edgecollab.scenarios.mininet_backend import scenario_topology
    from edgecollab.scenarios.scenario import load_scenario
    from edgecollab.topologies.linkshare import ShapingConfig

    def shaping(text):
        path = tmp_path / 'scenario.yaml'
        path.write_text(text)
        topo = scenario_topology(load_scenario(str(path)))
        found = [topo.nodeInfo(s)['shaping'] for s in topo.switches()
                 if isinstance(topo.nodeInfo(s).get('shaping'), ShapingConfig)]
        assert len(found) == 1
        return found[0]
    trace = tmp_path / 'fade.txt'
    # 2 s at 40 Mbit/s, then 8 s at 5: 12 Mbit/s over a 10 s period.
    trace.write_text('0 40\n2 5\n10 5\n')
    faded = shaping('capacity: {trace: %s, loop: false}\nperiod: 10s\nperiods: 1\n'
                    'delay: 0ms\n' % trace)
    assert faded.capacity_mbit == 40 and faded.queue_mbit == pytest.approx(12.0)
    steady = shaping('capacity: 30mbit\ndelay: 0ms\n')
    assert steady.queue_mbit == steady.capacity_mbit == 30
    assert steady.queue_down_mbit == 0
    duplex = shaping('medium: duplex\ncapacity: 30mbit\ncapacity_down: {trace: %s, '
                     'loop: false}\nperiod: 10s\nperiods: 1\ndelay: 0ms\n' % trace)
    assert duplex.queue_mbit == 30 and duplex.queue_down_mbit == pytest.approx(12.0)


def test_a_congestion_control_is_checked_against_what_the_kernel_has_and_allows(
        tmp_path, monkeypatch):
    from edgecollab.errors import UnsupportedError
    from edgecollab.topologies import hosts
    (tmp_path / 'tcp_available_congestion_control').write_text('reno cubic bbr\n')
    (tmp_path / 'tcp_allowed_congestion_control').write_text('reno cubic\n')
    monkeypatch.setattr(hosts, 'CONGESTION', str(tmp_path / 'tcp_%s_congestion_control'))
    hosts.check_congestion_control('cubic')
    # A namespace may only choose an allowed one: the message says how to allow it.
    with pytest.raises(UnsupportedError, match="allowed_congestion_control='reno cubic bbr'"):
        hosts.check_congestion_control('bbr')
    # One the kernel has not (no module of that name to load) is refused before any host.
    with pytest.raises(UnsupportedError, match="no 'nosuchcc' .it has reno, cubic, bbr"):
        EdgeStar(n=1, congestion_control='nosuchcc')
