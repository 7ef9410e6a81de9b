"""Parse quantities with units once, at the boundary, into plain floats.

Internal names carry the unit (``rate_mbit``, ``size_bytes``, ``period_s``); these
functions turn "15mbit", "2.5MB" or "100ms" (or a bare number in the default unit) into
those floats, and raise ``ConfigError`` naming the value otherwise.
"""

import math
import re

from edgecollab.errors import ConfigError

_NUMBER = r'([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)'
_PATTERN = re.compile(r'^\s*' + _NUMBER + r'\s*([A-Za-z/%]*)\s*$')

# Factors to the internal unit of each kind.
RATE_TO_MBIT = {'bit': 1e-6, 'bps': 1e-6, 'kbit': 1e-3, 'kbps': 1e-3, 'mbit': 1.0,
                'mbps': 1.0, 'mbit/s': 1.0, 'gbit': 1e3, 'gbps': 1e3, 'gbit/s': 1e3,
                'kbit/s': 1e-3, 'bit/s': 1e-6}
SIZE_TO_BYTES = {'b': 1, 'byte': 1, 'bytes': 1, 'kb': 1e3, 'mb': 1e6, 'gb': 1e9,
                 'kib': 1024, 'mib': 1024 ** 2, 'gib': 1024 ** 3}
TIME_TO_S = {'s': 1.0, 'sec': 1.0, 'ms': 1e-3, 'us': 1e-6, 'min': 60.0, 'h': 3600.0}


def _parse(value, table, default_unit, what):
    """Return value converted with table; a bare number is in default_unit."""
    if isinstance(value, bool):
        raise ConfigError('%s: expected a number with a unit, got %r' % (what, value))
    if isinstance(value, (int, float)):
        number, unit = float(value), default_unit
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise ConfigError('%s: cannot read %r as a quantity' % (what, value))
        number, unit = float(match.group(1)), (match.group(2) or default_unit)
    else:
        raise ConfigError('%s: expected a number with a unit, got %r' % (what, value))
    key = unit if unit in table else unit.lower()
    if key not in table:
        raise ConfigError('%s: unknown unit %r in %r (known: %s)'
                          % (what, unit, value, ', '.join(sorted(table))))
    result = number * table[key]
    if not math.isfinite(result):
        raise ConfigError('%s: %r is not a finite quantity' % (what, value))
    return result


def rate_mbit(value, what='rate'):
    """Parse a rate such as "15mbit", "500kbit", "1gbit" or 15 (Mbit/s) to Mbit/s."""
    return _parse(value, RATE_TO_MBIT, 'mbit', what)


def size_bytes(value, what='size'):
    """Parse a size such as "2.5MB", "640KiB" or 1000 (bytes) to bytes."""
    return _parse(value, SIZE_TO_BYTES, 'b', what)


def duration_s(value, what='duration'):
    """Parse a duration such as "100ms", "2s" or 0.5 (seconds) to seconds."""
    return _parse(value, TIME_TO_S, 's', what)


def tc_rate(rate_mbit_value):
    """Format a rate in Mbit/s for tc, in whole bit/s so no precision is lost."""
    return '%dbit' % max(1, int(round(rate_mbit_value * 1e6)))
