"""A run's results folder: raw data written as the run goes, then summary, table, plots.

Files (described again in the folder's README.txt):
    metadata.json   resolved scenario, arguments, git commit, kernel/tool versions,
                    trace checksums (written before the run)
    periods.csv     one row per policy, period and device (appended as periods finish);
                    planned_by names the policy that planned the period, predictor
                    and forecast_mbit the capacity the controller forecast,
                    planned_mbit the capacity the policy planned with (oracle: the
                    period's real mean; adaptive: the forecast times the measured
                    TCP efficiency), capacity_mbit the period's real mean, outcome what happened to the device
                    (delivered, resumed, kept, missed, infeasible, starved),
                    resumed_from the period whose checkpoint it resumed
    timeseries.csv  every replay step: capacity, per-class shares and achieved goodput
    replay.csv      every trace step: planned and applied time
    summary.json    per policy: mean and per-period accuracy per device, bytes, misses,
                    efficiency, utilisation (bytes delivered / bytes the link could
                    carry), idle fraction, outcome counts, solver time, status
    accuracy.png, timeseries-<policy>.png   plots of the above
    commands.sh     every tc/ip command the run ran; run.log the debug log
    token           the latest policy run's API token (mode 0600), to script the API
    work/<policy>/  the agents' logs; artifacts.csv names each checkpoint and data file
                    the agents moved, with its size and sha256, once verified and
                    deleted (``--keep-artifacts`` keeps the files)
Analysis is re-runnable from the folder alone: ``edgecollab report DIR``.
"""

import collections
import csv
import json
import logging
import os
import statistics

from edgecollab.controller.loop import RECORD_FIELDS
from edgecollab import files
from edgecollab.errors import ConfigError

log = logging.getLogger(__name__)
TIMESERIES_FIELDS = ('policy', 'time_s', 'capacity_mbit', 'device', 'direction',
                     'share_mbit', 'goodput_mbit')
FILES_README = __doc__.split('\n', 2)[2].split('Analysis')[0]


class CsvLog:
    """A CSV file appended row by row, flushed after each write."""

    def __init__(self, path, fields):
        self.fields = fields
        new = not os.path.exists(path)
        self.file = open(path, 'a', newline='', encoding='utf-8')
        self.writer = csv.DictWriter(self.file, fieldnames=fields, extrasaction='ignore')
        if new:
            self.writer.writeheader()

    def write(self, rows):
        """Append rows (dicts) and flush."""
        for row in rows:
            self.writer.writerow({k: _cell(row.get(k, '')) for k in self.fields})
        self.file.flush()

    def close(self):
        """Close the file."""
        self.file.close()


ARTIFACT_SUFFIXES = ('.npz', '.bin', '.part')     # checkpoints, data, partial downloads
ARTIFACTS_FILE = 'artifacts.csv'


def prune_artifacts(work):
    """Delete the checkpoints and data files under the folder work, listing each in
    work/artifacts.csv (path relative to work, size, sha256) first; return the bytes
    freed."""
    found = sorted(os.path.join(top, name) for top, _, names in os.walk(work)
                   for name in names if name.endswith(ARTIFACT_SUFFIXES))
    if not found:
        return 0
    log = CsvLog(os.path.join(work, ARTIFACTS_FILE), ('path', 'size_bytes', 'sha256'))
    freed = 0
    for path in found:
        size = os.path.getsize(path)
        log.write([{'path': os.path.relpath(path, work), 'size_bytes': size,
                    'sha256': files.sha256(path)}])
        os.unlink(path)
        freed += size
    log.close()
    return freed


