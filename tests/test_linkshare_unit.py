"""The tc command builders, counters parsing and share checks, without root."""

import pytest

from edgecollab.controller import linkshare as ls
from edgecollab.errors import ConfigError
from edgecollab.units import duration_s, rate_mbit, size_bytes, tc_rate

DEVICES = [ls.Device('d%d' % i, '10.0.%d.%d' % (i >> 8, i & 255)) for i in range(1, 4)]


def tree(**kwargs):
    config = ls.ShapingConfig(20.0, **kwargs)
    return ls.ShareTree('ifb', ls.DIRECTIONS, config, '10.0.255.254', DEVICES)


def test_build_has_root_classes_children_and_filters():
    cmds = tree().build_commands()
    assert cmds[0] == ['qdisc', 'add', 'dev', 'ifb', 'root', 'handle', '1:', 'htb',
                       'default', '3']
    classes = [c for c in cmds if c[:2] == ['class', 'add']]
    # root + other + 3 devices x 2 directions x (class, ack, data)
    assert len(classes) == 2 + 3 * 2 * 3
    assert all('quantum' in c for c in classes), 'explicit quantum on every class'
    flowids = {c[c.index('flowid') + 1] for c in cmds if 'flowid' in c}
    # every leaf of every device is reachable by a filter
    assert len(flowids) == 3 * 2 * 2


def test_without_ack_priority_classes_are_leaves():
    cmds = tree(ack_priority=False).build_commands()
    classes = [c for c in cmds if c[:2] == ['class', 'add']]
    assert len(classes) == 2 + 3 * 2
    assert not any('0xff80' in c or 'tos' in c for c in cmds)


def test_strict_ceil_equals_rate_and_work_conserving_borrows():
    strict = tree()
    strict.fractions = {'d1': {'up': 0.5, 'down': 0.25}, 'd2': {'up': 0, 'down': 0},
                        'd3': {'up': 0, 'down': 0}}
    rate, ceil, ack, data = strict._rates('d1', 'up')
    assert rate == ceil == 10.0
    assert ack == pytest.approx(0.05 * 5.0)
    assert data == pytest.approx(10.0 - 0.25)
    wc = tree(mode='work-conserving')
    wc.fractions = strict.fractions
    assert wc._rates('d1', 'up')[1] == 20.0


def test_a_direction_with_no_share_still_carries_reverse_acks():
    t = tree()
    t.fractions = {'d1': {'up': 1.0, 'down': 0.0}, 'd2': {'up': 0, 'down': 0},
                   'd3': {'up': 0, 'down': 0}}
    rate, _, ack, _ = t._rates('d1', 'down')
    assert ack == pytest.approx(1.0)      # 5% of the 20 Mbit/s upload
    assert rate > ack


def test_change_commands_only_change():
    cmds = tree().class_commands('change')
    assert all(c[1] == 'change' for c in cmds)
    assert not any(c[1] in ('del', 'add') for c in cmds)


def test_rates_span_100kbit_to_10gbit():
    assert tc_rate(0.1) == '100000bit'
    assert tc_rate(1000) == '1000000000bit'
    for capacity in (0.1, 1000.0, 10000.0):
        ls.ShapingConfig(capacity)
    for capacity in (0.0, 0.05, 20000.0, float('nan')):
        with pytest.raises(ConfigError):
            ls.ShapingConfig(capacity)


def test_netem_leaf_when_delay_is_asked():
    config = ls.ShapingConfig(20.0, delay_ms=30, loss_pct=1)
    leaf = ls.leaf_qdisc('add', 'ifb', 9, 5.0, config)
    assert 'netem' in leaf and '30ms' in leaf and '1%' in leaf


def test_bad_configs_are_refused():
    for kwargs in ({'medium': 'radio'}, {'mode': 'greedy'}, {'ack_fraction': 0},
                   {'queue_ms': 0}, {'loss_pct': 101}, {'delay_ms': -1}):
        with pytest.raises(ConfigError):
            ls.ShapingConfig(20.0, **kwargs)


def test_check_fractions():
    ok = {'d1': {'up': 0.5, 'down': 0.5}}
    ls.check_fractions(ok, DEVICES, 'shared')
    with pytest.raises(ConfigError, match='more than the capacity'):
        ls.check_fractions({'d1': {'up': 0.6, 'down': 0.5}}, DEVICES, 'shared')
    ls.check_fractions({'d1': {'up': 0.6, 'down': 0.5}}, DEVICES, 'duplex')
    with pytest.raises(ConfigError, match='unknown device'):
        ls.check_fractions({'d9': {'up': 0.1, 'down': 0.1}}, DEVICES, 'shared')
    with pytest.raises(ConfigError, match='fraction'):
        ls.check_fractions({'d1': {'up': -0.1, 'down': 0.1}}, DEVICES, 'shared')


def test_hash_tables_for_many_groups():
    devices = [ls.Device('d%d' % i, '10.0.%d.%d' % (i >> 8, i & 255)) for i in range(1, 501)]
    t = ls.ShareTree('ifb', ls.DIRECTIONS, ls.ShapingConfig(100.0), '10.0.255.254', devices)
    cmds = t.filter_commands()
    tables = [c for c in cmds if 'divisor' in c]
    assert len(tables) == 2 * 2 * 2   # two /24 groups x directions x ACK-ness
    assert max(ls.class_minor(500, 'down') + 2, 0) <= 0xffff


def test_parse_class_stats():
    text = ('class htb 1:9 parent 1:8 leaf 9: prio 0 rate 200Kbit ceil 4Mbit\n'
            ' Sent 606 bytes 8 pkt (dropped 1, overlimits 2 requeues 0)\n'
            ' backlog 66b 1p requeues 0\n')
    stats = ls.parse_class_stats(text)
    assert stats[9].bytes == 606 and stats[9].drops == 1 and stats[9].backlog_bytes == 66


def test_units():
    assert rate_mbit('15mbit') == 15 and rate_mbit('500kbit') == 0.5
    assert rate_mbit('1gbit') == 1000 and rate_mbit(3) == 3
    assert size_bytes('2.5MB') == 2.5e6 and size_bytes('1KiB') == 1024
    assert duration_s('100ms') == pytest.approx(0.1)
    for bad in ('fast', '15 parsecs', True, None, '1e999mbit'):
        with pytest.raises(ConfigError):
            rate_mbit(bad)
