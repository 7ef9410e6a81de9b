"""Signals end a process through its cleanup: SIGTERM and SIGHUP become SystemExit.

Python's default for SIGTERM ends the process at once, so no ``finally`` and no
``atexit`` runs and an emulation's bridges and processes are left behind.  As
SystemExit, every ``finally`` and ``atexit`` handler runs.  SIGINT already raises
KeyboardInterrupt.

A Python handler runs only when the main thread is back in the interpreter.  A signal
that arrives just before the main thread enters a blocking read (``mn``'s CLI waiting
on its input) leaves the read blocked and the handler pending, and the process does not
end (measured: 1 in 8 ``mn --custom`` runs ended by SIGTERM on a loaded 2-core
machine).  So the signal also wakes a watcher thread (``signal.set_wakeup_fd``), which,
while the handler has not run, sends the signal again to the main thread: that
interrupts the read and the handler runs.  Once it has run, the watcher does nothing
more, so the cleanup is never interrupted twice.
"""

import os
import signal
import threading

_installed = False
_handled = threading.Event()      # set when the Python handler has run
NUDGE_S = 0.5                     # how long the watcher gives the handler to run


def exit_on_signals():
    """Turn SIGTERM and SIGHUP into SystemExit(128 + signal number); once only, from the
    main thread."""
    global _installed
    if _installed:
        return
    _installed = True

    def _exit(signum, _frame):
        _handled.set()
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit)
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:              # not the main thread: the handlers alone
        os.close(read_fd)
        os.close(write_fd)
        return
    threading.Thread(target=_watch, args=(read_fd, threading.main_thread().ident),
                     name='signal watcher', daemon=True).start()


def _watch(read_fd, main_id):
    """Re-send SIGTERM or SIGHUP to the main thread while its handler has not run."""
    while True:
        try:
            data = os.read(read_fd, 64)
        except OSError:
            return
        if not data:
            return
        for signum in set(data) & {signal.SIGTERM, signal.SIGHUP}:
            while not _handled.wait(NUDGE_S):
                try:
                    signal.pthread_kill(main_id, signum)
                except (ProcessLookupError, OSError):
                    return
