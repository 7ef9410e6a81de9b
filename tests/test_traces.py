"""Trace loading, validation, stats, conversion, synthesis and the trace CLI."""

import glob
import json
import os
import subprocess
import time
import tracemalloc

import numpy as np
import pytest

from edgecollab import units
from edgecollab.errors import ConfigError
from edgecollab.scenarios import traces
from tests.conftest import PYTHON, REPO, SHARED, shared_path
from tests.helpers import assert_within

SHARED_TRACES = sorted(p for p in glob.glob(os.path.join(SHARED, 'traces', '*', '*'))
                       if not os.path.basename(p).startswith(('README', 'LICENSE')))


def test_every_shared_trace_loads_with_stats():
    shared_path('traces')
    assert SHARED_TRACES
    for path in SHARED_TRACES:
        stats = traces.load(path).stats()
        assert stats['duration_s'] > 0 and stats['mean_mbit'] > 0, path
        assert stats['p5_mbit'] <= stats['mean_mbit'] * 1.5 and \
            stats['p5_mbit'] <= stats['p95_mbit'], path


@pytest.mark.parametrize('name', ['Verizon-LTE-short.up', 'TMobile-LTE-short.down',
                                  'ATT-LTE-driving-2016.up'])
def test_mahimahi_mean_is_lines_times_packet_over_duration(name):
    path = shared_path('traces', 'mahimahi', name)
    with open(path) as src:
        stamps = [int(line) for line in src if line.strip()]
    expected = len(stamps) * 12000 / (stamps[-1] / 1000) / 1e6
    assert_within(traces.load(path).stats()['mean_mbit'], expected, 0.01, name)


def test_twocol_irregular_and_shifted_start():
    path = shared_path('traces', 'fcc', 'trace_797466_http---www.amazon_part1.log')
    trace = traces.load(path)
    assert trace.times_s[0] == 0 and trace.duration_s == pytest.approx(180)
    assert trace.rate_at(0.0) == pytest.approx(0.462624)


def write(tmp_path, text, name='t.txt', mode='w'):
    path = tmp_path / name
    with open(path, mode) as out:
        out.write(text)
    return str(path)


@pytest.mark.parametrize('text,message', [
    ('', 'empty'),
    ('\n\n  \n', 'empty'),
    ('0 5\n2 3\n1 4\n', 'time 1 s is before the previous 2 s'),
    ('0 5\n1 -3\n', 'must be a finite number >= 0'),
    ('0 5\n1 fast\n', 'is not a number'),
    ('10\n5\n', 'before the previous'),
    ('1\n2\nx\n', 'one integer millisecond'),
    ('0 1 2\n', 'cannot tell the trace format'),
    ('time_s,speed\n0,1\n', "needs a 'rate_mbit' column"),
    ('time_s,rate_mbit\n0,1\n1\n', 'rate_mbit is missing'),
])
def test_bad_traces_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        traces.load(write(tmp_path, text))
    assert message in str(err.value) and '\n' not in str(err.value)


def test_binary_garbage_is_refused(tmp_path):
    path = write(tmp_path, bytes(range(256)) * 10, 'g.bin', 'wb')
    with pytest.raises(ConfigError, match='binary'):
        traces.load(path)


@pytest.mark.parametrize('head', [b'', b'1\n2\n', b'0 5\n1 6\n', b'time_s,rate_mbit\n0,5\n'])
def test_one_gigabyte_file_is_refused_without_being_read_whole(tmp_path, head):
    # A 1 GB file with no newline after its head (a sparse file: zeros, costs no disk):
    # `trace inspect` refuses it in one line, exit 2, holding one bounded line at a time.
    path = tmp_path / 'huge.trace'
    with open(path, 'wb') as out:
        out.write(head)
        out.truncate(2 ** 30)
    code, err, peak_mb, seconds = run_measured(
        [PYTHON, '-m', 'edgecollab.cli', 'trace', 'inspect', str(path)], tmp_path)
    print('1 GiB file after %r refused in %.2f s, peak %.0f MB' % (head, seconds, peak_mb))
    assert peak_mb < 200, 'peak resident memory %.0f MB for a 1 GB file' % peak_mb
    assert code == 2, err
    assert err.count('\n') == 1 and 'not a text trace' in err, err


