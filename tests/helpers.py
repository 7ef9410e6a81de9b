"""Helpers for tests: tolerance asserts that say what they compared, and edited copies
of the bundled scenarios."""

import os
import re
import threading
import time

from tests.conftest import REPO


def assert_within(measured, expected, rel_tol, what, below_tol=None):
    """Assert expected * (1 - below_tol) <= measured <= expected * (1 + rel_tol)
    (below_tol: rel_tol unless given), printing everything."""
    below_tol = rel_tol if below_tol is None else below_tol
    low, high = expected * (1 - below_tol), expected * (1 + rel_tol)
    assert low <= measured <= high, (
        '%s: expected %.4g, measured %.4g, tolerance -%.1f%% +%.1f%%, bounds [%.4g, %.4g]'
        % (what, expected, measured, 100 * below_tol, 100 * rel_tol, low, high))


def scenario_copy(tmp_path, name='default.yaml', periods=None, period=None, extra=''):
    """Path of a copy of scenarios/name in tmp_path with its number of periods and its
    period length (e.g. '5s') replaced where given, and extra lines appended (a
    top-level key of extra replaces the copy's own)."""
    with open(os.path.join(REPO, 'scenarios', name)) as src:
        text = src.read()
    if periods is not None:
        text = re.sub(r'(?m)^periods: .*$', 'periods: %d' % periods, text)
    if period is not None:
        text = re.sub(r'(?m)^period: .*$', 'period: %s' % period, text)
    for key in re.findall(r'(?m)^(\w+):', extra):
        text = re.sub(r'(?m)^%s:.*$' % key, '', text)
    path = tmp_path / name
    path.write_text(text + extra)
    return str(path)


def at(run, offset_s, action):
    """Run action at offset_s of a PolicyRun's clock (in a thread)."""
    def later():
        while run.clock.t0 is None:           # set when the periods' clock starts
            time.sleep(0.05)
        time.sleep(max(0.0, run.clock.t0 + offset_s - time.monotonic()))
        action()
    threading.Thread(target=later, daemon=True).start()
