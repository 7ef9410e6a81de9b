"""An experiment: every policy of a scenario on one backend into one results folder.

The core behind ``edgecollab run`` and the Python API: ``write_metadata`` describes the
run before it starts, ``run_scenario`` runs each policy (the Mininet backend on a fresh
emulation each, or the fluid backend) and appends its records to ``periods.csv``.
"""

import json
import logging
import os
import platform
import subprocess
import time

from tqdm import tqdm

from edgecollab import __version__
from edgecollab.controller import fluid
from edgecollab.controller.loop import RECORD_FIELDS
from edgecollab.errors import EdgecollabError
from edgecollab.scenarios import results, traces
from edgecollab.topologies import paths as paths_mod

log = logging.getLogger('edgecollab')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_scenario(scenario, names, out, backend='mininet', interactive=False, prefix='ec',
                 keep_artifacts=False, statuses=None):
    """Run each policy of names on scenario into folder out; return {policy: status}
    (statuses: the dict to fill, so a caller keeps them when a signal stops the run).
    keep_artifacts: keep the checkpoints and data files the agents moved."""
    from edgecollab.scenarios.runner import PolicyRun
    statuses = {} if statuses is None else statuses
    if backend != 'fluid':
        write_fluid_reference(scenario, names, out)
    for name in names:
        bar = tqdm(total=scenario.periods, desc='%-13s' % name, unit='period',
                   disable=None, leave=True)
        try:
            if backend == 'fluid':
                rows = fluid.run_policy(scenario, name)
                csv_log = results.CsvLog(os.path.join(out, 'periods.csv'), RECORD_FIELDS)
                csv_log.write(rows)
                csv_log.close()
                bar.update(scenario.periods)
                statuses[name] = 'completed'
            else:
                statuses[name] = PolicyRun(scenario, name, out, prefix=prefix,
                                           progress=lambda k: bar.update(1),
                                           interactive=interactive,
                                           keep_artifacts=keep_artifacts).run()
        except (KeyboardInterrupt, SystemExit):
            statuses[name] = 'interrupted'
            raise
        except EdgecollabError as exc:
            statuses[name] = 'failed: %s' % exc
            log.error('policy %s failed: %s', name, exc)
            log.debug('policy %s failed', name, exc_info=True)
        finally:
            bar.close()
    return statuses


def write_fluid_reference(scenario, names, out):
    """fluid-reference.csv: what each policy reaches on the fluid backend (ideal
    transfers), the reference an emulated run is read against (a second per policy)."""
    csv_log = results.CsvLog(os.path.join(out, results.FLUID_REFERENCE), RECORD_FIELDS)
    try:
        for name in names:
            try:
                csv_log.write(fluid.run_policy(scenario, name))
            except EdgecollabError as exc:
                log.warning('no fluid reference for %s: %s', name, exc)
    finally:
        csv_log.close()


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
            'scenario_file': os.path.abspath(scenario.path), 'scenario': scenario.raw,
            'kernel': platform.release(), 'python': platform.python_version(),
            'tc': version(['tc', '-V']), 'mininet': _mininet_version(),
            'traces': {key: {'path': path, 'sha256': traces.checksum(path)}
                       for key, path in scenario.trace_files.items()},
            'paths': {'engine': engine,
                      'devices': {name: p.as_dict() for name, p in
                                  zip(scenario.device_names, scenario.paths)}}}
    with open(os.path.join(out, 'metadata.json'), 'w', encoding='utf-8') as dst:
        json.dump(meta, dst, indent=2, default=str)


def path_engine(scenario, backend, prefix='ec'):
    """The engine that imposes the scenario's delays, jitter and losses: 'netem',
    'userspace', 'none' (no path is impaired) or, on the fluid backend, 'fluid (none)'
    (it models no round trip)."""
    if backend != 'mininet':
        return 'fluid (none)'
    engine = paths_mod.choose_engine(scenario.delay_engine, scenario.paths,
                                     lambda: paths_mod.kernel_has_netem(prefix))
    return engine or 'none'


def _mininet_version():
    try:
        from mininet.net import VERSION
        return VERSION
    except ImportError:
        return None
