"""Wait for readiness by polling with a deadline, never by sleeping a guessed time."""

import time

from edgecollab.errors import EdgecollabError


def wait(check, timeout_s, interval_s=0.02):
    """Call check() until it returns a true value or timeout_s passes; return its last
    value (false when the time ran out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval_s)


def poll(check, timeout_s, what, interval_s=0.02):
    """As wait, but raise an error naming what when the time runs out."""
    value = wait(check, timeout_s, interval_s)
    if not value:
        raise EdgecollabError('%s: not ready after %.1f s' % (what, timeout_s))
    return value


def wait_for_port(emu, host, port, timeout_s=10):
    """Wait until a TCP socket listens on port inside host's namespace."""
    def listening():
        out = emu.cmd(host, ['ss', '-Hltn', 'sport = :%d' % int(port)],
                      'check for a listener on %s:%s' % (host, port))
        return bool(out.strip())
    return poll(listening, timeout_s, 'listener on %s:%s' % (host, port))


def sleep_until(deadline_s):
    """Sleep until the monotonic clock reads deadline_s (a measurement window edge)."""
    remaining = deadline_s - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
