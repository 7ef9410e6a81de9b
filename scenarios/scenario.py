"""Scenario files: load, validate against a schema, resolve units once.

A scenario is YAML (see ``scenarios/default.yaml`` for every key with a comment).
Validation gives one line naming the file, the key and the rule broken
(``ConfigError``, exit code 2); nothing is started on bad input.  ``resolve`` turns the
mapping into a ``Scenario`` of plain numbers with units in their names; relative trace
and policy-file paths are relative to the scenario file.
"""

import dataclasses
import glob
import math
import os
from dataclasses import dataclass, field

import numpy as np
import yaml
from jsonschema import Draft7Validator, validators
from jsonschema.exceptions import best_match

from edgecollab.controller import forecast as forecast_mod
from edgecollab.topologies import media
from edgecollab.controller import policies as policies_mod
from edgecollab.controller.accuracy import BYTES_PER_PARAM, AccuracyModel, yolov8_menu
from edgecollab.controller.correction import CONTROL_STEP_S
from edgecollab.controller.holding import DEFAULT_PER_PERIOD, Drift
from edgecollab.topologies.linkshare import (DELAY_MS, MAX_CAPACITY_MBIT, MIN_CAPACITY_MBIT,
                                             QUEUE_MS)
from edgecollab.controller.solver import Problem
from edgecollab import files, userfile
from edgecollab.errors import ConfigError, quoted
from edgecollab.nodes import checkpoint
from edgecollab.nodes import workload as workload_mod
from edgecollab.scenarios import traces
from edgecollab.topologies import paths as paths_mod
from edgecollab.topologies.addressing import DEVICE_RE, MAX_DEVICES, device_name, is_device
from edgecollab.units import duration_s, rate_mbit, size_bytes

# Every bound a backend holds, checked when a scenario is read, in the scenario's terms
# (the link layer's own bounds come from it: capacity, queue, delay).
MIN_STEP_S = 0.01              # the replayer holds 10 ms steps
MAX_PERIOD_S = 86400.0
MAX_PERIODS = 10000
MAX_REPLAY_STEPS = 10 ** 7     # steps of one policy's run (its duration / step)
MAX_SAMPLE_BYTES = 1e9         # a device buffers samples in memory
MAX_COMPUTE_PER_SAMPLE_S = 60.0
MIN_CODE_LIMIT_S, MAX_CODE_LIMIT_S = 0.1, 3600.0   # user_code_time_limit
MAX_GENERATED = 1e9            # samples a device produces in a period
MAX_CORPUS = 1000              # trace files of a corpus (traces:, --traces)
MAX_CHECKPOINT_BYTES = checkpoint.MAX_BYTES    # the largest checkpoint the edge writes

QUANTITY = {'type': ['string', 'number']}
PERCENT = {'type': 'number', 'minimum': 0, 'maximum': 100}


def value_or_mapping(value, mapping):
    """Schema of a value or, when it is a mapping, of that mapping (so an error names
    the rule it broke, not 'none of the alternatives')."""
    return {'if': {'type': 'object'}, 'then': mapping, 'else': value}


LOSS = value_or_mapping(PERCENT, {
    'type': 'object', 'additionalProperties': False, 'required': ['gilbert_elliott'],
    'properties': {'gilbert_elliott': {
        'type': 'object', 'additionalProperties': False, 'required': ['p', 'r'],
        'properties': {'p': PERCENT, 'r': PERCENT, 'h': PERCENT}}}})
DELAY = value_or_mapping(QUANTITY, {
    'type': 'object', 'additionalProperties': False, 'required': ['trace'],
    'properties': {'trace': {'type': 'string'},
                   'format': {'enum': ['auto', 'twocol', 'csv']},
                   'column': {'type': 'string'},
                   'scale': {'type': 'number', 'minimum': 0},
                   'loop': {'type': 'boolean'}}})


def per_device(item):
    """Schema of a key given once for every device, as a list (one per device) or as
    a mapping {device: value} (the others get the default).  A mapping is per device when
    its keys are device names (d1, d2, ...); any other mapping is one value."""
    return {'if': {'type': 'array'}, 'then': {'minItems': 1, 'items': item},
            'else': {'if': {'type': 'object', 'minProperties': 1,
                            'propertyNames': {'pattern': DEVICE_RE.pattern}},
                     'then': {'additionalProperties': item}, 'else': item}}


