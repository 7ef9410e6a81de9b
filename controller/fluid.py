"""The fluid backend: a scenario's periods with ideal transfers, without root or Mininet.

A ``Transport`` for the control loop (``loop.py``) on a virtual clock: each class carries
its fraction of the capacity trace, C(t) x f(t), with the fractions the loop applied over
the period (a sequential period's model phase included).  Data counts up to what was
planned and arrived by its phase's end; a model counts only if all of it arrived, else the
device keeps its previous model.  Work-conserving borrowing is not modelled (strict
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
        self.changes = []       # [(offset_s, fractions)] of the period under way
        self.pending = []       # [(offset_s, action)] to run within it

    def wait_until(self, offset_s):
        self.now_s = max(self.now_s, offset_s)

    def wall_time(self, offset_s):
        return offset_s

    def set_shares(self, fractions):
        self.applied = fractions
        self.changes.append((self.now_s, fractions))

    def fractions(self):
        return self.applied

    def at(self, offset_s, action):
        self.pending.append((offset_s, action))

    def start(self, period):
        pass

    def finish(self, period, done):
        end = period.start_s + self.scenario.period_s
        for offset, action in sorted(self.pending, key=lambda p: p[0]):
            self.now_s = offset
            action()
        self.pending = []
        (u0, u1), (m0, m1) = period.phases
        start = period.start_s
        up_trace = self.scenario.capacity
        down_trace = self.scenario.capacity_down or self.scenario.capacity
        outcomes = {}
        for name, a in zip(self.devices, period.plan.devices):
            up_bits = self._carried(name, 'up', up_trace, start + u0, start + u1)
            room = self._carried(name, 'down', down_trace, start + m0, start + m1) / 8
            sent = min(a.upload_bytes, up_bits / 8)
            model_ok = a.model_bytes > 0 and room >= a.model_bytes * (1 - 1e-9)
            outcomes[name] = Outcome(sent, a.model_bytes if model_ok else
                                     min(room, a.model_bytes), model_ok,
                                     {'efficiency_up': 1.0, 'efficiency_down': 1.0,
                                      'status': 'ok'})
        self.changes = [(end, self.applied)]
        self.now_s = end
        done(outcomes)
        return {d: 1.0 for d, busy in (
            ('up', any(a.upload_bytes > 0 for a in period.plan.devices)),
            ('down', any(a.model_bytes > 0 for a in period.plan.devices))) if busy}

    def _carried(self, name, direction, trace, begin_s, end_s):
        """Bits the class (name, direction) carries in [begin_s, end_s] under the
        fractions applied over the period."""
        bits = 0.0
        bounds = [t for t, _ in self.changes[1:]] + [float('inf')]
        for (t, fractions), next_t in zip(self.changes, bounds):
            a, b = max(t, begin_s), min(next_t, end_s)
            if b > a:
                bits += fractions.get(name, {}).get(direction, 0.0) * \
                    trace.bits_between(a, b)
        return bits


def run_policy(scenario, name, state=None):
    """The fluid records of policy name over the scenario's periods (state: a
    ControllerState to plan through, for a caller that switches policies)."""
    devices = scenario.device_names
    state = state or ControllerState(devices, name, scenario.problem.timing)
    records = []
    ControlLoop(scenario, state, FluidTransport(scenario, devices), records.extend).run()
    return records
