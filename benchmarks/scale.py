"""Benchmark: scale.  Stars of N devices on 2 Mbit/s a device (1 Mbit/s a class, shared
medium, equal shares), every device uploading and downloading at once (iperf3): start-up
time, stop time, mean shaping fidelity (the data a class carried / its share, both less
the reverse flow's ACKs, from the shaper's counters: robust to the minutes it takes to
start a thousand iperf3 clients) and the machine's memory in use at the peak.
Baseline in the same run: start-up and stop time of the same number of hosts on
Mininet's TCLinks (no shared budget).  Needs root.

``--delays 5,10,20,40`` gives the devices one-way delays in turn (d1 5 ms, d2 10 ms, ...,
through the delay line where the kernel has no netem): the relay's CPU is reported while
the TCP flows run, then the round trip of up to ``--pinged`` devices spread over the
fleet is measured by ping against its configured value, idle and while every device
loads its classes at 50% and 95% of their shares (a ping train of full frames each way:
below the share, so the shaper holds no queue and what remains is the delay line's
error).  Under saturating TCP a ping would measure the shaper's queue, not the line.

    .venv/bin/python -m benchmarks.scale [--sizes 10,50,100,200] [--delays 5,10,20,40] \\
        [--servers localhost,10.251.0.2]

``--servers`` places the devices round robin on several servers (docs/cluster.md); the
bottleneck and the delay line stay on this machine.
"""

import argparse
import math
import statistics
import subprocess
import time

import numpy as np

from edgecollab.topologies.cluster import Servers, require
from edgecollab.topologies.emulation import Emulation
from edgecollab.topologies.iperf import Flow, rtts_of
from edgecollab.topologies.star import EdgeStar
from edgecollab.topologies.paths import Path
from benchmarks.baseline import TCLinkStar
from benchmarks.delayline import cpu_seconds
from benchmarks.report import emit
from edgecollab.ready import sleep_until

PER_CLASS_MBIT = 1.0
MEASURED_S, SKIP_S = 8, 6


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


def start_pings(emu, devices, count, interval_s):
    """{device: ping process} sending count pings to the edge, interval_s apart."""
    return {d: emu.popen(d, ['ping', '-n', '-c', count, '-i', interval_s, '-W', '2',
                             emu.ip('edge')], stdout=subprocess.PIPE,
                         what='ping from %s' % d) for d in devices}


def rtt_errors(pings, configured):
    """(|mean - configured| ms of each pinged device, every |rtt - configured|, replies,
    devices within bounds: mean within 1 ms + 2% of configured, p99 within 5 ms) of the
    ping processes."""
    mean_errors, errors, replies, within = [], [], 0, 0
    for device, proc in pings.items():
        out, _ = proc.communicate(timeout=60)
        out = out.decode() if isinstance(out, bytes) else out
        rtts = rtts_of(out)
        replies += len(rtts)
        if rtts:
            mine = [abs(r - configured[device]) for r in rtts]
            mean_errors.append(abs(statistics.fmean(rtts) - configured[device]))
            errors += mine
            within += (mean_errors[-1] <= 1 + 0.02 * configured[device]
                       and np.percentile(mine, 99) <= 5)
    return mean_errors, errors, replies, within


LOAD_FRAME_BYTES = 1442 + 14    # a ping of 1400 bytes: IP packet + Ethernet header
PROBES, PROBE_INTERVAL_S = 25, 0.1
LOADS = (0.0, 0.5, 0.95)           # of each class's share
DRAIN_S = 3.0     # after the TCP flows: the leaf queues they filled (0.2 s at 1 Mbit/s)


def rtt_accuracy(emu, pinged, configured, load):
    """RTT errors of the pinged devices while every device loads its classes at load x
    its share (a ping train of full frames to the edge: echo requests up, replies down)."""
    loads = []
    if load > 0:
        for device in emu.devices:
            share = min(emu.linkshare.share_mbit(device, d) for d in ('up', 'down'))
            interval = LOAD_FRAME_BYTES * 8 / (load * share * 1e6)
            loads.append(emu.popen(device, ['ping', '-n', '-q', '-s', 1400, '-i',
                                            '%.4f' % interval, emu.ip('edge')],
                                   what='load from %s' % device))
        time.sleep(2.0)
    relays = [h.relay.pid for h in emu.delay_lines]
    cpu_before, began = sum(cpu_seconds(pid) for pid in relays), time.monotonic()
    mean_errors, errors, replies, within = rtt_errors(
        start_pings(emu, pinged, PROBES, PROBE_INTERVAL_S), configured)
    cpu = (sum(cpu_seconds(pid) for pid in relays) - cpu_before) / (time.monotonic() - began)
    for proc in loads:
        proc.terminate()
    for proc in loads:
        proc.wait(timeout=10)
    key = 'rtt%d' % round(load * 100)
    return {key + '_mean_error_ms': max(mean_errors) if mean_errors else None,
            key + '_p99_error_ms': float(np.percentile(errors, 99)) if errors else None,
            key + '_replies': replies / (len(pinged) * PROBES),
            key + '_within': within / len(pinged),
            key + '_relay_cpu': cpu if relays else None}


