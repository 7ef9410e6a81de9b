"""Benchmark: scale.  Stars of N devices on 2 Mbit/s a device (1 Mbit/s a class, shared
medium, equal shares), every device uploading and downloading at once (iperf3): start-up
time, stop time, mean shaping fidelity (goodput / what TCP can carry in the share: share
less the reverse flow's ACKs, x 1448/1514) and the machine's memory in use at the peak.
Baseline in the same run: start-up and stop time of the same number of hosts on
Mininet's TCLinks (no shared budget).  Needs root.

    .venv/bin/python -m benchmarks.scale [--sizes 10,50,100,200]
"""

import argparse
import statistics
import time

from edgecollab.wire import GOODPUT_PER_WIRE
from edgecollab.emulation import Emulation
from edgecollab.iperf import Flow, mean_between
from edgecollab.topologies.star import EdgeStar
from benchmarks.baseline import TCLinkStar
from benchmarks.report import emit
from edgecollab.ready import sleep_until

PER_CLASS_MBIT = 1.0
DURATION_S, SKIP_S = 12, 4


def mem_used_mb():
    """MemTotal - MemAvailable (MB)."""
    info = {}
    with open('/proc/meminfo') as src:
        for line in src:
            key, value = line.split(':')
            info[key] = int(value.split()[0])
    return (info['MemTotal'] - info['MemAvailable']) / 1024


def timed_start_stop(topo):
    emu = Emulation(topo)
    began = time.monotonic()
    emu.start()
    started = time.monotonic() - began
    began = time.monotonic()
    emu.stop()
    return started, time.monotonic() - began


def fidelity(emu):
    """Mean and minimum of goodput / TCP-carriable share over every class."""
    flows = []
    # Starting hundreds of clients takes a while: long enough tests to overlap.
    duration = DURATION_S + len(emu.devices) // 10
    for i, device in enumerate(emu.devices):
        for j, direction in enumerate(('up', 'down')):
            flows.append(Flow(emu, device, direction, 5301 + 2 * i + j, duration,
                              interval_s=1.0))
    for flow in flows:
        flow.start_server()
    for flow in flows:
        flow.start_client()
    start = max(f.started_s for f in flows) + SKIP_S
    end = min(f.started_s for f in flows) + duration - 1
    sleep_until(start)
    before = emu.linkshare.counters()
    peak = mem_used_mb()
    sleep_until(end)
    after = emu.linkshare.counters()
    ratios = []
    for flow in flows:
        key = (flow.device, flow.direction)
        ack = (after[key].ack_bytes - before[key].ack_bytes) * 8 / 1e6 / (end - start)
        share = emu.linkshare.share_mbit(*key)
        ratios.append(mean_between(flow.result(), start, end) /
                      ((share - ack) * GOODPUT_PER_WIRE))
    return statistics.fmean(ratios), min(ratios), peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='10,50,100,200')
    parser.add_argument('--out', default='benchmarks/results/scale.json')
    args = parser.parse_args()
    rows = []
    for n in [int(v) for v in args.sizes.split(',')]:
        capacity = 2 * n * PER_CLASS_MBIT
        idle = mem_used_mb()
        topo = EdgeStar(n=n, capacity='%gmbit' % capacity, prefix='ecb')
        start_s, stop_s = timed_start_stop(topo)
        base_start, base_stop = timed_start_stop(TCLinkStar(n=n, up_mbit=PER_CLASS_MBIT,
                                                            down_mbit=PER_CLASS_MBIT))
        with Emulation(EdgeStar(n=n, capacity='%gmbit' % capacity, prefix='ecb')) as emu:
            mean, worst, peak = fidelity(emu)
        rows.append({'devices': n, 'start_s': start_s, 'stop_s': stop_s,
                     'tclink_start_s': base_start, 'tclink_stop_s': base_stop,
                     'start_ratio': start_s / base_start, 'fidelity': mean,
                     'worst_class': worst, 'memory_mb': peak - idle})
        print(rows[-1], flush=True)
    emit(rows, [('devices', 'devices', '%d'), ('start_s', 'start s', '%.1f'),
                ('stop_s', 'stop s', '%.1f'), ('tclink_start_s', 'TCLink start s', '%.1f'),
                ('tclink_stop_s', 'TCLink stop s', '%.1f'), ('start_ratio', 'start ratio',
                                                             '%.2f'),
                ('fidelity', 'mean fidelity', '%.3f'), ('worst_class', 'worst class', '%.3f'),
                ('memory_mb', 'memory MB', '%.0f')], args.out,
         'Scale: every device up and down at once, 1 Mbit/s a class')


if __name__ == '__main__':
    main()
