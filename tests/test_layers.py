"""Imports run one way: each module imports only from its own layer or the ones below.

The layers (docs/architecture.md draws them), lowest first.  A new module must be given
a layer here, so its place is a decision, not an accident.
"""

import ast
import os
import re

import pytest

from tests.conftest import REPO

LAYERS = [
    ('plumbing', ['edgecollab', 'edgecollab.errors', 'edgecollab.units', 'edgecollab.shell',
                  'edgecollab.kinds',
                  'edgecollab.files', 'edgecollab.http', 'edgecollab.ready',
                  'edgecollab.wire', 'edgecollab.signals', 'edgecollab.userfile',
                  'edgecollab.confidence',
                  # the folders' package files (they import nothing)
                  'edgecollab.controller', 'edgecollab.nodes', 'edgecollab.scenarios',
                  'edgecollab.topologies']),
    ('link and model', ['edgecollab.topologies.media', 'edgecollab.topologies.linkshare',
                        'edgecollab.controller.accuracy',
                        'edgecollab.controller.solver', 'edgecollab.controller.menu',
                        'edgecollab.controller.fleet', 'edgecollab.controller.holding',
                        'edgecollab.controller.correction', 'edgecollab.controller.replan',
                        'edgecollab.nodes.checkpoint', 'edgecollab.nodes.stall',
                        'edgecollab.nodes.workload']),
    ('policies, topologies, agents', [
        'edgecollab.controller.policies', 'edgecollab.controller.planner',
        'edgecollab.controller.forecast',
        'edgecollab.topologies.addressing', 'edgecollab.topologies.bridges',
        'edgecollab.topologies.star', 'edgecollab.topologies.access',
        'edgecollab.topologies.line', 'edgecollab.topologies.paths',
        'edgecollab.topologies.hosts', 'edgecollab.topologies.delayline',
        'edgecollab.topologies.cluster',
        'edgecollab.nodes.edge', 'edgecollab.nodes.device']),
    ('control loop and emulation', [
        'edgecollab.controller.service', 'edgecollab.controller.loop',
        'edgecollab.scenarios.fluid_backend', 'edgecollab.topologies.cleanup',
        'edgecollab.topologies.emulation', 'edgecollab.topologies.iperf',
        'edgecollab.topologies.localcluster']),
    ('scenarios', ['edgecollab.scenarios.traces', 'edgecollab.scenarios.schema',
                   'edgecollab.scenarios.scenario',
                   'edgecollab.scenarios.report', 'edgecollab.scenarios.dashboard',
                   'edgecollab.scenarios.replay', 'edgecollab.scenarios.results']),
    ('runner', ['edgecollab.scenarios.agents', 'edgecollab.scenarios.meter',
                'edgecollab.scenarios.clock',
                'edgecollab.scenarios.mininet_backend', 'edgecollab.scenarios.experiment',
                'edgecollab.scenarios.probe', 'edgecollab.scenarios.corpus']),
    ('command line', ['edgecollab.cli', 'edgecollab.cli_run', 'edgecollab.cli_solve',
                      'edgecollab.cli_cluster',
                      'edgecollab.installcheck']),
]
RANK = {module: rank for rank, (_, modules) in enumerate(LAYERS) for module in modules}
FOLDERS = {'edgecollab': 'edgecollab', 'controller': 'edgecollab.controller',
           'nodes': 'edgecollab.nodes', 'topologies': 'edgecollab.topologies',
           'scenarios': 'edgecollab.scenarios'}


def package_modules():
    """{module name: source path} of every module of the package."""
    found = {}
    for folder, package in FOLDERS.items():
        for name in sorted(os.listdir(os.path.join(REPO, folder))):
            if name.endswith('.py'):
                module = package if name == '__init__.py' else '%s.%s' % (package, name[:-3])
                found[module] = os.path.join(REPO, folder, name)
    return found


