"""Learning workloads: what a data sample's bytes are, how the edge learns from the
samples that reached it and distils a checkpoint of a chosen size, how a device scores
the model it holds.

The controller predicts accuracy with the reconstructed model (controller/accuracy.py).
A workload that ``measures`` makes accuracy emerge from the bytes the network delivered:
the edge trains its teacher on the samples that arrived in time, distils a student whose
capacity grows with the checkpoint size the policy chose (its real weights go into the
checkpoint, padded to that size), and the device scores the model it holds on its own
held-out test set.  Fewer samples in time give a weaker teacher; a checkpoint that
missed its deadline leaves the old model, which the stream's drift wears down.

    synthetic  noise samples and noise checkpoints: the default, fast; nothing measured
    digits     scikit-learn's handwritten digits (1797 labelled 8x8 images, bundled in
               the package: nothing downloaded).  Each device has its own stream (a
               seeded permutation of the training part) and its own test set (200 images
               of the held-out part); the stream drifts: period k's images are rotated
               by drift x (k - 1) degrees, test images too.  Teacher: an RBF support
               vector machine on the device's samples so far (the latest MAX_TRAIN);
               student: PCA to w components and multinomial logistic regression trained
               on the teacher's labels, w from 2 (the smallest checkpoint) to 64 (the
               largest) on a log scale of size.  Score: top-1 accuracy, percent.

Both agents and the fluid backend build a workload from one spec (``from_spec``), so a
scenario's seed gives the same streams everywhere.  Register your own with
``@register('name')`` on a ``Workload`` subclass in a Python file that the scenario
names (``workload: {name: mine, file: mine.py}``).
"""

import importlib.util
import math
import os
import struct

import numpy as np

from edgecollab import userfile
from edgecollab.errors import ConfigError

WORKLOADS = {}


def register(name):
    """Class decorator: make a Workload subclass known as name."""
    def add(cls):
        if not (isinstance(cls, type) and issubclass(cls, Workload)):
            raise ConfigError('@workload.register(%r) needs a Workload subclass' % name)
        cls.name = name
        WORKLOADS[name] = cls
        return cls
    return add


def from_spec(spec):
    """The workload a spec describes: {"name", "sample_bytes", "sizes": [smallest,
    largest checkpoint bytes], "devices", "seed", "drift", "file"}."""
    if spec.get('file'):
        userfile.load(spec['file'], 'edgecollab_user_workload', 'workload file',
                      spec.get('time_limit_s', userfile.DEFAULT_TIME_LIMIT_S))
    name = spec.get('name', 'synthetic')
    if name not in WORKLOADS:
        raise ConfigError('unknown workload %r (known: %s)'
                          % (name, ', '.join(sorted(WORKLOADS))))
    work = WORKLOADS[name](spec)
    return Checked(work, spec['file']) if spec.get('file') else work


class Checked:
    """A user's workload whose answers are checked as a built-in's are: samples of the
    bytes asked for, a score that is a finite percentage; a wrong answer is a
    ConfigError naming the workload and its file."""

    def __init__(self, work, path):
        self.work, self.path = work, path

    def __getattr__(self, name):
        return getattr(self.work, name)

    def _wrong(self, what, answer, rule):
        return ConfigError('workload %r from %s: %s answered %s (%s)'
                           % (self.work.name, self.path, what, str(answer)[:40], rule))

    def samples(self, device, period, first, count):
        """The workload's samples, checked to be count x sample_bytes bytes."""
        blob = self.work.samples(device, period, first, count)
        want = count * self.work.sample_bytes
        if not isinstance(blob, (bytes, bytearray)) or len(blob) != want:
            raise self._wrong('samples', '%s of %s bytes' % (
                type(blob).__name__, len(blob) if hasattr(blob, '__len__') else '?'),
                '%d bytes are needed' % want)
        return blob

    def score(self, weights, device, period):
        """The workload's score, checked to be a finite percentage."""
        value = self.work.score(weights, device, period)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or \
                not math.isfinite(value) or not 0 <= value <= 100:
            raise self._wrong('score', repr(value), 'a finite percentage in [0, 100]')
        return float(value)


class Workload:
    """The interface: samples, learning at the edge, scoring at the device."""
    name = None
    measures = False      # True: checkpoints carry real weights and devices score them

    def __init__(self, spec):
        self.spec = dict(spec)
        self.sample_bytes = int(spec.get('sample_bytes', 1))
        self.devices = list(spec.get('devices', ()))
        self.seed = int(spec.get('seed', 0))

    def check(self):
        """Raise ConfigError when the scenario cannot carry this workload."""

    def samples(self, device, period, first, count):
        """The bytes of count samples of device's stream from number first (period: the
        period they are produced in)."""
        raise NotImplementedError

    def learner(self, device):
        """A Learner of device's samples at the edge."""
        raise NotImplementedError

    def initial(self, device):
        """The weights of the model device starts with."""
        raise NotImplementedError

    def score(self, weights, device, period):
        """The accuracy (percent) of weights on device's test set in period."""
        raise NotImplementedError


