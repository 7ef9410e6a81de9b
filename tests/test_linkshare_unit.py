"""The tc command builders, counters parsing and share checks, without root."""

import types

import pytest

from edgecollab.topologies import linkshare as ls
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


def test_the_shaper_leaves_are_byte_fifos_never_netem():
    # HTB expects work-conserving children: a path's netem is outside the tree.
    tree = ls.ShareTree('ifb', ls.DIRECTIONS, ls.ShapingConfig(20.0), '10.0.0.100', DEVICES)
    qdiscs = [cmd for cmd in tree.build_commands() if cmd[:2] == ['qdisc', 'add']][1:]
    assert qdiscs and all('bfifo' in cmd and 'netem' not in cmd for cmd in qdiscs)


def _limits(tree):
    return {cmd[cmd.index('parent') + 1]: int(cmd[cmd.index('limit') + 1])
            for cmd in tree.class_commands('change') if 'bfifo' in cmd}


def test_a_fading_link_keeps_the_queues_of_its_reference_capacity():
    # A trace's dip to a tenth of its mean does not cut the queues to a tenth: a
    # buffer is memory; above the mean they follow the capacity now.
    fading = ls.ShareTree('ifb', ls.DIRECTIONS, ls.ShapingConfig(20.0, queue_mbit=20.0),
                          '10.0.0.100', DEVICES)
    plain = ls.ShareTree('ifb', ls.DIRECTIONS, ls.ShapingConfig(20.0), '10.0.0.100',
                         DEVICES)
    at_mean = _limits(fading)
    assert at_mean == _limits(plain)
    for t in (fading, plain):
        t.capacity_mbit = 2.0
    assert _limits(fading) == at_mean
    dipped = _limits(plain)
    data = '1:%x' % (ls.class_minor(1, 'up') + 2)
    assert dipped[data] == ls.MIN_QUEUE_FRAMES * ls.MTU_FRAME < at_mean[data]
    for t in (fading, plain):
        t.capacity_mbit = 40.0
    assert _limits(fading) == _limits(plain)
    assert _limits(fading)[data] == pytest.approx(2 * at_mean[data], rel=0.01)


def test_a_netem_path_delays_each_way_on_the_device_interface():
    path = ls.NetemPath('d1-eth0', 'd1-ifb', 30, 1, 500, types.SimpleNamespace(
        name='d1', pid=1234))
    cmds = path.commands()
    roots = [cmd for cmd in cmds if 'netem' in cmd]
    assert [cmd[3] for cmd in roots] == ['d1-eth0', 'd1-ifb']
    for cmd in roots:
        assert cmd[cmd.index('delay') + 1] == '30ms' and cmd[cmd.index('loss') + 1] == '1%'
        assert cmd[cmd.index('limit') + 1] == '500'
    redirect = [cmd for cmd in cmds if 'mirred' in cmd]
    assert len(redirect) == 1 and 'ingress' in redirect[0] and redirect[0][-1] == 'd1-ifb'
    with pytest.raises(ConfigError):
        ls.netem_qdisc('add', 'd1-eth0', -1, 0, 100)
    with pytest.raises(ConfigError):
        ls.netem_qdisc('add', 'd1-eth0', 20, 101, 100)


def test_a_netem_limit_holds_the_packets_within_its_delay():
    # 50 Mbit/s, 20 ms each way, a 100 ms queue: 875 KB a round trip and queue is 578
    # full frames, and as many ACKs again; the old limit held 16 packets.
    assert ls.netem_limit_packets(50, 20, 100) == 2 * 578
    assert ls.netem_limit_packets(50, 40, 100) > ls.netem_limit_packets(50, 20, 100)
    assert ls.netem_limit_packets(0.1, 0, 1) == ls.MIN_QUEUE_FRAMES


def test_bad_configs_are_refused():
    for kwargs in ({'medium': 'radio'}, {'mode': 'greedy'}, {'ack_fraction': 0},
                   {'queue_ms': 0}, {'queue_mbit': -1}, {'queue_mbit': float('nan')}):
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


class _Recorder:
    """A runner that records the tc batches it is given."""

    def __init__(self):
        self.batches = []

    def tc_batch(self, cmds, doing):
        self.batches.append(cmds)


def test_a_duplex_link_shapes_its_download_at_its_own_capacity():
    run = _Recorder()
    config = ls.ShapingConfig(20.0, medium='duplex', queue_mbit=20.0, queue_down_mbit=5.0)
    share = ls.LinkShare(config, 'p', 'ifb0', '10.0.255.254', DEVICES[:1], run=run)
    share.set_shares({'d1': {'up': 0.5, 'down': 0.5}})
    share.set_capacity(20.0, down_mbit=4.0)
    assert share.share_mbit('d1', 'up') == pytest.approx(10.0)
    assert share.share_mbit('d1', 'down') == pytest.approx(2.0)
    assert share.capacity_mbit == 20.0 and share.down_mbit == 4.0
    down = [c for c in run.batches[-1] if c[3] == 'ifb0']       # the download's tree
    root = next(c for c in down if c[:2] == ['class', 'change'] and c[7] == '1:1')
    assert root[root.index('rate') + 1] == tc_rate(4.0)
    # Its queues sized from the download's own reference, 5 of 4 Mbit/s now.
    data = next(c for c in down if 'bfifo' in c and
                c[c.index('parent') + 1] == '1:%x' % (ls.class_minor(1, 'down') + 2))
    # The upload's ACKs come down: their child is sized from the upload's 10 Mbit/s.
    assert share.trees[1]._rates('d1', 'down')[2] == pytest.approx(0.05 * 10.0)
    assert share.trees[0]._rates('d1', 'up')[2] == pytest.approx(0.05 * 2.0)
    assert int(data[data.index('limit') + 1]) == ls.leaf_queue_bytes(
        (2.0 - 0.05 * 10.0) * 5.0 / 4.0, config.queue_ms)
    share.set_capacity(15.0)                    # no download of its own: both at C
    assert share.share_mbit('d1', 'down') == pytest.approx(7.5) and share.down_mbit == 15.0
    assert share.trees[1]._rates('d1', 'down')[2] == pytest.approx(0.05 * 7.5)
    shared = ls.LinkShare(ls.ShapingConfig(20.0), 'p', 'ifb0', '10.0.255.254', DEVICES,
                          run=run)
    with pytest.raises(ConfigError, match='per direction'):
        shared.set_capacity(20.0, down_mbit=4.0)
    with pytest.raises(ConfigError):
        share.set_capacity(20.0, down_mbit=float('nan'))


def test_the_replayer_applies_a_download_trace_of_its_own():
    import time
    from edgecollab.scenarios import traces
    from edgecollab.scenarios.replay import Replayer
    applied = []
    replayer = Replayer(traces.constant(20.0), 0.1, 0.3,
                        lambda c, down_mbit=None: applied.append((c, down_mbit)),
                        time.monotonic(), down=traces.steps([8.0, 8.0, 2.0], 0.1))
    replayer.run()
    assert [x for pair in applied for x in pair] == pytest.approx([20.0, 8.0, 20.0, 2.0])
