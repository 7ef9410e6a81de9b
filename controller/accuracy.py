"""The device's inference accuracy (mAP) as a function of data uploaded and model received.

A reconstruction (the paper's own equations, arXiv 2504.14310, are not available): the
standard family stated in the project's paper notes, every constant a parameter.

    mAP(D, S) = A(S) * q(D)
    A(S) = a_inf - b * S_MB ** (-gamma)       model-size term, S in MB: increasing and
                                              concave in log S, saturating at a_inf
    q(D) = 1 - c * (d0 + D) ** (-alpha)       learning curve, D in samples that reached
                                              the edge this period: q < 1, diminishing

Defaults: A(S) is fitted (``fit_size_curve``) to the public Ultralytics YOLOv8 figures
(COCO val mAP50-95 at 640 px against parameter count, 4 bytes a parameter); q(D) is an
assumption, chosen so that a period with no fresh data keeps 60% of the attainable
accuracy (d0 = 200 samples already at the edge, alpha = 0.5).
"""

from dataclasses import dataclass, fields

import numpy as np

from edgecollab.errors import ConfigError

MB = 1e6

# Public figures (Ultralytics documentation, detection, COCO val2017, 640 px):
# (name, parameters in millions, mAP50-95).
YOLOV8 = (('yolov8n', 3.2, 37.3), ('yolov8s', 11.2, 44.9), ('yolov8m', 25.9, 50.2),
          ('yolov8l', 43.7, 52.9), ('yolov8x', 68.2, 53.9))
# Bytes a parameter in a checkpoint: fp32, fp16, and int8 (post-training quantisation,
# as TensorRT, TFLite and OpenVINO int8 exports of YOLOv8 store weights; the menu keeps
# the fp32 mAP figures for every precision: docs/model.md says why).
BYTES_PER_PARAM = {'fp32': 4, 'fp16': 2, 'int8': 1}


@dataclass(frozen=True)
class ModelVariant:
    """A distilled model the edge can send: its name, checkpoint size and accuracy."""
    name: str
    size_bytes: float
    map: float


def yolov8_menu(precision='fp32'):
    """The YOLOv8 family as a menu of checkpoints at precision (a key of
    BYTES_PER_PARAM)."""
    return [ModelVariant(n, p * 1e6 * BYTES_PER_PARAM[precision], m) for n, p, m in YOLOV8]


def _size_curve(size_mb, a_inf, b, gamma):
    return a_inf - b * np.power(size_mb, -gamma)


def fit_size_curve(sizes_bytes, maps):
    """Fit (a_inf, b, gamma) of A(S) to measured (checkpoint bytes, mAP) pairs."""
    sizes_mb = np.asarray(sizes_bytes, dtype=float) / MB
    maps = np.asarray(maps, dtype=float)
    if sizes_mb.size < 3 or np.any(sizes_mb <= 0) or sizes_mb.size != maps.size:
        raise ConfigError('fitting A(S) needs at least 3 (positive size, mAP) pairs')
    from scipy.optimize import curve_fit   # here: a command that fits nothing starts faster
    popt, _ = curve_fit(_size_curve, sizes_mb, maps, p0=(maps.max() * 1.2, maps.max(), 0.5),
                        bounds=([0, 0, 1e-3], [1e3, 1e4, 5]), maxfev=20000)
    return tuple(float(x) for x in popt)


def fit(samples, sizes_bytes, maps):
    """Fit every parameter to a user's table of (data samples D, model bytes S, mAP)."""
    samples = np.asarray(samples, dtype=float)
    sizes_mb = np.asarray(sizes_bytes, dtype=float) / MB
    maps = np.asarray(maps, dtype=float)
    if samples.size < 6 or not samples.size == sizes_mb.size == maps.size:
        raise ConfigError('fitting the accuracy model needs at least 6 (D, S, mAP) rows')

    def model(x, a_inf, b, gamma, c, d0, alpha):
        d, s = x
        return _size_curve(s, a_inf, b, gamma) * (1 - c * np.power(d0 + d, -alpha))

    from scipy.optimize import curve_fit
    popt, _ = curve_fit(model, (samples, sizes_mb), maps,
                        p0=(maps.max() * 1.3, maps.max(), 0.3, 2.0, 100.0, 0.5),
                        bounds=([0, 0, 1e-3, 0, 1e-3, 1e-3], [1e3, 1e4, 5, 1e4, 1e7, 5]),
                        maxfev=50000)
    names = ('a_inf', 'b', 'gamma', 'c', 'd0', 'alpha')
    return AccuracyModel(**dict(zip(names, (float(x) for x in popt))))


