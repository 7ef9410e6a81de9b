"""Bandwidth traces: load, validate, resample, describe, write, generate.

A ``Trace`` is a step function of capacity: ``rate_mbit[i]`` holds from ``times_s[i]``
to the next time (the last until ``duration_s``), starting at 0 s.  Formats read:

- ``mahimahi``: one integer millisecond timestamp a line, each a chance to deliver one
  1500-byte packet (12000 bit); repeated timestamps are several packets in that ms;
  non-decreasing; the last timestamp is the trace's length (it loops).  Read in blocks
  (parsed by numpy where a block is plain ``digits\\n`` lines, line by line otherwise)
  and counted into bins of ``bin_s`` (default 100 ms), so a huge file is never held.
- ``twocol``: ``time_s rate_mbit`` a line, whitespace separated (Pensieve, Norway, FCC):
  irregular steps, a non-zero start time is shifted to 0.
- ``csv``: a header naming ``time_s`` and a rate column (``rate_mbit`` or the one given).

Every problem is one ``ConfigError`` naming the file and line; lines are read bounded
(``MAX_LINE_BYTES``), so a file without newlines is refused, never read whole.
"""

import csv
import math
from dataclasses import dataclass

import numpy as np

from edgecollab import files
from edgecollab.errors import ConfigError

FORMATS = ('mahimahi', 'twocol', 'csv')
MAHIMAHI_PACKET_BITS = 1500 * 8
DEFAULT_STEP_S = 0.1


@dataclass
class Trace:
    """A capacity step function (times in s from 0, rates in Mbit/s)."""
    times_s: np.ndarray
    rate_mbit: np.ndarray
    duration_s: float
    source: str = ''
    loop: bool = True

    def rate_at(self, t_s):
        """The capacity at time t_s (looping or holding the last value past the end)."""
        t = np.asarray(t_s, dtype=float)
        if self.loop:
            t = np.mod(t, self.duration_s)
        index = np.clip(np.searchsorted(self.times_s, t, side='right') - 1, 0,
                        len(self.times_s) - 1)
        return self.rate_mbit[index]

    def mean_between(self, start_s, end_s):
        """The mean capacity over [start_s, end_s) (exact integral of the steps)."""
        if end_s <= start_s:
            return float(self.rate_at(start_s))
        return self.bits_between(start_s, end_s) / 1e6 / (end_s - start_s)

    def bits_between(self, start_s, end_s):
        """The bits the capacity carries over [start_s, end_s)."""
        edges = self._edges(start_s, end_s)
        widths = np.diff(edges)
        return float(np.sum(self.rate_at(edges[:-1]) * widths) * 1e6)

    def _edges(self, start_s, end_s):
        first = math.floor(start_s / self.duration_s) if self.loop else 0
        last = math.floor(end_s / self.duration_s) if self.loop else 0
        points = [self.times_s + k * self.duration_s for k in range(first, last + 1)]
        inner = np.concatenate(points)
        inner = inner[(inner > start_s) & (inner < end_s)]
        return np.concatenate(([start_s], inner, [end_s]))

    def resample(self, step_s=DEFAULT_STEP_S, length_s=None):
        """Rates averaged over consecutive steps of step_s covering length_s (default
        the trace's own duration)."""
        if not step_s > 0:
            raise ConfigError('resample step must be > 0 s, got %r' % step_s)
        length_s = self.duration_s if length_s is None else length_s
        count = max(1, int(math.ceil(length_s / step_s - 1e-9)))
        starts = np.arange(count) * step_s
        return starts, np.array([self.mean_between(t, t + step_s) for t in starts])

    def transformed(self, scale=1.0, offset_mbit=0.0, loop=True):
        """A copy with rate x scale + offset (clipped at 0) and the given looping."""
        if scale < 0:
            raise ConfigError('trace scale must be >= 0, got %r' % scale)
        return Trace(self.times_s, np.maximum(self.rate_mbit * scale + offset_mbit, 0.0),
                     self.duration_s, self.source, loop)

    def stats(self, step_s=DEFAULT_STEP_S):
        """Mean (time-weighted), p5, p95, min, max (Mbit/s) and duration (s)."""
        _, rates = self.resample(step_s)
        return {'mean_mbit': self.mean_between(0.0, self.duration_s),
                'p5_mbit': float(np.percentile(rates, 5)),
                'p95_mbit': float(np.percentile(rates, 95)),
                'min_mbit': float(np.min(self.rate_mbit)),
                'max_mbit': float(np.max(self.rate_mbit)),
                'duration_s': self.duration_s, 'steps': int(len(self.times_s))}