SIZE = 2 ** 28


def test_a_quarter_gigabyte_mahimahi_file_is_inspected_in_bounded_memory(tmp_path):
    # 256 MiB of valid Mahimahi lines (k packets in each millisecond, k varying): `trace
    # inspect` streams it in blocks, its peak memory does not grow with the file (within
    # 50 MB of inspecting a small file: Python and numpy are most of it; read whole, its
    # 120 million lines would take gigabytes).  docs/scenarios.md has a 1 GiB file's
    # figures (SIZE below set to 2 ** 30).
    small = tmp_path / 'small.up'
    small.write_text(''.join('%d\n' % ms for ms in range(1, 1001)))
    _, _, small_mb, _ = run_measured(
        [PYTHON, '-m', 'edgecollab.cli', 'trace', 'inspect', str(small)], tmp_path)
    path = tmp_path / 'huge.up'
    lines, ms = 0, 0
    try:
        with open(path, 'w') as out:
            while out.tell() < SIZE:
                ms += 1
                k = 500 + ms % 1000
                out.write(('%d\n' % ms) * k)
                lines += k
        code, err, peak_mb, seconds = run_measured(
            [PYTHON, '-m', 'edgecollab.cli', 'trace', 'inspect', '--json', str(path)],
            tmp_path)
    finally:
        path.unlink()
    print('%d MiB Mahimahi inspected in %.1f s, peak %.0f MB (a small file: %.0f MB)'
          % (SIZE >> 20, seconds, peak_mb, small_mb))
    assert peak_mb < 200 and peak_mb < small_mb + 50, (
        'peak resident memory %.0f MB for a 1 GB file, %.0f MB for a small one'
        % (peak_mb, small_mb))
    assert code == 0, err
    stats = json.loads((tmp_path / 'out.txt').read_text())
    # inspect prints nine significant digits (not float noise)
    assert_within(stats['mean_mbit'], lines * 12000 / (ms / 1000) / 1e6, 1e-8, 'mean')
    assert stats['duration_s'] == pytest.approx(ms / 1000)


def test_a_long_two_column_trace_is_read_in_bounded_memory(tmp_path):
    # Ten million lines once took 21 s and 1.4 GB (a Python float and list slot a value,
    # three lists); now blocks of plain lines are parsed in C and the samples held 8
    # bytes a number (10 million: 7.8 s, 486 MB, docs/hostile-inputs.md).  Three million
    # here, to keep the suite short: about 50 bytes a line at the peak.
    path = tmp_path / 'long.txt'
    steps = 3 * 10 ** 6
    with open(path, 'w') as out:
        block = 100000
        for start in range(0, steps, block):
            t = np.arange(start, start + block) * 0.001
            out.write(''.join('%.3f %d\n' % (a, 5 + (i % 7))
                              for i, a in zip(range(start, start + block), t)))
    code, err, peak_mb, seconds = run_measured(
        [PYTHON, '-m', 'edgecollab.cli', 'trace', 'inspect', '--json', str(path)], tmp_path)
    path.unlink()
    print('3 million two-column lines inspected in %.1f s, peak %.0f MB' % (seconds, peak_mb))
    assert code == 0, err
    # Two 24 MB arrays of samples and a few copies for the statistics; not gigabytes.
    assert peak_mb < 300, 'peak resident memory %.0f MB' % peak_mb
    stats = json.loads((tmp_path / 'out.txt').read_text())
    assert stats['duration_s'] == pytest.approx(steps * 0.001)


def test_plain_and_irregular_two_column_lines_read_alike(tmp_path):
    # The fast path (plain blocks) and the line-by-line path (tabs, comments, a mark)
    # give the same samples; a damaged line is named by its number in either.
    plain, odd = tmp_path / 'plain.txt', tmp_path / 'odd.txt'
    rows = [(0.5 * i, 3 + i % 4) for i in range(2000)]
    plain.write_text(''.join('%g %g\n' % r for r in rows))
    odd.write_text('\ufeff# a comment\n' + ''.join('%g\t%g\n' % r for r in rows))
    a, b = traces.load(str(plain)), traces.load(str(odd))
    assert np.array_equal(a.times_s, b.times_s) and np.array_equal(a.rate_mbit, b.rate_mbit)
    lines = plain.read_text().splitlines(keepends=True)
    lines[1500] = '749.5 -3\n'
    plain.write_text(''.join(lines))
    with pytest.raises(ConfigError, match=r'plain.txt:1501: rate'):
        traces.load(str(plain))
    lines[1500] = '700 3\n'                      # time going back
    plain.write_text(''.join(lines))
    with pytest.raises(ConfigError, match=r'plain.txt:1501: time 700 s is before'):
        traces.load(str(plain))


