"""An experiment: every policy of a scenario on one backend into one results folder.

The core behind ``edgecollab run`` and the Python API: ``write_metadata`` describes the
run before it starts, ``run_scenario`` runs each policy (the Mininet backend on a fresh
emulation each, or the fluid backend) and appends its records to ``periods.csv``.
"""

import contextlib
import dataclasses
import importlib
import logging
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time

from tqdm import tqdm

from edgecollab import __version__, files
from edgecollab.errors import ConfigError, EdgecollabError
from edgecollab.kinds import Backend
from edgecollab.scenarios import fluid_backend, results, traces
from edgecollab.scenarios.scenario import trace_sides
from edgecollab.topologies import cleanup, paths as paths_mod
from edgecollab.topologies.hosts import check_congestion_control

log = logging.getLogger('edgecollab')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_REPEAT = 100       # --repeat: each repetition is a whole run of every policy


def run_scenario(scenario, names, out, backend=Backend.MININET, interactive=False,
                 prefix='ec', keep_artifacts=False, statuses=None, repeat=1, live=None,
                 token=None):
    """Run each policy of names on scenario into folder out, repeat times (repetition r
    with seed scenario.seed + r - 1); return {policy: status} (statuses: the dict to
    fill, so a caller keeps them when a signal stops the run).  keep_artifacts: keep the
    checkpoints and data files the agents moved.  live: a dashboard's Live, told of each
    policy's run while it goes on; token: the API token of every run (one is made when
    None)."""
    statuses = {} if statuses is None else statuses
    run_args = {'prefix': prefix, 'interactive': interactive, 'keep_artifacts': keep_artifacts,
                'live': live, 'token': token or secrets.token_hex(16)}
    # The emulation lock for the whole experiment: no other run between two policies.
    lock = cleanup.EmulationLock(experiment=True)
    emulated = get_backend(backend).emulated
    if emulated:
        lock.acquire()
    try:
        if emulated:
            write_fluid_reference(scenario, names, out)
        _run_all(scenario, names, out, backend, repeat, statuses, run_args)
    finally:
        lock.release()
    return statuses


class FluidRun:
    """One policy's run on the fluid backend (ideal transfers, no root): the same
    interface as the Mininet backend's PolicyRun."""
    emulated = False             # no network: no lock, no fluid reference of itself

    def __init__(self, scenario, policy, folder, progress=None, repeat=1, **_):
        self.scenario, self.policy, self.folder = scenario, policy, folder
        self.progress, self.repeat = progress, repeat

    def run(self):
        """The run's status; its records appended to the folder's periods.csv."""
        status = run_fluid(self.scenario, self.policy, self.folder, self.repeat)
        if self.progress:
            self.progress(self.scenario.control.periods)
        return status


# The backends by name (edgecollab run --backend): where each one's run class lives.
BACKENDS = {Backend.MININET: ('edgecollab.scenarios.mininet_backend', 'PolicyRun'),
           Backend.FLUID: ('edgecollab.scenarios.experiment', 'FluidRun')}


def get_backend(name):
    """The run class of backend name (the Mininet one imported only when asked for)."""
    try:
        module, attribute = BACKENDS[Backend(name)]
    except (KeyError, ValueError):
        raise ConfigError('unknown backend %r (known: %s)' % (name, ', '.join(BACKENDS))) \
            from None
    return getattr(importlib.import_module(module), attribute)


def repeat_offsets(scenario, repeat):
    """The time (s) into its capacity trace at which each of repeat repetitions starts:
    spread evenly over the trace (0 for a constant capacity), so that repetitions on a
    trace meet different parts of it and their interval says something."""
    if scenario.link.channels and any(k.startswith('capacity[')
                                      for k in scenario.trace_files):
        length = max(c.duration_s for c in scenario.link.channels)
    elif scenario.trace_files.get('capacity'):
        length = scenario.link.capacity.duration_s
    else:
        return [0.0] * repeat
    return [round((r - 1) * length / repeat, 6) for r in range(1, repeat + 1)]


