"""A scenario resolved: typed sections of plain numbers with their units in their names.

A scenario is YAML (see ``scenarios/default.yaml`` for every key with a comment);
scenarios/schema.py reads and checks the file.  Each section of a ``Scenario`` (``Link``,
``Paths``, ``Data``, ``Model``, ``Control``, ``Workload``) declares the defaults of its
keys once, in the file's own terms (``DEFAULTS``); ``with_defaults`` fills a mapping from
them and ``resolve`` is the one resolver behind ``run`` (``load_scenario``), ``solve``
and the results reader (``problem_from``).  A command line's overrides go into the
mapping before it is checked (``schema.read``), so they meet the file's rules.  Relative
trace and policy-file paths are relative to the scenario file.
"""

import copy
import dataclasses
import glob
import os
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from edgecollab.controller import forecast as forecast_mod
from edgecollab.controller import policies as policies_mod
from edgecollab.controller.accuracy import AccuracyModel, yolov8_menu
from edgecollab.controller.correction import default_control_step
from edgecollab.controller.holding import DEFAULT_PER_PERIOD, Drift
from edgecollab.controller.solver import Problem
from edgecollab import userfile
from edgecollab.errors import ConfigError, quoted
from edgecollab.kinds import DelayEngine, LinkMode, Medium, Menu, Timing, TraceFormat
from edgecollab.nodes import workload as workload_mod
from edgecollab.scenarios import traces
from edgecollab.scenarios.schema import (MAX_CHECKPOINT_BYTES, MAX_CODE_LIMIT_S,
                                         MAX_COMPUTE_PER_SAMPLE_S, MAX_CORPUS, MAX_PERIOD_S,
                                         MAX_REPLAY_STEPS, MAX_SAMPLE_BYTES, MIN_CODE_LIMIT_S,
                                         MIN_STEP_S, OTHERS, read)
from edgecollab.topologies import media
from edgecollab.topologies import paths as paths_mod
from edgecollab.topologies.addressing import device_name, is_device
from edgecollab.topologies.cluster import LOCALHOST, Servers
from edgecollab.topologies.linkshare import (DELAY_MS, MAX_CAPACITY_MBIT, MIN_CAPACITY_MBIT,
                                             QUEUE_MS)
from edgecollab.units import duration_s, rate_mbit, size_bytes


@dataclass(frozen=True)
class Link:
    """The bottleneck: its capacity over time and how the devices share it."""
    DEFAULTS: ClassVar[dict] = {'capacity': '20mbit', 'step': '100ms', 'medium': 'shared',
                                'mode': 'strict', 'ack': True, 'queue': '100ms'}
    capacity: object         # a traces.Trace (a constant: one step); with per-device
                             # channels their mean as the link applies them
    capacity_down: object    # duplex: the download direction's Trace, else None
    step_s: float            # the replayer's step
    medium: Medium
    mode: LinkMode
    ack: bool                # pure ACKs in a prioritised child class
    queue_ms: float          # leaf queue length, in ms of the leaf's rate
    # Per-device channels (a medium with channels and a capacity per device): a
    # traces.Channels of each device's Trace, in device order; () when the fleet has one
    # capacity.
    channels: object = ()

    def rates_between(self, start_s, end_s):
        """Each device's channel over [start_s, end_s) relative to the fleet's
        capacity; () when the fleet has one capacity."""
        return self.channels.relative_between(start_s, end_s) if self.channels else ()

    def channel_means_between(self, start_s, end_s):
        """Each device's channel mean over [start_s, end_s) as the link applies it;
        [] when the fleet has one capacity."""
        return self.channels.means_between(start_s, end_s) if self.channels else []

    def step_means(self, start_s, end_s):
        """(capacity, each device's channel relative to it or (), the download's capacity
        or None) the link had on average over [start_s, end_s), never below what the
        link layer applies (a trace's zeros are its minimum): what a control step is
        told on either backend."""
        down = None if self.capacity_down is None else \
            max(self.capacity_down.mean_between(start_s, end_s), MIN_CAPACITY_MBIT)
        return (max(self.capacity.mean_between(start_s, end_s), MIN_CAPACITY_MBIT),
                self.rates_between(start_s, end_s), down)

    def shifted(self, offset_s):
        """The link with its traces started offset_s into themselves (the fleet's
        capacity the new channels' mean)."""
        if self.channels:
            channels = self.channels.shifted(offset_s)
            return dataclasses.replace(self, channels=channels, capacity=channels.fleet)
        return dataclasses.replace(
            self, capacity=self.capacity.shifted(offset_s),
            capacity_down=None if self.capacity_down is None else
            self.capacity_down.shifted(offset_s))


