"""A live run's clock: offsets in seconds from the start of its first period.

The Mininet backend plans, replays and measures on one monotonic clock; the agents are
told deadlines as epoch times of the same moments (``wall_time``).  Actions due later
(a phase's share switch, a checkpoint order) run on timers that stopping the run
cancels; ``sleep_until`` wakes early when the run is stopped.
"""

import threading
import time


class Clock:
    """The clock of one run, started delay_s from now by ``start``."""

    def __init__(self):
        self.t0 = None           # the monotonic time of the run's start (period 1)
        self.epoch0 = None       # the same moment as an epoch time
        self.stopping = threading.Event()   # set to end the run early
        self.timers = []         # actions due later

    def start(self, delay_s):
        """Offset 0 is delay_s from now."""
        self.t0 = time.monotonic() + delay_s
        self.epoch0 = time.time() + delay_s

    def now(self):
        """The offset of this moment."""
        return time.monotonic() - self.t0

    def wall_time(self, offset_s):
        """The epoch time of offset_s."""
        return self.epoch0 + offset_s

    def sleep_until(self, offset_s):
        """Sleep until offset_s; False when the run was stopped before (or meanwhile)."""
        return not self.stopping.wait(max(0.0, self.t0 + offset_s - time.monotonic()))

    def at(self, offset_s, action):
        """Run action at offset_s (now when it has passed)."""
        self.later(self.t0 + offset_s - time.monotonic(), action)

    def later(self, delay_s, action):
        """Run action after delay_s on a timer that stopping the run cancels (now when
        delay_s <= 0)."""
        if delay_s <= 0:
            action()
            return
        timer = threading.Timer(delay_s, lambda: None if self.stopping.is_set() else action())
        timer.daemon = True
        self.timers = [t for t in self.timers if t.is_alive()] + [timer]
        timer.start()

    def stop(self):
        """Stop the run: sleepers wake, pending actions never run."""
        self.stopping.set()
        for timer in self.timers:
            timer.cancel()