TRACE = {'type': 'object', 'additionalProperties': False, 'required': ['trace'],
         'properties': {'trace': {'type': 'string'},
                        'format': {'enum': ['auto'] + list(traces.FORMATS)},
                        'column': {'type': 'string'},
                        'unit': {'enum': list(traces.RATE_UNITS)},
                        'time': {'oneOf': [{'type': 'string'}, {
                            'type': 'object', 'additionalProperties': False,
                            'properties': {'column': {'type': 'string'},
                                           'format': {'type': 'string'},
                                           'unit': {'enum': list(traces.TIME_UNITS)}}}]},
                        'interval': QUANTITY, 'start': QUANTITY, 'duration': QUANTITY,
                        'scale': {'type': 'number', 'minimum': 0},
                        'offset': QUANTITY, 'loop': {'type': 'boolean'}}}
CAPACITY = {'oneOf': [QUANTITY, TRACE]}
OTHERS = 'others'      # in a capacity given per device: every device not named
# A capacity for the fleet, or one per device (a list, or {device: capacity} with
# 'others' for the rest): per-device channels, on a medium with channels.
CAPACITIES = {'if': {'type': 'array'}, 'then': {'minItems': 1, 'items': CAPACITY},
              'else': {'if': {'type': 'object', 'minProperties': 1, 'propertyNames': {
                  'pattern': '%s|^%s$' % (DEVICE_RE.pattern, OTHERS)}},
                       'then': {'additionalProperties': CAPACITY}, 'else': CAPACITY}}
SCHEMA = {
    'type': 'object',
    'additionalProperties': False,
    'properties': {
        'name': {'type': 'string'},
        'description': {'type': 'string'},
        'seed': {'type': 'integer', 'minimum': 0, 'maximum': 2 ** 31},
        'devices': {'type': 'integer', 'minimum': 1, 'maximum': MAX_DEVICES},
        'capacity': CAPACITIES,
        'capacity_down': CAPACITY,
        # A corpus: run the scenario on each of these trace files (globs) in turn.
        'traces': {'type': 'array', 'minItems': 1, 'maxItems': MAX_CORPUS,
                   'items': {'type': 'string', 'minLength': 1}},
        'step': QUANTITY,
        'medium': {'enum': list(media.MEDIA)},
        'mode': {'enum': ['strict', 'work-conserving']},
        'ack': {'type': 'boolean'},
        'queue': QUANTITY,
        'delay': per_device(DELAY),
        'jitter': per_device(QUANTITY),
        'loss': per_device(LOSS),
        'delay_engine': {'enum': list(paths_mod.ENGINES)},
        'period': QUANTITY,
        'periods': {'type': 'integer', 'minimum': 1, 'maximum': MAX_PERIODS},
        'update': QUANTITY,
        'timing': {'enum': ['overlap', 'sequential']},
        'data': {'type': 'object', 'additionalProperties': False,
                 'properties': {'sample_size': QUANTITY,
                                'generated': {'oneOf': [
                                    {'type': 'number', 'minimum': 0,
                                     'maximum': MAX_GENERATED},
                                    {'type': 'array', 'minItems': 1,
                                     'items': {'type': 'number', 'minimum': 0,
                                               'maximum': MAX_GENERATED}}]}}},
        'model': {'type': 'object', 'additionalProperties': False,
                  'properties': {'menu': {'enum': ['yolov8', 'continuous']},
                                 'precision': {'enum': list(BYTES_PER_PARAM)},
                                 'min_size': QUANTITY, 'max_size': QUANTITY}},
        'edge': {'type': 'object', 'additionalProperties': False,
                 'properties': {'compute_per_sample': QUANTITY}},
        'accuracy': {'type': 'object'},
        'policies': {'type': 'array', 'items': {'type': 'string'}, 'minItems': 1},
        'policy_file': {'type': 'string'},
        'user_code_time_limit': QUANTITY,
        'ratio': {'type': 'number', 'minimum': 0, 'maximum': 1},
        'floor': {'type': 'number', 'minimum': 0},
        'tolerance': {'type': 'number', 'exclusiveMinimum': 0, 'maximum': 1},
        'drift': {'oneOf': [{'type': 'number'}, {
            'type': 'object', 'additionalProperties': False, 'required': ['per_period'],
            'properties': {'per_period': {'type': 'number'}}}]},
        'control_step': QUANTITY,
        'workload': {'oneOf': [{'type': 'string'}, {
            'type': 'object', 'additionalProperties': False, 'required': ['name'],
            'properties': {'name': {'type': 'string'}, 'file': {'type': 'string'},
                           'drift': {'type': 'number', 'minimum': 0, 'maximum': 180}}}]},
        'forecast': {'oneOf': [{'type': 'string'}, {
            'type': 'object', 'additionalProperties': False, 'required': ['predictor'],
            'properties': {'predictor': {'type': 'string'}, 'window': QUANTITY}}]},
    },
}