def _cell(value):
    """A CSV cell: whole numbers (byte counts) exactly, other floats to 10 digits."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return '%.10g' % value
    return value


def read_rows(path, numbers, integers=()):
    """(rows, cut) of a results CSV: every row with the columns in numbers parsed as
    floats (those in integers as ints), 'True'/'False' as booleans.  A last row cut
    short (what a killed run leaves) is dropped and cut is True; any other damage
    (binary data, a missing column, a cell that is no number) is a ConfigError naming
    the file and line."""
    if not os.path.isfile(path):
        raise ConfigError('%s: %s' % (path, 'not a file' if os.path.exists(path) else
                                      'no such file (not a results folder?)'))
    with open(path, 'rb') as src:
        data = src.read()
    if b'\0' in data:
        raise ConfigError('%s: binary data, not a results CSV' % path)
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise ConfigError('%s: not UTF-8 text at byte %d' % (path, exc.start)) from None
    lines = text.splitlines(keepends=True)
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    missing = [c for c in numbers if c not in header]
    if missing:
        raise ConfigError('%s:1: missing column(s) %s' % (path, ', '.join(missing)))
    rows, cut = [], False
    for row in reader:
        last = reader.line_num == len(lines)
        try:
            rows.append(_parsed(row, numbers, integers))
        except (TypeError, ValueError) as exc:
            if last:
                cut = True             # the row a stopped run was writing
                break
            raise ConfigError('%s:%d: %s' % (path, reader.line_num, exc)) from None
    if lines and not lines[-1].endswith('\n') and rows and not cut:
        rows.pop()                     # a last line without its newline was cut short
        cut = True
    return rows, cut


def _parsed(row, numbers, integers):
    if None in row or None in row.values():
        raise ValueError('a row whose cells do not match the header')
    for key, value in list(row.items()):
        if value in ('True', 'False'):
            row[key] = value == 'True'
        elif key in integers:
            if not str(value).isdigit():
                raise ValueError('%s %r is not a whole number' % (key, value))
            row[key] = int(value)
        elif key in numbers:
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                raise ValueError('%s %r is not a number' % (key, value)) from None
        elif value not in (None, ''):
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                pass
    return row


PERIOD_NUMBERS = ('accuracy', 'predicted_accuracy', 'upload_bytes', 'model_bytes',
                  'solver_ms')


def read_periods(folder):
    """The whole rows of periods.csv with numbers parsed (a cut last row left out, with
    a warning); ConfigError when there are none."""
    path = os.path.join(folder, 'periods.csv')
    rows, cut = read_rows(path, PERIOD_NUMBERS + ('period',), integers=('period',))
    if cut:
        log.warning('%s: the last row was cut (a run stopped while writing it); reporting '
                    'the %d whole rows', path, len(rows))
    if not rows:
        raise ConfigError('%s: no period finished (no whole rows)' % path)
    return rows


def expected_periods(folder):
    """The number of periods the folder's run was asked for (metadata.json), or None."""
    try:
        with open(os.path.join(folder, 'metadata.json'), encoding='utf-8') as src:
            meta = json.load(src)
        asked = (meta.get('arguments') or {}).get('periods')
        return int(asked if asked is not None else (meta.get('scenario') or {}).get(
            'periods', 3))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def summarise(rows, statuses=None, expected=None):
    """summary.json's content from period rows; expected: the periods the run was asked
    for (a policy with fewer is 'stopped after k of N periods')."""
    statuses = statuses or {}
    summary = {}
    for policy in dict.fromkeys(r['policy'] for r in rows):
        mine = [r for r in rows if r['policy'] == policy]
        devices = list(dict.fromkeys(r['device'] for r in mine))
        per_device = {}
        for device in devices:
            own = sorted((r for r in mine if r['device'] == device), key=lambda r: r['period'])
            per_device[device] = {
                'mean_accuracy': statistics.fmean(r['accuracy'] for r in own),
                'accuracy_per_period': [r['accuracy'] for r in own],
                'data_bytes': sum(r['upload_bytes'] for r in own),
                'model_bytes': sum(r['model_bytes'] for r in own),
                'deadline_misses': sum(1 for r in own if r['deadline_miss']),
            }
        effs = [r[k] for r in mine for k in ('efficiency_up', 'efficiency_down')
                if isinstance(r.get(k), float)]
        by_period = {r['period']: r for r in mine}.values()
        periods = max(r['period'] for r in mine)
        status = statuses.get(policy, 'completed')
        if expected is not None and periods < expected:
            status = 'stopped after %d of %d periods' % (periods, expected)
        summary[policy] = {
            'status': status,
            'periods': periods,
            'mean_accuracy': statistics.fmean(r['accuracy'] for r in mine),
            'predicted_accuracy': statistics.fmean(r['predicted_accuracy'] for r in mine),
            'data_bytes': sum(d['data_bytes'] for d in per_device.values()),
            'model_bytes': sum(d['model_bytes'] for d in per_device.values()),
            'deadline_misses': sum(d['deadline_misses'] for d in per_device.values()),
            'mean_efficiency': statistics.fmean(effs) if effs else None,
            'utilisation': utilisation(mine, by_period),
            'idle_fraction': _mean_of(r.get('idle_fraction') for r in by_period),
            'outcomes': dict(collections.Counter(r.get('outcome') or 'unknown'
                                                 for r in mine)),
            'solver_ms': statistics.fmean(r['solver_ms'] for r in mine),
            'devices': per_device}
    for policy, status in statuses.items():
        summary.setdefault(policy, {'status': status, 'periods': 0})
    return summary


def utilisation(rows, by_period):
    """Bytes delivered (data and checkpoints, every device) over the bytes the link
    could carry in the periods of rows (None for a folder written before link_bytes)."""
    link = [r.get('link_bytes') for r in by_period]
    if not link or not all(isinstance(b, float) for b in link) or sum(link) <= 0:
        return None
    return sum(r['upload_bytes'] + r['model_bytes'] for r in rows) / sum(link)


def _mean_of(values):
    values = [v for v in values if isinstance(v, float)]
    return statistics.fmean(values) if values else None


