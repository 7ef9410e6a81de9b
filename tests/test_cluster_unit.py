"""The servers of a cluster run without a network: parsing, placement, the scenario keys
and their bad values, and the command for a host on another server."""

import subprocess
import types

import pytest

from edgecollab.errors import ConfigError
from edgecollab.kinds import Tunnel
from edgecollab.scenarios.scenario import load_scenario
from edgecollab.shell import CommandRunner
from edgecollab.topologies.cluster import Servers
from tests.conftest import PYTHON
from tests.helpers import scenario_copy


def test_devices_go_round_robin_from_this_machine_unless_placed():
    servers = Servers.parse('localhost,vm2,vm3', placement={'d5': 'vm2'})
    assert servers.several and servers.remote() == ['vm2', 'vm3']
    assert servers.place(['d1', 'd2', 'd3', 'd4', 'd5']) == {
        'd1': 'localhost', 'd2': 'vm2', 'd3': 'vm3', 'd4': 'localhost', 'd5': 'vm2'}
    assert servers.tunnel == Tunnel.VXLAN
    assert not Servers.parse(None).several and Servers().place(['d1']) == {'d1': 'localhost'}
    # This machine by its address is 'localhost', in the list and in placement.
    mine = Servers.parse('127.0.0.1,vm2', placement={'d2': '127.0.0.1'})
    assert mine.names == ['localhost', 'vm2'] and mine.place(['d1', 'd2']) == {
        'd1': 'localhost', 'd2': 'localhost'}


@pytest.mark.parametrize('value,words', [
    ('vm2,localhost', 'the first server is the machine edgecollab runs on'),
    ('localhost,vm2,vm2', 'vm2 named twice'),
    ('localhost,bad name', "'bad name' is not a host name"),
    ('localhost,127.0.0.1', 'only the first server may be this machine'),
    ([], 'servers must be a list'),
])
def test_bad_servers_are_refused_with_one_line(value, words):
    with pytest.raises(ConfigError, match=words):
        Servers.parse(value)


def test_a_bad_tunnel_or_placement_is_refused():
    with pytest.raises(ConfigError, match="tunnel 'gre' is unknown"):
        Servers.parse('localhost,vm2', tunnel='gre')
    with pytest.raises(ConfigError, match="d1 is on 'vm9', which is not one of the servers"):
        Servers.parse('localhost,vm2', placement={'d1': 'vm9'})


def test_the_scenario_keys_resolve_and_bad_ones_exit_2(tmp_path):
    scenario = load_scenario(scenario_copy(tmp_path, extra=(
        'servers: [localhost, vm2]\nplacement: {d1: vm2}\ntunnel: ssh\n')))
    servers = scenario.cluster.servers
    assert servers.names == ['localhost', 'vm2'] and servers.tunnel == Tunnel.SSH
    assert servers.place(scenario.device_names) == {'d1': 'vm2', 'd2': 'vm2'}
    for extra, words in (('placement: {d7: vm2}\n', 'placement: no device d7'),
                         ('servers: [vm2]\n', 'the first server'),
                         ('tunnel: gre\n', 'tunnel')):
        path = scenario_copy(tmp_path, extra=extra)
        done = subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'run', path, '--backend',
                               'fluid', '--out', str(tmp_path / 'out')],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and words in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_an_unreachable_server_is_named_in_one_line_before_anything_starts(tmp_path):
    # TEST-NET-1 (RFC 5737): no such host answers.
    done = subprocess.run([PYTHON, '-m', 'edgecollab.cli', 'run', scenario_copy(tmp_path),
                           '--servers', 'localhost,192.0.2.1', '--out',
                           str(tmp_path / 'out')],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith('edgecollab: server 192.0.2.1 cannot log in as root')
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / 'out').exists()


def test_a_command_for_a_host_on_another_server_goes_over_its_ssh_connection():
    host = types.SimpleNamespace(name='d2', pid=4321, server='vm2', isRemote=True,
                                 sshcmd=['ssh', '-q', '-tt', 'root@vm2'])
    _, name, via = CommandRunner._place(host, None, None, root=False)
    argv = CommandRunner._wrap(['ip', 'link', 'set', 'a b', 'up'], 4321, via)
    # No terminal for a command whose output is read; the remote line quoted whole.
    assert argv[:3] == ['ssh', '-q', 'root@vm2'] and name == 'd2@vm2'
    assert argv[3] == "sudo -n mnexec -a 4321 ip link set 'a b' up"
    _, name, via = CommandRunner._place(host, None, None, root=True)
    assert CommandRunner._wrap(['ip', 'link'], None, via)[-1] == 'sudo -n ip link'
    local = types.SimpleNamespace(name='d1', pid=99)
    assert CommandRunner._place(local, None, None, root=False) == (99, 'd1', None)