# Runs argv[2:] and writes its peak resident KB to argv[1].  A child's ru_maxrss counts
# the memory of the process it was forked from (Linux folds the old address space's
# high-water mark in at exec): forked from the test process (hundreds of MB once the
# browser tests ran) it would measure the test, so a small launcher forks it.
LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], 'w') as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(argv, tmp_path):
    """(exit code, stderr, peak resident MB, seconds) of argv run to its end (stdout
    kept in out.txt), the peak from its own rusage (os.wait4 in a small launcher)."""
    peak = tmp_path / 'peak.txt'
    with open(tmp_path / 'err.txt', 'w+') as err, open(tmp_path / 'out.txt', 'w') as out:
        began = time.monotonic()
        code = subprocess.run([PYTHON, '-c', LAUNCHER, str(peak)] + list(argv), stdout=out,
                              stderr=err).returncode
        seconds = time.monotonic() - began
        err.seek(0)
        return code, err.read(), int(peak.read_text()) / 1024, seconds


def test_large_mahimahi_file_is_streamed(tmp_path):
    # 1 million lines (about 6 MB): read with bounded memory, never held whole.
    path = tmp_path / 'big.up'
    with open(path, 'w') as out:
        for block in range(100):
            base = block * 1000
            out.write(''.join('%d\n' % (base + ms) for ms in range(1, 1001) for _ in range(10)))
    tracemalloc.start()
    trace = traces.load(str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert os.path.getsize(path) > 5e6
    assert peak < 3e6, 'peak %d bytes while reading a %d-byte file' % (peak,
                                                                      os.path.getsize(path))
    assert_within(trace.stats()['mean_mbit'], 10 * 12000 * 1000 / 1e6, 0.001, 'mean')


def test_csv_with_named_column(tmp_path):
    path = write(tmp_path, 'time_s,up,down\n0,1,2\n1,3,4\n', 'c.csv')
    trace = traces.load(path, column='down')
    assert list(trace.rate_mbit) == [2, 4]


@pytest.mark.parametrize('fmt', traces.FORMATS)
def test_convert_round_trip_keeps_the_mean(tmp_path, fmt):
    original = traces.random_walk(10, 3, 0.5, 30, seed=3)
    path = str(tmp_path / ('out.' + fmt))
    traces.write(original, path, fmt)
    again = traces.load(path, fmt)
    assert_within(again.stats()['mean_mbit'], original.stats()['mean_mbit'], 0.01, fmt)


def test_resample_is_the_exact_step_mean():
    trace = traces.steps([10, 20], 1.0)
    starts, rates = trace.resample(0.5)
    assert list(rates) == [10, 10, 20, 20]
    assert trace.mean_between(0.5, 1.5) == pytest.approx(15)
    assert trace.rate_at(2.5) == 10      # loops


def test_synthetic_generators():
    onoff = traces.on_off(20, 1, 2, 3, 20)
    assert onoff.mean_between(0, 20) == pytest.approx((20 * 2 + 1 * 3) / 5 * 1, rel=1e-9)
    walk = traces.random_walk(10, 2, 0.1, 60, seed=1)
    assert np.all(walk.rate_mbit >= 0.1) and abs(walk.stats()['mean_mbit'] - 10) < 2


def test_trace_cli(tmp_path):
    out = str(tmp_path / 'gen.txt')
    done = subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'trace', 'generate', 'steps',
                           '--levels', '20mbit,5mbit', '--dwell', '5s', '-o', out],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'trace', 'inspect', out, '--json'],
                          capture_output=True, text=True)
    assert done.returncode == 0 and '"mean_mbit": 12.5' in done.stdout, done.stdout
    bad = write(tmp_path, '1 1\n0 2\n', 'bad.txt')
    done = subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'trace', 'inspect', bad],
                          capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def trace_cli(*args):
    return subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'trace'] + list(args),
                          capture_output=True, text=True, timeout=120)


