"""The delay line's per-path rules without a network: delay traces, jitter without
reordering, Bernoulli and Gilbert-Elliott loss (``topologies/delayline.py``), and the
scenario paths they come from (``topologies/paths.py``)."""

import random
import statistics

import pytest

from edgecollab.errors import ConfigError
from edgecollab.topologies.delayline import Path as LinePath
from edgecollab.topologies.paths import Bursts, DelaySteps, Path


def frames(path, count, gap_s=0.001):
    """(arrival, due or None) of count frames gap_s apart, the schedule's clock at 0."""
    return [(k * gap_s, path.due(k * gap_s, k * gap_s)) for k in range(count)]


def test_a_delay_trace_holds_each_frame_for_the_delay_in_force():
    spec = Path(delay_steps=DelaySteps((0.0, 2.0), (10.0, 50.0), 4.0)).line_spec()
    line = LinePath(spec, random.Random(0))
    assert line.delay_at(1.0) == pytest.approx(0.010)
    assert line.delay_at(3.0) == pytest.approx(0.050)
    assert line.delay_at(5.0) == pytest.approx(0.010)     # it loops every 4 s
    held = LinePath(Path(delay_steps=DelaySteps((0.0, 2.0), (10.0, 50.0), 4.0, loop=False))
                    .line_spec(), random.Random(0))
    assert held.delay_at(5.0) == pytest.approx(0.050)     # or holds its last value


def test_a_falling_delay_never_reorders_a_paths_frames():
    line = LinePath({'schedule': {'times_s': [0, 1], 'delay_ms': [200, 0],
                                  'duration_s': 2, 'loop': False}}, random.Random(0))
    dues = [due for _, due in frames(line, 2000)]
    assert dues == sorted(dues)
    assert dues[-1] == pytest.approx(1.999)               # at 0 ms once the queue drained


def test_jitter_spreads_delays_without_reordering():
    line = LinePath({'delay_ms': 20, 'jitter_ms': 10}, random.Random(1))
    pairs = frames(line, 5000, gap_s=0.01)       # gaps longer than the jitter
    held = [due - at for at, due in pairs]
    assert min(held) >= 0.020 and max(held) <= 0.030 + 1e-9
    assert statistics.fmean(held) == pytest.approx(0.025, abs=0.001)
    dense = [due for _, due in frames(LinePath({'delay_ms': 20, 'jitter_ms': 10},
                                                random.Random(2)), 5000)]
    assert dense == sorted(dense)


def test_bernoulli_loss_drops_at_its_rate():
    line = LinePath(Path(loss_pct=5).line_spec(), random.Random(3))
    lost = sum(due is None for _, due in frames(line, 100000))
    # 100000 frames at 5%: the standard deviation is 69 frames; 5 sigma is 350.
    assert abs(lost - 5000) < 350, lost


def test_gilbert_elliott_loss_comes_in_bursts_at_its_mean_rate():
    bursts = Bursts(p_pct=1, r_pct=25, h_pct=0)
    assert bursts.mean_loss_pct == pytest.approx(100 / 26)
    line = LinePath(Path(bursts=bursts).line_spec(), random.Random(4))
    lost = [due is None for _, due in frames(line, 200000)]
    rate = sum(lost) / len(lost)
    assert rate == pytest.approx(bursts.mean_loss_pct / 100, rel=0.15), rate
    runs, length = [], 0
    for gone in lost:
        if gone:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    # A bad state lasts 1/r = 4 frames on average, all lost (h = 0): bursts, not single
    # drops as Bernoulli loss at the same rate would give (mean run about 1.04).
    assert 3.2 <= statistics.fmean(runs) <= 4.8, statistics.fmean(runs)


def test_path_rules_refuse_what_cannot_happen():
    with pytest.raises(ConfigError, match='never recovers'):
        Bursts(p_pct=1, r_pct=0)
    with pytest.raises(ConfigError, match='gilbert_elliott.h'):
        Bursts(p_pct=1, r_pct=10, h_pct=120)
    with pytest.raises(ConfigError, match='one delay for each'):
        DelaySteps((0.0, 1.0), (5.0,), 2.0)
    with pytest.raises(ConfigError, match='delay must be'):
        DelaySteps((0.0,), (-1.0,), 1.0)


def test_a_delay_traces_round_trip_is_its_time_weighted_mean():
    path = Path(delay_steps=DelaySteps((0.0, 1.0), (10.0, 40.0), 4.0))
    assert path.rtt_ms == pytest.approx(2 * (10 * 1 + 40 * 3) / 4)
    assert path.impaired and Path(bursts=Bursts(1, 10)).impaired
    assert not Path().impaired