# The comparison table's columns: (heading, width, what it says).
COLUMNS = (
    ('policy', 13, 'the allocation policy'),
    ('status', 10, 'completed, or why the run of this policy stopped'),
    ('mAP', 6, 'mean device accuracy over devices and periods (what counts)'),
    ('planned', 7, 'the mAP the plans predicted at their forecast capacity'),
    ('data MB', 7, 'data the devices uploaded to the edge'),
    ('model MB', 8, 'checkpoint bytes the devices received'),
    ('util', 5, 'bytes delivered / bytes the link could carry over the run'),
    ('idle', 5, 'fraction of control steps the link carried under 5% of capacity'),
    ('eff', 5, 'measured goodput / planned share (TCP efficiency)'),
    ('outcomes', 0, 'device-periods by outcome: d delivered, r resumed, k kept, '
                    'm missed, i infeasible, s starved'),
)
OUTCOME_LETTERS = {'delivered': 'd', 'resumed': 'r', 'kept': 'k', 'missed': 'm',
                   'infeasible': 'i', 'starved': 's'}


def table(summary):
    """The comparison table printed at the end of a run, best mAP first, then a line
    that explains each column."""
    def cells(values):
        return ' '.join(('%-*s' if i < 2 else '%*s') % (width, value) if width else value
                        for i, ((_, width, _), value) in enumerate(zip(COLUMNS, values)))

    def number(value, form):
        return form % value if isinstance(value, (int, float)) else '-'

    lines = [cells([c[0] for c in COLUMNS])]
    ranked = sorted(summary.items(), key=lambda kv: -kv[1].get('mean_accuracy', -1))
    for name, s in ranked:
        if 'mean_accuracy' not in s:
            lines.append(cells([name, s['status']]))
            continue
        outcomes = ' '.join('%d%s' % (n, OUTCOME_LETTERS.get(o, '?' + o))
                            for o, n in sorted(s.get('outcomes', {}).items()))
        lines.append(cells([
            name, s['status'], '%.2f' % s['mean_accuracy'], '%.2f' % s['predicted_accuracy'],
            '%.1f' % (s['data_bytes'] / 1e6), '%.1f' % (s['model_bytes'] / 1e6),
            number(s.get('utilisation'), '%.2f'), number(s.get('idle_fraction'), '%.2f'),
            number(s.get('mean_efficiency'), '%.2f'), outcomes]))
    lines.append('')
    lines.extend('  %-9s %s' % (heading, meaning) for heading, _, meaning in COLUMNS[2:])
    return '\n'.join(lines)


def write_summary(folder, statuses=None):
    """Write summary.json from periods.csv; return the summary."""
    rows = read_periods(folder)
    summary = summarise(rows, statuses, expected_periods(folder))
    with open(os.path.join(folder, 'summary.json'), 'w', encoding='utf-8') as out:
        json.dump({'policies': summary}, out, indent=2)
    return summary


def plot(folder):
    """accuracy.png and timeseries-<policy>.png from the folder's CSV files."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = read_periods(folder)
    policies = list(dict.fromkeys(r['policy'] for r in rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    for policy in policies:
        periods = sorted({r['period'] for r in rows if r['policy'] == policy})
        means = [statistics.fmean(r['accuracy'] for r in rows if r['policy'] == policy and
                                  r['period'] == p) for p in periods]
        ax.plot(periods, means, marker='o', label=policy)
    ax.set_xlabel('period')
    ax.set_ylabel('mean device mAP')
    ax.set_title('Device accuracy per policy')
    ax.grid(alpha=0.3)
    if policies:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, 'accuracy.png'), dpi=110)
    plt.close(fig)
    series = os.path.join(folder, 'timeseries.csv')
    if os.path.exists(series):
        _plot_timeseries(folder, series, plt, summarise(rows))


def _or_dash(value):
    return '%.2f' % value if isinstance(value, float) else '-'


def _plot_timeseries(folder, path, plt, summary):
    rows, cut = read_rows(path, ('time_s', 'capacity_mbit', 'goodput_mbit', 'share_mbit'))
    if cut:
        log.warning('%s: the last row was cut; plotting the whole rows', path)
    for policy in dict.fromkeys(r['policy'] for r in rows):
        mine = [r for r in rows if r['policy'] == policy]
        fig, ax = plt.subplots(figsize=(8, 4))
        times = sorted({r['time_s'] for r in mine})
        cap = {r['time_s']: r['capacity_mbit'] for r in mine}
        ax.plot(times, [cap[t] for t in times], color='black', label='capacity')
        for device in dict.fromkeys(r['device'] for r in mine):
            for direction, style in (('up', '-'), ('down', '--')):
                own = [r for r in mine if r['device'] == device and r['direction'] == direction]
                t = [r['time_s'] for r in own]
                line, = ax.plot(t, [r['goodput_mbit'] for r in own], style,
                                label='%s %s goodput' % (device, direction))
                ax.plot(t, [r['share_mbit'] for r in own], style, alpha=0.35,
                        color=line.get_color())
        ax.set_xlabel('time (s)')
        ax.set_ylabel('Mbit/s')
        said = summary.get(policy, {})
        ax.set_title('%s: capacity, shares (faint) and achieved goodput\n'
                     'utilisation %s, idle %s' % (
                         policy, _or_dash(said.get('utilisation')),
                         _or_dash(said.get('idle_fraction'))), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(os.path.join(folder, 'timeseries-%s.png' % policy), dpi=110)
        plt.close(fig)