@dataclass(frozen=True)
class Paths:
    """Each device's path to the edge, what imposes it and the TCP that crosses it."""
    DEFAULTS: ClassVar[dict] = {'delay': '0ms', 'jitter': '0ms', 'loss': 0,
                                'delay_engine': 'auto', 'congestion_control': None}
    each: tuple              # topologies.paths.Path, one per device
    engine: DelayEngine      # as asked: auto | userspace | netem
    congestion_control: object = None   # the hosts' TCP's; None: the machine's default


@dataclass(frozen=True)
class Data:
    """What the devices upload."""
    DEFAULTS: ClassVar[dict] = {'data.sample_size': '100KB', 'data.generated': 3000}
    sample_bytes: float
    generated: tuple         # samples per period, one per device


@dataclass(frozen=True)
class Model:
    """The checkpoints the edge may distil and what they are worth."""
    # min_size, max_size: None is the YOLOv8 family's smallest and largest.
    DEFAULTS: ClassVar[dict] = {'model.menu': 'yolov8', 'model.precision': 'fp32',
                                'model.min_size': None, 'model.max_size': None,
                                'accuracy': {}}
    menu: Menu
    precision: str
    min_bytes: float
    max_bytes: float
    accuracy: AccuracyModel


@dataclass(frozen=True)
class Control:
    """The periods and how a policy plans and re-plans them."""
    DEFAULTS: ClassVar[dict] = {
        'period': '60s', 'periods': 3, 'update': '0s', 'timing': 'overlap',
        'control_step': None, 'forecast': forecast_mod.DEFAULT_PREDICTOR,
        'drift': DEFAULT_PER_PERIOD, 'ratio': 0.5, 'floor': None, 'tolerance': 0.2,
        'policies': list(policies_mod.DEFAULT_POLICIES), 'policy_file': None,
        'user_code_time_limit': userfile.DEFAULT_TIME_LIMIT_S}
    period_s: float
    periods: int
    update_s: float          # the edge's update time (sequential timing)
    timing: Timing
    control_step_s: float    # how often a closed-loop policy re-splits a period
    forecast: object         # the forecast.Predictor the controller plans with
    drift: Drift             # how a held model's accuracy decays
    ratio: float
    floor: object            # mAP a policy keeps every device above, or None
    tolerance: float         # |goodput / plan - 1| above which an event is noted
    policies: tuple


@dataclass(frozen=True)
class Workload:
    """What the agents learn from and the devices score, and the edge's work."""
    DEFAULTS: ClassVar[dict] = {'workload': 'synthetic', 'edge.compute_per_sample': 0}
    # nodes/workload.py from_spec: name, sample_bytes, sizes, devices, seed, drift, file.
    spec: dict
    compute_per_sample_s: float


@dataclass(frozen=True)
class Cluster:
    """The servers a Mininet run spreads over, where each device is and the tunnels
    between them (``topologies/cluster.py``)."""
    DEFAULTS: ClassVar[dict] = {'servers': [LOCALHOST], 'placement': {}, 'tunnel': 'vxlan'}
    servers: Servers


@dataclass(frozen=True)
class Scenario:
    """A resolved scenario: its sections, the solver's view of one device's period
    (``problem``) and where its files are."""
    DEFAULTS: ClassVar[dict] = {'devices': 1, 'seed': 1}
    path: str
    raw: dict                # the mapping as given (defaults not filled in)
    name: str
    devices: int
    seed: int
    link: Link
    paths: Paths
    data: Data
    model: Model
    control: Control
    workload: Workload
    problem: Problem         # per device, at the capacity of the start
    trace_files: dict = field(default_factory=dict)
    # A corpus run's traces (scenario key traces), each in place of the capacity's: a
    # file, or on a duplex medium an (upload, download) pair of files.
    corpus: tuple = ()
    cluster: Cluster = Cluster(Servers())

    @property
    def duration_s(self):
        """The emulated time of one policy's run."""
        return self.control.period_s * self.control.periods

    @property
    def device_names(self):
        """The devices' host names, in order."""
        return [device_name(i) for i in range(1, self.devices + 1)]


SECTIONS = (Scenario, Link, Paths, Data, Model, Control, Workload, Cluster)


def default(key):
    """The default of a scenario key (dotted for a nested one: 'data.generated'), in the
    file's own terms."""
    for section in SECTIONS:
        if key in section.DEFAULTS:
            return section.DEFAULTS[key]
    raise KeyError(key)