def constant(rate_mbit, duration_s=3600.0):
    """A constant capacity."""
    return Trace(np.array([0.0]), np.array([float(rate_mbit)]), float(duration_s),
                 'constant %g Mbit/s' % rate_mbit)


# reading
MAX_LINE_BYTES = 4096    # longer lines are not a trace: refused before they are held


def _open(path):
    try:
        return open(path, 'rb')
    except OSError as exc:
        raise ConfigError('%s: %s' % (path, exc.strerror)) from None


def _line_text(raw, path, number):
    """The text of one raw line (at most MAX_LINE_BYTES + 1 bytes), or a ConfigError."""
    if len(raw) > MAX_LINE_BYTES:
        raise ConfigError('%s:%d: a line longer than %d bytes: not a text trace'
                          % (path, number, MAX_LINE_BYTES))
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        text = '\0'
    if '\0' in text:
        raise ConfigError('%s:%d: not a text trace (binary data)' % (path, number))
    return text


def _text_lines(path):
    """(line number, text line) of path, read one bounded line at a time, so a huge
    file without newlines (binary data, a sparse file) is refused, never held whole."""
    with _open(path) as src:
        number = 0
        while True:
            raw = src.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            yield number, _line_text(raw, path, number)


def _lines(path):
    """(line number, stripped line) of path (see _text_lines)."""
    for number, text in _text_lines(path):
        yield number, text.strip()


def _number(text, path, number, what):
    if text is None:
        raise ConfigError('%s:%d: %s is missing' % (path, number, what))
    try:
        value = float(text)
    except ValueError:
        raise ConfigError('%s:%d: %s %r is not a number' % (path, number, what, text)) \
            from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError('%s:%d: %s %r must be a finite number >= 0'
                          % (path, number, what, text))
    return value


def detect(path):
    """The format of path from its first non-empty line."""
    for number, line in _lines(path):
        if not line:
            continue
        if ',' in line:
            return 'csv'
        fields = line.split()
        if len(fields) == 1:
            return 'mahimahi'
        if len(fields) == 2:
            return 'twocol'
        raise ConfigError('%s:%d: cannot tell the trace format (%d columns; known: %s)'
                          % (path, number, len(fields), ', '.join(FORMATS)))
    raise ConfigError('%s: the trace is empty' % path)


def load(path, fmt='auto', column=None, bin_s=DEFAULT_STEP_S):
    """The Trace in path (format detected unless given)."""
    fmt = detect(path) if fmt == 'auto' else fmt
    if fmt not in FORMATS:
        raise ConfigError('%s: unknown trace format %r (known: auto, %s)'
                          % (path, fmt, ', '.join(FORMATS)))
    if fmt == 'mahimahi':
        return _load_mahimahi(path, bin_s)
    if fmt == 'csv':
        return _load_csv(path, column)
    return _load_twocol(path)


CHUNK_BYTES = 1 << 18
_CANONICAL = np.zeros(256, dtype=bool)       # bytes of a line in the fast path's form
_CANONICAL[ord('0'):ord('9') + 1] = True
_CANONICAL[ord('\n')] = True


def _blocks(path):
    """Blocks of whole lines of path, about CHUNK_BYTES each (the last may lack its
    newline); a run of more than MAX_LINE_BYTES without a newline ends the blocks with
    that too-long line, which the line check then refuses."""
    with _open(path) as src:
        rest = b''
        while True:
            data = src.read(CHUNK_BYTES)
            if not data:
                if rest:
                    yield rest
                return
            data = rest + data
            cut = data.rfind(b'\n') + 1
            if cut == 0 and len(data) > MAX_LINE_BYTES:
                yield data[:MAX_LINE_BYTES + 1]
                return
            rest = data[cut:]
            if cut:
                yield data[:cut]