def imported(path):
    """The edgecollab modules the file at path imports (at any depth of its code)."""
    with open(path, encoding='utf-8') as src:
        tree = ast.parse(src.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update('%s.%s' % (node.module, alias.name) for alias in node.names)
            names.add(node.module)
    return {n for n in names if n.split('.')[0] == 'edgecollab'}


def as_module(name):
    """The module a dotted import name refers to (a name imported from a module maps
    to that module)."""
    while name not in RANK and '.' in name:
        name = name.rsplit('.', 1)[0]
    return name


def test_every_module_has_a_layer():
    missing = sorted(set(package_modules()) - set(RANK))
    assert not missing, 'give these modules a layer in LAYERS: %s' % missing


@pytest.mark.parametrize('module,path', sorted(package_modules().items()))
def test_imports_run_downwards(module, path):
    if module not in RANK:
        pytest.skip('no layer (test_every_module_has_a_layer fails)')
    upward = sorted('%s (%s)' % (m, LAYERS[RANK[m]][0]) for m in map(as_module, imported(path))
                    if m in RANK and RANK[m] > RANK[module])
    assert not upward, '%s (%s) imports from above: %s' % (
        module, LAYERS[RANK[module]][0], ', '.join(upward))


# Each folder is one layer of meaning; a folder imports from the plumbing, itself and
# the folders listed here only (the command line, edgecollab.cli*, from any).
FOLDER_LAYERS = {
    'edgecollab.topologies': ('the network: topologies, link share, media, paths, the '
                              'delay line, the emulation and its cleanup', set()),
    'edgecollab.controller': ('the decisions: model, solvers, policies, forecasts, the '
                              'loop, the API service', {'edgecollab.topologies'}),
    'edgecollab.nodes': ('the agents: device, edge, checkpoints, workloads', set()),
    'edgecollab.scenarios': ('the experiment: scenarios, traces, the backends, results, '
                             'report, dashboard', {'edgecollab.topologies',
                                                   'edgecollab.controller',
                                                   'edgecollab.nodes'}),
}


def folder_of(module):
    """The folder package of a module (edgecollab for the package's own modules)."""
    parts = module.split('.')
    return '.'.join(parts[:2]) if len(parts) > 2 or parts[-1] in (
        'topologies', 'controller', 'nodes', 'scenarios') else 'edgecollab'


@pytest.mark.parametrize('module,path', sorted(package_modules().items()))
def test_each_folder_imports_only_the_folders_below_it(module, path):
    folder = folder_of(module)
    if folder not in FOLDER_LAYERS:
        if folder == 'edgecollab' and RANK.get(module) == 0:    # plumbing: itself only
            assert all(RANK.get(as_module(m), 0) == 0 for m in imported(path)), module
        return
    allowed = FOLDER_LAYERS[folder][1] | {folder}
    wrong = sorted(m for m in map(as_module, imported(path)) if folder_of(m) != 'edgecollab'
                   and folder_of(m) not in allowed)
    assert not wrong, '%s (%s) imports %s' % (module, FOLDER_LAYERS[folder][0],
                                              ', '.join(wrong))
    cli = sorted(m for m in map(as_module, imported(path))
                 if folder_of(m) == 'edgecollab' and RANK.get(m, 0) != 0)
    assert not cli, '%s imports the command line: %s' % (module, ', '.join(cli))


def test_benchmarks_do_not_import_tests():
    folder = os.path.join(REPO, 'benchmarks')
    for name in sorted(os.listdir(folder)):
        if name.endswith('.py'):
            with open(os.path.join(folder, name), encoding='utf-8') as src:
                tree = ast.parse(src.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    assert node.module.split('.')[0] != 'tests', (name, node.module)
                if isinstance(node, ast.Import):
                    assert all(a.name.split('.')[0] != 'tests' for a in node.names), name


def documented_layers():
    """[(layer name, {module})] of docs/architecture.md's numbered list: each backtick
    group names its first module in full and the rest after that module's package
    (`topologies.media, linkshare`), `topologies.*` every module of the folder."""
    text = open(os.path.join(REPO, 'docs', 'architecture.md'), encoding='utf-8').read()
    layers = []
    for name, body in re.findall(r'(?ms)^\d+\. \*\*([^*]+)\*\*: (.*?)(?=^\d+\. |^$)', text):
        modules = set()
        for group in re.findall(r'`([^`]+)`', body):
            names = [n.strip() for n in group.split(',')]
            first = names[0] if names[0].startswith('edgecollab') else \
                'edgecollab.' + names[0]
            package = first.rpartition('.')[0] if '.' in first else first
            for n in [first] + ['%s.%s' % (package, n) for n in names[1:]]:
                if n.endswith('.*'):
                    modules.update(m for m in RANK if m.startswith(n[:-1]))
                else:
                    modules.add(n)
        layers.append((name, modules))
    return layers


def test_the_architecture_docs_list_the_same_layers():
    documented = documented_layers()
    assert [name for name, _ in documented] == [name for name, _ in LAYERS]
    for (name, modules), (_, expected) in zip(documented, LAYERS):
        assert modules == set(expected), (name, sorted(modules ^ set(expected)))


def test_closed_sets_are_named_by_their_enum():
    """No module compares with, or tests membership in, a bare word of a closed set
    (edgecollab/kinds.py): the code names the member, so a set has one home."""
    from edgecollab import kinds
    closed = {member.value for kind in vars(kinds).values()
              if isinstance(kind, type) and issubclass(kind, kinds.enum.Enum)
              for member in kind}
    found = []
    for module, path in package_modules().items():
        with open(path, encoding='utf-8') as src:
            tree = ast.parse(src.read(), path)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            for operand in [node.left] + node.comparators:
                items = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) \
                    else [operand]
                found += ['%s:%d %r' % (module, node.lineno, item.value) for item in items
                          if isinstance(item, ast.Constant) and item.value in closed]
    assert not found, found