def with_defaults(raw):
    """A copy of the scenario mapping raw with every key it leaves out set to its
    default (a nested key only where its mapping is one: a workload given by name keeps
    its name)."""
    filled = copy.deepcopy(raw)
    for section in SECTIONS:
        for key, value in section.DEFAULTS.items():
            outer, _, inner = key.partition('.')
            if not inner:
                filled.setdefault(key, copy.deepcopy(value))
            elif isinstance(filled.setdefault(outer, {}), dict):
                filled[outer].setdefault(inner, copy.deepcopy(value))
    return filled


def _per_device(raw, key, names, parse, label=None):
    """[value of key of raw for each device]: given once, as a list of one per device, or
    as {device: value} (the others get the key's default); parse(value, 'label[device]')
    checks one; label (default key) names the key in messages and its default."""
    label = label or key
    value = raw[key]
    if isinstance(value, list):
        if len(value) != len(names):
            raise ConfigError('%s: %d values for %d devices' % (label, len(value), len(names)))
        return [parse(v, '%s[%s]' % (label, name)) for v, name in zip(value, names)]
    if isinstance(value, dict) and all(is_device(str(k)) for k in value):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ConfigError('%s: no device %s (devices: %s..%s)'
                              % (label, quoted(unknown[0]), names[0], names[-1]))
        rest = parse(default(label), label)
        return [parse(value[name], '%s[%s]' % (label, name)) if name in value else rest
                for name in names]
    return [parse(value, label)] * len(names)


def _within(value, low, high, key, unit='s'):
    """value if low <= value <= high (high None: no upper bound), else ConfigError naming
    the scenario key."""
    if not low <= value or (high is not None and value > high):
        raise ConfigError('%s: %g %s is outside [%g, %s] %s' % (
            key, value, unit, low, 'inf' if high is None else '%g' % high, unit))
    return value


def _positive(value, what, allow_zero=False):
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError('%s must be %s, got %r' % (what, '>= 0' if allow_zero else '> 0',
                                                     value))
    return value


def _trace_file(spec, where, base_dir):
    """The path of a trace mapping's file (relative to the scenario's folder)."""
    path = spec['trace']
    path = path if os.path.isabs(path) else os.path.join(base_dir, path)
    if not os.path.exists(path):
        raise ConfigError('%s.trace: no such trace file %r' % (where, spec['trace']))
    if not os.path.isfile(path):
        raise ConfigError('%s.trace: %r is not a regular file (a folder or a device)'
                          % (where, spec['trace']))
    return path


def _capacity(spec, where, base_dir):
    """(Trace, file path or None) of a capacity value or trace mapping."""
    if not isinstance(spec, dict):
        rate = rate_mbit(spec, where)
        if rate != 0:                         # 0: no capacity (every device keeps its model)
            _within(rate, MIN_CAPACITY_MBIT, MAX_CAPACITY_MBIT, where, 'Mbit/s')
        return traces.constant(_positive(rate, where, True)), None
    return trace_of(spec, where, base_dir)


# The defaults of a trace mapping's own keys (capacity and delay traces alike; its
# column keys' defaults are traces.Reading's).
TRACE_DEFAULTS = {'format': TraceFormat.AUTO, 'scale': 1.0, 'loop': True, 'offset': 0,
                  'start': 0}


def trace_of(spec, where, base_dir, bin_s=traces.DEFAULT_STEP_S, link=True):
    """(Trace, file path) of a trace mapping (its file relative to base_dir): read with
    its column keys, cut to its window, scaled and offset; link: also refused when it
    reaches more than a link may have (the trace tools inspect any file)."""
    path = _trace_file(spec, where, base_dir)
    spec = dict(TRACE_DEFAULTS, **spec)
    trace = traces.load(path, spec['format'], bin_s=bin_s,
                        reading=_reading(spec, where)).window(*_window(spec, where))
    offset = str(spec['offset']).strip()
    sign = -1.0 if offset.startswith('-') else 1.0
    offset_mbit = sign * rate_mbit(offset.lstrip('-'), '%s.offset' % where)
    trace = trace.transformed(spec['scale'], offset_mbit, spec['loop'])
    peak = float(np.max(trace.rate_mbit))
    if link and peak > MAX_CAPACITY_MBIT:
        # The same bound as a constant's: the link layer shapes at most this much.
        raise ConfigError('%s.trace: %s reaches %.6g Mbit/s (after scale and offset), above '
                          'the %g Mbit/s a link may have (a trace in kbit/s needs scale: '
                          '0.001)' % (where, spec['trace'], peak, MAX_CAPACITY_MBIT))
    return trace, path