def _canonical_values(block, last_ms):
    """The timestamps of a block of lines 'digits\\n' (no blanks, spaces or other
    bytes, at most 18 digits, non-decreasing from last_ms), parsed in C; None when the
    block needs the line-by-line check."""
    if not block.endswith(b'\n') or block.startswith(b'\n') or b'\n\n' in block:
        return None
    raw = np.frombuffer(block, dtype=np.uint8)
    if not _CANONICAL[raw].all():
        return None
    ends = np.flatnonzero(raw == ord('\n'))
    if np.max(np.diff(ends, prepend=-1)) > 19:
        return None
    values = np.fromstring(block, dtype=np.int64, sep=' ')
    if values.size != ends.size or np.any(np.diff(values) < 0) or \
            (last_ms is not None and values[0] < last_ms):
        return None
    return values


def _checked_values(block, path, first_number, last_ms):
    """The timestamps of a block of lines, line by line, with the error naming the line."""
    values = []
    pieces = block.split(b'\n')
    if not pieces[-1]:
        pieces.pop()
    for offset, raw in enumerate(pieces):
        number = first_number + offset
        line = _line_text(raw, path, number).strip()
        if not line:
            continue
        if not (line.isascii() and line.isdigit()):
            raise ConfigError('%s:%d: a Mahimahi line is one integer millisecond, got %r'
                              % (path, number, line[:40]))
        ms = int(line)
        if last_ms is not None and ms < last_ms:
            raise ConfigError('%s:%d: timestamp %d ms is before the previous %d ms'
                              % (path, number, ms, last_ms))
        values.append(ms)
        last_ms = ms
    return np.array(values, dtype=np.int64)