def test_a_mahimahi_conversion_never_goes_back_in_time(tmp_path):
    # A duration that is no whole number of milliseconds (3.00105 s here): its last line
    # was rounded down below the last opportunity, rounded up.
    src = write(tmp_path, '0 1000\n1 1000\n2.0007 1000\n', 'odd.txt')
    out = str(tmp_path / 'odd.up')
    done = trace_cli('convert', src, '--to', 'mahimahi', '-o', out)
    assert done.returncode == 0, done.stderr
    done = trace_cli('inspect', out)
    assert done.returncode == 0, done.stderr
    with open(out) as lines:
        stamps = [int(line) for line in lines]
    assert stamps == sorted(stamps) and stamps[-1] == 3002


def test_a_failed_conversion_leaves_no_file_and_a_pipe_is_replaced(tmp_path):
    big = write(tmp_path, '0 10000\n200 10000\n', 'big.txt')     # 3.3e8 packets
    out = tmp_path / 'big.up'
    done = trace_cli('convert', big, '--to', 'mahimahi', '-o', str(out))
    assert done.returncode == 2 and 'Mahimahi' in done.stderr, done.stderr
    assert not out.exists() and not list(tmp_path.glob('*.partial'))
    fifo = tmp_path / 'fifo.txt'
    os.mkfifo(fifo)
    small = write(tmp_path, '0 5\n1 6\n', 'small.txt')
    done = trace_cli('convert', small, '--to', 'twocol', '-o', str(fifo))   # no hang
    assert done.returncode == 0, done.stderr
    assert fifo.is_file() and traces.load(str(fifo)).duration_s == 2.0


BAD_TRACES = sorted(glob.glob(os.path.join(REPO, 'tests', 'data', 'bad-traces', '*')))


@pytest.mark.parametrize('path', BAD_TRACES, ids=os.path.basename)
def test_hostile_traces_give_one_line_quickly(path):
    with open(path, encoding='utf-8') as src:
        expected = src.readline().split('# expect: ', 1)[1].strip()
    began = time.monotonic()
    done = subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'trace', 'inspect', path],
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert expected in lines[0] and path in lines[0], lines
    assert time.monotonic() - began < 60      # wide: a 14-byte file once ran 10 minutes


@pytest.mark.parametrize('name,expected', [
    ('bom-and-comment.csv', [5.0, 7.0]), ('comments.twocol', [5.0, 1.0]),
])
def test_comments_and_a_byte_order_mark_are_read(name, expected):
    trace = traces.load(os.path.join(REPO, 'tests', 'data', 'traces', name))
    assert list(trace.rate_mbit) == expected


def test_mahimahi_comments_are_skipped():
    trace = traces.load(os.path.join(REPO, 'tests', 'data', 'traces', 'comments.mahimahi'),
                        bin_s=0.001)
    assert trace.duration_s == pytest.approx(0.003)
    assert trace.bits_between(0, 0.003) == pytest.approx(3 * traces.MAHIMAHI_PACKET_BITS)


@pytest.mark.parametrize('fmt', ['twocol', 'csv', 'mahimahi'])
def test_a_round_trip_keeps_the_duration_and_the_bits(tmp_path, fmt):
    trace = traces.random_walk(20, 4, 0.5, 30, seed=3)
    path = str(tmp_path / ('t.' + fmt))
    traces.write(trace, path, fmt)
    back = traces.load(path, fmt)
    assert back.duration_s == pytest.approx(trace.duration_s)
    assert back.bits_between(0, 30) == pytest.approx(trace.bits_between(0, 30), rel=1e-3)


@pytest.mark.parametrize('args,words', [
    (['random-walk', '--seed', '-1'], 'seed must be an integer >= 0'),
    (['random-walk', '--duration', '1e9s', '--step', '1ms'], 'longer than the 86400 s'),
    (['steps', '--levels', '5mbit', '--dwell', '1e300s'], 'longer than the 86400 s'),
    (['steps', '--levels', '1e300mbit'], 'above the 10000 Mbit/s'),
])
def test_trace_generate_refuses_what_no_run_can_replay(tmp_path, args, words):
    done = subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'trace', 'generate'] + args +
                          ['-o', str(tmp_path / 'out.txt')], capture_output=True, text=True,
                          timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert not (tmp_path / 'out.txt').exists()