def _reading(spec, where):
    """The traces.Reading of a trace mapping's column keys: column, unit, time (a column
    name, or {column, format, unit}), interval."""
    time_spec = spec.get('time', {})
    time_spec = {'column': time_spec} if isinstance(time_spec, str) else time_spec
    interval = spec.get('interval')
    try:
        return traces.Reading(
            column=spec.get('column'), unit=spec.get('unit', 'Mbit/s'),
            time_column=time_spec.get('column', 'time_s'), time_format=time_spec.get('format'),
            time_unit=time_spec.get('unit', 's'),
            interval_s=None if interval is None else duration_s(interval, '%s.interval'
                                                                % where))
    except ConfigError as exc:
        raise ConfigError('%s: %s' % (where, exc)) from None


def _window(spec, where):
    """(start_s, duration_s or None) of a trace mapping's start and duration keys."""
    start = duration_s(spec['start'], '%s.start' % where)
    length = spec.get('duration')
    return start, None if length is None else _positive(
        duration_s(length, '%s.duration' % where), '%s.duration' % where)


def corpus_files(patterns, base_dir):
    """The traces of a corpus: each entry of patterns a file or a glob (relative to
    base_dir) expanded in name order, or a duplex pair {up: ..., down: ...} of two
    such, the n-th upload file with the n-th download file (a (up, down) tuple); each
    trace once.  A pattern that matches no file is an error, as are a pair whose two
    sides match different numbers of files and more than MAX_CORPUS traces."""
    found = []
    for entry in patterns:
        if isinstance(entry, dict):
            ups, downs = (_expand(entry[side], base_dir) for side in ('up', 'down'))
            if len(ups) != len(downs):
                raise ConfigError('traces: the pair up %r, down %r matches %d upload and '
                                  '%d download files: each upload needs its download'
                                  % (entry['up'], entry['down'], len(ups), len(downs)))
            found.extend(zip(ups, downs))
        else:
            found.extend(_expand(entry, base_dir))
        if len(found) > MAX_CORPUS:
            raise ConfigError('traces: more than %d traces' % MAX_CORPUS)
    return list(dict.fromkeys(found))


def trace_sides(entry):
    """(upload file, download file or None) of a corpus entry (``corpus_files``): a
    file, or a duplex pair."""
    return entry if isinstance(entry, tuple) else (entry, None)


def _expand(pattern, base_dir):
    """The regular files pattern (a file or a glob, relative to base_dir) names, in
    name order, as absolute paths."""
    full = pattern if os.path.isabs(pattern) else os.path.join(base_dir, pattern)
    matches = sorted(p for p in glob.glob(full) if os.path.isfile(p)) \
        if glob.has_magic(full) else [full]
    if not matches:
        raise ConfigError('traces: %r matches no file' % pattern)
    for path in matches:
        if not os.path.exists(path):
            raise ConfigError('traces: no such trace file %r' % pattern)
        if not os.path.isfile(path):
            raise ConfigError('traces: %r is not a regular file (a folder or a device)'
                              % path)
    return [os.path.abspath(path) for path in matches[:MAX_CORPUS + 1]]


def _delay(spec, where, base_dir, trace_files):
    """(delay ms, paths.DelaySteps or None) of a delay value or delay trace mapping: a
    trace file of (time, one-way delay in ms) steps, read as a bandwidth trace is
    (twocol, or csv with a ``delay_ms`` column or the one named)."""
    if not isinstance(spec, dict):
        return _within(duration_s(spec, where) * 1000, DELAY_MS[0], DELAY_MS[1], where,
                       'ms'), None
    path = _trace_file(spec, where, base_dir)
    spec = dict(TRACE_DEFAULTS, **spec)
    fmt = traces.detect(path) if spec['format'] == TraceFormat.AUTO else spec['format']
    if fmt == TraceFormat.MAHIMAHI:
        raise ConfigError('%s.trace: %s reads as a Mahimahi packet trace; a delay trace '
                          'has two columns, time and delay in ms' % (where, spec['trace']))
    trace = traces.load(path, fmt, spec.get('column', 'delay_ms'))
    values = [float(v) * spec['scale'] for v in trace.rate_mbit]
    if max(values) > DELAY_MS[1]:
        raise ConfigError('%s.trace: %s holds a delay of %g ms, above %g ms'
                          % (where, spec['trace'], max(values), DELAY_MS[1]))
    trace_files[where] = path
    steps = paths_mod.DelaySteps(tuple(float(t) for t in trace.times_s), tuple(values),
                                 float(trace.duration_s), spec['loop'])
    return steps.mean_ms, steps


