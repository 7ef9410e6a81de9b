"""A scenario across several servers, with Mininet Cluster Edition.

One machine runs out before a city's worth of devices (a device is a host with its own
agent).  ``Servers`` holds the servers of a run (``servers:`` in a scenario, ``--servers``
on the command line) and chooses, once, how the network is built: on one server plain
``Mininet``; on several, ``MininetCluster`` (``mininet.examples.cluster``), which keeps
the Mininet API the topology is written in and reaches the other servers over SSH.

The first server is the machine edgecollab runs on (``localhost``): it holds the
controller, the edge, the shaped bridge and its link share, the delay line and the
management bridge, so the shaping stays on one kernel and a share means what it means on
one machine.  Devices are placed on the servers round robin (d1 on the first, d2 on the
second, ...) or as ``placement:`` says; a device on another server reaches the bridges
over two tunnels (data and management).  The tunnels are VXLAN (``VxlanLink``, in the
style of Mininet's ``RemoteGRELink``: this kernel has VXLAN and no GRE; UDP port 4789
between the servers, MTU TUNNEL_MTU inside) or, as the fallback, Mininet's SSH tunnel
(``SshLink``, Mininet's ``RemoteSSHLink`` made to work with this project's bridges:
TAP devices over ``ssh -w``, needs ``PermitTunnel yes``).

Commands for a host on another server go over its SSH connection
(``shell.CommandRunner``'s ``node=``); its agents are started in an SSH session with a
terminal, so that they end with it (a killed run, a dead server) and leave nothing.
"""

import functools
import re
import shlex
import subprocess
import sys

from mininet.examples.cluster import MininetCluster, Placer, RemoteLink, RemoteMixin
from mininet.link import Link
from mininet.net import Mininet
from mininet.node import Node

from edgecollab import __version__
from edgecollab.errors import ConfigError, EdgecollabError
from edgecollab.kinds import Tunnel, member
from edgecollab.shell import runner
from edgecollab.topologies.hosts import DataHost

LOCALHOST = 'localhost'
VXLAN_PORT = 4789
TUNNEL_MTU = 1450            # 1500 less VXLAN's 50 bytes over a 1500-byte underlay
MAX_SERVERS = 64
CONTROL_PATH = '/run/edgecollab/ssh-%r@%h:%p'   # commands' shared SSH connection
CONTROL_PERSIST_S = 10      # it outlives its last command this long
CHECK_TIMEOUT_S = 15
_NAME = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$')