def fidelity(emu):
    """Mean and minimum over every class of the data it carried / its share (both less
    the reverse flow's ACKs, from the class counters), the peak memory, and the relays'
    CPU (cores) while every flow ran."""
    flows = []
    for i, device in enumerate(emu.devices):
        for j, direction in enumerate(('up', 'down')):
            flows.append(Flow(emu, device, direction, 5301 + 2 * i + j, None,
                              interval_s=1.0))
    began = time.monotonic()
    for flow in flows:
        flow.start_server()
    servers_s = time.monotonic() - began
    # Clients start one after another (one process in a namespace each), slower as the
    # flows already running load the machine: every test is long enough to run through
    # the measured window whenever the last client starts, and is stopped after it
    # (the shaper's counters measure, not iperf3's reports).
    for flow in flows:
        flow.duration_s = math.ceil(5 * servers_s + SKIP_S + MEASURED_S + 60)
        flow.start_client()
    start = max(f.started_s for f in flows) + SKIP_S
    end = start + MEASURED_S
    sleep_until(start)
    before = emu.linkshare.counters()
    relays = [h.relay.pid for h in emu.delay_lines]
    cpu_before = sum(cpu_seconds(pid) for pid in relays)
    peak = mem_used_mb()
    sleep_until(end)
    after = emu.linkshare.counters()
    cpu = (sum(cpu_seconds(pid) for pid in relays) - cpu_before) / MEASURED_S
    for flow in flows:
        flow.client.terminate()
    ratios = []
    for flow in flows:
        key = (flow.device, flow.direction)
        ack = (after[key].ack_bytes - before[key].ack_bytes) * 8 / 1e6 / (end - start)
        carried = (after[key].bytes - before[key].bytes) * 8 / 1e6 / (end - start)
        share = emu.linkshare.share_mbit(*key)
        ratios.append((carried - ack) / (share - ack))
    return {'fidelity': statistics.fmean(ratios), 'worst_class': min(ratios),
            'peak_mb': peak, 'relay_cpu_tcp': cpu if relays else None,
            'client_start_s': max(f.started_s for f in flows) -
            min(f.started_s for f in flows)}


def star(n, delays, servers=None):
    """EdgeStar of n devices at 1 Mbit/s a class, device i with delays[i % len] one way,
    placed round robin on servers (a cluster.Servers; None: this machine)."""
    kwargs = {'servers': servers}
    if delays:
        kwargs['paths'] = {'d%d' % i: Path(delay_ms=delays[(i - 1) % len(delays)])
                           for i in range(1, n + 1)}
    return EdgeStar(n=n, capacity='%gmbit' % (2 * n * PER_CLASS_MBIT), prefix='ecb', **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='10,50,100,200')
    parser.add_argument('--delays', default='',
                        help='one-way delays in ms given to the devices in turn')
    parser.add_argument('--pinged', type=int, default=20,
                        help='devices whose round trip is measured (with --delays)')
    parser.add_argument('--no-baseline', action='store_true',
                        help='leave out the TCLink start/stop baseline')
    parser.add_argument('--servers', metavar='A,B,...',
                        help='place the devices round robin on these servers (Mininet '
                             'Cluster Edition; implies --no-baseline)')
    parser.add_argument('--out', default='benchmarks/results/scale.json')
    args = parser.parse_args()
    servers = Servers.parse(args.servers) if args.servers else None
    if servers:
        require(servers)
        args.no_baseline = True
    delays = [float(v) for v in args.delays.split(',') if v]
    rows = []
    for n in [int(v) for v in args.sizes.split(',')]:
        idle = mem_used_mb()
        start_s, stop_s = timed_start_stop(star(n, delays, servers))
        row = {'devices': n, 'start_s': start_s, 'stop_s': stop_s}
        if not args.no_baseline:
            base_start, base_stop = timed_start_stop(TCLinkStar(
                n=n, up_mbit=PER_CLASS_MBIT, down_mbit=PER_CLASS_MBIT))
            row.update({'tclink_start_s': base_start, 'tclink_stop_s': base_stop,
                        'start_ratio': start_s / base_start})
        with Emulation(star(n, delays, servers)) as emu:
            names = emu.devices
            step = max(1, len(names) // args.pinged) if delays else 0
            pinged = names[::step][:args.pinged] if delays else []
            configured = {d: 2 * emu.topo.paths[d].delay_ms for d in pinged}
            row.update(fidelity(emu))
            time.sleep(DRAIN_S)
            for load in LOADS if delays else ():
                row.update(rtt_accuracy(emu, pinged, configured, load))
        row['memory_mb'] = row.pop('peak_mb') - idle
        rows.append(row)
        print(rows[-1], flush=True)
    columns = [('devices', 'devices', '%d'), ('start_s', 'start s', '%.1f'),
               ('stop_s', 'stop s', '%.1f'), ('tclink_start_s', 'TCLink start s', '%.1f'),
               ('tclink_stop_s', 'TCLink stop s', '%.1f'),
               ('fidelity', 'mean fidelity', '%.3f'), ('worst_class', 'worst class', '%.3f'),
               ('client_start_s', 'clients start s', '%.0f'),
               ('memory_mb', 'memory MB', '%.0f')]
    if delays:
        columns.append(('relay_cpu_tcp', 'relay CPU TCP', '%.2f'))
        for load in LOADS:
            key = 'rtt%d' % round(load * 100)
            columns += [(key + '_mean_error_ms', 'RTT err %d%%' % (load * 100), '%.2f'),
                        (key + '_p99_error_ms', 'p99 err %d%%' % (load * 100), '%.2f'),
                        (key + '_replies', 'replies %d%%' % (load * 100), '%.3f'),
                        (key + '_within', 'in bounds %d%%' % (load * 100), '%.2f'),
                        (key + '_relay_cpu', 'relay CPU %d%%' % (load * 100), '%.2f')]
    emit(rows, columns, args.out, 'Scale: every device up and down at once, 1 Mbit/s a '
         'class' + (', one-way delays %s ms in turn' % args.delays if delays else '') +
         (', %s' % servers.describe() if servers else ''))


if __name__ == '__main__':
    main()
