"""``edgecollab solve``: each policy's allocation and predicted accuracy, as a table or JSON."""

import dataclasses
import json
import os

from edgecollab.controller import planner, policies
from edgecollab.controller.policies import PolicyState
from edgecollab.errors import ConfigError
from edgecollab.kinds import Medium, Menu, Timing, words
from edgecollab.scenarios import scenario as scenario_mod, schema
from edgecollab.topologies.addressing import device_name
from edgecollab.units import rate_mbit


def solve_all(problem, names, devices=1, ratio=0.5, generated=None, floor=None):
    """{'policies': {name: allocation dict}}: one device's answer, or with several the
    totals and each device's under 'devices' (``planner.plan``)."""
    if devices == 1 and generated is None:
        return {'policies': {name: policies.get(name).allocate(
            PolicyState(problem, ratio=ratio)).as_dict() for name in names}}
    generated = list(generated) if generated is not None else [problem.generated] * devices
    names_of = [device_name(i + 1) for i in range(len(generated))]
    return {'policies': {name: planner.plan(problem, name, generated, problem.capacity_mbit,
                                            ratio=ratio, floor=floor).allocation.as_dict(
                                                names_of)
                         for name in names}}


def _table(result):
    rows = ['%-13s %7s %7s %10s %10s %-8s %7s' % ('policy', 'upload', 'model', 'data MB',
                                                   'model MB', 'variant', 'mAP')]
    for name, a in result['policies'].items():
        rows.append('%-13s %7.3f %7.3f %10.1f %10.1f %-8s %7.2f%s' % (
            name, a['upload_share'], a['download_share'], a['upload_bytes'] / 1e6,
            a['model_bytes'] / 1e6, a.get('model') or '-', a['accuracy'],
            '' if a['feasible'] else '  (nothing fits: %s)' % a['reason']))
    return '\n'.join(rows)


def _sweep(problem, names, values, field, parse, fleet):
    header = '%-12s %8s %8s' % (field, 'x*', 'mAP*') + ''.join(
        ' %12s' % ('vs ' + n) for n in names if n != 'optimal')
    rows = [header]
    for raw in values:
        changed = dataclasses.replace(problem, **{parse[0]: parse[1](raw)})
        res = solve_all(changed, names, **fleet)['policies']
        best = res['optimal']
        gains = ''.join(' %+11.1f%%' % (100 * (best['accuracy'] / res[n]['accuracy'] - 1))
                        for n in names if n != 'optimal')
        rows.append('%-12s %8.3f %8.2f' % (raw, best['upload_share'], best['accuracy']) + gains)
    return '\n'.join(rows)


def _volume(text):
    """A swept data volume (samples a period): a finite number in [0, MAX_GENERATED]."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError('--generated-list: %r is not a number' % text) from None
    if not 0 <= value <= schema.MAX_GENERATED:
        raise ConfigError('--generated-list: %r is not a number of samples in [0, %g]'
                          % (text, schema.MAX_GENERATED))
    return value


def run_solve(args):
    """The core of ``edgecollab solve``."""
    scenario = schema.read(args.scenario) if args.scenario else {}
    where = args.scenario or 'arguments'
    for key in ('capacity', 'period', 'update', 'timing', 'medium'):
        if getattr(args, key) is not None:
            scenario[key] = getattr(args, key)
    if args.generated is not None or args.sample_size is not None:
        data = dict(scenario.get('data', {}))
        if args.generated is not None:
            data['generated'] = args.generated
        if args.sample_size is not None:
            data['sample_size'] = args.sample_size
        scenario['data'] = data
    if args.menu:
        scenario['model'] = dict(scenario.get('model', {}), menu=args.menu)
    # The arguments meet the rules a scenario file's keys do.
    schema.validate(scenario, where)
    problem = scenario_mod.problem_from(scenario, where, base=os.path.dirname(
        os.path.abspath(args.scenario)) if args.scenario else None)
    filled = scenario_mod.with_defaults(scenario)
    names = args.policies.split(',') if args.policies else filled['policies']
    if 'optimal' not in names:
        names = ['optimal'] + list(names)
    for name in names:
        policies.get(name)
    per_device = filled['data']['generated']
    fleet = {'devices': filled['devices'], 'ratio': filled['ratio'], 'floor': filled['floor'],
             'generated': per_device if isinstance(per_device, list) else None}
    if args.capacities:
        return _sweep(problem, names, args.capacities.split(','), 'capacity',
                      ('capacity_mbit', lambda v: rate_mbit(v, 'capacity')), fleet)
    if args.generated_list:
        # A swept volume applies to every device.
        return _sweep(problem, names, args.generated_list.split(','), 'generated',
                      ('generated', _volume), dict(fleet, generated=None))
    result = solve_all(problem, names, **fleet)
    return json.dumps(dict(result, capacity_mbit=problem.capacity_mbit), indent=2) \
        if args.json else _table(result)


def _cmd(args):
    print(run_solve(args))
    return 0


def register(sub):
    """Add the ``solve`` subcommand."""
    p = sub.add_parser('solve', help="each policy's bandwidth split and predicted mAP")
    p.add_argument('--scenario', help='a scenario YAML file (arguments override it)')
    p.add_argument('--capacity', help='link capacity, e.g. 20mbit')
    p.add_argument('--period', help='period length, e.g. 60s')
    p.add_argument('--update', help='edge update time (sequential timing), e.g. 10s')
    p.add_argument('--timing', choices=words(Timing))
    p.add_argument('--medium', choices=words(Medium))
    p.add_argument('--generated', type=float, help='samples generated per period')
    p.add_argument('--sample-size', help='size of one data sample, e.g. 100KB')
    p.add_argument('--menu', choices=words(Menu), help='model sizes')
    p.add_argument('--policies', help='comma-separated policy names')
    p.add_argument('--capacities', help='sweep: comma-separated capacities')
    p.add_argument('--generated-list', help='sweep: comma-separated data volumes')
    p.add_argument('--json', action='store_true', help='print JSON')
    p.set_defaults(func=_cmd)