class Servers:
    """The servers of a run: names (the first is this machine, 'localhost'), the
    tunnel between them ('vxlan' or 'ssh') and the placement {device: server}."""

    def __init__(self, names=None, tunnel=Tunnel.VXLAN, placement=None):
        names = [LOCALHOST] + list(names or [])[1:] if names else [LOCALHOST]
        self.names = names
        self.tunnel = Tunnel(tunnel)
        self.placement = dict(placement or {})

    @classmethod
    def parse(cls, value, tunnel=Tunnel.VXLAN, placement=None):
        """Servers from a --servers value ('localhost,10.0.0.2') or a list; ConfigError
        (one line) for a malformed one."""
        if value is None:
            return cls()
        items = value.split(',') if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items:
            raise ConfigError('servers must be a list of host names or addresses, got %r'
                              % (value,))
        names = []
        for item in items:
            name = str(item).strip()
            if not _NAME.match(name):
                raise ConfigError('servers: %r is not a host name or an IPv4 address' % item)
            names.append(name)
        if len(set(names)) != len(names):
            raise ConfigError('servers: %s named twice' % sorted(
                n for n in set(names) if names.count(n) > 1)[0])
        own = own_addresses()
        if not is_this_machine(names[0], own):
            raise ConfigError('servers: the first server is the machine edgecollab runs on '
                              '(it holds the edge and the bottleneck): localhost, not %r'
                              % names[0])
        if any(is_this_machine(n, own) for n in names[1:]):
            raise ConfigError('servers: only the first server may be this machine')
        servers = cls(names, member(Tunnel, tunnel, 'tunnel'))
        for device, server in (placement or {}).items():
            if server not in names:
                raise ConfigError('placement: %s is on %r, which is not one of the servers '
                                  '(%s)' % (device, server, ', '.join(names)))
            servers.placement[device] = LOCALHOST if server == names[0] else server
        return servers

    @property
    def several(self):
        return len(self.names) > 1

    def place(self, devices):
        """{device: server}: placement's where given, the others round robin."""
        return {name: self.placement.get(name, self.names[i % len(self.names)])
                for i, name in enumerate(devices)}

    @staticmethod
    def host_class(server=LOCALHOST):
        """The class of a host on server (Mininet's own for this machine's: a
        RemoteMixin host's shell here is started detached and looks exited)."""
        return DataHost if server == LOCALHOST else RemoteDataHost

    def network(self, topo, prefix, **params):
        """The Mininet network of topo on these servers (not built)."""
        if not self.several:
            return Mininet(topo=topo, link=Link, **params)
        link = functools.partial(VxlanLink, prefix=prefix) if self.tunnel == Tunnel.VXLAN \
            else SshLink
        # Every node's server is set by the topology (Placer is never asked); the
        # servers were checked before anything started (check), so no precheck here.
        return MininetCluster(topo=topo, link=link, servers=self.names, user='root',
                              placement=Placer, precheck=False, **params)

    def describe(self):
        """One line for a run's first lines."""
        if not self.several:
            return 'one server (this machine)'
        return '%d servers (%s), %s tunnels' % (len(self.names), ', '.join(self.names),
                                                self.tunnel.upper())

    def remote(self):
        """The servers other than this machine."""
        return self.names[1:]


def own_addresses():
    """This machine's IPv4 addresses."""
    listed = runner.run(['ip', '-o', '-4', 'addr', 'show'], 'list own addresses', check=False)
    return {line.split()[3].split('/')[0] for line in listed.splitlines()
            if len(line.split()) > 3}


def is_this_machine(name, own):
    """Whether name is this machine: localhost or one of its addresses (own)."""
    return name in (LOCALHOST, '127.0.0.1') or name in own


def server_of(node):
    """The server that holds a Mininet node."""
    return getattr(node, 'server', None) or LOCALHOST


def _underlay(node, peer):
    """The address node's server reaches peer's server from."""
    if server_of(node) != LOCALHOST:
        return node.serverIP
    route = runner.run(['ip', 'route', 'get', peer.serverIP], 'find the route to %s'
                       % peer.server)
    return route.split(' src ')[1].split()[0]


class RemoteDataHost(RemoteMixin, DataHost):
    """A DataHost on any server of a cluster; on another server its processes run in
    an SSH session with a terminal (not detached), so that they end with the session:
    a killed run or a lost server leaves none behind.  Its shell and processes each
    have an SSH connection of their own (sshd's MaxSessions, 10 by default, bounds the
    sessions one connection carries); the commands run for it (``commandssh``) share
    one connection per server (OpenSSH's ControlMaster: a login costs hundreds of
    milliseconds, and a tunnel's ends take several commands)."""

    @property
    def commandssh(self):
        """The SSH command that runs one command on this host's server."""
        return ([a for a in self.sshcmd if a != '-tt'][:-1] +
                ['-o', 'ControlMaster=auto', '-o', 'ControlPath=' + CONTROL_PATH,
                 '-o', 'ControlPersist=%d' % CONTROL_PERSIST_S, self.sshcmd[-1]])

    def popen(self, *cmd, **params):
        if not self.isRemote:
            return DataHost.popen(self, *cmd, **params)
        params.setdefault('stdin', subprocess.DEVNULL)
        params['mncmd'] = ['mnexec', '-a', str(self.pid)]
        # ssh hands the remote shell one line: each argument quoted for it.
        argv = cmd[0] if len(cmd) == 1 and isinstance(cmd[0], (list, tuple)) else cmd
        return Node.popen(self, [shlex.quote(str(a)) for a in argv], tt=True, **params)


