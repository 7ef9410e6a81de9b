"""The dashboard: a results folder as one web page, live while a run writes it.

``edgecollab run SCENARIO --dashboard [PORT]`` serves it on 127.0.0.1 (the root
namespace) while the run goes on; ``edgecollab dashboard DIR`` serves a folder, finished
or still being written by another run.  The page (``dashboard.html``: its own SVG
drawing, no CDN, works offline) asks for ``/data`` once a second.  What it shows comes
from the folder's files, read as they grow (``CsvTail``) and folded into one ``RunView``
per run of a policy, so memory stays bounded by the run's length, not its rows; the live
run (``Live``) adds its policy, events and the control to switch it.

    GET /            the page
    GET /data?run=K  run K's snapshot (K: "policy" or "policy #r"; the latest without)
    PUT /policy      {"policy": name}, Authorization: Bearer <the run's token>: the live
                     run plans with it from the next period on (409: no run is live)
"""

import csv
import logging
import math
import os
import re
import socket
import threading
import time

from flask import Flask, abort, jsonify, request

from edgecollab import files
from edgecollab.controller import policies
from edgecollab.errors import ConfigError
from edgecollab.controller.loop import WENT_WRONG
from edgecollab.controller.service import policy_switch
from edgecollab.http import bad_request, json_errors
from edgecollab.kinds import Direction
from edgecollab.scenarios import results

log = logging.getLogger(__name__)
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'dashboard.html')
DEFAULT_PORT = 8050
LINK_POINTS = 300      # the link chart's points (a longer run is averaged into as many)
HEAT_BINS = 60         # the goodput heatmap's time bins over the run
MAX_HEAT_BINS = 10 * HEAT_BINS   # the bins a heatmap shows, whatever the times say
FEW_DEVICES = 12       # up to this many devices get a bar each; more: the extremes
EXTREMES = 5           # lowest and highest devices listed when there are many
EVENT_GROUP = 3        # more devices than this with one outcome in a period: one event
READ_CHUNK = 4 << 20   # bytes of a growing CSV read at a time (bounded memory)
CHUNKS_PER_READ = 4      # chunks of a file one request reads at most
MAX_EVENTS = 200


def device_order(name):
    """Sort key of a device name: d2 before d10."""
    match = re.match(r'(.*?)(\d+)$', name)
    return (match.group(1), int(match.group(2))) if match else (name, 0)


def run_key(policy, repeat):
    """The page's name of one run of a policy."""
    return policy if repeat in (1, None) else '%s #%d' % (policy, repeat)


