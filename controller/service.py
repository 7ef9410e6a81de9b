"""The controller service: the run's state and its REST API (Flask, management network).

The control loop (``loop.py``) publishes each period's plans (``begin_period``) and takes
the policy for the next period (``take_policy``); agents and people use the API.  Every mutating call needs ``Authorization: Bearer <token>`` (the per-run
token in the run folder's ``token`` file, mode 0600).  Errors are JSON
``{"error": ..., "status": ...}``.  docs/api.md documents each call.

    GET  /v1/health
    GET  /v1/plan/<device>    this period's upload volume, model, windows, deadlines;
                              ?after=K waits (up to PLAN_WAIT_S) for a period after K
    POST /v1/reports          a device's report of a period (token); "stage": "model"
                              marks the early one, sent when its download ends
    GET  /v1/status           capacity, shares, per-class goodput and efficiency, progress
    GET  /v1/policy           the policy and the one the next period will use
    PUT  /v1/policy           {"policy": name}: used from the next period on (token)
"""

import threading
import time

from flask import Flask, abort, jsonify, request

from edgecollab.controller import policies
from edgecollab.http import (MAX_PERIOD, bad_request, check_token, json_body, json_errors,
                             number)

REPORT_NUMBERS = ('upload_bytes', 'model_bytes', 'resumed_bytes', 'upload_started',
                  'upload_finished', 'upload_retransmitted_bytes')
REPORT_STAGES = ('model', 'period')   # the download's outcome; the whole period's
# A device asking for the plan after period K is answered when the next period begins
# (long polling: it starts its transfers without a polling interval's delay), or after
# this long with the current state.
PLAN_WAIT_S = 2.0


class ControllerState:
    """What the controller knows: plans, reports, measured rates, the policy."""

    def __init__(self, devices, policy, timing):
        self.devices = list(devices)
        self.policy = policy              # the policy that planned the current period
        self.next_policy = policy         # the one that plans the next period
        self.timing = timing
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)   # a period began or the run ended
        self.period = 0
        self.state = 'starting'
        self.plans = {}            # device -> plan dict of the current period
        self.reports = {}          # (device, period) -> report
        self.model_reports = {}    # (device, period) -> the download's early report
        self.capacity_mbit = 0.0
        self.shares = {}           # device -> {'up': fraction, 'down': fraction}
        self.goodput = {}          # (device, direction) -> Mbit/s over the last step
        self.efficiency = {}       # direction -> achieved / allocated (period so far)
        self.events = []
        self.resplits = 0          # times the closed loop re-split the current period
        self.seen = set()          # devices whose agent has asked for a plan

    def take_policy(self):
        """The policy that plans the period about to begin (the latest one asked for)."""
        with self.lock:
            return self.next_policy

    def set_next_policy(self, name):
        """Plan from the next period on with policy name."""
        with self.lock:
            self.next_policy = name

    def policies(self):
        """(the current period's policy, the next period's)."""
        with self.lock:
            return self.policy, self.next_policy

    def current_period(self):
        """The number of the period under way (0 before the first)."""
        with self.lock:
            return self.period

    def begin_period(self, period, plans, shares, capacity_mbit, policy):
        """Publish period's plans (device -> dict), shares and the policy that planned
        them."""
        with self.lock:
            self.period, self.state = period, 'running'
            self.plans, self.shares = plans, shares
            self.capacity_mbit = capacity_mbit
            self.policy = policy
            self.resplits = 0
            self.changed.notify_all()

    def revise_plan(self, period, device, changes):
        """Change device's plan of period (the period under way) within it: a
        checkpoint replaced (replan.py); return the plan's new revision (the device
        fetches that revision of its checkpoint), or None when period is over."""
        with self.changed:
            if self.period != period or device not in self.plans:
                return None
            plan = dict(self.plans[device], **changes)
            plan.pop('resume', None)
            plan['revision'] = plan.get('revision', 0) + 1
            self.plans = dict(self.plans, **{device: plan})
            self.changed.notify_all()
            return plan['revision']

    def plan_for(self, device, after=None):
        """device's plan of the current period with the run's period, state and timing;
        after: wait (up to PLAN_WAIT_S) for a period after that one or the run's end."""
        with self.changed:
            self.seen.add(device)
            if after is not None:
                self.changed.wait_for(lambda: self.period > after or self.state == 'done',
                                      timeout=PLAN_WAIT_S)
            return dict(self.plans.get(device, {}), period=self.period, state=self.state,
                        timing=self.timing)

    def unseen(self):
        """The devices whose agent has not asked for a plan yet."""
        with self.lock:
            return [d for d in self.devices if d not in self.seen]

    def finish(self):
        """Tell the agents the run is over."""
        with self.lock:
            self.state = 'done'
            self.changed.notify_all()

    def report(self, device, period, body):
        """Store a device's report (its download's early one when body's stage is
        'model')."""
        with self.changed:
            store = self.model_reports if body.get('stage') == 'model' else self.reports
            store[(device, period)] = dict(body, received=time.time())
            self.changed.notify_all()

    def model_reports_of(self, period, devices, wait_s):
        """{device: early download report} of period for devices, waiting up to wait_s
        for all of them."""
        def got():
            return {d: self.model_reports[(d, period)] for d in devices
                    if (d, period) in self.model_reports}
        with self.changed:
            self.changed.wait_for(lambda: len(got()) == len(devices), timeout=wait_s)
            return got()

    def reports_of(self, period):
        """{device: report} of period."""
        with self.lock:
            return {d: r for (d, p), r in self.reports.items() if p == period}

    def measured(self, capacity_mbit, goodput):
        """Record the latest capacity and per-class goodput."""
        with self.lock:
            self.capacity_mbit, self.goodput = capacity_mbit, goodput

    def resplit(self, shares):
        """The closed loop re-split the current period into shares."""
        with self.lock:
            self.shares = shares
            self.resplits += 1

    def set_efficiency(self, efficiency):
        """Record the efficiency measured per direction (achieved / allocated)."""
        with self.lock:
            self.efficiency = dict(efficiency)

    def note(self, text):
        """Keep an event for /v1/status (drift, failures)."""
        with self.lock:
            self.events = (self.events + [{'time': time.time(), 'event': text}])[-50:]

    def status(self):
        """The /v1/status document."""
        with self.lock:
            return {
                'state': self.state, 'period': self.period, 'policy': self.policy,
                'capacity_mbit': self.capacity_mbit,
                'shares': self.shares,
                'goodput_mbit': {'%s/%s' % k: v for k, v in self.goodput.items()},
                'efficiency': self.efficiency, 'resplits': self.resplits,
                'progress': {d: {'reported_periods': sorted(
                    p for (dd, p) in self.reports if dd == d)} for d in self.devices},
                'events': self.events[-10:]}


