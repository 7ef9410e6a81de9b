"""A scenario across two servers (Mininet Cluster Edition) made on this machine with
``edgecollab cluster up --local 2``: this machine and a network namespace with its own
sshd, reached over SSH as a virtual machine would be.  The run's devices sit on both,
shares and round trips hold as on one server, and nothing is left on either after a
run, a SIGTERM or a lost server."""

import csv
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from edgecollab.errors import EdgecollabError
from edgecollab.scenarios import probe
from edgecollab.scenarios.mininet_backend import PolicyRun, scenario_topology
from edgecollab.scenarios.scenario import load_scenario
from edgecollab.topologies import cleanup, localcluster
from tests.conftest import PYTHON, TEST_PREFIX
from tests.helpers import at, scenario_copy

pytestmark = pytest.mark.emulation


def cli(*argv, timeout=300):
    return subprocess.run([PYTHON, '-m', 'edgecollab.cli'] + [str(a) for a in argv],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def servers():
    """The --servers value of a local cluster of two, removed after the module's tests
    (and nothing of it left)."""
    if shutil.which('sshd') is None and not os.path.exists('/usr/sbin/sshd'):
        pytest.skip('the cluster tests need openssh-server (install.sh installs it)')
    done = cli('cluster', 'up', '--local', '2', timeout=60)
    assert done.returncode == 0, done.stderr
    value = done.stdout.split('--servers ')[1].split()[0]
    assert value == 'localhost,10.251.0.2'
    yield value
    done = cli('cluster', 'down', timeout=60)
    assert done.returncode == 0 and 'local cluster down' in done.stdout, done.stderr
    assert not localcluster.namespaces()
    assert localcluster.BEGIN not in open(localcluster.SSH_CONFIG).read()


def on_server(command):
    """Output of command in the root namespace of the second server."""
    return subprocess.run(['ip', 'netns', 'exec', localcluster.namespace(2), 'sh', '-c',
                           command], capture_output=True, text=True, timeout=30).stdout


def nothing_left(prefix):
    """Assert neither server holds anything of the run with prefix."""
    assert not cleanup.owned_interfaces(prefix)
    assert not [line for line in on_server('ip -o link show').splitlines()
                if ': %s' % prefix in line]
    # The second server's processes: its sshd alone (same PID space: pgrep sees all).
    agents = subprocess.run(['pgrep', '-f', 'edgecollab.nodes.'], capture_output=True,
                            text=True).stdout.split()
    assert not agents, agents
    inside = on_server('ip netns pids %s' % localcluster.namespace(2))
    names = [open('/proc/%s/comm' % pid).read().strip() for pid in inside.split()
             if os.path.exists('/proc/%s/comm' % pid)]
    assert set(names) <= {'sshd'}, names


def test_the_default_scenario_runs_with_devices_on_both_servers(tmp_path, servers):
    out = tmp_path / 'out'
    done = cli('run', scenario_copy(tmp_path, periods=1, period='6s'), '--servers', servers,
               '--policies', 'equal', '--out', out, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    first = done.stderr + done.stdout
    assert '2 servers (localhost, 10.251.0.2), VXLAN tunnels' in first
    assert 'd1 on localhost, d2 on 10.251.0.2' in first
    meta = json.loads((out / 'metadata.json').read_text())
    assert meta['servers'] == {'names': ['localhost', '10.251.0.2'], 'tunnel': 'vxlan',
                               'devices': {'d1': 'localhost', 'd2': '10.251.0.2'}}
    with open(out / 'periods.csv') as src:
        rows = list(csv.DictReader(src))
    assert {r['device'] for r in rows} == {'d1', 'd2'}
    # equal's checkpoints arrive with a margin on one server: on two as well.
    assert all(r['status'] == 'ok' and r['outcome'] == 'delivered' for r in rows), rows
    # Close to what ideal transfers give (one server is within this too): real TCP
    # through a tunnel costs little.
    with open(out / 'fluid-reference.csv') as src:
        ideal = [float(r['accuracy']) for r in csv.DictReader(src)]
    real = [float(r['accuracy']) for r in rows]
    assert sum(real) / len(real) >= 0.85 * sum(ideal) / len(ideal), (real, ideal)
    nothing_left('ec')


def test_shares_and_round_trips_hold_across_servers(tmp_path, servers):
    # Through the fallback tunnel, SSH (the runs here take VXLAN, the default).
    scenario = load_scenario(scenario_copy(tmp_path), {'servers': servers.split(','),
                                                      'tunnel': 'ssh'})
    report = probe.probe(scenario_topology(scenario, TEST_PREFIX))
    for name in ('d1', 'd2'):
        row = report['devices'][name]
        assert 39.5 <= row['rtt_ms'] <= 60, report
        for direction in ('up', 'down'):
            # As wide as on one server (test_delayline_emulation): a loaded machine.
            expected = row['%s_expected_mbit' % direction]
            assert 0.5 * expected <= row['%s_mbit' % direction] <= 1.1 * expected, report
    nothing_left(TEST_PREFIX)


def test_sigterm_leaves_nothing_on_either_server(tmp_path, servers):
    run = subprocess.Popen([PYTHON, '-m', 'edgecollab.cli', 'run',
                            scenario_copy(tmp_path, periods=3, period='4s'), '--servers',
                            servers,
                            '--policies', 'equal', '--out', str(tmp_path / 'out')],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in run.stdout:
        if "Emulation 'ec' up" in line:
            break
    time.sleep(3)                     # the agents are starting or the first period runs
    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=60)
    assert run.returncode != 0
    nothing_left('ec')


def test_a_lost_server_stops_the_run_with_one_line(tmp_path, servers):
    # The second server's sshd dies (and with it every session): the run notices its
    # hosts' shells are gone and stops, naming the server.  Last in the module: the
    # cluster has no sshd on that server after it.
    scenario = load_scenario(scenario_copy(tmp_path, periods=3, period='4s'),
                             {'servers': servers.split(',')})

    def lose_server():
        pids = on_server('ip netns pids %s' % localcluster.namespace(2)).split()
        for pid in pids:
            try:
                if open('/proc/%s/comm' % pid).read().strip() == 'sshd':
                    os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass

    run = PolicyRun(scenario, 'equal', str(tmp_path / 'out'), prefix=TEST_PREFIX,
                    on_ready=lambda r: at(r, 2.0, lose_server))
    began = time.monotonic()
    with pytest.raises(EdgecollabError, match=r'd2 \(on 10.251.0.2\) is gone'):
        run.run()
    assert time.monotonic() - began < scenario.duration_s + 20
    assert not cleanup.owned_interfaces(TEST_PREFIX)
    assert not subprocess.run(['pgrep', '-f', 'edgecollab.nodes.'], capture_output=True,
                              text=True).stdout.split()
