"""A run's results folder: raw data written as the run goes, then summary, table, plots.

``FILES`` says what each file holds (README.txt lists the ones a folder has and explains
the columns of its CSV files, ``scenarios/report.py``).  Analysis is re-runnable from the
folder alone: ``edgecollab report DIR``.
"""

import collections
import csv
import gzip
import json
import logging
import math
import os
import shutil
import statistics

from edgecollab import confidence, files
from edgecollab.controller.loop import OUTCOME_LETTERS, RECORD_FIELDS
from edgecollab.errors import ConfigError
from edgecollab.kinds import Direction, Timing

log = logging.getLogger(__name__)
TIMESERIES_COLUMNS = {
    'policy': 'the policy whose run this is',
    'time_s': "seconds since the run's first period began",
    'capacity_mbit': 'the capacity applied at that step, Mbit/s',
    'device': 'the device', 'direction': 'up (data) or down (checkpoint)',
    'share_mbit': "the class's share at that step, Mbit/s",
    'channel_mbit': "the device's channel at that step, Mbit/s (the capacity when the "
                    'fleet has one)',
    'goodput_mbit': 'the goodput its class carried over the step (wire bytes x '
                    '1448/1514), Mbit/s',
    'repeat': 'the repetition of the run (--repeat)'}
TIMESERIES_FIELDS = tuple(TIMESERIES_COLUMNS)
REPLAY_COLUMNS = {
    'policy': 'the policy whose run this is', 'step': 'the trace step',
    'planned_s': 'when it was due (s since the first period)',
    'applied_s': 'when it was applied', 'late_ms': '|applied - planned|, ms',
    'capacity_mbit': 'the capacity applied, Mbit/s',
    'clipped': 'True when the trace asked for less than the shaper can hold (applied '
               'as its minimum)'}
FLUID_REFERENCE = 'fluid-reference.csv'
PERIODS_CSV = 'periods.csv'
TIMESERIES_CSV = 'timeseries.csv'
REPLAY_CSV = 'replay.csv'
# What each file of a results folder holds (a name with * stands for several).
FILES = {
    'report.html': 'the report to open: summary, plots, notes, every column explained '
                   '(one offline file)',
    'summary.json': 'per policy: mean and per-period accuracy per device, bytes, misses, '
                    'efficiency, utilisation (bytes delivered / bytes the link could '
                    'carry), idle fraction, outcome counts, solver time, status',
    PERIODS_CSV: 'one row per policy, period and device (appended as periods finish)',
    FLUID_REFERENCE: 'the same rows from the fluid backend (ideal transfers) for the '
                     'same policies: the reference the emulated run is read against',
    TIMESERIES_CSV: 'every replay step: capacity, each class\'s share and goodput',
    REPLAY_CSV: 'every trace step: when it was due and when it was applied',
    'metadata.json': 'the resolved scenario, arguments, git commit, kernel and tool '
                     'versions, trace checksums, the paths\' delays and their engine',
    'accuracy.png': 'mean device accuracy per period and policy: achieved (solid), '
                    'predicted (dashed), fluid (dotted), the devices\' spread (band)',
    'timeseries-*.png': 'per policy: capacity, shares and goodput over time, period '
                        'boundaries and upload deadlines',
    'commands.sh': 'every tc and ip command the run ran, in order',
    'commands.sh.gz': 'the same, gzip-compressed (above 1 MB; zcat reads it)',
    'run.log': 'the debug log of the run',
    'run.log.gz': 'the same, gzip-compressed (above 1 MB; zcat reads it)',
    'token': "the latest policy run's API token (mode 0600), to script the API",
    'work': 'per policy, the agents\' logs; artifacts.csv names each checkpoint and data '
            'file the agents moved, with its size and sha256, once verified and deleted '
            '(--keep-artifacts keeps the files)',
}


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


class Records:
    """The one writer of period records, for both backends: the rows the control loop
    makes, appended to the folder's periods.csv (or its fluid reference) with the
    repetition they belong to."""

    def __init__(self, folder, repeat=None, name=PERIODS_CSV):
        self.log = CsvLog(os.path.join(folder, name), RECORD_FIELDS)
        self.repeat = repeat

    def write(self, rows):
        """Append rows (the loop's records)."""
        self.log.write(rows if self.repeat is None else
                       (dict(row, repeat=self.repeat) for row in rows))

    def close(self):
        """Close the file."""
        self.log.close()


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