def _load_mahimahi(path, bin_s):
    # Streamed in blocks and counted into bins: memory holds one block and the bins.
    counts = np.zeros(0, dtype=np.int64)
    number, lines, last_ms = 1, 0, None
    bin_ms = max(1, int(round(bin_s * 1000)))
    for block in _blocks(path):
        values = _canonical_values(block, last_ms)
        if values is None:
            values = _checked_values(block, path, number, last_ms)
        number += block.count(b'\n')
        if values.size:
            # Opportunities at ms t deliver within (t-1, t]: bin by the millisecond's start.
            found = np.bincount(np.maximum(values - 1, 0) // bin_ms)
            if found.size > counts.size:
                counts = np.concatenate((counts, np.zeros(found.size - counts.size,
                                                          dtype=np.int64)))
            counts[:found.size] += found
            lines, last_ms = lines + values.size, int(values[-1])
    if not lines:
        raise ConfigError('%s: the trace is empty' % path)
    if last_ms <= 0:
        raise ConfigError('%s: the trace lasts 0 ms' % path)
    duration = last_ms / 1000.0
    bins = int(math.ceil(last_ms / bin_ms))
    times = np.arange(bins) * bin_ms / 1000.0
    widths = np.minimum(times + bin_ms / 1000.0, duration) - times
    counts = np.concatenate((counts, np.zeros(max(0, bins - counts.size), dtype=np.int64)))
    rates = counts[:bins] * MAHIMAHI_PACKET_BITS / widths / 1e6
    return Trace(times, rates, duration, str(path))


def _check_times(times, path, numbers):
    for i in range(1, len(times)):
        if times[i] <= times[i - 1]:
            raise ConfigError('%s:%d: time %g s is not after the previous %g s'
                              % (path, numbers[i], times[i], times[i - 1]))


def _finish(times, rates, path, numbers):
    if not times:
        raise ConfigError('%s: the trace is empty' % path)
    _check_times(times, path, numbers)
    times = np.array(times) - times[0]
    # The last sample lasts as long as the mean step before it (1 s for one sample).
    last = float(np.mean(np.diff(times))) if len(times) > 1 else 1.0
    return Trace(times, np.array(rates), float(times[-1] + last), str(path))


def _load_twocol(path):
    times, rates, numbers = [], [], []
    for number, line in _lines(path):
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ConfigError('%s:%d: expected 2 columns (time_s rate_mbit), got %d'
                              % (path, number, len(fields)))
        times.append(_number(fields[0], path, number, 'time'))
        rates.append(_number(fields[1], path, number, 'rate'))
        numbers.append(number)
    return _finish(times, rates, path, numbers)


def _load_csv(path, column):
    times, rates, numbers = [], [], []
    try:
        reader = csv.DictReader(text for _, text in _text_lines(path))
        header = reader.fieldnames or []
        column = column or 'rate_mbit'
        for need in ('time_s', column):
            if need not in header:
                raise ConfigError('%s:1: CSV needs a %r column (has: %s)'
                                  % (path, need, ', '.join(header) or 'none'))
        for row in reader:
            number = reader.line_num
            times.append(_number(row['time_s'], path, number, 'time_s'))
            rates.append(_number(row[column], path, number, column))
            numbers.append(number)
    except csv.Error as exc:
        raise ConfigError('%s: bad CSV: %s' % (path, exc)) from None
    return _finish(times, rates, path, numbers)


def checksum(path):
    """sha256 of a trace file (recorded in a run's metadata)."""
    return files.sha256(path)


# writing
def write(trace, path, fmt):
    """Write trace to path in fmt (one of FORMATS)."""
    if fmt == 'mahimahi':
        lines = _as_mahimahi(trace)
    elif fmt == 'twocol':
        lines = ['%.3f %.6f' % (t, r) for t, r in zip(trace.times_s, trace.rate_mbit)]
    elif fmt == 'csv':
        lines = ['time_s,rate_mbit'] + ['%.3f,%.6f' % (t, r) for t, r in
                                         zip(trace.times_s, trace.rate_mbit)]
    else:
        raise ConfigError('unknown trace format %r (known: %s)' % (fmt, ', '.join(FORMATS)))
    with open(path, 'w', encoding='ascii') as out:
        out.write('\n'.join(lines) + '\n')


def _as_mahimahi(trace):
    # One line per 12000 bit of cumulative capacity, at the millisecond it is reached.
    total_ms = int(round(trace.duration_s * 1000))
    ms = np.arange(1, total_ms + 1)
    per_ms = trace.rate_at((ms - 1) / 1000.0) * 1e6 / 1000.0
    cumulative = np.floor(np.cumsum(per_ms) / MAHIMAHI_PACKET_BITS + 1e-9).astype(int)
    counts = np.diff(np.concatenate(([0], cumulative)))
    lines = [str(m) for m, c in zip(ms, counts) for _ in range(c)]
    if not lines or lines[-1] != str(total_ms):
        lines.append(str(total_ms))     # the last line sets the trace's length
    return lines


# synthetic traces
def steps(levels_mbit, dwell_s):
    """Capacity stepping through levels, each for dwell_s."""
    levels = np.asarray(levels_mbit, dtype=float)
    if levels.size == 0 or np.any(levels < 0) or not dwell_s > 0:
        raise ConfigError('steps need levels >= 0 and a dwell > 0 s')
    return Trace(np.arange(levels.size) * float(dwell_s), levels, levels.size * dwell_s,
                 'steps %s every %gs' % (','.join('%g' % v for v in levels), dwell_s))


def random_walk(mean_mbit, sigma_mbit, step_s, duration_s, seed=0, low_mbit=0.1):
    """A mean-reverting random walk (AR(1), 0.9 memory a step), clipped at low_mbit."""
    if not (mean_mbit > 0 and sigma_mbit >= 0 and step_s > 0 and duration_s >= step_s):
        raise ConfigError('random walk needs mean > 0, sigma >= 0, 0 < step <= duration')
    rng = np.random.default_rng(seed)
    count = int(round(duration_s / step_s))
    rates = np.empty(count)
    value = mean_mbit
    for i in range(count):
        value = mean_mbit + 0.9 * (value - mean_mbit) + rng.normal(0, sigma_mbit)
        rates[i] = max(value, low_mbit)
    return Trace(np.arange(count) * step_s, rates, count * step_s,
                 'random walk mean %g sigma %g seed %d' % (mean_mbit, sigma_mbit, seed))


def on_off(on_mbit, off_mbit, on_s, off_s, duration_s):
    """Capacity alternating between on_mbit for on_s and off_mbit for off_s."""
    if not (on_s > 0 and off_s > 0 and on_mbit >= 0 and off_mbit >= 0 and duration_s > 0):
        raise ConfigError('on-off needs rates >= 0 and durations > 0')
    times, rates, t = [], [], 0.0
    while t < duration_s:
        times += [t, t + on_s]
        rates += [on_mbit, off_mbit]
        t += on_s + off_s
    keep = np.array(times) < duration_s
    return Trace(np.array(times)[keep], np.array(rates)[keep], float(duration_s),
                 'on-off %g/%g Mbit/s %g/%g s' % (on_mbit, off_mbit, on_s, off_s))
