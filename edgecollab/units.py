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

# Factors to the internal unit of each kind.  Case matters where it carries meaning: in
# a rate or a size, b is a bit and B a byte; a unit that could be either is refused.
TIME_TO_S = {'s': 1.0, 'sec': 1.0, 'ms': 1e-3, 'us': 1e-6, 'min': 60.0, 'h': 3600.0}
_PREFIX = {'': 1.0, 'k': 1e3, 'K': 1e3, 'M': 1e6, 'G': 1e9}
_BINARY = {'Ki': 1024.0, 'Mi': 1024.0 ** 2, 'Gi': 1024.0 ** 3}
_RATE_WORD = re.compile(r'^([kmg]?)bit(/s)?$')                  # any case: bit is a bit
_RATE_SYMBOL = re.compile(r'^([kKMG]?)([bB])(ps|/s)$')          # b bits, B bytes
_SIZE_SYMBOL = re.compile(r'^(Ki|Mi|Gi|[kKMG]?)(B)$')
RATE_UNITS = 'bit, kbit, mbit, gbit (any case, or /s), bps, kbps, Mbps, Gbps, Mb/s (bits), ' \
    'Bps, kBps, MBps, GBps, MB/s (bytes)'
SIZE_UNITS = 'B, kB, KB, MB, GB, KiB, MiB, GiB, byte, bytes'


def _rate_factor(unit):
    """Mbit/s per unit of a rate unit, or None (unknown), or 'ambiguous'."""
    word = _RATE_WORD.match(unit.lower())
    if word:
        return {'': 1e-6, 'k': 1e-3, 'm': 1.0, 'g': 1e3}[word.group(1)]
    symbol = _RATE_SYMBOL.match(unit)
    if symbol:
        bits = 1 if symbol.group(2) == 'b' else 8
        return _PREFIX[symbol.group(1)] * bits / 1e6
    if re.match(r'^[kmg]?b(ps|/s)$', unit.lower()):
        return 'ambiguous'
    return None


def _size_factor(unit):
    """Bytes per unit of a size unit, or None (unknown), or 'ambiguous' (a bit)."""
    if unit.lower() in ('byte', 'bytes'):
        return 1.0
    symbol = _SIZE_SYMBOL.match(unit)
    if symbol:
        return _BINARY.get(symbol.group(1)) or _PREFIX[symbol.group(1)]
    if re.match(r'^(ki|mi|gi|[kmg])?b$', unit.lower()):
        return 'ambiguous'
    return None


def _parse(value, factor, default_unit, what, known):
    """Return value converted by factor(unit) (None: unknown; 'ambiguous'); a bare
    number is in default_unit."""
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
    scale = factor(unit)
    if scale == 'ambiguous':
        raise ConfigError('%s: the unit %r in %r could be bits or bytes: b is a bit, B a '
                          'byte (known: %s)' % (what, unit, value, known))
    if scale is None:
        raise ConfigError('%s: unknown unit %r in %r (known: %s)'
                          % (what, unit, value, known))
    result = number * scale
    if not math.isfinite(result):
        raise ConfigError('%s: %r is not a finite quantity' % (what, value))
    return result


def rate_mbit(value, what='rate'):
    """Parse a rate such as "15mbit", "500kbit", "1gbit" or 15 (Mbit/s) to Mbit/s."""
    return _parse(value, _rate_factor, 'mbit', what, RATE_UNITS)


def size_bytes(value, what='size'):
    """Parse a size such as "2.5MB", "640KiB" or 1000 (bytes) to bytes."""
    return _parse(value, _size_factor, 'B', what, SIZE_UNITS)


def duration_s(value, what='duration'):
    """Parse a duration such as "100ms", "2s" or 0.5 (seconds) to seconds."""
    return _parse(value, lambda unit: TIME_TO_S.get(unit.lower()), 's', what,
                  ', '.join(TIME_TO_S))


def tc_rate(rate_mbit_value):
    """Format a rate in Mbit/s for tc, in whole bit/s so no precision is lost."""
    return '%dbit' % max(1, int(round(rate_mbit_value * 1e6)))
