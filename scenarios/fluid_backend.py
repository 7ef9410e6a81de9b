"""The fluid backend: a scenario's periods with ideal transfers, without root or Mininet.

A ``Transport`` for the control loop (``loop.py``) on a virtual clock: each class carries
its fraction of the capacity trace, C(t) x f(t) (with per-device channels, of its own
channel, r_i(t) x f(t)), with the fractions the loop applied over
the period (a sequential period's model phase included, the re-splits of a closed-loop
policy at every control step and the moment a transfer ends), until it has nothing left
to move.  Data counts up to the
period's data and what arrived by its phase's end; a model counts only if all of it
arrived, else the device keeps its previous model (and the bytes that arrived resume).  Work-conserving borrowing is not modelled (strict
shares).  Every class with bytes to carry gets exactly its share, so the efficiency it
measures is 1.  The records have the emulated run's fields, so the same tables and plots
read both, and the gap between ideal and real TCP is the difference of two results.
A workload that learns (nodes/workload.py) runs here too, in process: the edge's model
of each device learns from the whole samples the fluid transfer delivered in time, a
checkpoint carries the student distilled when the emulated edge would distil it, and
each device scores the model it holds (``measured_accuracy``).
"""

from edgecollab.controller.loop import ControlLoop, Received, Transport
from edgecollab.controller.service import ControllerState
from edgecollab.kinds import Timing
from edgecollab.nodes import workload


LEFT_BYTES = 1e-6    # a class with no more than this left has nothing left
END_S = 1e-3         # how exactly a transfer's end within a control step is found


class FluidTransport(Transport):
    """Ideal transfers over the scenario's capacity traces, on a virtual clock."""

    def __init__(self, scenario, devices):
        self.scenario = scenario
        self.devices = list(devices)
        self.now_s = 0.0
        self.applied = {}
        self.pending = []       # [(offset_s, action)] to run within the period
        self.got = {}           # device -> (checkpoint bytes, whole) of the last period
        self.learning = Learning(scenario, self.devices)
        # A trace's capacity as the link applies it (traces.as_link: per replay step,
        # within what the link layer shapes), as the Mininet replayer applies it.
        self.links = {direction: trace.as_link(scenario.link.step_s, scenario.duration_s)
                      if trace is not None and scenario.trace_files.get(key) else trace
                      for direction, trace, key in (
                          ('up', scenario.link.capacity, 'capacity'),
                          ('down', scenario.link.capacity_down, 'capacity_down'))}
        if self.links['down'] is None:
            self.links['down'] = self.links['up']
        # What each class's share is a fraction of: the fleet's capacity, or with
        # per-device channels the device's own channel (both directions).
        channels = dict(zip(self.devices, scenario.link.channels.links)) \
            if scenario.link.channels else {}
        self.rated = {(name, direction): channels.get(name, self.links[direction])
                      for name in self.devices for direction in ('up', 'down')}

    replaces_checkpoints = True      # distilled on demand, in no time
    upgrades_checkpoints = True      # a second checkpoint in a period, as the first

    def replace(self, period, device, size_bytes):
        self.left[(device, 'down')] = size_bytes
        if self.scenario.problem.timing == Timing.OVERLAP:
            self.learning.order_one(period, device)

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
        if self.scenario.problem.timing == Timing.OVERLAP:
            self.learning.order(period)

    def checkpoints(self, period):
        return self.got

    def _carry(self, windows, t, t_next):
        """Move every class's bytes over [t, t_next) at its share; return the bits
        moved."""
        carried = 0.0
        for (name, direction), bytes_left in self.left.items():
            w0, w1 = windows[direction]
            a, b = max(t, w0), min(t_next, w1)
            if bytes_left <= 0 or b <= a:
                continue
            share = self.applied.get(name, {}).get(direction, 0.0)
            moved = min(bytes_left,
                        share * self.rated[(name, direction)].bits_between(a, b) / 8)
            self.left[(name, direction)] = bytes_left - moved
            carried += 8 * moved
        return carried

    def _end_of(self, key, windows, t, t_next):
        """When the transfer of class key ends within (t, t_next) at its share (to
        END_S), or t_next if it does not."""
        bytes_left = self.left[key]
        w0, w1 = windows[key[1]]
        a, b = max(t, w0), min(t_next, w1)
        share = self.applied.get(key[0], {}).get(key[1], 0.0)
        if bytes_left <= LEFT_BYTES or b <= a or share <= 0:
            return t_next
        rated = self.rated[key]

        def moved(x):
            return share * rated.bits_between(a, x) / 8
        if moved(b) < bytes_left:
            return t_next
        low, high = a, b
        while high - low > END_S:
            mid = (low + high) / 2
            low, high = (mid, high) if moved(mid) < bytes_left else (low, mid)
        return high if high < t_next - END_S else t_next

    def finish(self, period, done):
        """Integrate every class over the period, control step by control step (the loop
        re-splits between steps), and score it."""
        s = self.scenario
        start, end = period.start_s, period.start_s + s.control.period_s
        (u0, u1), (m0, m1) = period.phases
        windows = {'up': (start + u0, start + u1), 'down': (start + m0, start + m1)}
        left = self.left = {}
        for name in self.devices:
            left[(name, 'up')] = period.upload_limit[name]
            left[(name, 'down')] = period.model_left[name]
        steps = int(round(s.control.period_s / s.control.control_step_s))
        control = {min(start + j * s.control.control_step_s, end) for j in range(1, steps + 1)}
        pending = sorted(self.pending, key=lambda p: p[0])
        self.pending = []
        bounds = sorted(control | {t for t, _ in pending if start < t < end} | {end})
        step_s = s.control.control_step_s

        def left_now():
            return {k: v if v > LEFT_BYTES else 0.0 for k, v in left.items()}
        t = start
        for t_next in bounds:
            while pending and pending[0][0] <= t + 1e-9:
                self.now_s = pending[0][0]
                pending.pop(0)[1]()
            carried, t0 = 0.0, t
            while True:
                # A transfer that ends before t_next: the loop re-splits the moment it
                # does (a closed-loop policy; the others keep their shares).
                t_end = min([t_next] + [self._end_of(key, windows, t, t_next)
                                        for key in left])
                carried += self._carry(windows, t, t_end)
                self.now_s = t = t_end
                if t_end >= t_next - 1e-9:
                    break
                capacity, rates, down = s.link.step_means(max(t_end - step_s, start), t_end)
                self.loop.ended(left_now(), capacity, end - t_end,
                                dict(zip(self.devices, rates)), down_mbit=down)
            if t_next in control and t_next < end - 1e-9 and t_next > t0:
                capacity, rates, down = s.link.step_means(t0, t_next)
                self.loop.control(left_now(), capacity, end - t_next,
                                  carried / (t_next - t0) / 1e6,
                                  dict(zip(self.devices, rates)), down_mbit=down)
        outcomes, self.got = {}, {}
        sent = {name: period.upload_limit[name] - left[(name, 'up')] for name in self.devices}
        ok = {name: period.model_left[name] > 0 and
              left[(name, 'down')] <= period.model_left[name] * 1e-9 for name in self.devices}
        measured = self.learning.finish(period, sent, ok)
        for name, a in zip(self.devices, period.plan.devices):
            need = period.model_left[name]
            got = need - left[(name, 'down')]
            if need > 0:
                self.got[name] = (got, ok[name])
            outcomes[name] = Received(sent[name], got, ok[name],
                                     {'efficiency_up': 1.0, 'efficiency_down': 1.0,
                                      'status': 'ok',
                                      'measured_accuracy': measured.get(name)})
        self.now_s = end
        done(outcomes)
        return {d: 1.0 for d, busy in (
            ('up', any(period.upload_limit[n] > 0 for n in self.devices)),
            ('down', any(period.model_left[n] > 0 for n in self.devices))) if busy}