LOG_FILES = ('run.log', 'commands.sh')
LOG_KEEP_BYTES = 1 << 20     # a log above this is compressed at the end of a run


def compress_logs(folder, limit_bytes=LOG_KEEP_BYTES):
    """gzip the folder's run.log and commands.sh that hold more than limit_bytes into
    NAME.gz (the original removed), so a long real-trace run's folder stays small (its
    tc log compresses about 20 times); the names compressed."""
    done = []
    for name in LOG_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.path.getsize(path) > limit_bytes:
            with open(path, 'rb') as src, gzip.open(path + '.gz.partial', 'wb') as out:
                shutil.copyfileobj(src, out, 1 << 20)
            os.replace(path + '.gz.partial', path + '.gz')
            os.unlink(path)
            done.append(name)
    return done


def read_log(folder, name):
    """The text of the folder's log name (run.log, commands.sh), compressed or not."""
    path = os.path.join(folder, name)
    if os.path.exists(path + '.gz'):
        with gzip.open(path + '.gz', 'rt', encoding='utf-8') as src:
            return src.read()
    with files.open_regular(path, 'r', encoding='utf-8') as src:
        return src.read()


def safe_name(name):
    """name as one folder name: letters, digits, '.', '_' and '-' kept, anything else
    (a '/', '..' that would climb out of results/) made '-'; never empty or hidden."""
    safe = ''.join(c if c.isascii() and (c.isalnum() or c in '._-') else '-'
                   for c in str(name))[:100].lstrip('.')
    return safe or 'run'


def make_folder(out):
    """Make the results folder out (and its parents), or a ConfigError saying why not."""
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, '.edgecollab-write-test')
        with open(probe, 'w', encoding='utf-8'):
            pass
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError('--out %s: cannot write a results folder there: %s'
                          % (out, exc.strerror or exc)) from None


MAX_LINE_BYTES = 1 << 20     # a results CSV line
MAX_ROWS = 2 * 10 ** 6       # rows of a results CSV read (each is held: about 1 KB)


class TooManyRows(ConfigError):
    """A results CSV with more than MAX_ROWS rows."""
MAX_MAGNITUDE = 1e18         # any number a results CSV holds, in absolute value
# Numbers with a narrower range than finite and within MAX_MAGNITUDE (column: bounds).
CELL_BOUNDS = {'accuracy': (0.0, 100.0), 'predicted_accuracy': (0.0, 100.0),
               'kept_accuracy': (0.0, 100.0), 'measured_accuracy': (0.0, 100.0)}


class _Lines:
    """The lines of a results CSV, read one at a time (memory bounded by the longest
    line), each checked: at most MAX_LINE_BYTES, no NUL byte, UTF-8, not blank (the
    writers never write a blank line).  ended: whether the last line read ended with a
    newline (a killed run leaves its last row without one)."""

    def __init__(self, src, path):
        self.src, self.path, self.number, self.ended = src, path, 0, True

    def __iter__(self):
        return self

    def __next__(self):
        raw = self.src.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.number += 1
        where = '%s:%d' % (self.path, self.number)
        if len(raw) > MAX_LINE_BYTES:
            raise ConfigError('%s: a line longer than %d bytes: not a results CSV'
                              % (where, MAX_LINE_BYTES))
        if b'\0' in raw:
            raise ConfigError('%s: binary data, not a results CSV' % where)
        try:
            text = raw.decode('utf-8')
        except UnicodeDecodeError as exc:
            if raw.endswith(b'\n'):
                raise ConfigError('%s: not UTF-8 text at byte %d' % (where, exc.start)) \
                    from None
            text = raw.decode('utf-8', 'replace')     # a last line cut inside a character
        if not text.strip():
            raise ConfigError('%s: a blank line: not a results CSV row' % where)
        self.ended = text.endswith('\n')
        return text