@dataclass
class Scenario:
    """A resolved scenario: numbers with their units in their names."""
    path: str
    raw: dict
    name: str
    devices: int
    capacity: object                 # a traces.Trace (constant capacity: one step); with
                                     # per-device channels their mean as the link applies them
    capacity_down: object            # duplex: the download direction's Trace, else None
    step_s: float
    medium: str
    mode: str
    ack: bool
    queue_ms: float
    paths: list                      # topologies.paths.Path, one per device
    delay_engine: str                # as asked: auto | userspace | netem
    period_s: float
    periods: int
    problem: Problem                 # per device, at the capacity of the start
    generated: list                  # samples per period, one per device
    policies: list
    ratio: float
    floor: float
    tolerance: float                 # |goodput / plan - 1| above which an event is noted
    drift: object                    # holding.Drift: how a held model's accuracy decays
    control_step_s: float            # how often a closed-loop policy re-splits a period
    seed: int
    compute_per_sample_s: float
    forecast: object                 # the Predictor the controller plans with
    trace_files: dict = field(default_factory=dict)
    # Per-device channels (a medium with channels and a capacity per device): each
    # device's Trace, in device order; empty when the fleet has one capacity.
    channels: list = field(default_factory=list)
    # A corpus run's trace files (scenario key traces), each in place of the capacity's.
    corpus: list = field(default_factory=list)
    # What the agents learn from and the devices score (nodes/workload.py from_spec):
    # name, sample_bytes, sizes, devices, seed, drift, file.
    workload: dict = field(default_factory=lambda: {'name': 'synthetic'})

    @property
    def duration_s(self):
        """The emulated time of one policy's run."""
        return self.period_s * self.periods

    @property
    def device_names(self):
        """The devices' host names, in order."""
        return [device_name(i) for i in range(1, self.devices + 1)]


MAX_VALUES = 100000    # values a scenario may hold, aliases counted as expanded
MAX_SCENARIO_BYTES = 16 << 20   # a scenario file's size
MAX_DEPTH = 32         # nesting a scenario may have

# JSON Schema counts 2.0 as an integer; a count in a scenario must be written as one.
_VALIDATOR = validators.extend(Draft7Validator, type_checker=Draft7Validator.TYPE_CHECKER
                               .redefine('integer', lambda _, value: isinstance(value, int)
                                         and not isinstance(value, bool)))


class _Loader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise ConfigError('line %d: key %r appears twice'
                                  % (key_node.start_mark.line + 1, key))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_size(data, path):
    """ConfigError unless data holds at most MAX_VALUES values (an alias counted each time
    it is used) nested at most MAX_DEPTH deep, every number of them finite (a range check
    against NaN is always false, so NaN and infinity are refused here, once for all keys)."""
    count, stack = 0, [(data, 1, ())]
    while stack:
        value, depth, where = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError('%s: more than %d values (with aliases expanded): not a '
                              'scenario' % (path, MAX_VALUES))
        if depth > MAX_DEPTH:
            raise ConfigError('%s: values nested more than %d deep: not a scenario'
                              % (path, MAX_DEPTH))
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError('%s: %s: %r is not a finite number'
                              % (path, '.'.join(map(str, where)) or '(top level)', value))
        if isinstance(value, dict):
            stack.extend((v, depth + 1, where + (k,)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, where + (i,)) for i, v in enumerate(value))


