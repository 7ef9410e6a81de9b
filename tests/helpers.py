"""Helpers for tests: tolerance asserts that say what they compared."""

import time


def assert_within(measured, expected, rel_tol, what):
    """Assert |measured - expected| <= rel_tol * expected, printing everything."""
    low, high = expected * (1 - rel_tol), expected * (1 + rel_tol)
    assert low <= measured <= high, (
        '%s: expected %.4g, measured %.4g, tolerance %.1f%%, bounds [%.4g, %.4g]'
        % (what, expected, measured, 100 * rel_tol, low, high))


def sleep_until(deadline_s):
    """Sleep until the monotonic clock reads deadline_s (a measurement window edge)."""
    remaining = deadline_s - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