def _loss(spec, where):
    """(Bernoulli loss %, paths.Bursts or None) of a loss value or mapping."""
    if not isinstance(spec, dict):
        return float(spec), None
    ge = spec['gilbert_elliott']
    try:
        return 0.0, paths_mod.Bursts(float(ge['p']), float(ge['r']), float(ge.get('h', 0)))
    except ConfigError as exc:
        raise ConfigError('%s: %s' % (where, exc)) from None


def problem_from(raw, where='scenario', capacity_mbit=None, base=None):
    """The per-device Problem a scenario mapping describes (units resolved, the keys it
    leaves out at their defaults): what ``solve`` and the results reader plan with.  A
    capacity trace (its file relative to the folder base) counts at its mean over the
    run; without base only a constant capacity counts (a trace's: 0)."""
    filled = with_defaults(raw)
    try:
        return _problem(filled, _hosts(filled), where, capacity_mbit, base)[0]
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(where) else '%s: %s' % (where, msg)) from None


def _hosts(raw):
    """The device names of a filled mapping."""
    return [device_name(i) for i in range(1, raw['devices'] + 1)]


def _model(raw, where):
    """The Model section of a filled mapping."""
    model = raw['model']
    # The YOLOv8 family at the precision: the menu, or the continuous range's default.
    family = [v.size_bytes for v in yolov8_menu(model['precision'])]
    min_size = family[0] if model['min_size'] is None else model['min_size']
    max_size = family[-1] if model['max_size'] is None else model['max_size']
    min_bytes = _within(size_bytes(min_size, 'model.min_size'), 1, MAX_CHECKPOINT_BYTES,
                        'model.min_size', 'bytes')
    max_bytes = _within(size_bytes(max_size, 'model.max_size'), min_bytes,
                        MAX_CHECKPOINT_BYTES, 'model.max_size', 'bytes')
    return Model(menu=Menu(model['menu']), precision=model['precision'], min_bytes=min_bytes,
                 max_bytes=max_bytes,
                 accuracy=AccuracyModel.from_dict(raw['accuracy'], '%s: accuracy' % where))


def _data(raw, hosts):
    """The Data section of a filled mapping."""
    data = raw['data']
    sample_bytes = _within(size_bytes(data['sample_size'], 'data.sample_size'), 1,
                           MAX_SAMPLE_BYTES, 'data.sample_size', 'bytes')
    generated = _per_device(data, 'generated', hosts, lambda v, key: float(v),
                            label='data.generated')
    return Data(sample_bytes=sample_bytes, generated=tuple(generated))


def _problem(raw, hosts, where, capacity_mbit=None, base=None):
    """(Problem, Model, Data) of a filled mapping: one device's period at capacity_mbit
    (None: the capacity's, a trace's mean over the run when base says where its file is;
    capacities that differ per device weigh each device's channel; a duplex download's
    own capacity likewise relative to it)."""
    rates, down_ratio = (), 1.0
    if capacity_mbit is None:
        length_s = _period_s(raw) * raw['periods']
        down = _down_mbit(raw, where, base, length_s)
        each = _constant_capacities(raw['capacity'], hosts, where)
        if each is None and base is not None:
            each = [float(trace.mean_between(0.0, length_s))
                    for trace, _ in _channels(raw, hosts, base)[0]]
        capacity_mbit = sum(each) / len(each) if each else 0.0
        if each and len(set(each)) > 1 and capacity_mbit > 0:
            # Channels of their own at constant rates: the solver weighs each one.
            rates = tuple(max(e, MIN_CAPACITY_MBIT) / capacity_mbit for e in each)
        if down is not None and capacity_mbit > 0:
            down_ratio = max(down, MIN_CAPACITY_MBIT) / capacity_mbit
    period_s = _period_s(raw)
    model, data = _model(raw, where), _data(raw, hosts)
    problem = Problem(
        capacity_mbit=capacity_mbit, period_s=period_s,
        update_s=_within(duration_s(raw['update'], 'update'), 0.0, MAX_PERIOD_S, 'update'),
        timing=raw['timing'], sample_bits=8 * data.sample_bytes,
        generated=data.generated[0], min_model_bytes=model.min_bytes,
        max_model_bytes=model.max_bytes,
        menu=tuple(yolov8_menu(model.precision)) if model.menu == Menu.YOLOV8 else (),
        medium=raw['medium'], rates=rates, accuracy=model.accuracy, down_ratio=down_ratio)
    return problem, model, data