class TunnelLink(RemoteLink):
    """A link between two nodes: a veth pair when one server holds both, else a tunnel
    between their servers (``make_tunnel``, a subclass's), its ends moved into the
    nodes and named as Mininet names them."""

    def makeIntfPair(self, intfname1, intfname2, addr1=None, addr2=None,
                     node1=None, node2=None, deleteIntfs=True):
        node1 = self.node1 if node1 is None else node1
        node2 = self.node2 if node2 is None else node2
        if server_of(node1) == server_of(node2):
            return Link.makeIntfPair(intfname1, intfname2, addr1, addr2, node1, node2,
                                     deleteIntfs=False)
        self.tunnel = self.make_tunnel(((node1, intfname1, addr1), (node2, intfname2, addr2)))
        return None

    def make_tunnel(self, ends):
        """Make the tunnel between ends [(node, interface name, MAC or None)] x 2;
        return what stands for it (kept in self.tunnel)."""
        raise NotImplementedError

    @staticmethod
    def settle(device, node, intf, addr, doing):
        """Move device from node's server's root namespace into node, named intf."""
        runner.run(['ip', 'link', 'set', device, 'netns', node.pid],
                   'move %s into %s' % (doing, node.name), node=node, root=True)
        rename = ['ip', 'link', 'set', device, 'name', intf]
        runner.run(rename + (['address', addr] if addr else []),
                   'name %s %s' % (doing, intf), node=node)

    def stop(self):
        if self.tunnel:
            if isinstance(self.tunnel, subprocess.Popen):
                self.tunnel.terminate()
            self.intf1.delete()
            self.intf2.delete()
        else:
            Link.stop(self)
        self.tunnel = None


class VxlanLink(TunnelLink):
    """Mininet Cluster Edition's RemoteLink over VXLAN, in the style of its
    RemoteGRELink: each end a VXLAN device made in its server's root namespace (named
    <prefix>v<VNI>, so that a run's cleanup finds one left behind), moved into its node
    and renamed."""

    vni = 0

    def __init__(self, node1, node2, prefix='ec', **params):
        self.prefix = prefix
        TunnelLink.__init__(self, node1, node2, **params)

    def make_tunnel(self, ends):
        VxlanLink.vni += 1
        vni = VxlanLink.vni
        temp = '%sv%d' % (self.prefix, vni)
        for (node, intf, addr), (peer, _, _) in (ends, ends[::-1]):
            runner.run(['ip', 'link', 'add', temp, 'mtu', TUNNEL_MTU, 'type', 'vxlan', 'id',
                        vni, 'local', _underlay(node, peer), 'remote', _underlay(peer, node),
                        'dstport', VXLAN_PORT],
                       'make VXLAN tunnel %d for %s' % (vni, node.name), node=node, root=True)
            self.settle(temp, node, intf, addr, 'VXLAN tunnel %d' % vni)
            # A tunnel coalesces what it receives (GRO): a bridge would hand the
            # bottleneck's shaper and the delay line 64 KB frames, which the line
            # cannot relay; wire-size frames, as on a veth.
            runner.run(['ethtool', '-K', intf, 'gro', 'off'],
                       'turn GRO off on VXLAN tunnel %s' % intf, node=node)
        return vni