def policy_switch(token):
    """The policy a token-bearing request to switch policies names (JSON {"policy":
    name}); 401/403 without the token, 400 for an unknown policy."""
    check_token(token)
    name = json_body().get('policy')
    if not isinstance(name, str) or name not in policies.POLICIES:
        bad_request('unknown policy %r (known: %s)'
                    % (name, ', '.join(sorted(policies.POLICIES))))
    return name


def create_app(state, token):
    """The controller's Flask app over state."""
    app = Flask('edgecollab.controller')
    json_errors(app)

    def known(device):
        if device not in state.devices:
            abort(404, description='unknown device %r (devices: %s)'
                  % (device, ', '.join(state.devices)))

    @app.get('/v1/health')
    def health():
        return jsonify(ok=True)

    @app.get('/v1/plan/<device>')
    def plan(device):
        known(device)
        after = request.args.get('after')
        if after is not None and not (after.isascii() and after.isdigit() and
                                      len(after) <= 9 and int(after) <= MAX_PERIOD):
            bad_request('after must be a period number (0 to %d), got %r'
                        % (MAX_PERIOD, after[:40]))
        return jsonify(state.plan_for(device, None if after is None else int(after)))

    @app.post('/v1/reports')
    def reports():
        check_token(token)
        body = json_body()
        device = body.get('device')
        if not isinstance(device, str):
            bad_request('a report needs "device" (string) and "period" (integer)')
        period = number(body, 'period', 1, MAX_PERIOD, integer=True)
        known(device)
        for key in REPORT_NUMBERS:
            if key in body:
                number(body, key)
        if 'model_ok' in body and not isinstance(body['model_ok'], bool):
            bad_request('report field \'model_ok\' must be true or false')
        if body.get('stage', 'period') not in REPORT_STAGES:
            bad_request('report field \'stage\' must be one of %s' % ', '.join(REPORT_STAGES))
        current = state.current_period()
        if period > current:
            bad_request('period %d is not a period of this run (current: %d)'
                        % (period, current))
        state.report(device, period, body)
        return jsonify(ok=True)

    @app.get('/v1/status')
    def status():
        return jsonify(state.status())

    @app.get('/v1/policy')
    def get_policy():
        current, upcoming = state.policies()
        return jsonify(policy=current, next=upcoming, known=sorted(policies.POLICIES))

    @app.put('/v1/policy')
    def put_policy():
        state.set_next_policy(policy_switch(token))
        current, upcoming = state.policies()
        return jsonify(policy=current, next=upcoming)

    return app