def read_rows(path, numbers, integers=()):
    """(rows, cut) of a results CSV, read as a stream: every row with the columns in
    numbers parsed as floats (those in integers as ints), 'True'/'False' as booleans,
    every number finite and within its bounds (CELL_BOUNDS, MAX_MAGNITUDE).  A last row
    cut short (what a killed run leaves) is dropped and cut is True; any other damage
    (binary data, a blank or overlong line, a missing column, a cell that is no number
    or out of range) is a ConfigError naming the file and line."""
    if not os.path.exists(path):
        raise ConfigError('%s: no such file (not a results folder?)' % path)
    with files.open_regular(path) as src:
        lines = _Lines(src, path)
        reader = csv.DictReader(lines)
        try:
            header = reader.fieldnames or []
            missing = [c for c in numbers if c not in header]
            if missing:
                raise ConfigError('%s:1: missing column(s) %s' % (path, ', '.join(missing)))
            rows, cut, pending = [], False, None
            for row in reader:
                if pending is not None:
                    rows.append(_parsed_at(pending, path, numbers, integers))
                    if len(rows) > MAX_ROWS:
                        raise TooManyRows('%s: more than %d rows: more than a results '
                                          'file of edgecollab holds' % (path, MAX_ROWS))
                pending = (row, reader.line_num)
        except csv.Error as exc:
            raise ConfigError('%s:%d: %s' % (path, lines.number, exc)) from None
    if pending is not None:
        if not lines.ended:
            cut = True                 # a last line without its newline was cut short
        else:
            try:
                rows.append(_parsed(pending[0], numbers, integers))
            except (TypeError, ValueError):
                cut = True             # the row a stopped run was writing
    return rows, cut


def _parsed_at(pending, path, numbers, integers):
    row, number = pending
    try:
        return _parsed(row, numbers, integers)
    except (TypeError, ValueError) as exc:
        raise ConfigError('%s:%d: %s' % (path, number, exc)) from None


def _number(key, value):
    """The float in a cell, or ValueError when it is not finite or out of bounds."""
    number = float(value)
    low, high = CELL_BOUNDS.get(key, (-MAX_MAGNITUDE, MAX_MAGNITUDE))
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError('%s %r is not a number in [%g, %g]' % (key, value, low, high))
    return number


def _parsed(row, numbers, integers):
    if None in row or None in row.values():
        raise ValueError('a row whose cells do not match the header')
    for key, value in list(row.items()):
        if value in ('True', 'False'):
            row[key] = value == 'True'
        elif key in integers:
            if not str(value).isdigit() or len(value) > 18:
                raise ValueError('%s %r is not a whole number' % (key, value))
            row[key] = int(value)
        elif key in numbers:
            try:
                row[key] = _number(key, value)
            except (TypeError, ValueError) as exc:
                raise ValueError(str(exc) if 'is not a number in' in str(exc) else
                                 '%s %r is not a number' % (key, value)) from None
        elif value not in (None, ''):
            try:
                float(value)
            except (TypeError, ValueError):
                continue              # a text cell (policy, device, outcome, ...)
            row[key] = _number(key, value)
    return row


PERIOD_NUMBERS = ('accuracy', 'predicted_accuracy', 'upload_bytes', 'model_bytes',
                  'solver_ms')


def read_periods(folder):
    """The whole rows of periods.csv with numbers parsed (a cut last row left out, with
    a warning); ConfigError when there are none."""
    path = os.path.join(folder, PERIODS_CSV)
    rows, cut = read_rows(path, PERIOD_NUMBERS + ('period',), integers=('period',))
    if cut:
        log.warning('%s: the last row was cut (a run stopped while writing it); reporting '
                    'the %d whole rows', path, len(rows))
    if not rows:
        raise ConfigError('%s: no period finished (no whole rows)' % path)
    return rows


MAX_JSON_BYTES = 64 << 20     # metadata.json, summary.json


def read_json(path):
    """The JSON value in the file at path, or None when it is missing, not a regular
    file, larger than MAX_JSON_BYTES or not JSON."""
    try:
        with files.open_regular(path, 'r', MAX_JSON_BYTES, 'utf-8') as src:
            return json.load(src, parse_constant=_not_a_number)
    except (OSError, ValueError, ConfigError, RecursionError):
        return None


def _not_a_number(name):
    raise ValueError('%s is not a JSON number' % name)


def read_meta(folder):
    """The folder's metadata.json as a mapping ({} when it holds none)."""
    meta = read_json(os.path.join(folder, 'metadata.json'))
    return meta if isinstance(meta, dict) else {}