def _down_spec(raw):
    """A filled mapping's ``capacity_down`` (a duplex download's own capacity or
    trace mapping), None without one; ConfigError on a medium without a budget a
    direction."""
    if 'capacity_down' not in raw:
        return None
    if not media.get(raw['medium']).per_direction:
        raise ConfigError('capacity_down: only a duplex medium has a download capacity')
    return raw['capacity_down']


def _down_mbit(raw, where, base, length_s):
    """A filled mapping's download capacity of its own: a constant, or a trace's mean
    over the run's length_s when base says where its file is; None without one (or a
    trace without base)."""
    spec = _down_spec(raw)
    if spec is None or (isinstance(spec, dict) and base is None):
        return None
    if not isinstance(spec, dict):
        return rate_mbit(spec, '%s: capacity_down' % where)
    trace, _ = _capacity(spec, 'capacity_down', base)
    return float(trace.mean_between(0.0, length_s))


def _period_s(raw):
    """The period of a filled mapping, in seconds."""
    return _within(duration_s(raw['period'], 'period'), MIN_STEP_S, MAX_PERIOD_S, 'period')


def _capacity_specs(value, hosts):
    """([(capacity value or trace mapping, its key)] one per device, whether the devices
    have channels of their own) of a scenario's capacity: given once for the fleet, or
    per device (a list, or {device: capacity} with 'others' for the devices not named)."""
    if isinstance(value, list):
        if len(value) != len(hosts):
            raise ConfigError('capacity: %d capacities for %d devices' % (len(value),
                                                                       len(hosts)))
        return [(v, 'capacity[%s]' % h) for v, h in zip(value, hosts)], True
    if isinstance(value, dict) and 'trace' not in value:
        unknown = sorted(set(value) - set(hosts) - {OTHERS})
        if unknown:
            raise ConfigError('capacity: no device %s (devices: %s..%s)'
                              % (quoted(unknown[0]), hosts[0], hosts[-1]))
        missing = [h for h in hosts if h not in value]
        if missing and OTHERS not in value:
            raise ConfigError('capacity: no capacity for %s (name every device, or give '
                              '%s: for the rest)' % (missing[0], OTHERS))
        return [(value[h], 'capacity[%s]' % h) if h in value else
                (value[OTHERS], 'capacity[%s]' % OTHERS) for h in hosts], True
    return [(value, 'capacity')] * len(hosts), False


def _constant_capacities(value, hosts, where):
    """[Mbit/s] per device of a capacity given as constant rates (once for the fleet,
    or per device), or None when any is a trace (only a run replays traces)."""
    specs, _ = _capacity_specs(value, hosts)
    if any(isinstance(spec, dict) for spec, _ in specs):
        return None
    return [rate_mbit(spec, '%s: capacity' % where) for spec, _ in specs]


def _channels(raw, hosts, base):
    """([(Trace, file or None)] one per device, whether the devices have channels of
    their own) of a scenario's capacity; a value given for several devices is read
    once."""
    specs, own = _capacity_specs(raw['capacity'], hosts)
    read_once = {}
    for spec, where in specs:
        if where not in read_once:
            read_once[where] = _capacity(spec, where, base)
    return [read_once[where] for _, where in specs], own


def resolve(raw, path):
    """The Scenario of a validated mapping read from path: the one resolver (the
    keys it leaves out at their defaults)."""
    base = os.path.dirname(os.path.abspath(path))
    try:
        return _resolve(raw, with_defaults(raw), path, base)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(path) else '%s: %s' % (path, msg)) from None


