"""Probe a scenario's network before an experiment: each device's round trip and what
one TCP flow carries through its share, configured against measured.

``edgecollab probe SCENARIO [--json]`` builds the scenario's network (its capacity at
the start, its paths and engine), splits the link equally (every device's up and down
classes alike) unless told, measures every device at once: a ping train to the edge,
then one iperf3 flow up and one down through its shares, and tears the network down.
``expected`` is what TCP can carry in the share (its rate x 1448/1514, headers being
airtime, as ``benchmarks/fidelity.py`` defines it).  With per-device channels (media
airtime and access) the equal split is of the airtime (of each device's own link), each
channel held at its rate at the scenario's start, and a device's expected goodput is
its share of its own channel (``channel_mbit``).
"""

import statistics
import threading

from edgecollab.kinds import Medium
from edgecollab.topologies import media
from edgecollab.topologies.emulation import Emulation
from edgecollab.topologies.iperf import Flow, mean_between, ping_rtts
from edgecollab.topologies import addressing
from edgecollab.wire import GOODPUT_PER_WIRE

FLOW_S = 6.0                 # each flow's length; its first 2 s (TCP's start) not counted
SKIP_S = 2.0
FIRST_PORT = 5600


def equal_fractions(devices, medium=Medium.SHARED):
    """Every device's up and down class alike: the link's shares (the airtime) split
    evenly; on access links each device's own link in halves."""
    share = 0.5 if media.get(medium).per_device else 1.0 / (2 * len(devices))
    return {name: {media.UP: share, media.DOWN: share} for name in devices}


def probe(topology, fractions=None, rates=None):
    """{'engine', 'devices': {name: {rtt_ms, configured_rtt_ms, channel_mbit, up_mbit,
    down_mbit, up_expected_mbit, down_expected_mbit}}} of topology (an EdgeStar); rates:
    with per-device channels, {device: its channel relative to the capacity}."""
    with Emulation(topology) as emu:
        devices = emu.devices
        if rates:
            emu.linkshare.set_capacity(emu.linkshare.capacity_mbit, rates)
        emu.linkshare.set_shares(fractions or equal_fractions(devices, emu.linkshare.config.medium))
        rtts = {}
        pingers = [threading.Thread(target=lambda d=d: rtts.__setitem__(
            d, ping_rtts(emu, d, addressing.EDGE_DATA_IP))) for d in devices]
        for thread in pingers:
            thread.start()
        for thread in pingers:
            thread.join()
        flows = [Flow(emu, d, direction, FIRST_PORT + 2 * i + k, FLOW_S, window='16M')
                 for i, d in enumerate(devices) for k, direction in enumerate(('up', 'down'))]
        for flow in flows:
            flow.start_server()
        for flow in flows:
            flow.start_client()
        goodput = {}
        for flow in flows:
            series = flow.result()
            goodput[(flow.device, flow.direction)] = mean_between(
                series, flow.started_s + SKIP_S, series[-1][1])
        result = {}
        for d in devices:
            path = topology.paths[d]
            row = {'rtt_ms': statistics.median(rtts[d]) if rtts[d] else None,
                   'configured_rtt_ms': path.rtt_ms,
                   'channel_mbit': emu.linkshare.channel_mbit(d)}
            for direction in ('up', 'down'):
                row['%s_mbit' % direction] = goodput[(d, direction)]
                row['%s_expected_mbit' % direction] = emu.linkshare.share_mbit(
                    d, direction) * GOODPUT_PER_WIRE
            result[d] = row
        return {'engine': topology.engine or 'none', 'devices': result}


def table(report):
    """The probe's report as text lines: configured against measured."""
    lines = ['paths: %s engine' % report['engine'],
             '%-6s %12s %12s %10s %10s %12s %10s %12s' % (
                 'device', 'RTT set ms', 'RTT ms', 'channel', 'up Mbit/s', 'up expected',
                 'down', 'down expected')]
    for name, row in report['devices'].items():
        lines.append('%-6s %12.1f %12s %10.2f %10.2f %12.2f %10.2f %12.2f' % (
            name, row['configured_rtt_ms'],
            '-' if row['rtt_ms'] is None else '%.1f' % row['rtt_ms'], row['channel_mbit'],
            row['up_mbit'], row['up_expected_mbit'], row['down_mbit'],
            row['down_expected_mbit']))
    return lines
