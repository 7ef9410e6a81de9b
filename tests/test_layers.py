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
                  'edgecollab.files', 'edgecollab.http', 'edgecollab.ready',
                  'edgecollab.wire', 'edgecollab.signals', 'edgecollab.userfile',
                  # the folders' package files (they import nothing)
                  'edgecollab.controller', 'edgecollab.nodes', 'edgecollab.scenarios',
                  'edgecollab.topologies']),
    ('link and model', ['edgecollab.controller.media', 'edgecollab.controller.linkshare',
                        'edgecollab.controller.accuracy',
                        'edgecollab.controller.solver', 'edgecollab.controller.menu',
                        'edgecollab.controller.fleet', 'edgecollab.controller.holding',
                        'edgecollab.controller.correction', 'edgecollab.controller.replan',
                        'edgecollab.nodes.checkpoint',
                        'edgecollab.nodes.workload']),
    ('policies, topologies, agents', [
        'edgecollab.controller.policies', 'edgecollab.controller.planner',
        'edgecollab.controller.forecast',
        'edgecollab.topologies.addressing', 'edgecollab.topologies.bridges',
        'edgecollab.topologies.star', 'edgecollab.topologies.access',
        'edgecollab.topologies.line', 'edgecollab.topologies.paths',
        'edgecollab.topologies.hosts',
        'edgecollab.nodes.edge', 'edgecollab.nodes.device', 'edgecollab.nodes.delayline']),
    ('control loop and emulation', [
        'edgecollab.controller.service', 'edgecollab.controller.loop',
        'edgecollab.controller.fluid', 'edgecollab.cleanup', 'edgecollab.emulation',
        'edgecollab.iperf']),
    ('scenarios', ['edgecollab.scenarios.traces', 'edgecollab.scenarios.scenario',
                   'edgecollab.scenarios.report', 'edgecollab.scenarios.dashboard',
                   'edgecollab.scenarios.replay', 'edgecollab.scenarios.results']),
    ('runner', ['edgecollab.scenarios.runner', 'edgecollab.scenarios.experiment',
                'edgecollab.scenarios.probe', 'edgecollab.scenarios.corpus']),
    ('command line', ['edgecollab.cli', 'edgecollab.cli_run', 'edgecollab.cli_solve',
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
    (`controller.linkshare, accuracy`), `topologies.*` every module of the folder."""
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
