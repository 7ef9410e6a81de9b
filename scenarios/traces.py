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

A recording is read as it is, with a ``Reading``: the rate column and its unit
(``RATE_UNITS``: kbit/s, bytes/s, ...), the time column and either its unit (``s``,
``ms``, ...) or a ``strptime`` format for timestamps such as ``2021.03.01_10.15.02``, or
no time column at all (``interval``: row i at i x interval).  Two rules make any such
file a step function: rows that share a time (a timestamp with whole seconds, several
rows a second) are spread evenly over the step to the next time, and a gap (a missing
time, a step over twice the usual one) holds the rate before it, with a notice.
``Trace.window`` cuts ``start``/``duration`` from a long recording.

Every problem is one ``ConfigError`` naming the file and line; lines are read bounded
(``MAX_LINE_BYTES``), so a file without newlines is refused, never read whole.
"""

import calendar
import collections.abc
import csv
import logging
import math
import os
import time as time_mod
from array import array
from dataclasses import dataclass

import numpy as np

from edgecollab import files
from edgecollab.kinds import TraceFormat
from edgecollab.topologies.linkshare import MAX_CAPACITY_MBIT, MIN_CAPACITY_MBIT
from edgecollab.errors import ConfigError

log = logging.getLogger(__name__)

FORMATS = tuple(f for f in TraceFormat if f != TraceFormat.AUTO)   # the ones read
# A rate column's unit: Mbit/s per unit.
RATE_UNITS = {'bit/s': 1e-6, 'bps': 1e-6, 'kbit/s': 1e-3, 'kbps': 1e-3, 'Mbit/s': 1.0,
              'Mbps': 1.0, 'Gbit/s': 1e3, 'Gbps': 1e3, 'B/s': 8e-6, 'bytes/s': 8e-6,
              'kB/s': 8e-3, 'KB/s': 8e-3, 'MB/s': 8.0}
# A numeric time column's unit: seconds per unit.
TIME_UNITS = {'s': 1.0, 'ms': 1e-3, 'us': 1e-6, 'min': 60.0}
GAP_STEPS = 2.0                # a step longer than this many usual steps is a gap
MAHIMAHI_PACKET_BITS = 1500 * 8
DEFAULT_STEP_S = 0.1
# A trace's cost must follow its file's size: a few bytes may not ask for years of bins.
MAX_DURATION_S = 86400.0       # a day: longer runs loop the trace
MAX_STEPS = 10 ** 7            # steps a generated or resampled trace may have
MAX_MAHIMAHI_LINES = 10 ** 8   # lines a conversion to Mahimahi may write (about 1 GB)


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
        return float(self._cumulative([end_s])[0] - self._cumulative([start_s])[0]) * 1e6

    def _cumulative(self, t_s):
        """Mbit carried from 0 to each time in t_s (vectorised): whole loops, then the
        steps of the last one; without looping the last rate holds past the end."""
        t = np.asarray(t_s, dtype=float)
        widths = np.diff(np.append(self.times_s, self.duration_s))
        start_mbit = np.concatenate(([0.0], np.cumsum(self.rate_mbit * widths)))
        per_loop = start_mbit[-1]
        if self.loop:
            loops = np.floor(t / self.duration_s)
            inner = t - loops * self.duration_s
        else:
            loops, inner = np.zeros_like(t), np.minimum(t, self.duration_s)
        index = np.clip(np.searchsorted(self.times_s, inner, side='right') - 1, 0,
                        len(self.times_s) - 1)
        total = loops * per_loop + start_mbit[index] + self.rate_mbit[index] * (
            inner - self.times_s[index])
        if not self.loop:
            total = total + self.rate_mbit[-1] * np.maximum(t - self.duration_s, 0.0)
        return total

    def resample(self, step_s=DEFAULT_STEP_S, length_s=None):
        """Rates averaged over consecutive steps of step_s covering length_s (default
        the trace's own duration)."""
        if not step_s > 0:
            raise ConfigError('resample step must be > 0 s, got %r' % step_s)
        length_s = self.duration_s if length_s is None else length_s
        count = max(1, int(math.ceil(length_s / step_s - 1e-9)))
        if count > MAX_STEPS:
            raise ConfigError('%g s in steps of %g s are more than %d steps'
                              % (length_s, step_s, MAX_STEPS))
        starts = np.arange(count) * step_s
        edges = self._cumulative(np.append(starts, count * step_s))
        return starts, np.diff(edges) / step_s

    def window(self, start_s=0.0, duration_s=None):
        """The part of the trace from start_s lasting duration_s (to its end when None),
        starting at 0 s: the step in force at start_s first."""
        end = self.duration_s if duration_s is None else start_s + duration_s
        if not 0 <= start_s < self.duration_s:
            raise ConfigError('%s: start %g s is not within the trace (%g s long)'
                              % (self.source, start_s, self.duration_s))
        if not start_s < end <= self.duration_s + 1e-9:
            raise ConfigError('%s: start %g s and duration %g s reach past the trace\'s '
                              'end (%g s)' % (self.source, start_s, end - start_s,
                                              self.duration_s))
        first = int(np.searchsorted(self.times_s, start_s, side='right')) - 1
        last = int(np.searchsorted(self.times_s, end, side='left'))
        times = np.maximum(self.times_s[first:last], start_s) - start_s
        return Trace(times, self.rate_mbit[first:last].copy(),
                     min(end, self.duration_s) - start_s, self.source, self.loop)

    def link_steps(self, step_s, length_s):
        """(rates, clipped) the link applies at each replay step of step_s over
        length_s: the mean over the step, within what the link layer shapes ([0.1,
        10000] Mbit/s; clipped marks the steps that were not).  The one rule of both
        backends: the Mininet replayer applies these rates, the fluid backend
        integrates them (as_link)."""
        _, means = self.resample(step_s, length_s)
        rates = np.clip(means, MIN_CAPACITY_MBIT, MAX_CAPACITY_MBIT)
        return rates, rates != means

    def as_link(self, step_s, length_s):
        """The trace as the link applies it over length_s (link_steps): a step function
        holding its last step past length_s."""
        rates, _ = self.link_steps(step_s, length_s)
        return Trace(np.arange(len(rates)) * step_s, rates, len(rates) * step_s,
                     self.source, loop=False)

    def shifted(self, offset_s):
        """The trace started offset_s into itself: a looping one wraps around (its part
        before offset_s follows its end), one that does not loop starts later."""
        offset_s = float(offset_s) % self.duration_s
        if offset_s == 0:
            return self
        later = self.window(offset_s)
        if not self.loop:
            return later
        before = self.window(0.0, offset_s)
        return Trace(np.concatenate((later.times_s, before.times_s + later.duration_s)),
                     np.concatenate((later.rate_mbit, before.rate_mbit)),
                     self.duration_s, self.source, self.loop)

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


class Channels(collections.abc.Sequence):
    """Per-device channels (Traces, in device order) as the link applies them at each
    replay step of step_s over length_s (link_steps): the one home of their mean (the
    fleet's capacity, ``fleet``) and of each one relative to it, for the scenario's first
    plan, the Mininet replayer, the fluid backend and what oracle knows.  A sequence of
    the Traces as given (what a forecast reads)."""

    def __init__(self, each, step_s, length_s):
        self.each = tuple(each)
        self.step_s, self.length_s = step_s, length_s
        stepped = [c.link_steps(step_s, length_s) for c in self.each]
        self.rates = np.array([r for r, _ in stepped])          # [device, step] Mbit/s
        self.clipped = np.any([c for _, c in stepped], axis=0)  # per step
        times = np.arange(self.rates.shape[1]) * step_s
        end = self.rates.shape[1] * step_s
        self.links = [Trace(times, r, end, c.source, loop=False)
                      for r, c in zip(self.rates, self.each)]
        self.fleet = Trace(times, self.rates.mean(axis=0), end,
                           'the mean of %d channels' % len(self.each), loop=False)

    def __getitem__(self, index):
        return self.each[index]

    def __len__(self):
        return len(self.each)

    def relative_steps(self):
        """[each channel's rate relative to the fleet's] at each step."""
        return (self.rates / self.fleet.rate_mbit).T

    def means_between(self, start_s, end_s):
        """Each channel's mean over [start_s, end_s), as the link applies it."""
        return [float(link.mean_between(start_s, end_s)) for link in self.links]

    def relative_between(self, start_s, end_s):
        """Each channel's mean over [start_s, end_s) relative to the fleet's (the rates
        a plan on per-device channels is made with: a device at 2 gets twice the fleet's
        mean from a share)."""
        fleet = max(float(self.fleet.mean_between(start_s, end_s)), MIN_CAPACITY_MBIT)
        return tuple(max(m, MIN_CAPACITY_MBIT) / fleet
                     for m in self.means_between(start_s, end_s))

    def shifted(self, offset_s):
        """The channels each started offset_s into itself (Trace.shifted)."""
        return Channels([c.shifted(offset_s) for c in self.each], self.step_s,
                        self.length_s)


def constant(rate_mbit, duration_s=3600.0):
    """A constant capacity."""
    return Trace(np.array([0.0]), np.array([float(rate_mbit)]), float(duration_s),
                 'constant %g Mbit/s' % rate_mbit)


# reading
MAX_LINE_BYTES = 4096    # longer lines are not a trace: refused before they are held


def _open(path):
    try:
        return files.open_regular(path)
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
    """(line number, stripped line) of path (see _text_lines); a UTF-8 byte-order mark
    is dropped and a comment line ('# ...') reads as empty."""
    for number, text in _text_lines(path):
        line = text.lstrip('\ufeff').strip() if number == 1 else text.strip()
        yield number, '' if line.startswith('#') else line


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
            return TraceFormat.CSV
        fields = line.split()
        if len(fields) == 1:
            return TraceFormat.MAHIMAHI
        if len(fields) == 2:
            return TraceFormat.TWOCOL
        raise ConfigError('%s:%d: cannot tell the trace format (%d columns; known: %s)'
                          % (path, number, len(fields), ', '.join(FORMATS)))
    raise ConfigError('%s: the trace is empty' % path)


@dataclass(frozen=True)
class Reading:
    """How a trace file's columns are read (a trace mapping's keys, the trace tools'
    flags).  column: the CSV rate column (default rate_mbit); unit: its unit
    (RATE_UNITS); time_column: the CSV time column; time_format: a strptime format of
    its timestamps (else it is a number in time_unit, TIME_UNITS; twocol's first column
    too); interval_s: no time column, row i at i x interval_s."""
    column: str = None
    unit: str = 'Mbit/s'
    time_column: str = 'time_s'
    time_format: str = None
    time_unit: str = 's'
    interval_s: float = None

    def __post_init__(self):
        if self.unit not in RATE_UNITS:
            raise ConfigError('unit %r is unknown (known: %s)'
                              % (self.unit, ', '.join(RATE_UNITS)))
        if self.time_unit not in TIME_UNITS:
            raise ConfigError('time unit %r is unknown (known: %s)'
                              % (self.time_unit, ', '.join(TIME_UNITS)))
        if self.interval_s is not None and not (
                math.isfinite(self.interval_s) and 0 < self.interval_s <= MAX_DURATION_S):
            raise ConfigError('interval must be in (0, %g] s, got %r'
                              % (MAX_DURATION_S, self.interval_s))

    @property
    def plain(self):
        """True when it reads the formats' own columns as they are."""
        return self == Reading(column=self.column)

    def rate(self, text, path, number, what):
        """The rate in a cell, in Mbit/s."""
        return _number(text, path, number, what) * RATE_UNITS[self.unit]

    def time(self, text, path, number):
        """The time in a cell, in seconds (a timestamp: since the epoch, as UTC)."""
        if self.time_format is None:
            return _number(text, path, number, self.time_column) * TIME_UNITS[self.time_unit]
        try:
            return float(calendar.timegm(time_mod.strptime(str(text).strip(),
                                                           self.time_format)))
        except (TypeError, ValueError):
            raise ConfigError('%s:%d: %s %r does not match the time format %r'
                              % (path, number, self.time_column, text, self.time_format)) \
                from None


def load(path, fmt=TraceFormat.AUTO, column=None, bin_s=DEFAULT_STEP_S, reading=None):
    """The Trace in path (format detected unless given), its columns read as reading
    says (a Reading; default: the format's own columns, column the CSV rate column)."""
    reading = reading or Reading(column=column)
    fmt = detect(path) if fmt == TraceFormat.AUTO else fmt
    if fmt not in FORMATS:
        raise ConfigError('%s: unknown trace format %r (known: auto, %s)'
                          % (path, fmt, ', '.join(FORMATS)))
    if fmt == TraceFormat.MAHIMAHI:
        if not reading.plain:
            raise ConfigError('%s: a Mahimahi trace has no columns: a unit, time or '
                              'interval does not apply to it' % path)
        return _load_mahimahi(path, bin_s)
    if fmt == TraceFormat.CSV:
        return _load_csv(path, reading)
    return _load_twocol(path, reading)


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
            (last_ms is not None and values[0] < last_ms) or \
            values[-1] > MAX_DURATION_S * 1000:
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
        line = _line_text(raw, path, number)
        line = (line.lstrip('\ufeff') if number == 1 else line).strip()
        if not line or line.startswith('#'):
            continue
        if not (line.isascii() and line.isdigit()):
            raise ConfigError('%s:%d: a Mahimahi line is one integer millisecond, got %r'
                              % (path, number, line[:40]))
        if len(line) > 15 or int(line) > MAX_DURATION_S * 1000:
            raise ConfigError('%s:%d: timestamp %s ms is past the %g s a trace may last'
                              % (path, number, line[:20], MAX_DURATION_S))
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


class _Samples:
    """The (time, rate) samples of a trace as they are read: held compactly (8 bytes a
    number, not a Python float each) and checked in order as they come, so a trace of
    ten million lines costs about 160 MB, not gigabytes."""

    def __init__(self, path):
        self.path = path
        self.times, self.rates = array('d'), array('d')
        self.last_number = None

    def add(self, time_s, rate, number):
        """One sample read from line number (its time may repeat the previous one's)."""
        if self.times and time_s < self.times[-1]:
            raise ConfigError('%s:%d: time %g s is before the previous %g s'
                              % (self.path, number, time_s, self.times[-1]))
        self.times.append(time_s)
        self.rates.append(rate)
        self.last_number = number

    def extend(self, times_s, rates, first_number, last_number):
        """Samples already checked (finite, >= 0, times rising) from a block of lines;
        False, taking none, when their first time is not after the last one held."""
        if self.times and times_s[0] <= self.times[-1]:
            return False
        self.times.frombytes(np.ascontiguousarray(times_s, dtype=np.float64).tobytes())
        self.rates.frombytes(np.ascontiguousarray(rates, dtype=np.float64).tobytes())
        self.last_number = last_number
        return True


def _spread(times, path):
    """times (non-decreasing) with each run of k equal times spread evenly over the step
    to the next time (the usual step after the last); a notice of the repeats and of
    the gaps (steps over GAP_STEPS usual ones, which hold the rate before them)."""
    steps = np.diff(times)
    if steps.size and not steps.all():             # some times repeat (a step of 0)
        distinct, first, counts = np.unique(times, return_index=True, return_counts=True)
        steps = np.diff(distinct)
    else:
        distinct, first, counts = times, None, None
    usual = float(np.median(steps)) if steps.size else 1.0
    if counts is not None:
        nxt = np.append(distinct[1:], distinct[-1] + usual)
        width = (nxt - distinct) / counts
        within = np.arange(times.size) - np.repeat(first, counts)
        times = np.repeat(distinct, counts) + within * np.repeat(width, counts)
        log.warning('%s: %d rows share their time with the row before: spread evenly '
                    'over their step', path, times.size - counts.size)
    gaps = int(np.count_nonzero(steps > GAP_STEPS * usual)) if steps.size else 0
    if gaps:
        log.warning('%s: %d gaps in its times (the longest %g s, the usual step %g s): '
                    'the rate before each gap holds through it', path, gaps,
                    float(steps.max()), usual)
    return times


def _finish(samples, duration_s=None):
    path = samples.path
    if not samples.times:
        raise ConfigError('%s: the trace is empty' % path)
    times = np.frombuffer(samples.times, dtype=np.float64)
    if times[-1] - times[0] > MAX_DURATION_S:
        raise ConfigError('%s:%d: time %g s is past the %g s a trace may last'
                          % (path, samples.last_number, times[-1], MAX_DURATION_S))
    times = _spread(times, path) - times[0]
    # The last sample lasts as long as the file says (a '# duration_s' line, as
    # edgecollab writes it), else as long as the mean step before it (1 s for one).
    last = float(times[-1] / (len(times) - 1)) if len(times) > 1 else 1.0
    duration = times[-1] + last if duration_s is None else duration_s
    if not times[-1] < duration <= MAX_DURATION_S:
        raise ConfigError('%s: duration_s %g must be after the last step (%g s) and at most '
                          '%g s' % (path, duration, times[-1], MAX_DURATION_S))
    return Trace(times, np.frombuffer(samples.rates, dtype=np.float64).copy(),
                 float(duration), str(path))


def _duration_comment(path):
    """The duration a '# duration_s X' line in path's leading comments gives, or None."""
    for number, text in _text_lines(path):
        words = text.lstrip('\ufeff').split()
        if words[:2] == ['#', 'duration_s'] and len(words) == 3:
            return _number(words[2], path, number, 'duration_s')
        if words and not words[0].startswith('#'):
            return None
    return None


_TWOCOL = np.zeros(256, dtype=bool)          # bytes of a line in the fast path's form
_TWOCOL[[ord(c) for c in '0123456789. \n']] = True


def _twocol_block(block):
    """(times, rates) of a block of lines 'number number\\n' (digits and points, one
    space between, no blank line), parsed in C, every number finite and >= 0 and the
    times rising; None when the block needs the line-by-line check."""
    lines = block.count(b'\n')
    if not block.endswith(b'\n') or block.count(b' ') != lines or b'\n\n' in block or \
            b' \n' in block or b'\n ' in block or block.startswith((b' ', b'\n')):
        return None
    if not _TWOCOL[np.frombuffer(block, dtype=np.uint8)].all():
        return None
    values = np.fromstring(block, dtype=np.float64, sep=' ')
    if values.size != 2 * lines:
        return None
    times, rates = values[0::2], values[1::2]
    if not np.isfinite(values).all() or np.any(np.diff(times) <= 0):
        return None
    return times, rates


def _twocol_line(samples, path, number, line, reading):
    fields = line.split()
    if len(fields) != 2:
        raise ConfigError('%s:%d: expected 2 columns (time_s rate_mbit), got %d'
                          % (path, number, len(fields)))
    samples.add(_number(fields[0], path, number, 'time') * TIME_UNITS[reading.time_unit],
                reading.rate(fields[1], path, number, 'rate'), number)


def _load_twocol(path, reading=Reading()):
    # Streamed in blocks: a block of plain lines is parsed in C, any other line by line
    # (comments, a byte-order mark, tabs, a damaged line: its error names it).
    samples, number = _Samples(path), 1
    for block in _blocks(path):
        parsed = _twocol_block(block)
        lines = block.count(b'\n') + (0 if block.endswith(b'\n') else 1)
        if parsed is None or not samples.extend(
                parsed[0] * TIME_UNITS[reading.time_unit],
                parsed[1] * RATE_UNITS[reading.unit], number, number + lines - 1):
            pieces = block.split(b'\n')
            if not pieces[-1]:
                pieces.pop()
            for offset, raw in enumerate(pieces):
                line = _line_text(raw, path, number + offset)
                line = (line.lstrip('\ufeff') if number + offset == 1 else line).strip()
                if line and not line.startswith('#'):
                    _twocol_line(samples, path, number + offset, line, reading)
        number += lines
    return _finish(samples, _duration_comment(path))


def _load_csv(path, reading=Reading()):
    samples = _Samples(path)
    try:
        reader = csv.DictReader(text.lstrip('\ufeff') for _, text in _text_lines(path)
                                if not text.lstrip('\ufeff').startswith('#'))
        header = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = header
        column = reading.column or 'rate_mbit'
        timed = reading.interval_s is None
        for need in ((reading.time_column,) if timed else ()) + (column,):
            if need not in header:
                raise ConfigError('%s:1: CSV needs a %r column (has: %s)%s'
                                  % (path, need, ', '.join(header) or 'none',
                                     '; name the time column with time: {column: ...} or '
                                     'give interval:' if need == reading.time_column
                                     else ''))
        for index, row in enumerate(reader):
            number = reader.line_num
            at = reading.time(row[reading.time_column], path, number) if timed else \
                index * reading.interval_s
            samples.add(at, reading.rate(row[column], path, number, column), number)
    except csv.Error as exc:
        raise ConfigError('%s: bad CSV: %s' % (path, exc)) from None
    return _finish(samples, _duration_comment(path))


def checksum(path):
    """sha256 of a trace file (recorded in a run's metadata)."""
    return files.sha256(path)


# writing
def write(trace, path, fmt):
    """Write trace to path in fmt (one of FORMATS)."""
    if fmt not in FORMATS:
        raise ConfigError('unknown trace format %r (known: %s)' % (fmt, ', '.join(FORMATS)))
    if os.path.isdir(path):
        raise ConfigError('%s is a folder: name a file to write' % path)
    # Written beside it and renamed over it when whole: a failed conversion leaves no
    # empty or half file, and a named pipe at path is replaced, not written into.
    partial = '%s.partial' % path
    try:
        with open(partial, 'w', encoding='ascii') as out:
            if fmt == TraceFormat.MAHIMAHI:
                _write_mahimahi(trace, out)
            elif fmt == TraceFormat.TWOCOL:
                out.write('# duration_s %.6f\n' % trace.duration_s)
                out.writelines('%.6f %.6f\n' % (t, r)
                               for t, r in zip(trace.times_s, trace.rate_mbit))
            else:
                out.write('# duration_s %.6f\ntime_s,rate_mbit\n' % trace.duration_s)
                out.writelines('%.6f,%.6f\n' % (t, r)
                               for t, r in zip(trace.times_s, trace.rate_mbit))
        os.replace(partial, path)
    except OSError as exc:
        raise ConfigError('%s: %s' % (path, exc.strerror)) from None
    finally:
        if os.path.lexists(partial):
            os.unlink(partial)


def _write_mahimahi(trace, out, chunk=1 << 20):
    """One line per 1500-byte delivery opportunity, at the millisecond the cumulative
    capacity reaches it (the last line sets the trace's length); written in chunks of
    opportunities, so memory stays bounded however long the trace."""
    packet_mbit = MAHIMAHI_PACKET_BITS / 1e6
    total = float(trace._cumulative([trace.duration_s])[0])
    if total / packet_mbit > MAX_MAHIMAHI_LINES:
        raise ConfigError('the trace carries %.3g packets: more than the %d lines a '
                          'Mahimahi file may have' % (total / packet_mbit, MAX_MAHIMAHI_LINES))
    count = int(math.floor(total / packet_mbit + 1e-9))
    # The cumulative capacity at each step's start; where it stays flat (rate 0) an
    # opportunity waits for the flat part's end.
    times = np.append(trace.times_s, trace.duration_s)
    reached = trace._cumulative(times)
    last = np.r_[reached[1:] > reached[:-1], True]
    times, reached = times[last], reached[last]
    # The opportunities' milliseconds are rounded up: so is the trace's last line, or a
    # duration of 3.0007 s ended on 3001 after an opportunity at 3002.
    total_ms = int(math.ceil(trace.duration_s * 1000 - 1e-6))
    final = 0
    for first in range(1, count + 1, chunk):
        k = np.arange(first, min(first + chunk, count + 1))
        ms = np.maximum(np.ceil(np.interp(k * packet_mbit, reached, times) * 1000 - 1e-6),
                        1).astype(np.int64)
        out.write('\n'.join(map(str, ms.tolist())) + '\n')
        final = int(ms[-1])
    if final < total_ms:
        out.write('%d\n' % total_ms)


# synthetic traces
def steps(levels_mbit, dwell_s):
    """Capacity stepping through levels, each for dwell_s."""
    levels = np.asarray(levels_mbit, dtype=float)
    if levels.size == 0 or np.any(levels < 0) or not dwell_s > 0:
        raise ConfigError('steps need levels >= 0 and a dwell > 0 s')
    _check_generated(levels.size * dwell_s, levels.size, levels)
    return Trace(np.arange(levels.size) * float(dwell_s), levels, levels.size * dwell_s,
                 'steps %s every %gs' % (','.join('%g' % v for v in levels), dwell_s))


def random_walk(mean_mbit, sigma_mbit, step_s, duration_s, seed=0, low_mbit=0.1):
    """A mean-reverting random walk (AR(1), 0.9 memory a step), clipped at low_mbit."""
    if not (mean_mbit > 0 and sigma_mbit >= 0 and step_s > 0 and duration_s >= step_s):
        raise ConfigError('random walk needs mean > 0, sigma >= 0, 0 < step <= duration')
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError('seed must be an integer >= 0, got %r' % (seed,))
    count = int(round(duration_s / step_s))
    _check_generated(duration_s, count, [mean_mbit + 10 * sigma_mbit])
    rng = np.random.default_rng(seed)
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
    _check_generated(duration_s, 2 * duration_s / (on_s + off_s), [on_mbit, off_mbit])
    times, rates, t = [], [], 0.0
    while t < duration_s:
        times += [t, t + on_s]
        rates += [on_mbit, off_mbit]
        t += on_s + off_s
    keep = np.array(times) < duration_s
    return Trace(np.array(times)[keep], np.array(rates)[keep], float(duration_s),
                 'on-off %g/%g Mbit/s %g/%g s' % (on_mbit, off_mbit, on_s, off_s))


def _check_generated(duration_s, steps, rates_mbit):
    """ConfigError unless a synthetic trace of duration_s in steps steps, at most the
    given rates, is one a run can replay."""
    if duration_s > MAX_DURATION_S:
        raise ConfigError('duration %g s is longer than the %g s a trace may last'
                          % (duration_s, MAX_DURATION_S))
    if steps > MAX_STEPS:
        raise ConfigError('%d steps are more than the %d a trace may have'
                          % (steps, MAX_STEPS))
    if max(rates_mbit) > MAX_CAPACITY_MBIT:
        raise ConfigError('rate %g Mbit/s is above the %g Mbit/s a link can be shaped to'
                          % (max(rates_mbit), MAX_CAPACITY_MBIT))

