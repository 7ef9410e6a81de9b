"""Trace replay: set the live capacity at each step of a trace, on a monotonic clock.

Step k is due at start + k * step_s (``time.monotonic``), never after an accumulated
sleep, so lateness does not add up; each step's planned and applied times are logged.
Capacities below what the link-share layer can shape (a trace's zeros) are applied as
its minimum and marked ``clipped``.
"""

import logging
import threading
import time

log = logging.getLogger(__name__)


class Replayer(threading.Thread):
    """Calls apply(capacity_mbit) at every step of trace from start_s (monotonic); with
    per-device channels (a traces.Channels of the devices named, in order)
    apply(the channels' mean, {device: its channel relative to it}), trace then being
    that mean; with a download trace of its own (down, duplex) apply(capacity_mbit,
    down_mbit=its rate)."""

    def __init__(self, trace, step_s, duration_s, apply, start_s, channels=(), devices=(),
                 down=None):
        super().__init__(name='replayer', daemon=True)
        self.trace, self.step_s, self.duration_s = trace, step_s, duration_s
        self.apply, self.start_s = apply, start_s
        self.channels, self.devices = channels, list(devices)
        self.down = None if down is None else down.link_steps(step_s, duration_s)[0].tolist()
        self.steps = []          # (step, planned_s, applied_s, capacity_mbit, clipped)
        self.stop_event = threading.Event()
        self.error = None

    def _steps(self):
        """(rates, clipped, [{device: relative rate}] or None) of every step."""
        if not self.channels:
            rates, clipped = self.trace.link_steps(self.step_s, self.duration_s)
            return rates, clipped, None
        return self.channels.fleet.rate_mbit, self.channels.clipped, [
            dict(zip(self.devices, row.tolist())) for row in self.channels.relative_steps()]

    def run(self):
        last = None
        try:
            rates, clipped, relative = self._steps()
            for k, (rate, was_clipped) in enumerate(zip(rates.tolist(), clipped.tolist())):
                planned = self.start_s + k * self.step_s
                if self.stop_event.wait(max(0.0, planned - time.monotonic())):
                    return
                if relative is not None:
                    self.apply(rate, relative[k])
                elif self.down is not None:
                    down = self.down[min(k, len(self.down) - 1)]
                    if (rate, down) != last:
                        self.apply(rate, down_mbit=down)
                        last = (rate, down)
                elif rate != last:
                    self.apply(rate)
                    last = rate
                applied = time.monotonic()
                self.steps.append((k, planned - self.start_s, applied - self.start_s, rate,
                                   was_clipped))
        except Exception as exc:   # reported by the runner, which stops the run
            self.error = exc
            log.error('trace replay stopped: %s: %s', type(exc).__name__, exc)

    def stop(self):
        """Stop at the next step."""
        self.stop_event.set()

    def lateness_ms(self):
        """|applied - planned| of every step, in ms."""
        return [abs(applied - planned) * 1000 for _, planned, applied, _, _ in self.steps]