class CsvTail:
    """The rows appended to a CSV file since the last read (a file a run is writing):
    whole lines only, cells that are numbers as floats; rows whose cells do not match
    the header are skipped."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.header = None
        self.skipped = 0

    def rows(self):
        """Yield the rows appended since the last call, at most CHUNKS_PER_READ chunks
        of them (a request is answered in bounded time; a huge file is read over
        several)."""
        for _ in range(CHUNKS_PER_READ):
            try:
                with files.open_regular(self.path) as src:
                    src.seek(self.offset)
                    data = src.read(READ_CHUNK)
            except (OSError, ConfigError):
                return
            end = data.rfind(b'\n')
            if end < 0:
                return
            self.offset += end + 1
            lines = data[:end + 1].decode('utf-8', 'replace').splitlines()
            if self.header is None and lines:
                self.header = next(csv.reader([lines.pop(0)]))
            for cells in csv.reader(lines):
                if len(cells) != len(self.header):
                    self.skipped += 1
                    continue
                yield {k: _value(v) for k, v in zip(self.header, cells)}
            if len(data) < READ_CHUNK:
                return


def _value(cell):
    if cell in ('True', 'False'):
        return cell == 'True'
    try:
        value = float(cell)
    except ValueError:
        return cell
    return value if math.isfinite(value) else None


class RunView:
    """What the page shows of one run of a policy, folded in row by row."""

    def __init__(self, key, span_s):
        self.key = key
        # At least a second: the run samples every control step (0.5 s by default).
        self.bin_s = max(span_s / HEAT_BINS, 1.0) if span_s else 1.0
        self.steps = {}       # time_s -> [capacity, up, down, up share, down share]
        self.latest = {}      # device -> {'up': (share, goodput), 'down': ...}
        self.channel = {}     # device -> its channel's latest rate (files that have it)
        self.use = {}         # device -> {bin: [goodput, share]}
        self.rows = []        # its periods.csv rows

    def add_sample(self, row):
        """Fold in one timeseries.csv row."""
        t = row.get('time_s')
        if not isinstance(t, float) or t < 0:      # before the first period
            return
        share, goodput = row.get('share_mbit') or 0.0, row.get('goodput_mbit') or 0.0
        up = row.get('direction') == Direction.UP
        step = self.steps.setdefault(t, [row.get('capacity_mbit') or 0.0, 0.0, 0.0,
                                         0.0, 0.0])
        step[1 if up else 2] += goodput
        step[3 if up else 4] += share
        device = str(row.get('device'))
        self.latest.setdefault(device, {})['up' if up else 'down'] = (share, goodput)
        if isinstance(row.get('channel_mbit'), float):
            self.channel[device] = row['channel_mbit']
        cell = self.use.setdefault(device, {}).setdefault(int(t // self.bin_s), [0.0, 0.0])
        cell[0] += goodput
        cell[1] += share

    def link(self):
        """The link chart's series, averaged into at most LINK_POINTS points."""
        times = sorted(self.steps)
        group = max(1, math.ceil(len(times) / LINK_POINTS))
        out = {'t': [], 'capacity': [], 'up': [], 'down': [], 'share_up': [],
               'share_down': []}
        for i in range(0, len(times), group):
            chunk = times[i:i + group]
            out['t'].append(round(sum(chunk) / len(chunk), 3))
            for j, name in enumerate(('capacity', 'up', 'down', 'share_up', 'share_down')):
                out[name].append(round(sum(self.steps[t][j] for t in chunk) / len(chunk), 3))
        return out

    def devices(self):
        """Its devices in order (d1, d2, ..., d10)."""
        names = set(self.latest) | {str(r.get('device')) for r in self.rows}
        return sorted(names, key=device_order)

    def now(self, devices):
        """Each device's latest shares and goodput (the extremes by goodput / share when
        there are many devices)."""
        def entry(d):
            got = self.latest.get(d, {})
            up, down = got.get('up', (0.0, 0.0)), got.get('down', (0.0, 0.0))
            share = up[0] + down[0]
            return {'device': d, 'share_up': up[0], 'goodput_up': up[1],
                    'share_down': down[0], 'goodput_down': down[1],
                    'channel': self.channel.get(d),
                    'use': (up[1] + down[1]) / share if share > 0 else None}
        entries = [entry(d) for d in devices]
        if len(entries) <= FEW_DEVICES:
            return {'devices': entries, 'extremes': False}
        ranked = sorted(entries, key=lambda e: -1 if e['use'] is None else e['use'])
        return {'devices': ranked[:EXTREMES] + ranked[-EXTREMES:], 'extremes': True}

    def use_heat(self, devices):
        """Goodput / share per device and time bin (None where it had no share)."""
        bins = sorted({b for cells in self.use.values() for b in cells})
        if not bins:
            return {'bins': [], 'devices': devices, 'values': []}
        span = range(bins[0], bins[-1] + 1)
        if len(span) > MAX_HEAT_BINS:
            # Times far beyond the run's span (a damaged or foreign folder): the bins
            # that hold samples, the latest ones, so a request never walks the gap.
            span = bins[-MAX_HEAT_BINS:]
        values = []
        for d in devices:
            cells = self.use.get(d, {})
            values.append([round(cells[b][0] / cells[b][1], 3)
                           if b in cells and cells[b][1] > 0 else None for b in span])
        return {'bins': [round(b * self.bin_s, 2) for b in span], 'bin_s': self.bin_s,
                'devices': devices, 'values': values}

    def accuracy(self, devices, fluid_rows):
        """Per period: mean predicted and achieved accuracy, the devices' lowest and
        highest, the fluid backend's mean, the devices' measured top-1 (a workload that
        learns); a device x period grid of achieved accuracy and outcomes."""
        periods = sorted({int(r['period']) for r in self.rows
                          if isinstance(r.get('period'), float)})
        by = {(int(r['period']), str(r['device'])): r for r in self.rows
              if isinstance(r.get('period'), float)}
        out = {'periods': periods, 'predicted': [], 'achieved': [], 'low': [], 'high': [],
               'fluid': [], 'measured': []}
        for k in periods:
            mine = [by[(k, d)] for d in devices if (k, d) in by]
            achieved = [r['accuracy'] for r in mine if isinstance(r.get('accuracy'), float)]
            predicted = [r['predicted_accuracy'] for r in mine
                         if isinstance(r.get('predicted_accuracy'), float)]
            ideal = [r['accuracy'] for r in fluid_rows if r.get('period') == k]
            out['predicted'].append(_mean(predicted))
            out['achieved'].append(_mean(achieved))
            out['low'].append(min(achieved) if achieved else None)
            out['high'].append(max(achieved) if achieved else None)
            out['fluid'].append(_mean(ideal))
            out['measured'].append(_mean([r['measured_accuracy'] for r in mine if isinstance(
                r.get('measured_accuracy'), float)]))
        out['grid'] = {'devices': devices, 'values': [
            [by[(k, d)].get('accuracy') if (k, d) in by else None for k in periods]
            for d in devices], 'outcomes': [
            [by[(k, d)].get('outcome') if (k, d) in by else None for k in periods]
            for d in devices]}
        return out

    def forecast(self, period_s):
        """[(period, start_s, end_s, forecast, planned with, mean capacity)] of its
        periods, Mbit/s."""
        seen = {}
        for r in self.rows:
            if isinstance(r.get('period'), float):
                seen.setdefault(int(r['period']), r)
        return [[k, (k - 1) * period_s, k * period_s, r.get('forecast_mbit'),
                 r.get('planned_mbit'), r.get('capacity_mbit')]
                for k, r in sorted(seen.items())] if period_s else []

    def events(self):
        """What happened, period by period: switches, re-splits, misses, infeasible
        periods, starved devices."""
        out = []
        periods = {}
        for r in self.rows:
            if isinstance(r.get('period'), float):
                periods.setdefault(int(r['period']), []).append(r)
        for k, rows in sorted(periods.items()):
            first = rows[0]
            if first.get('planned_by') and first.get('planned_by') != first.get('policy'):
                out.append('period %d: planned by %s (switched)' % (k, first['planned_by']))
            if isinstance(first.get('resplits'), float) and first['resplits'] > 0:
                out.append('period %d: re-split %d times' % (k, first['resplits']))
            for what in WENT_WRONG:
                names = sorted((str(r['device']) for r in rows if r.get('outcome') == what),
                               key=device_order)
                if len(names) > EVENT_GROUP:
                    out.append('period %d: %d devices %s (%s, ...)'
                               % (k, len(names), what, ', '.join(names[:EVENT_GROUP])))
                elif names:
                    out.extend('period %d: %s %s' % (k, d, what) for d in names)
        return out


