"""Capacity forecasts: each predictor on known series, the scenario key, the records."""

import os
import shutil

import numpy as np
import pytest

from edgecollab.controller import forecast
from edgecollab.scenarios.fluid_backend import run_policy
from edgecollab.errors import ConfigError
from edgecollab.scenarios import traces
from edgecollab.scenarios.scenario import load_scenario
from tests.conftest import REPO
from tests.helpers import scenario_copy

# 10 Mbit/s for 10 s, then 40 for 10 s, then 10 again (not looping).
TRACE = traces.Trace(np.array([0.0, 10.0, 20.0]), np.array([10.0, 40.0, 10.0]), 30.0,
                     loop=False)


def test_last_is_the_capacity_at_the_start():
    assert forecast.get('last').predict(TRACE, 15.0, 10.0, 1.0) == 40.0
    assert forecast.get('last').predict(TRACE, 0.0, 10.0, 1.0) == 10.0


def test_harmonic_mean_of_the_windows_chunk_means():
    # At 20 s with 1 s steps and a 20 s window: five 4 s chunks back from t = 20, whose
    # steps are t = 20..17 (10, 40, 40, 40), 16..13 (40), 12..9 (40, 40, 40, 10), 8..5
    # and 4..1 (10).
    means = np.array([32.5, 40.0, 32.5, 10.0, 10.0])
    expected = 5 / np.sum(1 / means)
    assert forecast.get('harmonic', 20.0).predict(TRACE, 20.0, 10.0, 1.0) == \
        pytest.approx(expected)
    # A short window is one chunk of its length; the first period sees one step.
    assert forecast.get('harmonic', 2.0).predict(TRACE, 20.0, 10.0, 1.0) == \
        pytest.approx(25.0)
    assert forecast.get('harmonic').predict(TRACE, 0.0, 10.0, 1.0) == 10.0
    # Below the arithmetic mean: a low chunk weighs more than a high one.
    assert expected < np.mean(means)


def test_harmonic_is_not_dragged_to_zero_by_short_outages():
    # 10 Mbit/s with a 100 ms outage every second (a cellular trace's texture): the mean
    # is 9 Mbit/s; a harmonic mean over the 100 ms steps would be near 1.
    times = np.round(np.arange(300) * 0.1, 6)
    rates = np.where(np.isclose(np.mod(times, 1.0), 0.5), 0.0, 10.0)
    bursty = traces.Trace(times, rates, 30.0, loop=False)
    assert forecast.get('harmonic').predict(bursty, 25.0, 10.0, 0.1) == \
        pytest.approx(9.01)


def test_ewma_weighs_recent_steps_by_half_life():
    ages = np.arange(0, 20.5, 1.0)          # ten half-lives of 2 s reach back 20 s
    rates = TRACE.rate_at(20.0 - ages)
    weights = 0.5 ** (ages / 2.0)
    assert forecast.get('ewma', 2.0).predict(TRACE, 20.0, 10.0, 1.0) == \
        pytest.approx(np.sum(weights * rates) / np.sum(weights))


def test_robust_discounts_the_harmonic_forecast_by_its_recent_error():
    robust, harmonic = forecast.get('robust'), forecast.get('harmonic')
    steady = traces.constant(20.0)
    # A link that keeps its rate: no error, no discount.
    assert robust.predict(steady, 30.0, 10.0, 1.0) == pytest.approx(20.0)
    # Just after the step to 40 the chunk forecasts were off by up to 75% (predicted
    # 10, then 40 / 10 mixed, against 40): the forecast is divided by 1.75 at most.
    h = harmonic.predict(TRACE, 15.0, 10.0, 1.0)
    r = robust.predict(TRACE, 15.0, 10.0, 1.0)
    assert h / 2 <= r < h
    # It reads nothing after the period's start: a trace that differs only after it
    # gives the same forecast.
    other = traces.Trace(np.array([0.0, 10.0, 15.5]), np.array([10.0, 40.0, 1.0]), 30.0,
                         loop=False)
    assert robust.predict(other, 15.0, 10.0, 1.0) == r


def test_oracle_is_the_periods_real_mean():
    assert forecast.get('oracle').predict(TRACE, 5.0, 10.0, 1.0) == pytest.approx(25.0)


def test_zero_capacity_counts_as_the_link_minimum():
    dip = traces.Trace(np.array([0.0, 1.0]), np.array([10.0, 0.0]), 2.0, loop=False)
    assert forecast.get('harmonic').predict(dip, 1.0, 1.0, 1.0) == pytest.approx(
        (10 + 0.1) / 2)
    assert forecast.get('last').predict(dip, 1.0, 1.0, 1.0) == 0.1


def test_unknown_predictor_and_bad_window_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="known: ewma, harmonic, last, oracle"):
        load_scenario(scenario_copy(tmp_path, 'sequential.yaml',
                                    extra='forecast: crystal-ball\n'))
    with pytest.raises(ConfigError, match='forecast'):
        load_scenario(scenario_copy(tmp_path, 'sequential.yaml',
                                    extra='forecast: {predictor: ewma, window: -3s}\n'))


def test_records_say_the_predictor_its_forecast_and_the_real_mean(tmp_path):
    shutil.copytree(os.path.join(REPO, 'scenarios', 'traces'), tmp_path / 'traces')
    path = scenario_copy(tmp_path, 'walk-trace.yaml',
                         extra='forecast: {predictor: last}\n')
    last = run_policy(load_scenario(path), 'optimal')
    harmonic = run_policy(load_scenario(scenario_copy(tmp_path, 'walk-trace.yaml')),
                          'optimal')
    assert {r['predictor'] for r in last} == {'last'}
    assert {r['predictor'] for r in harmonic} == {'harmonic'}
    scenario = load_scenario(path)
    for row in last:
        start = (row['period'] - 1) * scenario.control.period_s
        assert row['forecast_mbit'] == pytest.approx(float(scenario.link.capacity.rate_at(start)))
        assert row['capacity_mbit'] == pytest.approx(scenario.link.capacity.mean_between(
            start, start + scenario.control.period_s))
    assert [r['forecast_mbit'] for r in last] != [r['forecast_mbit'] for r in harmonic]