@register('synthetic')
class Synthetic(Workload):
    """Noise samples: the network load without learning (accuracy: the formula's)."""

    def __init__(self, spec):
        super().__init__(spec)
        self.pool = np.random.default_rng(self.seed).bytes(1 << 20)

    def samples(self, device, period, first, count):
        size = count * self.sample_bytes
        whole, rest = divmod(size, len(self.pool))
        return self.pool * whole + self.pool[:rest]


class Learner:
    """The edge's model of one device: the samples that reached it (the latest
    MAX_TRAIN), its teacher trained on them, and students distilled from it."""

    def __init__(self, workload, device):
        self.workload, self.device = workload, device
        self.X, self.y = workload.factory_data(device)
        self.teacher = None
        self.arrived = 0

    def add(self, blob):
        """Learn from the whole samples in blob (bytes that arrived in time); return how
        many there were."""
        X, y = self.workload.decode(blob)
        if len(y):
            self.X = np.concatenate([self.X, X])[-MAX_TRAIN:]
            self.y = np.concatenate([self.y, y])[-MAX_TRAIN:]
            self.teacher = None
            self.arrived += len(y)
        return len(y)

    def student(self, size_bytes):
        """The weights of the student distilled for a checkpoint of size_bytes."""
        if self.teacher is None:
            self.teacher = self.workload.teach(self.X, self.y)
        return self.workload.distil(self.teacher, self.X, size_bytes)


MAX_TRAIN = 1000        # samples a teacher trains on (the latest)
FACTORY_SAMPLES = 30    # labelled samples of period 0 the device's first model knew
TEST_PER_DEVICE = 200
TEST_PART = 500         # images of the dataset held out for testing
WIDTHS = (2, 64)        # student components at the smallest and largest checkpoint
SPLIT_SEED = 12345      # the train/test split: the same in every run