def repetition(scenario, r, repeat):
    """Repetition r of repeat: seed + r - 1, its traces started at its offset."""
    offset = repeat_offsets(scenario, repeat)[r - 1]
    return dataclasses.replace(scenario, seed=scenario.seed + r - 1,
                               link=scenario.link.shifted(offset) if offset else
                               scenario.link)


def _run_all(scenario, names, out, backend, repeat, statuses, run_args):
    for r in range(1, repeat + 1):
        seeded = repetition(scenario, r, repeat)
        for name in names:
            try:
                status = run_policy(seeded, name, out, backend, r, repeat, **run_args)
            except (KeyboardInterrupt, SystemExit):
                statuses[name] = 'interrupted'
                raise
            if r == 1 or statuses.get(name) == 'completed':
                statuses[name] = status          # a failed repetition's status stays


def run_policy(scenario, name, out, backend, r, repeat, prefix, interactive, keep_artifacts,
               live, token):
    """The status of one run of policy name (repetition r of repeat)."""
    label = name if repeat == 1 else '%s #%d' % (name, r)
    progress = Progress(label, name, r, scenario.control.periods, out)
    try:
        with progress.logs_above():            # log lines above the bar, not on it
            run = get_backend(backend)(
                scenario, name, out, prefix=prefix, progress=progress.done,
                interactive=interactive, keep_artifacts=keep_artifacts, repeat=r,
                token=token, on_ready=live.attach if live else None)
            try:
                return run.run()
            finally:
                if live:
                    live.detach(run)
    except EdgecollabError as exc:
        log.error('policy %s failed: %s', label, exc)
        log.debug('policy %s failed', label, exc_info=True)
        return 'failed: %s' % exc
    finally:
        progress.close()


def run_fluid(scenario, name, out, r=1):
    """Policy name's run of scenario on the fluid backend (repetition r), its records
    appended to out's periods.csv; return its status (EdgecollabError when it
    fails)."""
    records = results.Records(out, r)
    try:
        records.write(fluid_backend.run_policy(scenario, name))
    finally:
        records.close()
    return 'completed'