def read(path, overrides=None):
    """The validated scenario mapping in path, with the top-level keys in overrides (a
    command line's, e.g. {'periods': 5}) put in before it is checked, so they meet the
    same rules as the file's."""
    try:
        src = files.open_regular(path, 'r', MAX_SCENARIO_BYTES, 'utf-8')
    except OSError as exc:
        raise ConfigError('%s: %s' % (path, exc.strerror)) from None
    try:
        with src:
            data = yaml.load(src, Loader=_Loader)
    except OSError as exc:
        raise ConfigError('%s: %s' % (path, exc.strerror)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError('%s: not valid YAML: %s' % (path, str(exc).splitlines()[0])) from None
    except RecursionError:
        raise ConfigError('%s: values nested too deeply: not a scenario' % path) from None
    except ConfigError as exc:
        raise ConfigError('%s: %s' % (path, exc)) from None
    if not isinstance(data, dict):
        raise ConfigError('%s: a scenario must be a mapping of keys' % path)
    data.update(overrides or {})
    return validate(data, path)


def validate(data, path):
    """data, a scenario mapping from path (a file, or 'arguments' for a command line's),
    when it keeps every rule: its size, finite numbers, the schema; else a ConfigError
    naming the key and the rule."""
    _check_size(data, path)
    errors = sorted(_VALIDATOR(SCHEMA).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = min(errors, key=lambda e: (len(list(e.path)), list(map(str, e.path))))
        where = '.'.join(str(p) for p in err.path) or '(top level)'
        message = err.message
        if err.validator == 'oneOf' and 'capacity' in where:
            message = '%s is neither a quantity with a unit nor a trace mapping' % (
                quoted(err.instance),)
        elif err.validator == 'oneOf':
            # The rule the closest of the alternatives broke: one of the right type.
            closest = best_match([e for e in err.context if e.validator != 'type']
                                 or err.context)
            inner = '.'.join(str(p) for p in closest.path)
            message = (('%s: ' % inner if inner else '') + closest.message) if closest \
                else '%s has the wrong type' % quoted(err.instance)
        elif len(message) > 200:
            message = '%s... (%s rule)' % (message[:120], err.validator)
        raise ConfigError('%s: %s: %s' % (path, where, message))
    return data



load = read


def _per_device(raw, key, names, parse, default, label=None):
    """[value of key of raw for each device]: given once, as a list of one per device, or
    as {device: value} (the others default); parse(value, 'label[device]') checks one;
    label (default key) names the key in messages."""
    label = label or key
    value = raw.get(key)
    if value is None:
        return [default] * len(names)
    if isinstance(value, list):
        if len(value) != len(names):
            raise ConfigError('%s: %d values for %d devices' % (label, len(value), len(names)))
        return [parse(v, '%s[%s]' % (label, name)) for v, name in zip(value, names)]
    if isinstance(value, dict) and all(is_device(str(k)) for k in value):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ConfigError('%s: no device %s (devices: %s..%s)'
                              % (label, quoted(unknown[0]), names[0], names[-1]))
        return [parse(value[name], '%s[%s]' % (label, name)) if name in value else default
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


def trace_of(spec, where, base_dir, bin_s=traces.DEFAULT_STEP_S, link=True):
    """(Trace, file path) of a trace mapping (its file relative to base_dir): read with
    its column keys, cut to its window, scaled and offset; link: also refused when it
    reaches more than a link may have (the trace tools inspect any file)."""
    path = _trace_file(spec, where, base_dir)
    trace = traces.load(path, spec.get('format', 'auto'), bin_s=bin_s,
                        reading=_reading(spec, where)).window(*_window(spec, where))
    offset = str(spec.get('offset', 0)).strip()
    sign = -1.0 if offset.startswith('-') else 1.0
    offset_mbit = sign * rate_mbit(offset.lstrip('-'), '%s.offset' % where)
    trace = trace.transformed(spec.get('scale', 1.0), offset_mbit, spec.get('loop', True))
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
    start = duration_s(spec.get('start', 0), '%s.start' % where)
    length = spec.get('duration')
    return start, None if length is None else _positive(
        duration_s(length, '%s.duration' % where), '%s.duration' % where)


def corpus_files(patterns, base_dir):
    """The trace files of a corpus: each pattern (a file or a glob, relative to
    base_dir) expanded, in name order, each file once; a pattern that matches no file
    is an error, as are more than MAX_CORPUS files."""
    found = []
    for pattern in patterns:
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
            found.append(os.path.abspath(path))
            if len(found) > MAX_CORPUS:
                raise ConfigError('traces: more than %d files' % MAX_CORPUS)
    return list(dict.fromkeys(found))


def _delay(spec, where, base_dir, trace_files):
    """(delay ms, paths.DelaySteps or None) of a delay value or delay trace mapping: a
    trace file of (time, one-way delay in ms) steps, read as a bandwidth trace is
    (twocol, or csv with a ``delay_ms`` column or the one named)."""
    if not isinstance(spec, dict):
        return _within(duration_s(spec, where) * 1000, DELAY_MS[0], DELAY_MS[1], where,
                       'ms'), None
    path = _trace_file(spec, where, base_dir)
    fmt = spec.get('format', 'auto')
    fmt = traces.detect(path) if fmt == 'auto' else fmt
    if fmt == 'mahimahi':
        raise ConfigError('%s.trace: %s reads as a Mahimahi packet trace; a delay trace '
                          'has two columns, time and delay in ms' % (where, spec['trace']))
    trace = traces.load(path, fmt, spec.get('column', 'delay_ms'))
    scale = spec.get('scale', 1.0)
    values = [float(v) * scale for v in trace.rate_mbit]
    if max(values) > DELAY_MS[1]:
        raise ConfigError('%s.trace: %s holds a delay of %g ms, above %g ms'
                          % (where, spec['trace'], max(values), DELAY_MS[1]))
    trace_files[where] = path
    steps = paths_mod.DelaySteps(tuple(float(t) for t in trace.times_s), tuple(values),
                                 float(trace.duration_s), spec.get('loop', True))
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


def problem_from(raw, where='scenario', capacity_mbit=None):
    """The per-device Problem a scenario mapping describes (units resolved)."""
    data, model = raw.get('data', {}), raw.get('model', {})
    # The YOLOv8 family at the precision: the menu, or the continuous range's default.
    family = tuple(yolov8_menu(model.get('precision', 'fp32')))
    menu = family if model.get('menu', 'yolov8') == 'yolov8' else ()
    smallest = min(v.size_bytes for v in family)
    largest = max(v.size_bytes for v in family)
    generated = data.get('generated', 3000)
    rates = ()
    if capacity_mbit is None:
        capacity = raw.get('capacity', '20mbit')
        each = _constant_capacities(capacity, raw.get('devices', 1), where)
        capacity_mbit = sum(each) / len(each) if each else 0.0
        if each and len(set(each)) > 1 and capacity_mbit > 0:
            # Channels of their own at constant rates: the solver weighs each one.
            rates = tuple(max(e, MIN_CAPACITY_MBIT) / capacity_mbit for e in each)
    try:
        period_s = _within(duration_s(raw.get('period', '60s'), 'period'), MIN_STEP_S,
                           MAX_PERIOD_S, 'period')
        min_size = _within(size_bytes(model.get('min_size', smallest), 'model.min_size'), 1,
                           MAX_CHECKPOINT_BYTES, 'model.min_size', 'bytes')
        max_size = _within(size_bytes(model.get('max_size', largest), 'model.max_size'),
                           min_size, MAX_CHECKPOINT_BYTES, 'model.max_size', 'bytes')
        sample_bytes = _within(size_bytes(data.get('sample_size', '100KB'),
                                          'data.sample_size'), 1, MAX_SAMPLE_BYTES,
                               'data.sample_size', 'bytes')
        return Problem(
            capacity_mbit=capacity_mbit, period_s=period_s,
            update_s=_within(duration_s(raw.get('update', '0s'), 'update'), 0.0,
                             MAX_PERIOD_S, 'update'),
            timing=raw.get('timing', 'overlap'),
            sample_bits=8 * sample_bytes,
            generated=float(generated[0] if isinstance(generated, list) else generated),
            min_model_bytes=min_size, max_model_bytes=max_size,
            menu=menu, medium=raw.get('medium', 'shared'), rates=rates,
            accuracy=AccuracyModel.from_dict(raw.get('accuracy', {}),
                                             '%s: accuracy' % where))
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(where) else '%s: %s' % (where, msg)) from None


def _constant_capacities(value, devices, where):
    """[Mbit/s] per device of a capacity given as constant rates (once for the fleet,
    or per device), or None when any is a trace (only a run replays traces)."""
    if isinstance(value, list):
        items = value
    elif isinstance(value, dict) and 'trace' not in value:
        items = [value.get(device_name(i), value.get(OTHERS)) for i in range(1, devices + 1)]
    else:
        items = [value] * devices
    if any(isinstance(v, dict) or v is None for v in items):
        return None
    return [rate_mbit(v, '%s: capacity' % where) for v in items]


def resolve(raw, path):
    """The Scenario of a validated mapping read from path."""
    base = os.path.dirname(os.path.abspath(path))
    try:
        return _resolve(raw, path, base)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(path) else '%s: %s' % (path, msg)) from None


def _channels(raw, hosts, base):
    """([(Trace, file or None)] one per device, whether the devices have channels of
    their own) of a scenario's capacity: given once for the fleet, or per device (a list,
    or {device: capacity} with 'others' for the devices not named)."""
    value = raw.get('capacity', '20mbit')
    if isinstance(value, list):
        if len(value) != len(hosts):
            raise ConfigError('capacity: %d capacities for %d devices' % (len(value),
                                                                       len(hosts)))
        return [_capacity(v, 'capacity[%s]' % h, base) for v, h in zip(value, hosts)], True
    if isinstance(value, dict) and 'trace' not in value:
        unknown = sorted(set(value) - set(hosts) - {OTHERS})
        if unknown:
            raise ConfigError('capacity: no device %s (devices: %s..%s)'
                              % (quoted(unknown[0]), hosts[0], hosts[-1]))
        missing = [h for h in hosts if h not in value]
        if missing and OTHERS not in value:
            raise ConfigError('capacity: no capacity for %s (name every device, or give '
                              '%s: for the rest)' % (missing[0], OTHERS))
        rest = _capacity(value[OTHERS], 'capacity[%s]' % OTHERS, base) if missing else None
        return [_capacity(value[h], 'capacity[%s]' % h, base) if h in value else rest
                for h in hosts], True
    return [_capacity(value, 'capacity', base)] * len(hosts), False


def _resolve(raw, path, base):
    devices = raw.get('devices', 1)
    hosts = [device_name(i) for i in range(1, devices + 1)]
    medium = media.get(raw.get('medium', 'shared'))
    channels, own = _channels(raw, hosts, base)
    if own and not medium.channels:
        raise ConfigError('capacity: a capacity per device needs a medium with channels '
                          '(medium: airtime or access), not %s' % medium)
    if medium.channels and raw.get('mode') == 'work-conserving':
        raise ConfigError('mode: work-conserving borrows capacity, which a medium of '
                          'per-device channels (%s) does not have to lend: use strict'
                          % medium)
    if own and 'traces' in raw:
        raise ConfigError('traces: a corpus replaces the fleet\'s one capacity trace; '
                          'this scenario gives a capacity per device')
    capacity, cap_file = channels[0]
    capacity_down, down_file = None, None
    if 'capacity_down' in raw:
        if not medium.per_direction:
            raise ConfigError('capacity_down: only a duplex medium has a download capacity')
        capacity_down, down_file = _capacity(raw['capacity_down'], 'capacity_down', base)
    generated = _per_device(raw.get('data', {}), 'generated', hosts, lambda v, key: v, 3000,
                            label='data.generated')
    code_limit_s = _within(duration_s(raw.get('user_code_time_limit',
                                              userfile.DEFAULT_TIME_LIMIT_S),
                                      'user_code_time_limit'),
                           MIN_CODE_LIMIT_S, MAX_CODE_LIMIT_S, 'user_code_time_limit', 's')
    if 'policy_file' in raw:
        policy_path = raw['policy_file'] if os.path.isabs(raw['policy_file']) else \
            os.path.join(base, raw['policy_file'])
        if not os.path.isfile(policy_path):
            raise ConfigError('policy_file: no such file %r' % raw['policy_file'])
        policies_mod.load_file(policy_path, code_limit_s)
    names = raw.get('policies', policies_mod.DEFAULT_POLICIES)
    for name in names:
        try:
            policies_mod.get(name)
        except ConfigError as exc:
            raise ConfigError('policies: %s' % exc) from None
    problem = problem_from(raw, path, capacity_mbit=float(capacity.rate_at(0.0)))
    period_s = problem.period_s
    step_s = _within(duration_s(raw.get('step', '100ms'), 'step'), MIN_STEP_S, period_s,
                     'step')
    periods = raw.get('periods', 3)
    if period_s * periods / step_s > MAX_REPLAY_STEPS:
        raise ConfigError('periods: %d periods of %g s at %g s steps are more than %d '
                          'replay steps' % (periods, period_s, step_s, MAX_REPLAY_STEPS))
    own_channels = [trace for trace, _ in channels] if own else []
    if own:
        capacity = traces.fleet_of(own_channels, step_s, period_s * periods)
        cap_file = None
        rates = traces.relative_rates([c.as_link(step_s, step_s) for c in own_channels],
                                      0.0, step_s)
        problem = dataclasses.replace(problem, capacity_mbit=float(capacity.rate_at(0.0)),
                                      rates=tuple(float(r) for r in rates))
    channel_files = {'capacity[%s]' % h: f for h, (_, f) in zip(hosts, channels) if f} \
        if own else {}
    queue_ms = _within(duration_s(raw.get('queue', '100ms'), 'queue') * 1000,
                       QUEUE_MS[0], QUEUE_MS[1], 'queue', 'ms')
    delay_files = {}
    delays = _per_device(raw, 'delay', hosts, lambda v, key: _delay(
        v, key, base, delay_files), (0.0, None))
    jitters = _per_device(raw, 'jitter', hosts, lambda v, key: _within(
        duration_s(v, key) * 1000, DELAY_MS[0], DELAY_MS[1], key, 'ms'), 0.0)
    losses = _per_device(raw, 'loss', hosts, _loss, (0.0, None))
    paths = [paths_mod.Path(delay, jitter, loss, bursts, steps)
             for (delay, steps), jitter, (loss, bursts) in zip(delays, jitters, losses)]
    if raw.get('delay_engine') == 'netem' and paths_mod.netem_can_express(paths):
        raise ConfigError('delay_engine: netem: %s (use userspace or auto)'
                          % paths_mod.netem_can_express(paths))
    compute_s = _within(duration_s(raw.get('edge', {}).get('compute_per_sample', 0),
                                   'edge.compute_per_sample'), 0.0, MAX_COMPUTE_PER_SAMPLE_S,
                        'edge.compute_per_sample')
    floor = raw.get('floor')
    if floor is not None and floor >= problem.accuracy.a_inf:
        raise ConfigError('floor: %g mAP is above what any model reaches (%.1f)'
                          % (floor, problem.accuracy.a_inf))
    if problem.timing == 'sequential' and problem.update_s >= period_s:
        raise ConfigError('update: %g s leaves no transfer time in a %g s period'
                          % (problem.update_s, period_s))
    spec = raw.get('forecast', forecast_mod.DEFAULT_PREDICTOR)
    spec = {'predictor': spec} if isinstance(spec, str) else spec
    try:
        predictor = forecast_mod.get(spec['predictor'], _positive(duration_s(
            spec.get('window', forecast_mod.DEFAULT_WINDOW_S), 'forecast.window'),
            'forecast.window'))
    except ConfigError as exc:
        raise ConfigError('forecast: %s' % exc) from None
    spec = raw.get('drift', DEFAULT_PER_PERIOD)
    drift = Drift(spec['per_period'] if isinstance(spec, dict) else spec)
    control_step_s = _within(duration_s(raw.get('control_step', CONTROL_STEP_S),
                                        'control_step'), step_s, period_s, 'control_step')
    workload = _workload(raw.get('workload', 'synthetic'), base, problem, hosts,
                         raw.get('seed', 1), code_limit_s)
    return Scenario(
        path=path, raw=raw, forecast=predictor, workload=workload,
        name=raw.get('name', os.path.splitext(os.path.basename(path))[0]),
        devices=devices, capacity=capacity, capacity_down=capacity_down, step_s=step_s,
        medium=problem.medium, mode=raw.get('mode', 'strict'), ack=raw.get('ack', True),
        queue_ms=queue_ms, paths=paths, delay_engine=raw.get('delay_engine', 'auto'),
        period_s=period_s, periods=periods, problem=problem,
        generated=[float(g) for g in generated], policies=list(names),
        ratio=raw.get('ratio', 0.5), floor=floor, tolerance=raw.get('tolerance', 0.2),
        drift=drift, control_step_s=control_step_s,
        seed=raw.get('seed', 1),
        compute_per_sample_s=compute_s,
        corpus=corpus_files(raw['traces'], base) if 'traces' in raw else [],
        channels=own_channels,
        trace_files=dict({k: v for k, v in (('capacity', cap_file),
                                            ('capacity_down', down_file)) if v},
                         **channel_files, **delay_files))


def with_workload(scenario, name):
    """scenario with the workload called name (edgecollab run --workload) instead of
    its own; ConfigError when it cannot carry it."""
    spec = dict(scenario.workload, name=name)
    try:
        workload_mod.from_spec(spec).check()
    except ConfigError as exc:
        raise ConfigError('--workload: %s' % exc) from None
    scenario.workload = spec
    return scenario


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