def expected_periods(folder):
    """The number of periods the folder's run was asked for (metadata.json), or None."""
    from edgecollab.scenarios.scenario import default
    try:
        meta = read_meta(folder)
        asked = (meta.get('arguments') or {}).get('periods')
        return int(asked if asked is not None else (meta.get('scenario') or {}).get(
            'periods', default('periods')))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def repeat_of(row):
    """The repetition a row belongs to (1 for folders written before --repeat)."""
    value = row.get('repeat')
    return int(value) if isinstance(value, (int, float)) else 1


def summarise(rows, statuses=None, expected=None):
    """summary.json's content from period rows; expected: the periods the run was asked
    for (a policy with fewer is 'stopped after k of N periods').  Rows of several
    repetitions (--repeat): the figures are the repetitions' means, outcome counts and
    misses their sums, with the mean accuracy's 95% confidence interval (Student's t)."""
    statuses = statuses or {}
    summary = {}
    for policy in dict.fromkeys(r['policy'] for r in rows):
        mine = [r for r in rows if r['policy'] == policy]
        repeats = sorted({repeat_of(r) for r in mine})
        status = statuses.get(policy, 'completed')
        each = [_summarise_policy([r for r in mine if repeat_of(r) == k], status, expected)
                for k in repeats]
        summary[policy] = each[0] if len(each) == 1 else _combined(each)
    for policy, status in statuses.items():
        summary.setdefault(policy, {'status': status, 'periods': 0})
    return summary


AVERAGED = ('mean_accuracy', 'predicted_accuracy', 'data_bytes', 'model_bytes',
            'mean_efficiency', 'utilisation', 'utilisation_of_demand', 'idle_fraction',
            'solver_ms', 'measured_accuracy')


def _combined(each):
    """One policy's summary over repetitions (each: one summary a repetition)."""
    combined = dict(each[-1])
    for key in AVERAGED:
        values = [e[key] for e in each if isinstance(e.get(key), (int, float))]
        combined[key] = statistics.fmean(values) if values else None
    combined['deadline_misses'] = sum(e['deadline_misses'] for e in each)
    outcomes = collections.Counter()
    for e in each:
        outcomes.update(e['outcomes'])
    combined['outcomes'] = dict(outcomes)
    means = [e['mean_accuracy'] for e in each]
    combined['repeats'] = len(each)
    combined['repeat_accuracy'] = means
    combined['ci95'] = confidence.half_width(means)
    combined['periods'] = min(e['periods'] for e in each)
    combined['status'] = next((e['status'] for e in each if e['status'] != 'completed'),
                              'completed')
    return combined


def ranking(rows):
    """{'order': policies by mean accuracy, best first, 'repeats': N, 'held': the
    fraction of repetitions whose own order is the same} (None for one repetition)."""
    repeats = sorted({repeat_of(r) for r in rows})
    policies = list(dict.fromkeys(r['policy'] for r in rows))
    if len(repeats) < 2 or len(policies) < 2:
        return None

    def order(subset):
        means = {p: statistics.fmean(r['accuracy'] for r in subset if r['policy'] == p)
                 for p in policies if any(r['policy'] == p for r in subset)}
        return sorted(means, key=lambda p: -means[p])

    overall = order(rows)
    held = sum(order([r for r in rows if repeat_of(r) == k]) == overall for k in repeats)
    return {'order': overall, 'repeats': len(repeats), 'held': held / len(repeats)}


def _summarise_policy(mine, status, expected):
    """One policy's summary of the rows of one repetition."""
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
    if expected is not None and periods < expected:
        status = 'stopped after %d of %d periods' % (periods, expected)
    return {
        'status': status,
        'periods': periods,
        'mean_accuracy': statistics.fmean(r['accuracy'] for r in mine),
        'predicted_accuracy': statistics.fmean(r['predicted_accuracy'] for r in mine),
        'data_bytes': sum(d['data_bytes'] for d in per_device.values()),
        'model_bytes': sum(d['model_bytes'] for d in per_device.values()),
        'deadline_misses': sum(d['deadline_misses'] for d in per_device.values()),
        'mean_efficiency': statistics.fmean(effs) if effs else None,
        'measured_accuracy': _mean_of(r.get('measured_accuracy') for r in mine),
        'utilisation': utilisation(mine, by_period),
        'utilisation_of_demand': utilisation_of_demand(mine, by_period),
        'idle_fraction': _mean_of(r.get('idle_fraction') for r in by_period),
        'outcomes': dict(collections.Counter(r.get('outcome') or 'unknown'
                                             for r in mine)),
        'solver_ms': statistics.fmean(r['solver_ms'] for r in mine),
        'devices': per_device}


