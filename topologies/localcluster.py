"""Servers of a cluster on one machine: network namespaces, each with its own sshd.

``edgecollab cluster up --local N`` makes the servers of an N-server cluster on this
machine so that Mininet Cluster Edition reaches them over SSH exactly as it would reach
N virtual machines: this machine is the first server (it runs the controller and holds
the edge and the bottleneck), and each of the N - 1 others is a network namespace
``ecc-s<i>`` with an address on a bridge ``ecc-br`` in the root namespace (10.251.0.i),
its own sshd (Debian's openssh-server: root login by a key made here, ``PermitTunnel
yes`` for the SSH-tunnel link) and the project at the same path (the file system is
shared).  ``cluster up`` prints the ``--servers`` value to use; ``cluster down`` removes
everything it made.  The client side is a marked block in root's ``~/.ssh/config`` (key,
known hosts, batch mode), as a user would write for real servers.
"""

import ipaddress
import os
import shutil
import signal

from edgecollab.errors import ConfigError, EdgecollabError
from edgecollab.ready import wait
from edgecollab.shell import runner
from edgecollab.topologies import cleanup, cluster

PREFIX = 'ecc'
BRIDGE = PREFIX + '-br'
NETWORK = ipaddress.ip_network('10.251.0.0/24')
HOME = os.path.join(cleanup.STATE_DIR, 'cluster')      # keys, sshd configs, pid files
SSH_CONFIG = os.path.expanduser('~/.ssh/config')
BEGIN = '# edgecollab cluster: begin (edgecollab cluster down removes this block)'
END = '# edgecollab cluster: end'
MAX_SERVERS = 16
SSHD_START_S = 10.0


def namespace(index):
    """The namespace of server index (2..N; server 1 is this machine)."""
    return '%s-s%d' % (PREFIX, index)


def address(index):
    """The address of server index on the cluster bridge (1: this machine)."""
    return str(NETWORK.network_address + index)


def namespaces():
    """The cluster's namespaces present now."""
    listed = runner.run(['ip', 'netns', 'list'], 'list network namespaces', check=False)
    return sorted(line.split()[0] for line in listed.splitlines()
                  if line.split() and line.split()[0].startswith(PREFIX + '-s'))


def servers_value(count):
    """The --servers value of a local cluster of count servers."""
    return ','.join(['localhost'] + [address(i) for i in range(2, count + 1)])


def up(count):
    """Make a local cluster of count servers (this machine and count - 1 namespaces);
    return its --servers value.  Leaves nothing behind when it fails."""
    if not 2 <= count <= MAX_SERVERS:
        raise ConfigError('--local takes 2 to %d servers, got %d' % (MAX_SERVERS, count))
    if not shutil.which('sshd') and not os.path.exists('/usr/sbin/sshd'):
        raise EdgecollabError('sshd is missing: apt-get install openssh-server '
                              '(install.sh installs it)')
    if namespaces():
        raise EdgecollabError('a local cluster is up already (%s): edgecollab cluster down '
                              'first' % ', '.join(namespaces()))
    try:
        os.makedirs(HOME, mode=0o700, exist_ok=True)
        os.makedirs('/run/sshd', mode=0o755, exist_ok=True)   # sshd's privilege separation
        _keys()
        runner.run(['ip', 'link', 'add', BRIDGE, 'type', 'bridge'], 'make the cluster bridge')
        runner.run(['ip', 'addr', 'add', '%s/%d' % (address(1), NETWORK.prefixlen), 'dev',
                    BRIDGE], 'address the cluster bridge')
        runner.run(['ip', 'link', 'set', BRIDGE, 'up'], 'bring the cluster bridge up')
        for index in range(2, count + 1):
            _server(index)
        _client_config()
        for index in range(2, count + 1):
            if not wait(lambda i=index: _answers(i), SSHD_START_S):
                raise EdgecollabError('the sshd of server %s did not answer within %.0f s '
                                      '(its log: %s)' % (address(index), SSHD_START_S,
                                                         _path(index, 'log')))
    except BaseException:
        down()
        raise
    return servers_value(count)


