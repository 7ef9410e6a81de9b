"""Scenario files: load, validate against a schema, resolve units once.

A scenario is YAML.  Validation gives one line naming the file, the key and the rule
broken (``ConfigError``); nothing is started on bad input.  This module currently reads
what ``edgecollab solve`` needs: the link, the period's timing, the data, the model and
the accuracy parameters, and the policies to compare.
"""

import yaml
from jsonschema import Draft7Validator

from edgecollab.controller.accuracy import AccuracyModel, yolov8_menu
from edgecollab.controller.solver import Problem
from edgecollab.errors import ConfigError
from edgecollab.units import duration_s, rate_mbit, size_bytes

QUANTITY = {'type': ['string', 'number']}
SCHEMA = {
    'type': 'object',
    'additionalProperties': False,
    'properties': {
        'name': {'type': 'string'},
        'description': {'type': 'string'},
        'devices': {'type': 'integer', 'minimum': 1},
        'capacity': QUANTITY,
        'medium': {'enum': ['shared', 'duplex']},
        'period': QUANTITY,
        'update': QUANTITY,
        'timing': {'enum': ['overlap', 'sequential']},
        'data': {'type': 'object', 'additionalProperties': False,
                 'properties': {'sample_size': QUANTITY,
                                'generated': {'type': 'number', 'minimum': 0}}},
        'model': {'type': 'object', 'additionalProperties': False,
                  'properties': {'menu': {'enum': ['yolov8', 'continuous']},
                                 'min_size': QUANTITY, 'max_size': QUANTITY}},
        'accuracy': {'type': 'object'},
        'policies': {'type': 'array', 'items': {'type': 'string'}, 'minItems': 1},
        'ratio': {'type': 'number', 'minimum': 0, 'maximum': 1},
    },
}


def load(path):
    """The validated scenario mapping in path."""
    try:
        with open(path, encoding='utf-8') as src:
            data = yaml.safe_load(src)
    except OSError as exc:
        raise ConfigError('%s: %s' % (path, exc.strerror)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError('%s: not valid YAML: %s' % (path, str(exc).splitlines()[0])) from None
    if not isinstance(data, dict):
        raise ConfigError('%s: a scenario must be a mapping of keys' % path)
    errors = sorted(Draft7Validator(SCHEMA).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = '.'.join(str(p) for p in err.path) or '(top level)'
        raise ConfigError('%s: %s: %s' % (path, where, err.message))
    return data


def problem_from(scenario, where='scenario', capacity_mbit=None):
    """The per-device Problem a scenario describes (units resolved)."""
    data, model = scenario.get('data', {}), scenario.get('model', {})
    menu = tuple(yolov8_menu()) if model.get('menu', 'yolov8') == 'yolov8' else ()
    smallest = min(v.size_bytes for v in menu) if menu else 12.8e6
    largest = max(v.size_bytes for v in menu) if menu else 272.8e6
    try:
        return Problem(
            capacity_mbit=capacity_mbit if capacity_mbit is not None else
            rate_mbit(scenario.get('capacity', '20mbit'), '%s: capacity' % where),
            period_s=duration_s(scenario.get('period', '60s'), '%s: period' % where),
            update_s=duration_s(scenario.get('update', '0s'), '%s: update' % where),
            timing=scenario.get('timing', 'overlap'),
            sample_bits=8 * size_bytes(data.get('sample_size', '100KB'),
                                       '%s: data.sample_size' % where),
            generated=float(data.get('generated', 3000)),
            min_model_bytes=size_bytes(model.get('min_size', smallest),
                                       '%s: model.min_size' % where),
            max_model_bytes=size_bytes(model.get('max_size', largest),
                                       '%s: model.max_size' % where),
            menu=menu, medium=scenario.get('medium', 'shared'),
            accuracy=AccuracyModel.from_dict(scenario.get('accuracy', {}),
                                             '%s: accuracy' % where))
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(where) else '%s: %s' % (where, msg)) from None