def _mean(values):
    return sum(values) / len(values) if values else None


class Live:
    """The run under way, as the dashboard sees it: attached when a policy's emulation
    is ready, detached when it ends (the fluid backend has none)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.run = None

    def attach(self, run):
        with self.lock:
            self.run = run

    def detach(self, run):
        with self.lock:
            if self.run is run:
                self.run = None

    def status(self):
        """(run key, the controller's /v1/status with the next policy) or (None, None)."""
        with self.lock:
            run = self.run
        if run is None or run.state is None:
            return None, None
        status = run.state.status()
        status['next_policy'] = run.state.policies()[1]
        return run_key(run.policy, run.repeat), status

    def switch(self, name):
        """Plan the live run's next periods with policy name (ConfigError: none live)."""
        with self.lock:
            run = self.run
        if run is None or run.state is None:
            raise ConfigError('no run is live: a policy switch needs a run under way')
        run.state.set_next_policy(name)
        return run.state.policies()


class Dashboard:
    """A results folder as the page's data; live: the Live of the run writing it."""

    def __init__(self, folder, live=None):
        self.folder = folder
        self.live = live
        self.lock = threading.Lock()
        self.meta = {}
        self.period_s = self.window_s = None
        self.periods_tail = CsvTail(os.path.join(folder, 'periods.csv'))
        self.series_tail = CsvTail(os.path.join(folder, 'timeseries.csv'))
        self.fluid_tail = CsvTail(os.path.join(folder, results.FLUID_REFERENCE))
        self.fluid = {}       # policy -> its fluid-reference rows
        self.runs = {}        # key -> RunView, in the order they began
        self.notes = {}       # key -> the controller's notes while that run was live

    def _read_meta(self):
        if self.meta:
            return
        self.meta = results.read_meta(self.folder)
        if not self.meta:
            return
        self.period_s, self.window_s = results.period_timing(self.folder)

    def _view(self, key):
        """The RunView of run key (made when first seen)."""
        if key not in self.runs:
            periods = results.expected_periods(self.folder) or 0
            self.runs[key] = RunView(key, periods * (self.period_s or 0))
        return self.runs[key]

    def _view_of(self, row):
        repeat = row.get('repeat')
        return self._view(run_key(str(row.get('policy')),
                                  int(repeat) if isinstance(repeat, float) else 1))

    def refresh(self):
        """Read what the run appended to the folder since the last call."""
        self._read_meta()
        for row in self.series_tail.rows():
            self._view_of(row).add_sample(row)
        for row in self.periods_tail.rows():
            self._view_of(row).rows.append(row)
        for row in self.fluid_tail.rows():
            self.fluid.setdefault(str(row.get('policy')), []).append(row)

    def snapshot(self, key=None):
        """The page's data for run key (the live run's, else the latest, when None)."""
        with self.lock:
            self.refresh()
            live_key, status = self.live.status() if self.live else (None, None)
            if live_key:
                self._view(live_key)
            if status:
                notes = self.notes.setdefault(live_key, [])
                notes.extend(e for e in status.get('events', []) if e not in notes)
                del notes[:-MAX_EVENTS]
            if key not in self.runs:
                key = live_key or (list(self.runs)[-1] if self.runs else None)
            view = self.runs.get(key)
            scenario = self.meta.get('scenario')
            name = scenario.get('name') if isinstance(scenario, dict) else None
            data = {
                'title': str(name) if name else os.path.basename(
                    os.path.abspath(self.folder)),
                'folder': os.path.abspath(self.folder), 'runs': list(self.runs),
                'run': key, 'live': key is not None and key == live_key,
                'periods': results.expected_periods(self.folder),
                'period_s': self.period_s, 'window_s': self.window_s,
                'known_policies': sorted(policies.POLICIES), 'updated': time.time(),
                'has_series': os.path.exists(self.series_tail.path)}
            if view is None:
                return data
            devices = view.devices()
            policy = key.split(' #')[0]
            data.update({
                'devices': devices, 'link': view.link(),
                'forecast': view.forecast(self.period_s),
                'now': view.now(devices), 'use_heat': view.use_heat(devices),
                'accuracy': view.accuracy(devices, self.fluid.get(policy, [])),
                'events': view.events()})
            if data['live']:
                data['status'] = {k: status.get(k) for k in (
                    'state', 'period', 'policy', 'next_policy', 'capacity_mbit',
                    'efficiency', 'resplits')}
            data['events'] += ['%s %s' % (time.strftime('%H:%M:%S', time.localtime(
                e['time'])), e['event']) for e in self.notes.get(key, [])]
            return data


def create_app(dashboard, token):
    """The dashboard's Flask app (token: the one that switches the live run's policy)."""
    app = Flask('edgecollab.dashboard')
    json_errors(app)

    @app.get('/')
    def page():
        with open(PAGE, encoding='utf-8') as src:
            return src.read(), 200, {'Content-Type': 'text/html; charset=utf-8',
                                     'Cache-Control': 'no-store'}

    @app.get('/data')
    def data():
        key = request.args.get('run')
        if key is not None and len(key) > 200:
            bad_request('run must be a run of the folder, got %d characters' % len(key))
        return jsonify(dashboard.snapshot(key))

    @app.put('/policy')
    def policy():
        name = policy_switch(token)
        if dashboard.live is None:
            abort(409, description='this dashboard shows a folder, not a live run: '
                                   'there is no run to switch')
        try:
            current, upcoming = dashboard.live.switch(name)
        except ConfigError as exc:
            abort(409, description=str(exc))
        return jsonify(policy=current, next=upcoming)

    return app


class Server:
    """The dashboard served on 127.0.0.1:port in a thread (port 0: any free port)."""

    def __init__(self, dashboard, token, port=DEFAULT_PORT):
        from werkzeug.serving import make_server
        if not 0 <= port <= 65535:
            raise ConfigError('dashboard port must be in [0, 65535], got %d' % port)
        # Bound here: werkzeug would print its own message and exit on a taken port.
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(('127.0.0.1', port))
            except OSError as exc:
                raise ConfigError('dashboard port %d: %s (choose another: --dashboard '
                                  'PORT, or 0 for any free port)'
                                  % (port, exc.strerror or exc)) from None
            sock.listen(64)
            self.server = make_server('127.0.0.1', sock.getsockname()[1],
                                      create_app(dashboard, token), threaded=True,
                                      fd=sock.fileno())
        self.url = 'http://127.0.0.1:%d/' % self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       name='dashboard', daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