def utilisation(rows, by_period):
    """Bytes delivered (data and checkpoints, every device) over the bytes the link
    could carry in the periods of rows (None for a folder written before link_bytes)."""
    link = [r.get('link_bytes') for r in by_period]
    if not link or not all(isinstance(b, float) for b in link) or sum(link) <= 0:
        return None
    return _delivered(rows) / sum(link)


def utilisation_of_demand(rows, by_period):
    """Bytes delivered over what the link could carry of what there was to carry: in
    each period the least of its link_bytes and its demand_bytes (every device's data
    and the menu's largest checkpoint for each).  A link faster than the devices need
    idles with nothing left to send: utilisation counts that idle time, this does not
    (on a duplex link the two directions' budgets count together, as in link_bytes;
    None for a folder written before demand_bytes)."""
    room = [(r.get('link_bytes'), r.get('demand_bytes')) for r in by_period]
    if not room or not all(isinstance(b, float) for pair in room for b in pair):
        return None
    usable = sum(min(link, demand) for link, demand in room)
    if usable <= 0:
        return None
    return min(1.0, _delivered(rows) / usable)


def _delivered(rows):
    """The bytes rows delivered: data and checkpoints, every device."""
    return sum(r['upload_bytes'] + r['model_bytes'] for r in rows)


def _mean_of(values):
    values = [v for v in values if isinstance(v, float)]
    return statistics.fmean(values) if values else None


# The comparison table's columns: (heading, width, what it says).
COLUMNS = (
    ('policy', 13, 'the allocation policy'),
    ('status', 10, 'completed, or why the run of this policy stopped'),
    ('mAP', 6, 'mean device accuracy over devices and periods (what counts); with '
               '--repeat N, the mean of the N runs +- its 95% confidence interval'),
    ('planned', 7, 'the mAP the plans predicted at their forecast capacity'),
    ('top-1', 5, 'the top-1 accuracy (%) the devices measured of the models they held '
                 '(a workload that learns, e.g. digits; - with synthetic)'),
    ('data MB', 7, 'data the devices uploaded to the edge'),
    ('model MB', 8, 'checkpoint bytes the devices received'),
    ('util', 5, 'bytes delivered / bytes the link could carry over the run'),
    ('u/dem', 5, 'bytes delivered / the least, each period, of the bytes the link could '
                 'carry and the bytes there were to carry (the data of every device and the '
                 'largest checkpoint for each): a link faster than the devices need idles '
                 'in util, not here'),
    ('idle', 5, 'fraction of control steps the link carried under 5% of capacity'),
    ('eff', 5, 'measured goodput / planned share (TCP efficiency)'),
    ('outcomes', 0, 'device-periods by outcome: ' + ', '.join(
        '%s %s' % (letter, name) for name, letter in OUTCOME_LETTERS.items())),
)


def table_rows(summary):
    """[(cells, policy)] of the comparison table, best mAP first (cells as text, one a
    column of COLUMNS; a policy without periods has its status only)."""
    def number(value, form):
        return form % value if isinstance(value, (int, float)) else '-'

    found = []
    ranked = sorted(summary.items(), key=lambda kv: -kv[1].get('mean_accuracy', -1))
    for name, s in ranked:
        if 'mean_accuracy' not in s:
            found.append(([name, s['status']] + ['-'] * (len(COLUMNS) - 2), name))
            continue
        outcomes = ' '.join('%d%s' % (n, OUTCOME_LETTERS.get(o, '?' + o))
                            for o, n in sorted(s.get('outcomes', {}).items()))
        found.append(([
            name, s['status'], ('%.2f+-%.2f' % (s['mean_accuracy'], s['ci95'])
                                if 'ci95' in s else '%.2f' % s['mean_accuracy']),
            '%.2f' % s['predicted_accuracy'], number(s.get('measured_accuracy'), '%.1f'),
            '%.1f' % (s['data_bytes'] / 1e6), '%.1f' % (s['model_bytes'] / 1e6),
            number(s.get('utilisation'), '%.2f'),
            number(s.get('utilisation_of_demand'), '%.2f'),
            number(s.get('idle_fraction'), '%.2f'),
            number(s.get('mean_efficiency'), '%.2f'), outcomes], name))
    return found