def _link(raw, hosts, base, period_s, trace_files):
    """The Link section of a filled mapping (period_s bounds its step); the files it
    reads go into trace_files."""
    medium = media.get(raw['medium'])
    channels, own = _channels(raw, hosts, base)
    if own and not medium.channels:
        raise ConfigError('capacity: a capacity per device needs a medium with channels '
                          '(medium: airtime or access), not %s' % medium)
    if medium.channels and raw['mode'] == LinkMode.WORK_CONSERVING:
        raise ConfigError('mode: work-conserving borrows capacity, which a medium of '
                          'per-device channels (%s) does not have to lend: use strict'
                          % medium)
    if own and 'traces' in raw:
        raise ConfigError('traces: a corpus replaces the fleet\'s one capacity trace; '
                          'this scenario gives a capacity per device')
    if not medium.per_direction and any(isinstance(t, dict) for t in raw.get('traces', ())):
        raise ConfigError('traces: an up/down pair is a duplex link\'s two traces; this '
                          'scenario\'s medium is %s (use medium: duplex)' % medium)
    capacity, cap_file = channels[0]
    capacity_down, down_file = None, None
    down_spec = _down_spec(raw)
    if down_spec is not None:
        capacity_down, down_file = _capacity(down_spec, 'capacity_down', base)
    step_s = _within(duration_s(raw['step'], 'step'), MIN_STEP_S, period_s, 'step')
    own_channels = traces.Channels([trace for trace, _ in channels], step_s,
                                   period_s * raw['periods']) if own else ()
    if own:
        capacity = own_channels.fleet
        cap_file = None
        trace_files.update({'capacity[%s]' % h: f for h, (_, f) in zip(hosts, channels)
                            if f})
    trace_files.update({k: v for k, v in (('capacity', cap_file),
                                          ('capacity_down', down_file)) if v})
    return Link(capacity=capacity, capacity_down=capacity_down, step_s=step_s,
                medium=medium.name, mode=LinkMode(raw['mode']), ack=raw['ack'],
                queue_ms=_within(duration_s(raw['queue'], 'queue') * 1000, QUEUE_MS[0],
                                 QUEUE_MS[1], 'queue', 'ms'),
                channels=own_channels)


def _paths(raw, hosts, base, trace_files):
    """The Paths section of a filled mapping; delay trace files go into trace_files."""
    delays = _per_device(raw, 'delay', hosts, lambda v, key: _delay(
        v, key, base, trace_files))
    jitters = _per_device(raw, 'jitter', hosts, lambda v, key: _within(
        duration_s(v, key) * 1000, DELAY_MS[0], DELAY_MS[1], key, 'ms'))
    losses = _per_device(raw, 'loss', hosts, _loss)
    each = tuple(paths_mod.Path(delay, jitter, loss, bursts, steps)
                 for (delay, steps), jitter, (loss, bursts) in zip(delays, jitters, losses))
    engine = DelayEngine(raw['delay_engine'])
    if engine == DelayEngine.NETEM and paths_mod.netem_can_express(each):
        raise ConfigError('delay_engine: netem: %s (use userspace or auto)'
                          % paths_mod.netem_can_express(each))
    return Paths(each=each, engine=engine, congestion_control=raw['congestion_control'])


def _control(raw, problem, step_s):
    """The Control section of a filled mapping (the problem's period, update and
    timing; control steps no shorter than step_s); a policy file is loaded to check it."""
    period_s = problem.period_s
    periods = raw['periods']
    if period_s * periods / step_s > MAX_REPLAY_STEPS:
        raise ConfigError('periods: %d periods of %g s at %g s steps are more than %d '
                          'replay steps' % (periods, period_s, step_s, MAX_REPLAY_STEPS))
    floor = raw['floor']
    if floor is not None and floor >= problem.accuracy.a_inf:
        raise ConfigError('floor: %g mAP is above what any model reaches (%.1f)'
                          % (floor, problem.accuracy.a_inf))
    if problem.timing == Timing.SEQUENTIAL and problem.update_s >= period_s:
        raise ConfigError('update: %g s leaves no transfer time in a %g s period'
                          % (problem.update_s, period_s))
    spec = raw['forecast']
    spec = {'predictor': spec} if isinstance(spec, str) else spec
    try:
        predictor = forecast_mod.get(spec['predictor'], _positive(duration_s(
            spec.get('window', forecast_mod.DEFAULT_WINDOW_S), 'forecast.window'),
            'forecast.window'))
    except ConfigError as exc:
        raise ConfigError('forecast: %s' % exc) from None
    spec = raw['drift']
    return Control(
        period_s=period_s, periods=periods, update_s=problem.update_s, timing=problem.timing,
        control_step_s=default_control_step(period_s, step_s)
        if raw['control_step'] is None else
        _within(duration_s(raw['control_step'], 'control_step'), step_s, period_s,
                'control_step'),
        forecast=predictor,
        drift=Drift(spec['per_period'] if isinstance(spec, dict) else spec),
        ratio=raw['ratio'], floor=floor, tolerance=raw['tolerance'],
        policies=tuple(raw['policies']))


