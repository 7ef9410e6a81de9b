"""What a scenario file may hold, and reading one.

``read`` loads a YAML file (bounded in size, depth and values, a key given twice
refused) and ``validate`` checks the mapping against ``SCHEMA`` and the bounds every
backend holds; a broken rule is one line naming the file, the key and the rule
(``ConfigError``, exit code 2).  scenarios/scenario.py turns a valid mapping into a
typed ``Scenario``.
"""

import math

import yaml
from jsonschema import Draft7Validator, validators
from jsonschema.exceptions import best_match

from edgecollab import files
from edgecollab.controller.accuracy import BYTES_PER_PARAM
from edgecollab.errors import ConfigError, quoted
from edgecollab.kinds import (DelayEngine, LinkMode, Medium, Menu, Timing, TraceFormat,
                              Tunnel, words)
from edgecollab.nodes import checkpoint
from edgecollab.scenarios import traces
from edgecollab.topologies.addressing import DEVICE_RE, MAX_DEVICES
from edgecollab.topologies.cluster import MAX_SERVERS

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
                        'format': {'enum': words(TraceFormat)},
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
        # A corpus: run the scenario on each of these trace files (globs) in turn; on a
        # duplex medium an item may be a pair {up: files, down: files}.
        'traces': {'type': 'array', 'minItems': 1, 'maxItems': MAX_CORPUS,
                   'items': {'oneOf': [
                       {'type': 'string', 'minLength': 1},
                       {'type': 'object', 'additionalProperties': False,
                        'required': ['up', 'down'],
                        'properties': {'up': {'type': 'string', 'minLength': 1},
                                       'down': {'type': 'string', 'minLength': 1}}}]}},
        'step': QUANTITY,
        'medium': {'enum': words(Medium)},
        'mode': {'enum': words(LinkMode)},
        'ack': {'type': 'boolean'},
        'queue': QUANTITY,
        'delay': per_device(DELAY),
        'jitter': per_device(QUANTITY),
        'loss': per_device(LOSS),
        'delay_engine': {'enum': words(DelayEngine)},
        # The hosts' TCP congestion control (a kernel module's name after tcp_).
        'congestion_control': {'type': 'string', 'pattern': '^[a-z][a-z0-9_]{0,14}$'},
        'period': QUANTITY,
        'periods': {'type': 'integer', 'minimum': 1, 'maximum': MAX_PERIODS},
        'update': QUANTITY,
        'timing': {'enum': words(Timing)},
        'data': {'type': 'object', 'additionalProperties': False,
                 'properties': {'sample_size': QUANTITY,
                                'generated': {'oneOf': [
                                    {'type': 'number', 'minimum': 0,
                                     'maximum': MAX_GENERATED},
                                    {'type': 'array', 'minItems': 1,
                                     'items': {'type': 'number', 'minimum': 0,
                                               'maximum': MAX_GENERATED}}]}}},
        'model': {'type': 'object', 'additionalProperties': False,
                  'properties': {'menu': {'enum': words(Menu)},
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
        # The servers a Mininet run spreads over (topologies/cluster.py): the first
        # is this machine; devices placed round robin or by placement; the tunnels.
        'servers': {'type': 'array', 'minItems': 1, 'maxItems': MAX_SERVERS,
                    'items': {'type': 'string', 'minLength': 1, 'maxLength': 253}},
        'placement': {'type': 'object', 'propertyNames': {'pattern': DEVICE_RE.pattern},
                      'additionalProperties': {'type': 'string', 'minLength': 1}},
        'tunnel': {'enum': words(Tunnel)},
        'forecast': {'oneOf': [{'type': 'string'}, {
            'type': 'object', 'additionalProperties': False, 'required': ['predictor'],
            'properties': {'predictor': {'type': 'string'}, 'window': QUANTITY}}]},
    },
}


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