def ranking_text(order):
    """A line saying how often the ranking held over the repetitions ('' without)."""
    if not order:
        return ''
    return 'ranking by mean mAP: %s; the same in %d of %d repetitions' % (
        ' > '.join(order['order']), round(order['held'] * order['repeats']),
        order['repeats'])


def read_ranking(folder):
    """The ranking summary.json holds (None when it holds none)."""
    summary = read_json(os.path.join(folder, 'summary.json'))
    return summary.get('ranking') if isinstance(summary, dict) else None


def table(summary, order=None):
    """The comparison table printed at the end of a run, best mAP first, then the
    ranking over repetitions (order: ``ranking``) and a line that explains each column."""
    def cells(values):
        return ' '.join(('%-*s' if i < 2 else '%*s') % (width, value) if width else value
                        for i, ((_, width, _), value) in enumerate(zip(COLUMNS, values)))

    lines = [cells([c[0] for c in COLUMNS])]
    for values, _ in table_rows(summary):
        lines.append(cells(values) if values[2] != '-' else cells(values[:2]))
    if order:
        lines.append(ranking_text(order))
    lines.append('')
    lines.extend('  %-9s %s' % (heading, meaning) for heading, _, meaning in COLUMNS[2:])
    return '\n'.join(lines)


def write_summary(folder, statuses=None):
    """Write summary.json from periods.csv; return the summary."""
    rows = read_periods(folder)
    summary = summarise(rows, statuses, expected_periods(folder))
    content = {'policies': summary}
    order = ranking(rows)
    if order:
        content['ranking'] = order
    channels = channel_summary(rows, folder_problem(folder))
    if channels:
        content['channels'] = channels
    files.write_json(os.path.join(folder, 'summary.json'), content)
    return summary


def channel_summary(rows, problem):
    """With per-device channels, {device: {mean_mbit, periods, starved_periods}}: each
    device's channel over the run's periods and the periods in which its channel was
    too weak for any checkpoint (even all the airtime at its mean over the period
    carries less than the smallest one): starved by its channel, whatever the policy.
    {} when the devices share one channel."""
    first = [r for r in rows if r['policy'] == rows[0]['policy']] if rows else []
    seen = [r for r in first if r.get('channel_mbit') not in (None, '')]
    if not seen or all(abs(float(r['channel_mbit']) - float(r['capacity_mbit'])) < 1e-6
                       for r in seen):
        return {}
    need_bits = 8 * problem.smallest_bytes() if problem else 0.0
    window_s = problem.window_s if problem else 0.0
    out = {}
    for device in dict.fromkeys(r['device'] for r in seen):
        own = [float(r['channel_mbit']) for r in seen if r['device'] == device]
        out[device] = {'mean_mbit': round(sum(own) / len(own), 6), 'periods': len(own),
                       'starved_periods': sum(1 for c in own if problem and
                                              c * 1e6 * window_s < need_bits)}
    return out


MANY_DEVICES = 6         # above: the time series shows totals and the devices' spread
MARKERS = 'osD^vPX*'     # achieved accuracy: a marker per policy, solid lines


def folder_problem(folder):
    """The Problem of the folder's scenario (metadata.json), or None."""
    from edgecollab.scenarios.scenario import problem_from
    try:
        raw = read_meta(folder).get('scenario') or {}
        return problem_from(raw)
    except (OSError, ValueError, AttributeError, ConfigError):
        return None


def period_timing(folder):
    """(period_s, upload window_s or None) of the folder's scenario (metadata.json), or
    (None, None)."""
    problem = folder_problem(folder)
    if problem is None:
        return None, None
    window = problem.window_s if problem.timing == Timing.OVERLAP and \
        problem.window_s < problem.period_s else None
    return problem.period_s, window


def _legend_outside(ax, fontsize=8):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize, loc='upper left', bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0.0)