class Learning:
    """The workload's edge and devices in process: what each device's model learnt,
    the students ordered, the weights each device holds (nothing when the workload does
    not measure)."""

    def __init__(self, scenario, devices):
        self.scenario, self.devices = scenario, list(devices)
        self.work = workload.from_spec(scenario.workload.spec)
        self.on = self.work.measures
        if self.on:
            self.learners = {d: self.work.learner(d) for d in self.devices}
            self.weights = {d: self.work.initial(d) for d in self.devices}
        self.next_sample = dict.fromkeys(self.devices, 0)
        self.students = {}      # (device, period ordered) -> weights
        # (device, period) -> the weights of the checkpoint that had arrived when a
        # larger one was ordered: what the device keeps should that miss.
        self.arrived = {}

    def order(self, period):
        """Distil the period's checkpoints from what each device's model learnt so far
        (a device resuming an older checkpoint needs none)."""
        for i, name in enumerate(self.devices):
            self.order_one(period, name, i)

    def order_one(self, period, name, index=None):
        """Distil device name's checkpoint of period as its plan now has it."""
        a = period.plan.devices[self.devices.index(name) if index is None else index]
        if self.on and name in period.arrived_before:
            _, resumed = period.arrived_before[name]
            self.arrived[(name, period.number)] = self.students.get(
                (name, resumed.period if resumed else period.number))
        if self.on and a.model_bytes > 0 and name not in period.resumed:
            self.students[(name, period.number)] = self.learners[name].student(
                a.model_bytes)

    def finish(self, period, sent, ok):
        """Learn from the bytes each device sent in time, deploy the checkpoints that
        arrived whole; return {device: measured accuracy}."""
        if not self.on:
            return {}
        k = period.number
        for name in self.devices:
            count = int(sent[name] // self.work.sample_bytes)
            first = self.next_sample[name]
            self.next_sample[name] += count
            self.learners[name].add(self.work.samples(name, k, first, count))
        if self.scenario.problem.timing == Timing.SEQUENTIAL:
            self.order(period)            # this period's data trains its checkpoint
        for name in self.devices:
            resumed = period.resumed.get(name)
            source = (name, resumed.period if resumed else k)
            if ok[name] and source in self.students:
                self.weights[name] = self.students[source]
            elif self.arrived.get((name, k)) is not None:
                self.weights[name] = self.arrived[(name, k)]
        self.students = {key: w for key, w in self.students.items() if key[1] >= k - 1}
        self.arrived = {}
        return {name: self.work.score(self.weights[name], name, k) for name in self.devices}


def run_policy(scenario, name, state=None):
    """The fluid records of policy name over the scenario's periods (state: a
    ControllerState to plan through, for a caller that switches policies)."""
    devices = scenario.device_names
    state = state or ControllerState(devices, name, scenario.problem.timing)
    records = []
    ControlLoop(scenario, state, FluidTransport(scenario, devices), records.extend).run()
    return records
