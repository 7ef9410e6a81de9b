"""Measure between emulated hosts: receiver-side goodput with iperf3, round trips with
ping.

Used by the emulation tests, the benchmarks and ``edgecollab probe``: a real TCP client
in each direction, the receiver's per-interval byte counts, and their times on this
process's monotonic clock; a ping train's round-trip times.
"""

import json
import re
import subprocess
import time

from edgecollab.errors import CommandError, EdgecollabError
from edgecollab.kinds import Direction
from edgecollab.ready import wait_for_port
from edgecollab.shell import runner


def ping_rtts(emu, host, address, count=20, interval_s=0.05):
    """Round-trip times (ms) of the replies to a ping train from host to address (a lost
    ping has none; ping exiting 1 then is not an error here)."""
    out = runner.run(['ping', '-n', '-c', str(count), '-i', str(interval_s), '-W', '2',
                      address], 'ping %s from %s' % (address, host),
                     node=emu.host(host),
                     timeout=count * interval_s + 30, check=False)
    return rtts_of(out)


def rtts_of(ping_output):
    """The round-trip times (ms) in ping's output."""
    return [float(t) for t in re.findall(r'time=([\d.]+) ms', ping_output)]


class Flow:
    """One iperf3 test from a device to the edge (up) or from the edge to a device (down).

    window: socket buffer size for iperf3 -w (e.g. '1M'), None for the system default.
    congestion: TCP congestion control of the sender (iperf3 -C), None for the system's.
    parallel: TCP connections of the test (iperf3 -P); the goodput is their sum.
    """

    def __init__(self, emu, device, direction, port, duration_s, interval_s=0.5,
                 window=None, congestion=None, parallel=1):
        self.emu, self.device, self.direction = emu, device, direction
        self.window, self.congestion, self.parallel = window, congestion, parallel
        self.port, self.duration_s, self.interval_s = port, duration_s, interval_s
        self.client = None
        self.started_s = None
        self.report = None       # iperf3's JSON report, once result() has read it

    def start_server(self):
        """Start the iperf3 server on the edge and wait until it listens."""
        self.emu.popen('edge', ['iperf3', '-s', '-1', '-J', '-i', self.interval_s, '-p', self.port],
                       what='iperf3 server :%d' % self.port)
        wait_for_port(self.emu, 'edge', self.port, timeout_s=5)

    def start_client(self):
        """Start the client on the device (reverse mode for a download)."""
        argv = ['iperf3', '-c', self.emu.ip('edge'), '-p', self.port, '-t', self.duration_s,
                '-i', self.interval_s, '-J', '--get-server-output']
        if self.direction == Direction.DOWN:
            argv.append('-R')
        if self.window:
            argv += ['-w', self.window]
        if self.congestion:
            argv += ['-C', self.congestion]
        if self.parallel > 1:
            argv += ['-P', self.parallel]
        self.started_s = time.monotonic()
        self.client = self.emu.popen(self.device, argv, stdout=subprocess.PIPE,
                                     what='iperf3 client %s %s' % (self.device, self.direction))

    def result(self, timeout_s=None):
        """[(start_s, end_s, goodput_mbit)] of receiver-side intervals, monotonic times."""
        timeout_s = timeout_s or self.duration_s + 15
        try:
            out, _ = self.client.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise EdgecollabError('iperf3 %s %s gave no result in %s s'
                                  % (self.device, self.direction, timeout_s)) from None
        try:
            report = json.loads(out)
        except ValueError:
            raise CommandError('measure %s %s' % (self.device, self.direction), ['iperf3'],
                               self.client.returncode, out[-300:]) from None
        self.report = report
        if 'error' in report:
            raise CommandError('measure %s %s' % (self.device, self.direction), ['iperf3'],
                               self.client.returncode, report['error'])
        # Receiver side: the client for a download (-R), the server for an upload.
        source = report if self.direction == Direction.DOWN else report['server_output_json']
        series = []
        for interval in source['intervals']:
            summary = interval['sum']
            series.append((self.started_s + summary['start'], self.started_s + summary['end'],
                           summary['bits_per_second'] / 1e6))
        return series


def retransmits_between(flow, start_s, end_s):
    """TCP retransmissions the sender of flow counted in intervals inside [start_s, end_s]
    (after result())."""
    sender = flow.report['server_output_json'] if flow.direction == Direction.DOWN \
        else flow.report
    return sum(i['sum'].get('retransmits', 0) for i in sender['intervals']
               if flow.started_s + i['sum']['start'] >= start_s - 1e-6 and
               flow.started_s + i['sum']['end'] <= end_s + 1e-6)


def mean_between(series, start_s, end_s):
    """Time-weighted mean goodput (Mbit/s) of intervals lying inside [start_s, end_s]."""
    chosen = [(b - a, rate) for a, b, rate in series if a >= start_s - 1e-6 and b <= end_s + 1e-6]
    total = sum(width for width, _ in chosen)
    if total <= 0:
        raise EdgecollabError('no measurement interval inside [%.2f, %.2f]' % (start_s, end_s))
    return sum(width * rate for width, rate in chosen) / total