def plot(folder):
    """accuracy.png and timeseries-<policy>.png from the folder's CSV files."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = read_periods(folder)
    fluid_path = os.path.join(folder, FLUID_REFERENCE)
    fluid = read_rows(fluid_path, ('accuracy',), ('period',))[0] \
        if os.path.exists(fluid_path) else []
    _plot_accuracy(folder, rows, fluid, plt)
    series = os.path.join(folder, TIMESERIES_CSV)
    if os.path.exists(series):
        try:
            _plot_timeseries(folder, series, plt, summarise(rows))
        except TooManyRows as exc:
            log.warning('%s; the time series plots are left out', exc)


def _plot_accuracy(folder, rows, fluid, plt):
    """Mean device accuracy per period: achieved (markers, solid), predicted (dashed),
    fluid (dotted), the devices' min-max spread (bar); policies offset a little in x so
    that coinciding lines stay visible."""
    from matplotlib.ticker import MaxNLocator

    policies = list(dict.fromkeys(r['policy'] for r in rows))
    repeated = len({repeat_of(r) for r in rows}) > 1
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    colours = plt.get_cmap('tab10')
    for i, policy in enumerate(policies):
        marker = MARKERS[i % len(MARKERS)]
        colour = colours(i % 10)
        shift = (i - (len(policies) - 1) / 2) * 0.06
        mine = [r for r in rows if r['policy'] == policy]
        periods = sorted({r['period'] for r in mine})
        x = [p + shift for p in periods]
        per = [[r for r in mine if r['period'] == p] for p in periods]
        means = [statistics.fmean(r['accuracy'] for r in own) for own in per]
        if repeated:
            # The 95% confidence interval of the period's mean over the repetitions.
            low = high = [confidence.half_width([statistics.fmean(r['accuracy'] for r in own
                                                  if repeat_of(r) == k)
                                 for k in sorted({repeat_of(r) for r in own})])
                          for own in per]
        else:
            low = [max(0.0, m - min(r['accuracy'] for r in own))
                   for m, own in zip(means, per)]
            high = [max(0.0, max(r['accuracy'] for r in own) - m)
                    for m, own in zip(means, per)]
        ax.errorbar(x, means, yerr=[low, high], marker=marker, linestyle='-',
                    color=colour, capsize=3, label='%s' % policy)
        ax.plot(x, [statistics.fmean(r['predicted_accuracy'] for r in own) for own in per],
                linestyle='--', linewidth=0.9, alpha=0.6, color=colour)
        theirs = [r for r in fluid if r['policy'] == policy]
        if theirs:
            ax.plot(x, [statistics.fmean(r['accuracy'] for r in theirs if r['period'] == p)
                        if any(r['period'] == p for r in theirs) else float('nan')
                        for p in periods], linestyle=':', linewidth=1.2, alpha=0.8,
                    color=colour)
    ax.plot([], [], color='grey', linestyle='--', linewidth=0.9, label='predicted')
    if fluid:
        ax.plot([], [], color='grey', linestyle=':', linewidth=1.2, label='fluid (ideal)')
    ax.plot([], [], color='grey', marker='|', linestyle='',
            label='95% CI over repeats' if repeated else "devices' min-max")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel('period')
    ax.set_ylabel('mean device mAP')
    ax.set_title('Device accuracy per policy: achieved (markers), predicted, fluid')
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, 'accuracy.png'), dpi=110)
    plt.close(fig)


def _or_dash(value):
    return '%.2f' % value if isinstance(value, float) else '-'


MAX_MARKED_PERIODS = 200     # period boundaries a plot draws at most: more are a grey
                             # smear, not lines (and a damaged folder's times cost nothing)


def _mark_periods(ax, times, period_s, window_s):
    """Period boundaries (grey) and upload deadlines (dotted) over the time axis."""
    if not period_s or not times:
        return
    last = int(max(times) // period_s)
    if last > MAX_MARKED_PERIODS:
        return
    for k in range(max(last, -1) + 1):
        ax.axvline(k * period_s, color='grey', linewidth=0.8, alpha=0.6)
        if window_s:
            ax.axvline(k * period_s + window_s, color='grey', linestyle=':', linewidth=0.8)


def _plot_timeseries(folder, path, plt, summary):
    rows, cut = read_rows(path, ('time_s', 'capacity_mbit', 'goodput_mbit', 'share_mbit'))
    for r in rows:       # files written before per-device channels have no such column
        r['channel_mbit'] = float(r['channel_mbit']) if r.get('channel_mbit') not in (
            None, '') else r['capacity_mbit']
    own = any(abs(r['channel_mbit'] - r['capacity_mbit']) > 1e-6 for r in rows)
    if cut:
        log.warning('%s: the last row was cut; plotting the whole rows', path)
    period_s, window_s = period_timing(folder)
    rows = [r for r in rows if repeat_of(r) == 1]        # repetitions: the first one
    for policy in dict.fromkeys(r['policy'] for r in rows):
        mine = [r for r in rows if r['policy'] == policy]
        devices = list(dict.fromkeys(r['device'] for r in mine))
        times = sorted({r['time_s'] for r in mine})
        cap = {r['time_s']: r['capacity_mbit'] for r in mine}
        fig, ax = plt.subplots(figsize=(9.5, 4.2))
        ax.plot(times, [cap[t] for t in times], color='black', linewidth=1.4,
                label='mean of the channels' if own else 'capacity')
        if len(devices) <= MANY_DEVICES:
            _device_lines(ax, mine, devices, plt, own)
        else:
            _device_spread(ax, mine, times)
        _mark_periods(ax, times, period_s, window_s)
        ax.set_xlabel('time (s) · grey: period boundaries' +
                      (' · dotted: upload deadlines' if window_s else ''))
        ax.set_ylabel('Mbit/s')
        said = summary.get(policy, {})
        ax.set_title('%s: capacity, %sshares (faint) and goodput, %d devices\n'
                     'utilisation %s (of demand %s), idle %s' % (
                         policy, "each device's channel (dotted), " if own and
                         len(devices) <= MANY_DEVICES else '', len(devices),
                         _or_dash(said.get('utilisation')),
                         _or_dash(said.get('utilisation_of_demand')),
                         _or_dash(said.get('idle_fraction'))), fontsize=10)
        ax.grid(alpha=0.3)
        _legend_outside(ax, 7)
        fig.tight_layout()
        fig.savefig(os.path.join(folder, 'timeseries-%s.png' % policy), dpi=110)
        plt.close(fig)


def _device_lines(ax, mine, devices, plt, channels=False):
    """Each device's goodput up (solid) and down (dashed) with its share faint (and
    with per-device channels its channel dotted); its own colour, identical devices
    drawn a little apart (a thicker line under a thinner)."""
    colours = plt.get_cmap('tab10')
    for i, device in enumerate(devices):
        if channels:
            own = [r for r in mine if r['device'] == device and r['direction'] == Direction.UP]
            ax.plot([r['time_s'] for r in own], [r['channel_mbit'] for r in own], ':',
                    color=colours(i % 10), linewidth=1.0, label='%s channel' % device)
        for direction, style in (('up', '-'), ('down', '--')):
            own = [r for r in mine if r['device'] == device and r['direction'] == direction]
            t = [r['time_s'] for r in own]
            ax.plot(t, [r['goodput_mbit'] for r in own], style, color=colours(i % 10),
                    linewidth=2.4 - 1.6 * i / max(1, len(devices) - 1) if len(devices) > 1
                    else 1.2, label='%s %s goodput' % (device, direction))
            ax.plot(t, [r['share_mbit'] for r in own], style, alpha=0.35,
                    color=colours(i % 10), linewidth=0.8)


def _device_spread(ax, mine, times):
    """Many devices: each direction's total goodput and share, and the band of the
    devices' goodput (10th to 90th percentile, median line) on a second axis."""
    import numpy as np
    twin = ax.twinx()
    for direction, colour in (('up', 'tab:blue'), ('down', 'tab:orange')):
        own = [r for r in mine if r['direction'] == direction]
        by_time = collections.defaultdict(list)
        shares = collections.defaultdict(float)
        for r in own:
            by_time[r['time_s']].append(r['goodput_mbit'])
            shares[r['time_s']] += r['share_mbit']
        t = [x for x in times if by_time[x]]
        ax.plot(t, [sum(by_time[x]) for x in t], color=colour,
                label='all devices %s goodput' % direction)
        ax.plot(t, [shares[x] for x in t], color=colour, alpha=0.35, linewidth=0.8)
        low = [np.percentile(by_time[x], 10) for x in t]
        high = [np.percentile(by_time[x], 90) for x in t]
        twin.fill_between(t, low, high, color=colour, alpha=0.15,
                          label='devices %s p10-p90 (right axis)' % direction)
        twin.plot(t, [np.median(by_time[x]) for x in t], color=colour, linewidth=0.6,
                  linestyle=':')
    twin.set_ylabel("a device's goodput, Mbit/s")
    handles, labels = twin.get_legend_handles_labels()
    for h, l in zip(handles, labels):
        ax.plot([], [], color=h.get_facecolor()[0], linewidth=6, alpha=0.3, label=l)