def _policies(raw, base):
    """Check the policies a filled mapping names (its policy file loaded, within its
    time limit); the time limit in seconds."""
    code_limit_s = _within(duration_s(raw['user_code_time_limit'], 'user_code_time_limit'),
                           MIN_CODE_LIMIT_S, MAX_CODE_LIMIT_S, 'user_code_time_limit', 's')
    if raw['policy_file'] is not None:
        policy_path = raw['policy_file'] if os.path.isabs(raw['policy_file']) else \
            os.path.join(base, raw['policy_file'])
        if not os.path.isfile(policy_path):
            raise ConfigError('policy_file: no such file %r' % raw['policy_file'])
        policies_mod.load_file(policy_path, code_limit_s)
    for name in raw['policies']:
        try:
            policies_mod.get(name)
        except ConfigError as exc:
            raise ConfigError('policies: %s' % exc) from None
    return code_limit_s


def _resolve(given, raw, path, base):
    """The Scenario of the mapping given, raw being it with its defaults filled in."""
    hosts = _hosts(raw)
    trace_files = {}
    link = _link(raw, hosts, base, _period_s(raw), trace_files)
    code_limit_s = _policies(raw, base)
    problem, model, data = _problem(raw, hosts, path, capacity_mbit=float(
        link.capacity.rate_at(0.0)))
    problem = dataclasses.replace(problem, rates=link.rates_between(0.0, link.step_s))
    if link.capacity_down is not None and problem.capacity_mbit > 0:
        problem = dataclasses.replace(problem, down_ratio=max(
            float(link.capacity_down.rate_at(0.0)), MIN_CAPACITY_MBIT) / problem.capacity_mbit)
    control = _control(raw, problem, link.step_s)
    paths = _paths(raw, hosts, base, trace_files)
    compute_s = _within(duration_s(raw['edge']['compute_per_sample'],
                                   'edge.compute_per_sample'), 0.0, MAX_COMPUTE_PER_SAMPLE_S,
                        'edge.compute_per_sample')
    workload = Workload(spec=_workload(raw['workload'], base, problem, hosts, raw['seed'],
                                       code_limit_s), compute_per_sample_s=compute_s)
    return Scenario(
        path=path, raw=given,
        name=raw.get('name', os.path.splitext(os.path.basename(path))[0]),
        devices=raw['devices'], seed=raw['seed'], link=link, paths=paths, data=data,
        model=model, control=control, workload=workload, problem=problem,
        trace_files=trace_files,
        corpus=tuple(corpus_files(raw['traces'], base)) if 'traces' in raw else (),
        cluster=Cluster(_servers(raw, hosts)))


def _servers(raw, hosts):
    """The Servers of a filled mapping (its placement's devices among hosts)."""
    unknown = sorted(set(raw['placement']) - set(hosts))
    if unknown:
        raise ConfigError('placement: no device %s (devices: %s)' % (
            unknown[0], ', '.join(hosts[:5]) + (', ...' if len(hosts) > 5 else '')))
    return Servers.parse(raw['servers'], raw['tunnel'], raw['placement'])


def with_workload(scenario, name):
    """scenario with the workload called name (edgecollab run --workload) instead of
    its own; ConfigError when it cannot carry it."""
    spec = dict(scenario.workload.spec, name=name)
    try:
        workload_mod.from_spec(spec).check()
    except ConfigError as exc:
        raise ConfigError('--workload: %s' % exc) from None
    return dataclasses.replace(scenario, workload=dataclasses.replace(scenario.workload,
                                                                      spec=spec))


def _workload(value, base, problem, hosts, seed, time_limit_s):
    """The workload spec of a scenario's workload key, checked (the workload loads; a
    user's file within time_limit_s)."""
    spec = {'name': value} if isinstance(value, str) else dict(value)
    if spec.get('file'):
        spec['file'] = spec['file'] if os.path.isabs(spec['file']) else \
            os.path.join(base, spec['file'])
        if not os.path.isfile(spec['file']):
            raise ConfigError('workload.file: no such file %r' % value['file'])
    spec.update(sample_bytes=problem.sample_bits / 8, devices=hosts, seed=seed,
                sizes=[problem.smallest_bytes(), problem.largest_bytes()],
                time_limit_s=time_limit_s)
    try:
        workload_mod.from_spec(spec).check()
    except ConfigError as exc:
        raise ConfigError('workload: %s' % exc) from None
    return spec


def load_scenario(path, overrides=None):
    """Read, validate and resolve the scenario in path (overrides: top-level keys that
    replace the file's, checked by the same rules)."""
    return resolve(read(path, overrides), path)