def down():
    """Remove the local cluster: its sshds, namespaces, bridge, keys and the ssh client
    block; return what was removed (nothing: [])."""
    removed = []
    for name in namespaces():
        index = int(name.rsplit('s', 1)[1])
        pid = _pid(index)
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
                removed.append('sshd of %s' % address(index))
            except ProcessLookupError:
                pass
        # Any process left in the namespace (a session of that sshd) ends with it.
        pids = runner.run(['ip', 'netns', 'pids', name], 'list the processes of %s' % name,
                          check=False).split()
        for other in pids:
            try:
                os.kill(int(other), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        runner.run(['ip', 'netns', 'del', name], 'remove namespace %s' % name, check=False)
        runner.run(['ip', 'link', 'del', name], 'remove link %s' % name, check=False)
        removed.append('namespace %s' % name)
    for name in cleanup.interface_names():
        if name == BRIDGE or name.startswith(PREFIX + '-s'):
            runner.run(['ip', 'link', 'del', name], 'remove %s' % name, check=False)
            removed.append('interface %s' % name)
    if _remove_client_config():
        removed.append('the cluster block of %s' % SSH_CONFIG)
    if os.path.isdir(HOME):
        shutil.rmtree(HOME, ignore_errors=True)
        removed.append(HOME)
    return removed


def _path(index, what):
    return os.path.join(HOME, 's%d.%s' % (index, what))


def _keys():
    """The client key root logs in with, and the servers' host key."""
    for name in ('id_ed25519', 'host_ed25519'):
        path = os.path.join(HOME, name)
        if not os.path.exists(path):
            runner.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C',
                        'edgecollab cluster', '-f', path], 'make the key %s' % name)
    shutil.copy(os.path.join(HOME, 'id_ed25519.pub'), os.path.join(HOME, 'authorized_keys'))
    os.chmod(os.path.join(HOME, 'authorized_keys'), 0o600)


def _server(index):
    """Namespace, link to the bridge, address and sshd of server index."""
    name, ip = namespace(index), address(index)
    runner.run(['ip', 'netns', 'add', name], 'make namespace %s' % name)
    runner.run(['ip', 'link', 'add', name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns',
                name], 'link %s to the cluster bridge' % name)
    runner.run(['ip', 'link', 'set', name, 'master', BRIDGE, 'up'], 'attach %s' % name)
    inside = ['ip', 'netns', 'exec', name]
    runner.run(inside + ['ip', 'addr', 'add', '%s/%d' % (ip, NETWORK.prefixlen), 'dev',
                         'eth0'], 'address %s' % name)
    runner.run(inside + ['ip', 'link', 'set', 'eth0', 'up'], 'bring up eth0 of %s' % name)
    runner.run(inside + ['ip', 'link', 'set', 'lo', 'up'], 'bring up lo of %s' % name)
    config = _path(index, 'sshd_config')
    with open(config, 'w', encoding='utf-8') as out:
        out.write('\n'.join([
            'ListenAddress %s' % ip, 'Port 22',
            'HostKey %s' % os.path.join(HOME, 'host_ed25519'),
            'PidFile %s' % _path(index, 'pid'),
            'AuthorizedKeysFile %s' % os.path.join(HOME, 'authorized_keys'),
            'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
            'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no',
            'PermitTunnel yes', 'UseDNS no', 'MaxSessions 200', 'MaxStartups 200',
            'Subsystem sftp internal-sftp', '']))
    runner.run(inside + ['/usr/sbin/sshd', '-f', config, '-E', _path(index, 'log')],
               'start the sshd of %s' % name)


def _pid(index):
    try:
        with open(_path(index, 'pid'), encoding='ascii') as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _answers(index):
    """Whether the sshd of server index lets root in with the cluster's key."""
    return cluster.ssh(address(index), ['true'], timeout=10)[0] == 0


def _client_config():
    """Root's ssh client reaches the servers with the cluster's key, in batch mode."""
    _remove_client_config()
    os.makedirs(os.path.dirname(SSH_CONFIG), mode=0o700, exist_ok=True)
    block = '\n'.join([
        BEGIN, 'Host %s' % ' '.join(address(i) for i in range(2, MAX_SERVERS + 1)),
        '    User root', '    IdentityFile %s' % os.path.join(HOME, 'id_ed25519'),
        '    IdentitiesOnly yes',
        '    UserKnownHostsFile %s' % os.path.join(HOME, 'known_hosts'),
        '    StrictHostKeyChecking accept-new', '    BatchMode yes', END, ''])
    old = ''
    if os.path.exists(SSH_CONFIG):
        with open(SSH_CONFIG, encoding='utf-8') as f:
            old = f.read()
    # First in the file: ssh takes the first value it finds for each option.
    with open(SSH_CONFIG, 'w', encoding='utf-8') as f:
        f.write(block + old)
    os.chmod(SSH_CONFIG, 0o600)


def _remove_client_config():
    """Remove the cluster's block from root's ssh config; return whether there was one."""
    if not os.path.exists(SSH_CONFIG):
        return False
    with open(SSH_CONFIG, encoding='utf-8') as f:
        text = f.read()
    if BEGIN not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1] if END in rest else ''
    with open(SSH_CONFIG, 'w', encoding='utf-8') as f:
        f.write(head + tail.lstrip('\n'))
    return True
