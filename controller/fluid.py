"""The fluid backend: a scenario's periods with ideal transfers, without root or Mininet.

A ``Transport`` for the control loop (``loop.py``) on a virtual clock: each class carries
its fraction of the capacity trace, C(t) x f(t), with the fractions the loop applied over
the period (a sequential period's model phase included, the re-splits of a closed-loop
policy at every control step), until it has nothing left to move.  Data counts up to the
period's data and what arrived by its phase's end; a model counts only if all of it
arrived, else the device keeps its previous model (and the bytes that arrived resume).  Work-conserving borrowing is not modelled (strict
shares).  Every class with bytes to carry gets exactly its share, so the efficiency it
measures is 1.  The records have the emulated run's fields, so the same tables and plots
read both, and the gap between ideal and real TCP is the difference of two results.
"""

from edgecollab.controller.loop import ControlLoop, Outcome, Transport
from edgecollab.controller.service import ControllerState


class FluidTransport(Transport):
    """Ideal transfers over the scenario's capacity traces, on a virtual clock."""

    def __init__(self, scenario, devices):
        self.scenario = scenario
        self.devices = list(devices)
        self.now_s = 0.0
        self.applied = {}
        self.pending = []       # [(offset_s, action)] to run within the period
        self.got = {}           # device -> (checkpoint bytes, whole) of the last period

    def wait_until(self, offset_s):
        self.now_s = max(self.now_s, offset_s)

    def wall_time(self, offset_s):
        return offset_s

    def set_shares(self, fractions):
        self.applied = fractions

    def fractions(self):
        return self.applied

    def at(self, offset_s, action):
        self.pending.append((offset_s, action))

    def start(self, period):
        pass

    def checkpoints(self, period):
        return self.got

    def finish(self, period, done):
        """Integrate every class over the period, control step by control step (the loop
        re-splits between steps), and score it."""
        s = self.scenario
        start, end = period.start_s, period.start_s + s.period_s
        (u0, u1), (m0, m1) = period.phases
        traces = {'up': s.capacity, 'down': s.capacity_down or s.capacity}
        windows = {'up': (start + u0, start + u1), 'down': (start + m0, start + m1)}
        left = {}
        for name in self.devices:
            left[(name, 'up')] = period.upload_limit[name]
            left[(name, 'down')] = period.model_left[name]
        steps = int(round(s.period_s / s.control_step_s))
        control = {min(start + j * s.control_step_s, end) for j in range(1, steps + 1)}
        pending = sorted(self.pending, key=lambda p: p[0])
        self.pending = []
        bounds = sorted(control | {t for t, _ in pending if start < t < end} | {end})
        t = start
        for t_next in bounds:
            while pending and pending[0][0] <= t + 1e-9:
                self.now_s = pending[0][0]
                pending.pop(0)[1]()
            carried = 0.0
            for (name, direction), bytes_left in left.items():
                w0, w1 = windows[direction]
                a, b = max(t, w0), min(t_next, w1)
                if bytes_left <= 0 or b <= a:
                    continue
                share = self.applied.get(name, {}).get(direction, 0.0)
                moved = min(bytes_left, share * traces[direction].bits_between(a, b) / 8)
                left[(name, direction)] = bytes_left - moved
                carried += 8 * moved
            self.now_s = t_next
            if t_next in control and t_next < end - 1e-9 and t_next > t:
                self.loop.control({k: v if v > 1e-6 else 0.0 for k, v in left.items()},
                                  s.capacity.mean_between(t, t_next), end - t_next,
                                  carried / (t_next - t) / 1e6)
            t = t_next
        outcomes, self.got = {}, {}
        for name, a in zip(self.devices, period.plan.devices):
            sent = period.upload_limit[name] - left[(name, 'up')]
            need = period.model_left[name]
            got = need - left[(name, 'down')]
            model_ok = need > 0 and left[(name, 'down')] <= need * 1e-9
            if need > 0:
                self.got[name] = (got, model_ok)
            outcomes[name] = Outcome(sent, got, model_ok,
                                     {'efficiency_up': 1.0, 'efficiency_down': 1.0,
                                      'status': 'ok'})
        self.now_s = end
        done(outcomes)
        return {d: 1.0 for d, busy in (
            ('up', any(period.upload_limit[n] > 0 for n in self.devices)),
            ('down', any(period.model_left[n] > 0 for n in self.devices))) if busy}


def run_policy(scenario, name, state=None):
    """The fluid records of policy name over the scenario's periods (state: a
    ControllerState to plan through, for a caller that switches policies)."""
    devices = scenario.device_names
    state = state or ControllerState(devices, name, scenario.problem.timing)
    records = []
    ControlLoop(scenario, state, FluidTransport(scenario, devices), records.extend).run()
    return records