def measured_rows(rows):
    """The periods.csv rows a fit uses: a checkpoint arrived and the device measured."""
    return [r for r in rows if r.get('model_ok') is True and
            isinstance(r.get('measured_accuracy'), float) and
            isinstance(r.get('planned_model_bytes'), float)]


def fit_measured(rows, sample_bits):
    """Fit every parameter to a run's measurements (periods.csv rows of a workload that
    learns): each device-period whose checkpoint arrived gives D = the samples that
    reached the edge in the period (upload_bytes / the sample's bytes), S = the
    checkpoint's bytes, and the device's measured_accuracy in place of mAP."""
    used = measured_rows(rows)
    if len(used) < 6:
        raise ConfigError('fitting needs at least 6 delivered checkpoints with a measured '
                          'accuracy (a workload that learns, e.g. digits); the run has %d'
                          % len(used))
    return fit([r['upload_bytes'] * 8 / sample_bits for r in used],
               [r['planned_model_bytes'] for r in used],
               [r['measured_accuracy'] for r in used])


@dataclass(frozen=True)
class AccuracyModel:
    """mAP(D, S) = A(S) q(D); see the module docstring for the terms and units."""
    a_inf: float = 77.867
    b: float = 64.209
    gamma: float = 0.17907
    c: float = 5.6569       # 0.4 * sqrt(d0): q(0) = 0.6
    d0: float = 200.0
    alpha: float = 0.5

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not np.isfinite(value) or value <= 0:
                raise ConfigError('accuracy parameter %s must be a positive number, got %r'
                                  % (f.name, value))
        if self.q(0.0) <= 0:
            raise ConfigError('accuracy parameters give q(0) <= 0: need c < d0 ** alpha')

    @classmethod
    def from_dict(cls, values, where='accuracy'):
        """An AccuracyModel from a scenario mapping; unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError('%s: unknown key(s) %s (known: %s)' % (
                where, ', '.join(sorted(unknown)), ', '.join(sorted(known))))
        return cls(**values)

    def size_term(self, size_bytes):
        """A(S): accuracy of a model of size_bytes trained on unlimited data."""
        return self.a_inf - self.b * np.power(np.maximum(size_bytes, 1.0) / MB, -self.gamma)

    def size_slope(self, size_bytes):
        """dA/dS per byte."""
        s = np.maximum(size_bytes, 1.0) / MB
        return self.b * self.gamma * np.power(s, -self.gamma - 1) / MB

    def q(self, samples):
        """q(D): the share of attainable accuracy reached with D fresh samples."""
        return 1 - self.c * np.power(self.d0 + np.maximum(samples, 0.0), -self.alpha)

    def q_slope(self, samples):
        """dq/dD per sample."""
        return self.c * self.alpha * np.power(self.d0 + np.maximum(samples, 0.0),
                                              -self.alpha - 1)

    def samples_for(self, target, scale):
        """The fresh samples D at which a model of A(S) = scale reaches mAP target: 0
        when it does with none, inf when it never does."""
        share = 1 - target / scale if scale > 0 else 0.0
        if share <= 0:
            return float('inf')
        return max(float(np.power(self.c / share, 1 / self.alpha) - self.d0), 0.0)

    def accuracy(self, samples, size_bytes):
        """mAP with D samples uploaded and a model of size_bytes received."""
        return self.size_term(size_bytes) * self.q(samples)
