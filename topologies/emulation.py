"""One live Mininet emulation of a topology, owned from start to cleanup.

Usage::

    with Emulation(EdgeStar(n=2, capacity='20mbit', prefix='ec')) as emu:
        emu.linkshare.set_shares({'d1': {'up': 0.5, 'down': 0.25}})
        proc = emu.popen('d1', ['iperf3', '-c', emu.ip('edge'), '-t', '5'])

Leaving the ``with`` block (normally, by an exception, Ctrl-C or SIGTERM) stops every
process the emulation started, removes the shaping and every interface it created.
"""

import logging
import os
import subprocess
import threading
import time

from mininet.log import setLogLevel
from mininet.nodelib import LinuxBridge

from edgecollab import signals
from edgecollab.topologies import cleanup
from edgecollab.errors import EdgecollabError
from edgecollab.shell import runner
from edgecollab.topologies import addressing
from edgecollab.topologies.cluster import Servers
from edgecollab.topologies.line import DelayLineSwitch

log = logging.getLogger(__name__)

NET_STOP_S = 30.0          # how long Mininet's own stop may take before we clean up alone
LINK_CHECK_S = 1.0         # how often check_vital lists the interfaces (at most)


class Emulation:
    """A started Mininet network of topo whose root-namespace names start with prefix."""

    def __init__(self, topo):
        self.topo = topo
        self.servers = getattr(topo, 'servers', None) or Servers()
        prefix = addressing.check_prefix(getattr(topo, 'prefix', 'ec'))
        self.prefix = prefix
        self.net = None
        self.state = cleanup.RunState(prefix)
        self.lock = cleanup.EmulationLock()
        self.procs = []
        self.start_s = None
        self.interfaces = set()   # the root-namespace interfaces the network is made of
        self.links_checked = 0.0

    # lifecycle
    def start(self):
        """Build and start the network; on any failure, leave nothing behind."""
        signals.exit_on_signals()
        self.lock.acquire()
        try:
            if cleanup.owned_interfaces(self.prefix) or os.path.exists(self.state.path):
                log.info('*** Removing leftovers of an earlier run with prefix %r', self.prefix)
                cleanup.clean(self.prefix)
            setLogLevel('error')
            began = time.monotonic()
            self.state.servers = self.servers.remote()
            self.state.save()
            self.net = self.servers.network(self.topo, self.prefix, switch=LinuxBridge,
                                            controller=None, build=False,
                                            autoSetMacs=False, waitConnected=False)
            self.net.build()
            for node in self.net.hosts + self.net.switches:
                # A host on another server: its pid is there; here, its SSH session.
                remote = getattr(node, 'isRemote', False)
                self.state.add_process(node.shell.pid if remote else node.pid,
                                       'shell of %s' % node.name)
            self.net.start()
            for host in self.delay_lines:
                # A delay line's relay: recorded (cleanup) and watched (check_vital).
                self._record(host.relay, 'delay line in %s' % host.name, vital=True)
            for link in self.net.links:
                # A cluster's SSH tunnel (cluster.SshLink) is a process: likewise.
                if isinstance(getattr(link, 'tunnel', None), subprocess.Popen):
                    self._record(link.tunnel, 'SSH tunnel of %s' % link, vital=True)
            self.interfaces = set(cleanup.owned_interfaces(self.prefix))
            self.start_s = time.monotonic() - began
            log.info('*** Emulation %r up: %d hosts in %.1f s', self.prefix,
                     len(self.net.hosts), self.start_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Stop processes, the network and the shaping; remove leftovers (idempotent)."""
        try:
            for proc in reversed(self.procs):
                cleanup.kill_group(proc.pid, proc.start, proc.what)
                try:
                    proc.popen.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
            self.procs = []
            if self.net is not None:
                net, self.net = self.net, None
                _stop_network(net)
            cleanup.clean(self.prefix)
        finally:
            self.lock.release()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # access
    def host(self, name):
        """The Mininet host called name."""
        if self.net is None:
            raise EdgecollabError('the emulation is not running')
        try:
            return self.net[name]
        except KeyError:
            raise EdgecollabError('no host %r (hosts: %s)' % (
                name, ', '.join(h.name for h in self.net.hosts))) from None

    def ip(self, name):
        """The data-plane address of host name."""
        return self.host(name).IP()

    @property
    def delay_lines(self):
        """The hosts relaying the devices' paths (``topologies/line.py``)."""
        return [s for s in self.net.switches if isinstance(s, DelayLineSwitch)]

    def restart_path_clocks(self):
        """Start every delay trace's clock now (the run's first period)."""
        for host in self.delay_lines:
            host.restart_clock()

    @property
    def medium(self):
        """The shaped data-plane bridge."""
        return self.net[addressing.data_switch(self.prefix)]

    @property
    def linkshare(self):
        """The link-share layer of the bottleneck."""
        return self.medium.linkshare

    @property
    def devices(self):
        """Names of the device hosts, in order."""
        net = self.net
        if net is None:
            raise EdgecollabError('the emulation is not running')
        return [h.name for h in net.hosts if addressing.is_device(h.name)]

    def popen(self, name, argv, stdout=None, stderr=None, env=None, what=None,
              vital=False):
        """Start argv in host name's namespace in a process group of its own; recorded.

        stdout/stderr: file objects (default: discarded); vital: the network needs it
        (``check_vital`` raises once it has exited).
        """
        host = self.host(name)
        popen = host.popen([str(a) for a in argv], stdout=stdout or subprocess.DEVNULL,
                           stderr=stderr or subprocess.DEVNULL, env=env)
        return self._record(popen, what or '%s on %s' % (os.path.basename(str(argv[0])), name),
                            vital)

    def _record(self, popen, what, vital=False):
        self.procs.append(_Proc(popen, what, vital))
        self.state.add_process(popen.pid, what)
        return popen

    def check_vital(self):
        """Raise EdgecollabError when a process the network needs has exited, a host's
        or switch's shell is gone, or an interface of the network has vanished (the
        network torn down from outside: another Mininet's cleanup, ``mn -c``)."""
        for proc in self.procs:
            if proc.vital and proc.popen.poll() is not None:
                raise EdgecollabError('the %s exited (code %s): the network is broken'
                                      % (proc.what, proc.popen.returncode))
        net = self.net
        if net is None:           # stopped: nothing left to watch
            return
        dead = _dead_shells(net)
        if dead:
            raise EdgecollabError('the shell of %s is gone: the network was torn down '
                                  'from outside (another Mininet cleanup?) or a server '
                                  'was lost' % ', '.join(dead))
        now = time.monotonic()
        if self.interfaces and now - self.links_checked >= LINK_CHECK_S:
            self.links_checked = now
            missing = self.interfaces - set(cleanup.owned_interfaces(self.prefix))
            if missing:
                raise EdgecollabError('interface %s vanished: the network was torn down '
                                      'from outside (another Mininet cleanup?)'
                                      % ', '.join(sorted(missing)))

    def cmd(self, name, argv, doing, timeout=60):
        """Run argv in host name's namespace to completion; return stdout (checked)."""
        host = self.host(name)
        return runner.run(argv, doing, node=host, timeout=timeout)


def _dead_shells(net):
    """Names of the nodes of net whose shell has exited."""
    return [node.name + (' (on %s)' % node.server if getattr(node, 'isRemote', False)
                         else '')
            for node in net.hosts + net.switches
            if node.shell is None or node.shell.poll() is not None]


def _stop_network(net):
    """Mininet's stop of net, with a bounded wait: it talks to each node's shell and
    waits for its answer, forever when the shell is gone, so a net with a dead shell is
    left to our cleanup, and a stop that overruns NET_STOP_S is abandoned to it."""
    dead = _dead_shells(net)
    if dead:
        log.warning('the shell of %s is gone: removing the network without Mininet\'s '
                    'stop', ', '.join(dead))
        return
    failed = []

    def stop():
        try:
            net.stop()
        except Exception as exc:  # keep cleaning even if Mininet's stop fails
            failed.append('%s: %s' % (type(exc).__name__, exc))
    worker = threading.Thread(target=stop, name='mininet stop', daemon=True)
    worker.start()
    worker.join(NET_STOP_S)
    if worker.is_alive():
        log.warning('Mininet stop did not finish in %g s: removing what is left', NET_STOP_S)
    elif failed:
        log.warning('Mininet stop failed: %s', failed[0])


class _Proc:
    """A process the emulation started: its Popen, start time and label."""

    def __init__(self, popen, what, vital=False):
        self.popen, self.pid, self.what, self.vital = popen, popen.pid, what, vital
        self.start = cleanup.process_start_time(popen.pid)