class Progress:
    """One policy's progress: a bar on a terminal; piped (CI, tee), a line a period
    with the policy's mean accuracy so far."""

    def __init__(self, label, policy, repeat, periods, folder):
        self.label, self.policy, self.repeat = label, policy, repeat
        self.periods, self.folder = periods, folder
        self.bar = tqdm(total=periods, desc='%-13s' % label, unit='period',
                        leave=True) if sys.stderr.isatty() else None

    def done(self, period):
        """Period number period has finished (the fluid backend: all of them)."""
        if self.bar is not None:
            self.bar.update(period - self.bar.n)
            return
        try:
            rows = [r for r in results.read_rows(os.path.join(
                self.folder, results.PERIODS_CSV), ('accuracy',))[0] if r['policy'] == self.policy
                and int(r.get('repeat') or 1) == self.repeat]
        except EdgecollabError:
            rows = []
        so_far = ', mean mAP so far %.2f' % statistics.fmean(
            r['accuracy'] for r in rows) if rows else ''
        print('%s: period %d of %d done%s' % (self.label, period, self.periods, so_far),
              file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def logs_above(self):
        """While the bar shows, the console's log lines print above it (tqdm.write);
        the file handlers (run.log) are left as they are."""
        root = logging.getLogger()
        console = [h for h in root.handlers if type(h) is logging.StreamHandler]
        if self.bar is None or not console:
            yield
            return
        swapped = [(h, _AboveBar(h)) for h in console]
        for old, new in swapped:
            root.removeHandler(old)
            root.addHandler(new)
        try:
            yield
        finally:
            for old, new in swapped:
                root.removeHandler(new)
                root.addHandler(old)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class _AboveBar(logging.Handler):
    """A console handler's lines written with tqdm.write (above any bar)."""

    def __init__(self, handler):
        super().__init__(handler.level)
        self.setFormatter(handler.formatter)
        self.stream = handler.stream

    def emit(self, record):
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:          # as logging.StreamHandler does: never raise
            self.handleError(record)


def write_fluid_reference(scenario, names, out):
    """fluid-reference.csv: what each policy reaches on the fluid backend (ideal
    transfers), the reference an emulated run is read against (a second per policy)."""
    records = results.Records(out, name=results.FLUID_REFERENCE)
    try:
        for name in names:
            try:
                records.write(fluid_backend.run_policy(scenario, name))
            except EdgecollabError as exc:
                log.warning('no fluid reference for %s: %s', name, exc)
    finally:
        records.close()


def _corpus_entry(entry):
    """A corpus trace as metadata.json lists it: its file and checksum, a duplex pair's
    download under 'down'."""
    up, down = trace_sides(entry)
    listed = {'path': up, 'sha256': traces.checksum(up)}
    if down is not None:
        listed['down'] = {'path': down, 'sha256': traces.checksum(down)}
    return listed


def write_metadata(scenario, arguments, out, engine):
    """metadata.json: the resolved scenario, the arguments, versions, trace checksums,
    the paths' delays and the engine imposing them (``path_engine``)."""
    def version(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=5,
                                  check=False).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None
    commit = version(['git', '-C', REPO, 'rev-parse', 'HEAD'])
    meta = {'edgecollab': __version__, 'git_commit': commit, 'started': time.time(),
            'arguments': arguments,
            # Where each repetition (--repeat) started in the capacity trace.
            'repeat_offsets_s': repeat_offsets(scenario, int(arguments.get('repeat') or 1)),
            'scenario_file': os.path.abspath(scenario.path), 'scenario': scenario.raw,
            'workload': scenario.workload.spec,
            'kernel': platform.release(), 'python': platform.python_version(),
            # The agents' TCP congestion control: the scenario's, else the kernel's
            # default (each Mininet host starts with it); it shapes how fast a flow
            # takes a share opened to it.
            'tcp_congestion_control': (scenario.paths.congestion_control or
                                       _sysctl('net/ipv4/tcp_congestion_control')),
            'tc': version(['tc', '-V']), 'mininet': _mininet_version(),
            'traces': {key: {'path': path, 'sha256': traces.checksum(path)}
                       for key, path in scenario.trace_files.items()},
            # A corpus run (--traces, traces:): each trace file, its checksum (a duplex
            # pair: its upload's, and its download's under 'down').
            'corpus': [_corpus_entry(entry) for entry in scenario.corpus],
            # The servers of a cluster run (topologies/cluster.py): each device's.
            'servers': {'names': scenario.cluster.servers.names,
                        'tunnel': scenario.cluster.servers.tunnel,
                        'devices': scenario.cluster.servers.place(scenario.device_names)},
            'paths': {'engine': engine,
                      'devices': {name: p.as_dict() for name, p in
                                  zip(scenario.device_names, scenario.paths.each)}}}
    files.write_json(os.path.join(out, 'metadata.json'), meta, default=str)


def _sysctl(name):
    """The value of the sysctl at /proc/sys/<name> (None where it cannot be read)."""
    try:
        with open(os.path.join('/proc/sys', name), encoding='ascii') as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def path_engine(scenario, backend, prefix='ec'):
    """The engine that imposes the scenario's delays, jitter and losses: 'netem',
    'userspace', 'none' (no path is impaired) or, on the fluid backend, 'fluid (none)'
    (it models no round trip)."""
    if not get_backend(backend).emulated:
        return 'fluid (none)'
    engine = paths_mod.choose_engine(scenario.paths.engine, scenario.paths.each,
                                     lambda: paths_mod.kernel_has_netem(prefix))
    return engine or 'none'


def check_tcp(scenario, backend):
    """Raise UnsupportedError unless this machine can give an emulated run's hosts the
    scenario's TCP congestion control (a fluid run has no TCP)."""
    name = scenario.paths.congestion_control
    if name and get_backend(backend).emulated:
        check_congestion_control(name)


def _mininet_version():
    try:
        from mininet.net import VERSION
        return VERSION
    except ImportError:
        return None
