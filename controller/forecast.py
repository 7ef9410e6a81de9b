"""Capacity forecasts: the capacity the controller plans a period with.

At a period's start the controller knows the capacity history up to that moment: the
link's capacity at every replay step so far (it applies them).  A predictor turns that
history into the capacity to plan the period with.  Only ``oracle`` sees the trace's
future (the period's real mean): it is the bound the others are held against.

    last      the capacity at the period's start: one step of history
    ewma      an exponentially weighted mean of the steps seen, half-life ``window``
    harmonic  the harmonic mean of the mean capacities of the last ``window``'s
              4-second chunks (the default)
    robust    the harmonic forecast divided by 1 + its largest relative error over
              the last five chunks, as RobustMPC discounts its throughput prediction
              (Yin et al., SIGCOMM 2015): a forecast that knows its own error
    oracle    the mean capacity the period will really have

Why ``harmonic`` by default: model predictive bitrate control predicts throughput by
the harmonic mean of the last few chunks (Yin et al., SIGCOMM 2015) because it is
robust to short spikes; here a forecast above the capacity makes a checkpoint miss its
deadline (the device keeps its old model), while one below only leaves some capacity to
the upload, so a low step should weigh more than a high one, which the harmonic mean
does.  As there, the harmonic mean is over chunk means (that work's chunks are 4 s
long, its window five of them, so the default window here is 20 s), not over single
replay steps: a cellular trace has 100 ms steps near zero in most seconds, and the
harmonic mean of the steps themselves sits near zero on a link that carries megabits
(measured on the T-Mobile LTE trace, docs/real-traces.md).

A predictor is an object registered by name, like a policy; ``get`` finds one.
``benchmarks/forecasts.py`` compares them over a corpus of traces: each one's error at
the periods' starts and the mAP the policies reach with it (docs/benchmarks.md).
"""

import numpy as np

from edgecollab.topologies.linkshare import MIN_CAPACITY_MBIT
from edgecollab.errors import ConfigError

FORECASTS = {}
DEFAULT_PREDICTOR = 'harmonic'
DEFAULT_WINDOW_S = 20.0
CHUNK_S = 4.0             # the harmonic predictor's chunk
ERRORS_KEPT = 5           # the robust predictor's memory: its errors over this many chunks
MAX_ERROR = 1.0           # a relative error counts at most this much (a discount >= 1/2)


def register(name):
    """Class decorator adding a Predictor subclass under name."""
    def add(cls):
        if name in FORECASTS:
            raise ConfigError('predictor %r is registered twice' % name)
        cls.name = name
        FORECASTS[name] = cls
        return cls
    return add


def get(name, window_s=DEFAULT_WINDOW_S):
    """The predictor called name over a history window of window_s seconds."""
    try:
        cls = FORECASTS[name]
    except (KeyError, TypeError):
        raise ConfigError('unknown predictor %r (known: %s)'
                          % (name, ', '.join(sorted(FORECASTS)))) from None
    return cls(window_s)


class Predictor:
    """Predicts a period's capacity (Mbit/s) from the capacity trace up to its start."""
    name = ''

    def __init__(self, window_s=DEFAULT_WINDOW_S):
        if not window_s > 0:
            raise ConfigError('forecast window must be > 0 s, got %r' % window_s)
        self.window_s = float(window_s)

    def history(self, trace, start_s, step_s, span_s):
        """(ages in s, capacities) of the replay steps in the last span_s up to start_s."""
        count = int(min(span_s, start_s) / step_s) + 1
        ages = np.arange(count) * step_s
        # Rounded to the microsecond: a step's time matches the trace's own step times
        # (start_s - 6 * 0.1 is not 24.4 in floating point, round(..., 6) is).
        times = np.round(start_s - ages, 6)
        return ages, np.maximum(trace.rate_at(times), MIN_CAPACITY_MBIT)

    def predict(self, trace, start_s, period_s, step_s):
        """The capacity to plan the period [start_s, start_s + period_s) with."""
        raise NotImplementedError


@register('last')
class Last(Predictor):
    """The capacity at the period's start."""

    def predict(self, trace, start_s, period_s, step_s):
        return float(self.history(trace, start_s, step_s, 0.0)[1][0])


@register('ewma')
class Ewma(Predictor):
    """An exponentially weighted mean of the steps seen, half-life window_s (the steps
    older than ten half-lives weigh less than 0.1% and are left out)."""

    def predict(self, trace, start_s, period_s, step_s):
        ages, rates = self.history(trace, start_s, step_s, 10 * self.window_s)
        weights = np.power(0.5, ages / self.window_s)
        return float(np.sum(weights * rates) / np.sum(weights))


@register('harmonic')
class Harmonic(Predictor):
    """The harmonic mean of the mean capacities of the last window_s's chunks of CHUNK_S
    (of window_s when shorter), counted back from the period's start."""

    def predict(self, trace, start_s, period_s, step_s):
        chunk_s = min(CHUNK_S, self.window_s)
        ages, rates = self.history(trace, start_s, step_s, self.window_s)
        keep = ages < max(self.window_s, step_s)
        chunks = np.floor(ages[keep] / chunk_s + 1e-9).astype(int)
        means = np.bincount(chunks, weights=rates[keep]) / np.bincount(chunks)
        return float(means.size / np.sum(1.0 / means))


@register('robust')
class Robust(Harmonic):
    """The harmonic forecast divided by 1 + the largest relative error (capped at
    MAX_ERROR) it made over the last ERRORS_KEPT chunks: for each, the forecast from
    the history before the chunk against the chunk's mean, so it never looks ahead."""

    def predict(self, trace, start_s, period_s, step_s):
        forecast = super().predict(trace, start_s, period_s, step_s)
        errors = []
        for j in range(1, ERRORS_KEPT + 1):
            t = round(start_s - j * CHUNK_S, 6)
            if t < step_s:
                break
            predicted = super().predict(trace, t, period_s, step_s)
            actual = max(float(trace.mean_between(t, t + CHUNK_S)), MIN_CAPACITY_MBIT)
            errors.append(min(abs(predicted - actual) / actual, MAX_ERROR))
        return forecast / (1 + max(errors)) if errors else forecast


@register('oracle')
class Oracle(Predictor):
    """The period's real mean capacity (knows the future: a bound, not a predictor)."""

    def predict(self, trace, start_s, period_s, step_s):
        return max(float(trace.mean_between(start_s, start_s + period_s)),
                   MIN_CAPACITY_MBIT)
