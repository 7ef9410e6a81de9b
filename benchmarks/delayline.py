"""Benchmark: the user-space delay line (``topologies/delayline.py``) between a device and the
edge (``topologies/line.py``).  Measured: ping RTT against the configured one, idle and
while a UDP flow loads the line at each rate of ``--loads``; the goodput of one TCP flow
at that RTT for CUBIC and BBR, and of 10 and 100 at once (``--flows``); the relay's CPU
seconds per second and per 100 Mbit/s while it carries them.  No shaper: the line
alone.  Needs root.

    .venv/bin/python -m benchmarks.delayline [--delay-ms 20] [--loads 0,50,95]
"""

import argparse
import os
import statistics
import time

import numpy as np

from edgecollab.topologies.emulation import Emulation
from edgecollab.topologies.iperf import Flow, mean_between, ping_rtts
from edgecollab.topologies.line import EDGE_IP, DelayedPair
from benchmarks.report import emit

TICKS = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    """User + system CPU seconds process pid has used."""
    with open('/proc/%d/stat' % pid) as src:
        fields = src.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rtt_under_load(emu, load_mbit, configured_ms):
    """A row: RTT statistics while a UDP flow of load_mbit crosses the line up."""
    udp = None
    if load_mbit:
        emu.popen('edge', ['iperf3', '-s', '-1', '-p', '5300'], what='iperf3 udp server')
        time.sleep(0.3)
        udp = emu.popen('device', ['iperf3', '-c', EDGE_IP, '-p', '5300', '-u', '-b',
                                   '%gM' % load_mbit, '-t', '8', '-l', '1400'],
                        what='iperf3 udp load')
        time.sleep(1.0)
    rtts = ping_rtts(emu, 'device', EDGE_IP, 100, 0.02)
    if udp is not None:
        udp.wait(timeout=30)
    return {'load_mbit': load_mbit, 'configured_ms': configured_ms,
            'mean_ms': statistics.fmean(rtts), 'p99_ms': float(np.percentile(rtts, 99)),
            'min_ms': min(rtts), 'replies': len(rtts)}


def tcp_goodput(emu, line, congestion, port, flows=1):
    """A row: the goodput of flows TCP connections at once and the relay's CPU while
    they ran."""
    flow = Flow(emu, 'device', 'up', port, 8, window='16M' if flows == 1 else '4M',
                congestion=congestion, parallel=flows)
    flow.start_server()
    before, began = cpu_seconds(line.pid), time.monotonic()
    flow.start_client()
    series = flow.result()
    cpu = (cpu_seconds(line.pid) - before) / (time.monotonic() - began)
    goodput = mean_between(series, series[0][0] + 2.0, series[-1][1])
    return {'congestion': congestion, 'flows': flows, 'goodput_mbit': goodput, 'relay_cpu': cpu,
            'cpu_per_100mbit': cpu / goodput * 100 if goodput else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--delay-ms', type=float, default=20.0, help='one-way, each way')
    parser.add_argument('--loads', default='0,50,95', help='UDP loads in Mbit/s')
    parser.add_argument('--flows', default='1,10,100', help='TCP connections at once')
    parser.add_argument('--out', default='benchmarks/results')
    args = parser.parse_args(argv)
    path = {'delay_ms': args.delay_ms}
    with Emulation(DelayedPair(prefix='ecb', up=path, down=path)) as emu:
        line = emu.host('dl').relay
        time.sleep(0.5)
        rows = [rtt_under_load(emu, float(x), 2 * args.delay_ms)
                for x in args.loads.split(',') if x]
        emit(rows, [('load_mbit', 'load Mbit/s', '%g'), ('configured_ms', 'RTT set', '%.1f'),
                    ('mean_ms', 'mean ms', '%.2f'), ('p99_ms', 'p99 ms', '%.2f'),
                    ('min_ms', 'min ms', '%.2f'), ('replies', 'replies', '%d')],
             os.path.join(args.out, 'delayline-rtt.json'),
             'RTT through the delay line (%g ms each way)' % args.delay_ms)
        rows = [tcp_goodput(emu, line, cc, 5400 + k, int(n))
                for k, (n, cc) in enumerate((n, cc) for n in args.flows.split(',')
                                            for cc in ('cubic', 'bbr'))]
        emit(rows, [('congestion', 'congestion', '%s'), ('flows', 'flows', '%d'),
                    ('goodput_mbit', 'Mbit/s', '%.0f'),
                    ('relay_cpu', 'relay CPU', '%.2f'),
                    ('cpu_per_100mbit', 'CPU/100Mbit', '%.3f')],
             os.path.join(args.out, 'delayline-tcp.json'),
             'TCP through the delay line (RTT %g ms)' % (2 * args.delay_ms))


if __name__ == '__main__':
    main()