@register('digits')
class Digits(Workload):
    """Handwritten digits with a rotating stream (module docstring)."""
    measures = True
    HEADER = struct.Struct('<4sBHI')        # magic, label, period, stream index
    MAGIC = b'ECd1'
    PIXELS = 64

    def __init__(self, spec):
        super().__init__(spec)
        images, self.labels = bundled_digits()
        self.images = images / np.float32(16.0)                  # 0-1
        order = np.random.default_rng(SPLIT_SEED).permutation(len(self.labels))
        self.test_part, self.train_part = order[:TEST_PART], order[TEST_PART:]
        self.drift = float(spec.get('drift', 10.0))
        sizes = spec.get('sizes') or [1.0, 1.0]
        self.smallest, self.largest = float(min(sizes)), float(max(sizes))
        self.rotated = {}                    # angle -> every image rotated by it
        self.streams = {}                    # device -> its stream's image indices

    def check(self):
        least = self.HEADER.size + self.PIXELS
        if self.sample_bytes < least:
            raise ConfigError('digits: data.sample_size must be at least %d bytes '
                              '(a labelled 8x8 image), got %d' % (least, self.sample_bytes))

    def _index(self, device):
        return self.devices.index(device) if device in self.devices else 0

    def _stream(self, device):
        if device not in self.streams:
            rng = np.random.default_rng([self.seed, self._index(device)])
            self.streams[device] = self.train_part[rng.permutation(len(self.train_part))]
        return self.streams[device]

    def angle(self, period):
        """The stream's rotation in period, degrees."""
        return self.drift * max(0, period - 1)

    def _images(self, angle):
        if angle not in self.rotated:
            from scipy.ndimage import rotate
            self.rotated[angle] = self.images if angle == 0 else np.clip(rotate(
                self.images, angle, axes=(1, 2), reshape=False, order=1), 0.0, 1.0)
        return self.rotated[angle]

    def samples(self, device, period, first, count):
        stream = self._stream(device)
        images = self._images(self.angle(period))
        pad = bytes(self.sample_bytes - self.HEADER.size - self.PIXELS)
        out = []
        for index in range(first, first + count):
            i = stream[index % len(stream)]
            pixels = np.round(images[i].reshape(-1) * 255).astype(np.uint8).tobytes()
            out.append(self.HEADER.pack(self.MAGIC, int(self.labels[i]), period % 65536,
                                        index % (1 << 32)) + pixels + pad)
        return b''.join(out)

    def decode(self, blob):
        """(images as rows of 64 values in 0-1, labels) of the whole samples in blob;
        pieces that are not samples (a damaged or foreign byte string) are skipped."""
        rows, labels = [], []
        size, head = self.sample_bytes, self.HEADER.size
        for at in range(0, len(blob) - size + 1, size):
            magic, label, _, _ = self.HEADER.unpack_from(blob, at)
            if magic != self.MAGIC or label > 9:
                continue
            rows.append(np.frombuffer(blob, np.uint8, self.PIXELS, at + head))
            labels.append(label)
        if not rows:
            return np.empty((0, self.PIXELS), np.float32), np.empty(0, np.uint8)
        return np.stack(rows).astype(np.float32) / 255.0, np.array(labels, np.uint8)

    def factory_data(self, device):
        """The labelled samples of period 0 the device's first model was trained on
        (the edge has them too)."""
        return self.decode(self.samples(device, 0, 0, FACTORY_SAMPLES))

    def learner(self, device):
        return Learner(self, device)

    def initial(self, device):
        return self.learner(device).student(self.smallest)

    def teach(self, X, y):
        """The teacher trained on samples X, y."""
        from sklearn.svm import SVC
        if len(set(y.tolist())) < 2:
            return _Constant(int(y[0]) if len(y) else 0)
        return SVC(gamma='scale', C=10.0).fit(X, y)

    def width(self, size_bytes):
        """The student's components for a checkpoint of size_bytes (2 at the smallest,
        64 at the largest, log scale between)."""
        if self.largest <= self.smallest:
            return WIDTHS[1]
        where = math.log(max(size_bytes, self.smallest) / self.smallest) / \
            math.log(self.largest / self.smallest)
        low, high = WIDTHS
        return int(round(low * (high / low) ** min(1.0, where)))

    def distil(self, teacher, X, size_bytes):
        """The student's weights: PCA to width(size_bytes) components and logistic
        regression, trained on the teacher's labels of X."""
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        labels = teacher.predict(X)
        width = min(self.width(size_bytes), len(X), self.PIXELS)
        pca = PCA(n_components=width, random_state=0).fit(X)
        Z = pca.transform(X)
        weights = {'mean': pca.mean_.astype(np.float32),
                   'components': pca.components_.astype(np.float32)}
        classes = np.unique(labels)
        if len(classes) < 2:
            weights.update(coef=np.zeros((1, width), np.float32),
                           intercept=np.zeros(1, np.float32),
                           classes=classes.astype(np.int64))
            return weights
        model = LogisticRegression(max_iter=500).fit(Z, labels)
        coef, intercept = model.coef_, model.intercept_
        if len(classes) == 2:            # sklearn keeps one row for two classes
            coef = np.vstack([-coef, coef])
            intercept = np.array([-intercept[0], intercept[0]])
        weights.update(coef=coef.astype(np.float32), intercept=intercept.astype(np.float32),
                       classes=model.classes_.astype(np.int64))
        return weights

    def _test(self, device):
        rng = np.random.default_rng([self.seed, self._index(device), 1])
        return rng.choice(self.test_part, TEST_PER_DEVICE, replace=False)

    def score(self, weights, device, period):
        chosen = self._test(device)
        images = self._images(self.angle(period))[chosen].reshape(len(chosen), -1)
        predicted = predict(weights, images)
        return float(100.0 * np.mean(predicted == self.labels[chosen]))


def bundled_digits():
    """(images as (1797, 8, 8) float32 in 0-16, labels) of scikit-learn's bundled
    digits, read from the package's data file as its load_digits does, without
    importing scikit-learn: a device agent needs the images, and the library's import
    costs a second of CPU a process."""
    found = importlib.util.find_spec('sklearn')
    if found is None or not found.origin:
        raise ConfigError('workload digits needs scikit-learn (run install.sh)')
    path = os.path.join(os.path.dirname(found.origin), 'datasets', 'data', 'digits.csv.gz')
    data = np.loadtxt(path, delimiter=',', dtype=np.float32)
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.uint8)


def predict(weights, X):
    """The labels a student's weights give rows X (what a device runs: numpy only)."""
    Z = (X - weights['mean']) @ weights['components'].T
    scores = Z @ weights['coef'].T + weights['intercept']
    return weights['classes'][np.argmax(scores, axis=1)]


class _Constant:
    """A teacher that saw one class only."""

    def __init__(self, label):
        self.label = label

    def predict(self, X):
        return np.full(len(X), self.label)
