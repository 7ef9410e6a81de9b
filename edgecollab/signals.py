"""Signals end a process through its cleanup: SIGTERM and SIGHUP become SystemExit.

Python's default for SIGTERM ends the process at once, so no ``finally`` and no
``atexit`` runs and an emulation's bridges and processes are left behind.  As
SystemExit, every ``finally`` and ``atexit`` handler runs.  SIGINT already raises
KeyboardInterrupt.
"""

import signal

_installed = False


def exit_on_signals():
    """Turn SIGTERM and SIGHUP into SystemExit(128 + signal number); once only."""
    global _installed
    if _installed:
        return
    _installed = True

    def _exit(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit)
