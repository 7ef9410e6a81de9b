"""The agents of a Mininet run: started in the emulation, talked to, stopped.

The controller's REST API (on the root namespace, reachable from every host's
management interface), the edge agent on the edge host and a device agent on each
device host.  ``Agents`` starts them for one policy's run, orders checkpoints at the
edge and reads its data counts, injects faults (kills an agent, restarts the edge) and
stops them.  scenarios/mininet_backend.py's ``PolicyRun`` drives it.
"""

import json
import logging
import os
import sys
import threading

import requests

from edgecollab.controller.service import create_app
from edgecollab.errors import EdgecollabError
from edgecollab.nodes import checkpoint, device, workload
from edgecollab.ready import poll, wait
from edgecollab.topologies import addressing, cleanup

log = logging.getLogger(__name__)

CONTROLLER_PORT = 8000
EDGE_PORT = 8080
AGENT_START_S = 20.0       # the device agents have this long to ask for their first plan
AGENT_START_PER_DEVICE_S = 0.25  # plus this long a device
TOKEN_FILE = 'token'       # the run's API token in the results folder (mode 0600)


class Agents:
    """The agents of one policy's run of scenario in the emulation emu: the controller
    API serves state; work is the run's work folder (the agents' folders and logs),
    folder the results folder (the token file); token the API token."""

    def __init__(self, emu, scenario, state, work, folder, token, policy, edge_args=()):
        self.emu, self.scenario, self.state = emu, scenario, state
        self.work, self.folder, self.token, self.policy = work, folder, token, policy
        self.edge_args = list(edge_args)   # extra edge-agent arguments (fault injection)
        self.server = None
        self.edge_proc = None
        self.edge_log = None
        self.log_files = []
        self.controller_url = 'http://%s:%d' % (addressing.CONTROLLER_IP, CONTROLLER_PORT)
        self.edge_url = 'http://%s:%d' % (addressing.EDGE_MGMT_IP, EDGE_PORT)

    def start(self):
        """The controller API, the edge agent, then every device agent; return when each
        device agent has asked for its plan (EdgecollabError when one has not in time)."""
        self._write_token()
        from werkzeug.serving import make_server
        logging.getLogger('werkzeug').setLevel(logging.WARNING)   # no line a request
        self.server = make_server(addressing.CONTROLLER_IP, CONTROLLER_PORT,
                                  create_app(self.state, self.token), threaded=True)
        threading.Thread(target=self.server.serve_forever, name='controller-api',
                         daemon=True).start()
        self.edge_log = self._log_file('edge.log')
        self.start_edge()
        self._install_factory_models()
        s = self.scenario
        for index, name in enumerate(self.emu.devices):
            out = self._log_file('%s.log' % name)
            self.emu.popen(name, [
                sys.executable, '-m', 'edgecollab.nodes.device', '--name', name,
                '--controller', self.controller_url,
                '--edge', 'http://%s:%d' % (addressing.EDGE_DATA_IP, EDGE_PORT),
                '--token', self.token, '--dir', os.path.join(self.work, name),
                '--generated', s.data.generated[index], '--period', s.control.period_s,
                '--sample-bytes', s.problem.sample_bits / 8,
                '--workload', json.dumps(s.workload.spec)],
                stdout=out, stderr=out, what='device agent %s' % name)
        # The clock starts when every agent is up (it has asked for its plan): dozens of
        # agents starting on two cores take seconds, which would eat the first period.
        wait_s = AGENT_START_S + AGENT_START_PER_DEVICE_S * len(self.emu.devices)
        if not wait(lambda: not self.state.unseen(), wait_s):
            raise EdgecollabError('device agents %s did not start within %.0f s (their logs: %s)'
                                  % (', '.join(self.state.unseen()[:5]), wait_s, self.work))
        log.debug('device agents up')

    def start_edge(self):
        """Start the edge agent (again, after a fault) and wait until it answers."""
        s = self.scenario
        self.edge_proc = self.emu.popen(addressing.EDGE, [
            sys.executable, '-m', 'edgecollab.nodes.edge', '--port', EDGE_PORT,
            '--dir', os.path.join(self.work, 'edge'), '--token', self.token,
            '--devices', ','.join(self.emu.devices),
            '--compute-per-sample', s.workload.compute_per_sample_s, '--seed', s.seed,
            '--workload', json.dumps(s.workload.spec)] + self.edge_args,
            stdout=self.edge_log, stderr=self.edge_log, what='edge agent')
        poll(lambda: _healthy(self.edge_url + '/health'), 20, 'edge agent')

    def kill_device(self, name):
        """Kill device name's agent (fault injection)."""
        for proc in self.emu.procs:
            if proc.what == 'device agent %s' % name:
                cleanup.kill_group(proc.pid, proc.start, proc.what)
                proc.popen.wait(timeout=5)
                return
        raise EdgecollabError('no device agent %r' % name)

    def kill_edge(self):
        """Kill the edge agent (fault injection)."""
        proc = self.edge_proc
        cleanup.kill_group(proc.pid, cleanup.process_start_time(proc.pid), 'edge agent')
        proc.wait(timeout=5)

    def order(self, k, upload_deadline, orders, revision=0):
        """Order period k's checkpoints ({device: order}) at the edge agent (revision: a
        replacement's); a failure is noted in the controller's events, not raised."""
        try:
            r = requests.post(self.edge_url + '/v1/periods', json={
                'period': k, 'upload_deadline': upload_deadline, 'checkpoints': orders,
                'revision': revision},
                headers={'Authorization': 'Bearer ' + self.token}, timeout=5)
            r.raise_for_status()
        except requests.RequestException as exc:
            self.state.note('%s period %d: checkpoint order failed: %s' % (
                self.policy, k, type(exc).__name__))
            log.warning('%s period %d: the edge agent did not take the order: %s',
                        self.policy, k, exc)

    def edge_counts(self, period):
        """{device: the edge's counts of its data for period}, in one request: {'bytes':
        in time, 'late_bytes': after the deadline, 'carried_bytes': earlier periods' late
        bytes that arrived in this period}; zeros where the edge does not answer."""
        zero = {'bytes': 0, 'late_bytes': 0, 'carried_bytes': 0}
        counts = {}
        if period >= 1:
            try:
                r = requests.get('%s/v1/data/%d' % (self.edge_url, period), timeout=3)
                r.raise_for_status()
                counts = r.json()
            except (requests.RequestException, ValueError):
                pass
        return {name: dict(zero, **counts.get(name, {})) for name in self.emu.devices}

    def stop(self):
        """Stop the controller API and close the agents' logs (the agents themselves end
        with the emulation)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        for handle in self.log_files:
            handle.close()
        self.log_files = []

    def _install_factory_models(self):
        """With a workload that learns: the model each device ships with, in its folder
        (trained here once, so that dozens of agents do not each train one at start)."""
        work = workload.from_spec(self.scenario.workload.spec)
        if not work.measures:
            return
        for name in self.emu.devices:
            os.makedirs(os.path.join(self.work, name), exist_ok=True)
            checkpoint.write(os.path.join(self.work, name, device.FACTORY_MODEL), 0,
                             {'model': 'factory', 'device': name},
                             weights=work.initial(name))

    def _write_token(self):
        """The run's API token in the results folder, readable by its owner only, so a
        user can script the API while the run goes on."""
        path = os.path.join(self.folder, TOKEN_FILE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as dst:
            os.fchmod(dst.fileno(), 0o600)
            dst.write(self.token + '\n')

    def _log_file(self, name):
        """An agent's log file in the work folder, closed when the agents stop."""
        handle = open(os.path.join(self.work, name), 'ab')
        self.log_files.append(handle)
        return handle


def _healthy(url):
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False