def test_writing_to_a_folder_or_too_many_packets_is_refused(tmp_path):
    with pytest.raises(ConfigError, match='is a folder'):
        traces.write(traces.constant(5.0, 10.0), str(tmp_path), 'twocol')
    with pytest.raises(ConfigError, match='more than the 100000000 lines'):
        traces.write(traces.constant(1e300, 10.0), str(tmp_path / 'x'), 'mahimahi')


def test_resampling_costs_follow_the_steps_not_their_square():
    # Two steps over a day at 100 ms: 864,000 bins (this was quadratic: 1e5 bins, 10.8 s).
    day = traces.Trace(np.array([0.0, 43200.0]), np.array([5.0, 10.0]), 86400.0)
    began = time.monotonic()
    starts, rates = day.resample(0.1)
    assert len(rates) == 864000 and rates[0] == 5.0
    assert rates[-1] == pytest.approx(10.0)
    assert time.monotonic() - began < 30      # wide: well under a second here


@pytest.mark.parametrize('text,mbit', [
    ('10mbit', 10.0), ('10Mbit', 10.0), ('10Mbit/s', 10.0), ('10Mbps', 10.0),
    ('10kbps', 0.01), ('10Mb/s', 10.0), ('10MBps', 80.0), ('10MB/s', 80.0), ('2gbit', 2000.0),
    (15, 15.0)])
def test_rates_read_b_as_a_bit_and_B_as_a_byte(text, mbit):
    assert units.rate_mbit(text) == pytest.approx(mbit)


@pytest.mark.parametrize('text,size', [('100KB', 1e5), ('100kB', 1e5), ('640KiB', 655360),
                                       ('2.5MB', 2.5e6), ('12bytes', 12), (1000, 1000)])
def test_sizes_are_bytes(text, size):
    assert units.size_bytes(text) == pytest.approx(size)


@pytest.mark.parametrize('parse,text', [
    (units.rate_mbit, '10mbps'), (units.rate_mbit, '10MBPS'), (units.size_bytes, '100Kb'),
    (units.size_bytes, '100kb'), (units.size_bytes, '5b'), (units.size_bytes, '1mb')])
def test_a_unit_that_could_be_bits_or_bytes_is_refused(parse, text):
    with pytest.raises(ConfigError, match='could be bits or bytes'):
        parse(text)


def test_trace_generate_reads_levels_in_the_same_grammar(tmp_path):
    out = tmp_path / 'steps.txt'
    done = subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'trace', 'generate', 'steps',
                           '--levels', '10MBps,100kbit', '-o', str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert list(traces.load(str(out)).rate_mbit) == [80.0, 0.1]


FIVE_G = ('Timestamp,Longitude,DL_bitrate,UL_bitrate\n'
          '2021.03.01_10.15.01,11.0,20000,1000\n'
          '2021.03.01_10.15.01,11.0,30000,1000\n'       # the same second twice
          '2021.03.01_10.15.02,11.0,10000,900\n'
          '2021.03.01_10.15.03,11.0,40000,800\n'
          '2021.03.01_10.15.09,11.0,5000,700\n'         # 04-08 missing
          '2021.03.01_10.15.10,11.0,8000,600\n')


def test_a_recording_with_timestamps_and_kbit_is_read_as_it_is(tmp_path, caplog):
    path = write(tmp_path, FIVE_G, 'fiveg.csv')
    reading = traces.Reading(column='DL_bitrate', unit='kbit/s', time_column='Timestamp',
                             time_format='%Y.%m.%d_%H.%M.%S')
    trace = traces.load(path, reading=reading)
    # The two rows of second 01 share it: 0 and 0.5 s; the gap 03-09 holds 40 Mbit/s.
    assert list(trace.times_s) == [0.0, 0.5, 1.0, 2.0, 8.0, 9.0]
    assert list(trace.rate_mbit) == [20.0, 30.0, 10.0, 40.0, 5.0, 8.0]
    # The last row lasts the mean step before it (9 s over 5 steps), as in any trace.
    assert trace.rate_at(5.0) == 40.0 and trace.duration_s == pytest.approx(10.8)
    assert 'share their time' in caplog.text and '1 gaps' in caplog.text
    with pytest.raises(ConfigError, match=r"fiveg.csv:2: Timestamp '2021.03.01_10.15.01' "
                                          r"does not match the time format"):
        traces.load(path, reading=traces.Reading(column='DL_bitrate', time_column='Timestamp',
                                                 time_format='%H:%M:%S'))
    with pytest.raises(ConfigError, match="needs a 'time_s' column.*interval"):
        traces.load(path, reading=traces.Reading(column='DL_bitrate'))