class SshLink(TunnelLink):
    """Mininet Cluster Edition's SSH tunnel (``RemoteSSHLink``: a TAP device each end,
    joined by ``ssh -o Tunnel=Ethernet -w``), its commands run by the runner: Mininet's
    own asks a node for ``rcmd``, which this project's bridges do not have.  The
    tunnel's ssh runs on this machine (the first server holds every bridge); the
    emulation records it and watches it (``Emulation.start``)."""

    TAP = 9          # tap9 each end, renamed once moved: links are made one at a time

    def make_tunnel(self, ends):
        if server_of(ends[0][0]) != LOCALHOST:
            ends = ends[::-1]
        remote = ends[1][0]
        tap = 'tap%d' % self.TAP
        for node, _, _ in ends:
            runner.run(['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap'],
                       'make %s for the SSH tunnel to %s' % (tap, remote.name), node=node,
                       root=True)
        tunnel = subprocess.Popen(
            ['ssh', '-n', '-o', 'BatchMode=yes', '-o', 'Tunnel=Ethernet', '-w',
             '%d:%d' % (self.TAP, self.TAP), 'root@%s' % remote.serverIP, 'echo @'],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        if tunnel.stdout.read(1) != b'@':
            tunnel.kill()
            raise EdgecollabError('the SSH tunnel to %s did not come up (PermitTunnel yes '
                                  'in its sshd_config?)' % remote.server)
        for node, intf, addr in ends:
            self.settle(tap, node, intf, addr, 'the SSH tunnel')
        return tunnel


def ssh(server, argv, timeout=CHECK_TIMEOUT_S):
    """Run argv on server as root over SSH (batch mode): (exit code, output)."""
    command = ['ssh', '-n', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5',
               'root@%s' % server, shlex.join([str(a) for a in argv])]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 255, 'no answer in %d s' % timeout
    return done.returncode, (done.stdout + done.stderr).strip()


def check(servers):
    """[(server, problem)] of every remote server that cannot hold devices: reached
    over SSH as root, sudo, Mininet's mnexec, this edgecollab (the same version at the
    same path), the kernel's VXLAN (or TUN for SSH tunnels).  [] when all can."""
    problems = []
    python = sys.executable
    for server in servers.remote():
        code, out = ssh(server, ['true'])
        if code != 0:
            problems.append((server, 'cannot log in as root over SSH: %s' % (
                out.splitlines()[-1] if out else 'exit %d' % code)))
            continue
        steps = [
            (['sudo', '-n', 'true'], 'sudo without a password'),
            (['sh', '-c', 'command -v mnexec'], "Mininet's mnexec (apt-get install mininet)"),
            ([python, '-c', 'import edgecollab, mininet; print(edgecollab.__version__)'],
             'edgecollab at %s (install it at the same path)' % python),
            (['sh', '-c', 'modprobe -q vxlan || test -d /sys/module/vxlan'
              if servers.tunnel == Tunnel.VXLAN else 'test -c /dev/net/tun'],
             'the kernel\'s %s' % ('VXLAN module' if servers.tunnel == Tunnel.VXLAN
                                   else 'TUN device')),
        ]
        for argv, what in steps:
            code, out = ssh(server, argv)
            if code != 0:
                problems.append((server, 'lacks %s' % what))
                break
            if argv[0] == python and out.strip().splitlines()[-1:] != [__version__]:
                problems.append((server, 'has edgecollab %s, this machine %s' % (
                    out.strip(), __version__)))
                break
    return problems


def require(servers):
    """Raise EdgecollabError naming the first server that cannot hold devices."""
    problems = check(servers)
    if problems:
        server, problem = problems[0]
        raise EdgecollabError('server %s %s (edgecollab cluster check --servers %s)' % (
            server, problem, ','.join(servers.names)))


def clean_server(server, prefix):
    """Run edgecollab's cleanup of prefix on server over SSH; what it removed
    (EdgecollabError when the server does not answer)."""
    code, out = ssh(server, [sys.executable, '-m', 'edgecollab.cli', 'clean', '--prefix',
                              prefix, '--force'], timeout=60)
    # The commands' shared connection to it (RemoteDataHost.commandssh) ends now.
    subprocess.run(['ssh', '-O', 'exit', '-o', 'ControlPath=' + CONTROL_PATH,
                    'root@%s' % server], capture_output=True, timeout=CHECK_TIMEOUT_S)
    if code != 0:
        raise EdgecollabError(out.splitlines()[-1] if out else 'exit %d' % code)
    return [line[len('removed '):] for line in out.splitlines()
            if line.startswith('removed ')]
