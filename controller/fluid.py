"""The fluid backend: a scenario's periods evaluated analytically, without root or Mininet.

Ideal fluid transfers at the allocated shares over the capacity trace: in a period
starting at t0 the controller plans with the capacity it sees at t0 (``oracle``: the
period's mean), then each class carries share x C(t).  With ``overlap`` timing upload and
model run for the whole window; with ``sequential`` the upload phase (its length the
planned upload's share of the window) comes first, then the edge's update, then the
model phase.  Data counts up to what was planned and arrived by the deadline; a model
counts only if all of it arrived, else the device keeps its previous model (and its
accuracy).  Work-conserving borrowing is not modelled (strict shares).  The records have
the fields of the emulated run's, so the same tables and plots read both, and the gap
between ideal and real TCP is the difference of two result folders.
"""

from dataclasses import dataclass

from edgecollab.controller import planner

RECORD_FIELDS = ('policy', 'period', 'device', 'capacity_mbit', 'upload_share',
                 'download_share', 'planned_upload_bytes', 'upload_bytes',
                 'planned_model_bytes', 'model_bytes', 'model', 'model_ok', 'deadline_miss',
                 'predicted_accuracy', 'accuracy', 'efficiency_up', 'efficiency_down',
                 'solver_ms', 'status', 'reported_upload_bytes', 'class_up_bytes',
                 'class_down_bytes', 'late_upload_bytes', 'carried_upload_bytes')


@dataclass
class DeviceState:
    """What a device carries from period to period: the accuracy of its model."""
    accuracy: float


def score(problem, samples, model_bytes, model_ok, previous):
    """A device's period accuracy: A(S) q(D) if its new model arrived, else its old one."""
    if not model_ok or model_bytes <= 0:
        return previous
    return float(problem.size_map(model_bytes) * problem.accuracy.q(samples))


def record(policy, period, device, capacity_mbit, a, solver_ms, upload_bytes, model_bytes,
           model_ok, accuracy, **measured):
    """One device's period record: the plan's fields from its Allocation a, the outcome
    from the arguments, and what the backend measured (efficiencies, status and, in the
    emulated run, the counters) from measured."""
    row = {'policy': policy, 'period': period, 'device': device,
           'capacity_mbit': capacity_mbit, 'upload_share': a.upload_share,
           'download_share': a.download_share, 'planned_upload_bytes': a.upload_bytes,
           'upload_bytes': upload_bytes, 'planned_model_bytes': a.model_bytes,
           'model_bytes': model_bytes, 'model': a.model, 'model_ok': model_ok,
           'deadline_miss': bool(a.model_bytes > 0 and not model_ok),
           'predicted_accuracy': a.accuracy, 'accuracy': accuracy, 'solver_ms': solver_ms}
    row.update(measured)
    return row


def phases(problem, plan_):
    """((upload start, end), (model start, end)) in seconds from the period start."""
    window = problem.window_s
    if problem.timing == 'overlap':
        return (0.0, window), (0.0, window)
    upload = sum(a.upload_share for a in plan_.devices)
    model = sum(a.download_share for a in plan_.devices)
    total = upload + model
    up_end = window * upload / total if total > 0 else 0.0
    return (0.0, up_end), (up_end + problem.update_s, problem.period_s)


def run_policy(scenario, name):
    """The fluid records of policy name over the scenario's periods."""
    problem = scenario.problem
    states = [DeviceState(problem.kept_map()) for _ in range(scenario.devices)]
    records = []
    for k in range(scenario.periods):
        t0 = k * scenario.period_s
        now = float(scenario.capacity.rate_at(t0))
        future = scenario.capacity.mean_between(t0, t0 + scenario.period_s)
        plan_ = planner.plan(problem, name, scenario.generated, now, future_mbit=future,
                             ratio=scenario.ratio, floor=scenario.floor)
        (u0, u1), (m0, m1) = phases(problem, plan_)
        upload_bits = scenario.capacity.bits_between(t0 + u0, t0 + u1)
        down_trace = scenario.capacity_down or scenario.capacity
        model_bits = down_trace.bits_between(t0 + m0, t0 + m1)
        scale_up = scale_down = 1.0
        if problem.timing == 'sequential':
            total_up = sum(a.upload_share for a in plan_.devices)
            total_down = sum(a.download_share for a in plan_.devices)
            scale_up = 1 / total_up if total_up > 0 else 0.0
            scale_down = 1 / total_down if total_down > 0 else 0.0
        for i, a in enumerate(plan_.devices):
            sent = min(a.upload_bytes, a.upload_share * scale_up * upload_bits / 8)
            room = a.download_share * scale_down * model_bits / 8
            model_ok = a.model_bytes > 0 and room >= a.model_bytes * (1 - 1e-9)
            samples = sent * 8 / problem.sample_bits
            accuracy = score(problem, samples, a.model_bytes, model_ok, states[i].accuracy)
            states[i].accuracy = accuracy
            records.append(record(
                name, k + 1, 'd%d' % (i + 1), future, a, plan_.solver_ms, sent,
                a.model_bytes if model_ok else min(room, a.model_bytes), model_ok, accuracy,
                efficiency_up=1.0, efficiency_down=1.0, status='ok'))
    return records
