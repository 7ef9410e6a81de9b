"""Run-scoped cleanup: remove exactly what one emulation created, on every exit path.

An emulation records what it owns in a state file (``/run/edgecollab/<prefix>.json``):
the process groups it started (with their start times, so a recycled PID is never
killed) and its name prefix.  Interfaces and IFB devices are found by that prefix
(``addressing.owned_name_pattern``).  ``clean(prefix)`` is idempotent: the emulation's
``stop()`` calls it, the signal handler reaches it through ``finally``, and
``edgecollab clean`` calls it for a run that was SIGKILLed.  It never kills a process it
did not record, unlike ``mn -c``.
"""

import errno
import fcntl
import json
import logging
import os
import signal
import time

from edgecollab.errors import EdgecollabError
from edgecollab.shell import runner
from edgecollab.topologies import addressing, cluster

log = logging.getLogger(__name__)

STATE_DIR = os.environ.get('EDGECOLLAB_STATE_DIR', '/run/edgecollab')
LOCK_NAME = 'emulation.lock'


def state_path(prefix):
    """The state file of the emulation with prefix."""
    return os.path.join(STATE_DIR, '%s.json' % prefix)


def process_start_time(pid):
    """The start time of pid in clock ticks since boot, or None if it is gone."""
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii', errors='replace') as stat:
            fields = stat.read().rsplit(')', 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


class RunState:
    """The state file of one emulation: its prefix and the processes it started."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.path = state_path(prefix)
        self.processes = []   # [{'pid': int, 'start': int, 'what': str}]
        self.servers = []     # the other servers of a cluster run (cleaned over SSH)

    def add_process(self, pid, what):
        """Record a process group leader started by this emulation."""
        start = process_start_time(pid)
        if start is not None:
            self.processes.append({'pid': pid, 'start': start, 'what': what})
            self.save()

    def save(self):
        """Write the state file atomically."""
        os.makedirs(STATE_DIR, exist_ok=True)
        tmp = self.path + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as out:
            json.dump({'prefix': self.prefix, 'owner': os.getpid(),
                       'processes': self.processes, 'servers': self.servers}, out)
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, prefix):
        """The saved state of prefix, or an empty one."""
        state = cls(prefix)
        try:
            with open(state.path, encoding='utf-8') as src:
                saved = json.load(src)
            state.processes = saved.get('processes', [])
            state.servers = [s for s in saved.get('servers', []) if isinstance(s, str)]
        except (OSError, ValueError):
            pass
        return state


class EmulationLock:
    """Only one emulation may run on a machine: an exclusive lock held while it runs.
    An experiment (experiment=True) holds it across its policies' emulations, so that
    another run cannot start between two of them; its own emulations run under it, one
    at a time."""
    _handle = None          # the process's locked file while anything holds it
    _holders = 0
    _running = False        # an emulation of this process runs

    def __init__(self, experiment=False):
        self.experiment = experiment
        self.held = False

    def acquire(self):
        """Take the lock or raise EdgecollabError naming the holder."""
        if not self.experiment and EmulationLock._running:
            raise EdgecollabError('another emulation is running (pid %d, this process); '
                                  'only one may run at a time' % os.getpid())
        if EmulationLock._handle is None:
            EmulationLock._handle = self._lock_file()
        EmulationLock._holders += 1
        EmulationLock._running = EmulationLock._running or not self.experiment
        self.held = True

    @staticmethod
    def _lock_file():
        os.makedirs(STATE_DIR, exist_ok=True)
        path = os.path.join(STATE_DIR, LOCK_NAME)
        handle = open(path, 'a+', encoding='utf-8')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            holder = handle.read().strip() or '?'
            handle.close()
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise EdgecollabError('another emulation is running (pid %s); only one may '
                                      'run at a time' % holder) from None
            raise
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def release(self):
        """Give the lock back (idempotent); the file is unlocked when the process's last
        holder releases it."""
        if not self.held:
            return
        self.held = False
        if not self.experiment:
            EmulationLock._running = False
        EmulationLock._holders -= 1
        if EmulationLock._holders == 0:
            EmulationLock._handle.close()
            EmulationLock._handle = None


def lock_is_held():
    """True if some live process holds the emulation lock."""
    path = os.path.join(STATE_DIR, LOCK_NAME)
    if not os.path.exists(path):
        return False
    with open(path, 'a+', encoding='utf-8') as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def kill_group(pid, start, what, grace_s=2.0):
    """Stop the process group led by pid if pid is still the process we started."""
    if process_start_time(pid) != start:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if process_start_time(pid) != start:
                return True
            _reap(pid)
            time.sleep(0.02)
    log.warning('process %d (%s) did not stop', pid, what)
    return False


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def interface_names():
    """The names of the root namespace's interfaces."""
    text = runner.run(['ip', '-o', 'link', 'show'], 'list interfaces')
    return [parts[1].split('@')[0] for parts in (line.split(': ') for line in
                                                 text.splitlines()) if len(parts) >= 2]


def owned_interfaces(prefix):
    """Root-namespace interfaces whose names say they belong to prefix."""
    pattern = addressing.owned_name_pattern(prefix)
    return [name for name in interface_names() if pattern.match(name)]


def clean(prefix):
    """Remove every process, interface and IFB of the emulation with prefix.

    Returns a list of what was removed (empty when nothing was left).
    """
    addressing.check_prefix(prefix)
    removed = []
    state = RunState.load(prefix)
    # Agents first, then the hosts' shells (their exit frees the namespaces).
    for proc in reversed(state.processes):
        if kill_group(proc['pid'], proc['start'], proc['what']):
            removed.append('process %d (%s)' % (proc['pid'], proc['what']))
    names = owned_interfaces(prefix)
    # Bridges before ports, so a port deletion does not race the bridge's.
    for name in sorted(names, key=lambda n: ('-' in n, n)):
        runner.run(['ip', 'link', 'del', name], 'remove interface %s' % name, check=False)
        removed.append('interface %s' % name)
    try:
        os.unlink(state.path)
    except FileNotFoundError:
        pass
    # Then what the run left on its other servers: their processes ended with their
    # SSH sessions above; a tunnel made but not yet moved into its host may be left.
    for server in state.servers:
        try:
            removed += ['%s on %s' % (what, server)
                        for what in cluster.clean_server(server, prefix)]
        except EdgecollabError as exc:
            log.warning('could not clean server %s: %s', server, exc)
    if removed:
        log.info('*** Cleaned %d leftovers of emulation %r', len(removed), prefix)
    return removed


def known_prefixes():
    """Prefixes that have a state file."""
    try:
        files = os.listdir(STATE_DIR)
    except FileNotFoundError:
        return []
    return sorted(f[:-5] for f in files if f.endswith('.json'))