def test_a_recording_without_times_and_other_units_read_with_an_interval(tmp_path):
    path = write(tmp_path, 'seq_num,carrier_mbps\n1,10\n2,20\n3,30\n', 'fivegophers.csv')
    trace = traces.load(path, reading=traces.Reading(column='carrier_mbps', interval_s=1.0))
    assert list(trace.times_s) == [0.0, 1.0, 2.0] and trace.duration_s == 3.0
    bytes_per_s = write(tmp_path, '0 125000\n1 250000\n', 'bytes.txt')
    assert list(traces.load(bytes_per_s, reading=traces.Reading(unit='B/s')).rate_mbit) == \
        [1.0, 2.0]
    ms = write(tmp_path, '0 5\n500 6\n1000 7\n', 'ms.txt')
    assert list(traces.load(ms, reading=traces.Reading(time_unit='ms')).times_s) == \
        [0.0, 0.5, 1.0]
    with pytest.raises(ConfigError, match="unit 'furlongs' is unknown"):
        traces.Reading(unit='furlongs')
    with pytest.raises(ConfigError, match='no columns'):
        traces.load(write(tmp_path, '1\n2\n', 'mm.up'), reading=traces.Reading(unit='B/s'))


def test_a_window_cuts_a_long_recording(tmp_path):
    trace = traces.load(write(tmp_path, ''.join('%d %d\n' % (t, t) for t in range(100))))
    cut = trace.window(10.5, 20)
    assert cut.duration_s == 20 and cut.times_s[0] == 0 and cut.rate_at(0) == 10
    assert cut.rate_at(0.6) == 11 and cut.rate_at(19.9) == 30
    assert trace.window(90).duration_s == 10
    with pytest.raises(ConfigError, match='reach past'):
        trace.window(90, 20)
    with pytest.raises(ConfigError, match='not within'):
        trace.window(100)


def test_a_shifted_trace_wraps_around_and_keeps_its_bits(tmp_path):
    trace = traces.load(write(tmp_path, '0 10\n2 20\n4 30\n', 'three.txt'))   # 6 s
    moved = trace.shifted(3.0)
    assert list(moved.times_s) == [0.0, 1.0, 3.0, 5.0] and moved.duration_s == 6.0
    assert list(moved.rate_mbit) == [20.0, 30.0, 10.0, 20.0]
    assert moved.bits_between(0, 6) == pytest.approx(trace.bits_between(0, 6))
    assert trace.shifted(0.0) is trace and trace.shifted(6.0) is trace
    held = traces.Trace(trace.times_s, trace.rate_mbit, 6.0, 'x', loop=False).shifted(3.0)
    assert list(held.times_s) == [0.0, 1.0] and held.duration_s == 3.0


def test_both_backends_apply_one_clip_rule(tmp_path):
    # The replayer's steps and the fluid backend's link are one function of the trace:
    # each replay step's mean, within [0.1, 10000] Mbit/s.
    from edgecollab.topologies.linkshare import MIN_CAPACITY_MBIT
    trace = traces.load(write(tmp_path, '0 0\n1 5\n2 0.05\n', 'low.txt'))      # 3 s
    rates, clipped = trace.link_steps(0.5, 3.0)
    assert list(rates) == [MIN_CAPACITY_MBIT, MIN_CAPACITY_MBIT, 5.0, 5.0,
                           MIN_CAPACITY_MBIT, MIN_CAPACITY_MBIT]
    assert list(clipped) == [True, True, False, False, True, True]
    link = trace.as_link(0.5, 3.0)
    assert link.bits_between(0, 3) == pytest.approx((4 * 0.1 * 0.5 + 2 * 5 * 0.5) * 1e6)
    assert not link.loop and link.duration_s == 3.0
