"""``edgecollab run``, ``probe``, ``report``, ``dashboard``, ``fit`` and ``trace``: parse,
call, print."""

import dataclasses
import json
import logging
import os
import secrets
import signal
import time

from edgecollab.topologies import cleanup, cluster
from edgecollab.controller import accuracy, policies
from edgecollab.errors import ConfigError, EdgecollabError
from edgecollab.kinds import Backend, TraceFormat, words
from edgecollab.scenarios import corpus, dashboard, experiment, report, results, traces
from edgecollab.scenarios.scenario import (corpus_files, load_scenario, trace_of,
                                           trace_sides, with_workload)
from edgecollab.scenarios.schema import read as read_scenario, validate
from edgecollab.shell import runner as command_runner
from edgecollab.units import duration_s, rate_mbit

log = logging.getLogger('edgecollab')


def _overrides(args):
    """The scenario keys run's flags replace: periods, traces (a corpus), the window
    cut of each trace (start, duration in the capacity mapping)."""
    overrides = _servers(args)
    if args.periods is not None:
        overrides['periods'] = args.periods
    if args.traces_down and len(args.traces_down) != len(args.traces or ()):
        raise ConfigError('--traces-down pairs with --traces, one for one (%d --traces, %d '
                          '--traces-down)' % (len(args.traces or ()), len(args.traces_down)))
    if args.traces:
        overrides['traces'] = [os.path.abspath(p) for p in args.traces]
    if args.traces_down:
        overrides['traces'] = [{'up': up, 'down': os.path.abspath(down)} for up, down in
                               zip(overrides['traces'], args.traces_down)]
    window = {k: v for k, v in (('start', args.trace_start),
                                ('duration', args.trace_duration)) if v is not None}
    if window:
        raw = read_scenario(args.scenario)
        capacity = raw.get('capacity')
        if not _has_trace(capacity) and not args.traces:
            raise ConfigError('--trace-start and --trace-duration cut a trace: the '
                              "scenario's capacity is not one (add --traces)")
        if not isinstance(capacity, dict):    # the corpus's first file stands in
            first, _ = trace_sides(corpus_files(overrides['traces'], '.')[0])
            capacity = {'trace': first}
        overrides['capacity'] = _windowed(capacity, window)
        if _has_trace(raw.get('capacity_down')):   # a duplex link's two traces together
            overrides['capacity_down'] = _windowed(raw['capacity_down'], window)
    return overrides


def _servers(args):
    """The servers key --servers replaces (run and probe)."""
    if args.servers is None:
        return {}
    return {'servers': [name.strip() for name in args.servers.split(',')]}


def _has_trace(capacity):
    """Whether a capacity (for the fleet, or per device) holds a trace mapping."""
    if isinstance(capacity, list):
        return any(_has_trace(c) for c in capacity)
    if isinstance(capacity, dict) and 'trace' not in capacity:
        return any(_has_trace(c) for c in capacity.values())
    return isinstance(capacity, dict)


def _windowed(capacity, window):
    """capacity with every trace mapping in it (per device too) cut to window."""
    if isinstance(capacity, list):
        return [_windowed(c, window) for c in capacity]
    if isinstance(capacity, dict) and 'trace' not in capacity:
        return {k: _windowed(c, window) for k, c in capacity.items()}
    return dict(capacity, **window) if isinstance(capacity, dict) else capacity


def _cmd_run(args):
    scenario = load_scenario(args.scenario, _overrides(args))
    if args.workload:
        scenario = with_workload(scenario, args.workload)
    names = args.policies.split(',') if args.policies else scenario.control.policies
    for name in names:
        policies.get(name)
    if len(set(names)) != len(names):
        raise ConfigError('--policies names a policy twice: %s' % ','.join(names))
    if args.cli and len(names) != 1:
        raise ConfigError('--cli runs one policy: name it with --policies')
    if not 1 <= args.repeat <= experiment.MAX_REPEAT:
        raise ConfigError("--repeat must be in [1, %d], got %d" % (experiment.MAX_REPEAT,
                                                                 args.repeat))
    if args.cli and args.repeat != 1:
        raise ConfigError('--cli runs one policy once: leave --repeat out')
    runs = corpus.Corpus(scenario, args.workload) if scenario.corpus else None
    if runs and (args.cli or args.dashboard is not None):
        raise ConfigError('--cli and --dashboard follow one run, not a corpus: leave them '
                          "out (edgecollab dashboard opens a trace's folder)")
    out = args.out or os.path.join('results', '%s-%s' % (results.safe_name(scenario.name),
                                                          time.strftime('%Y%m%d-%H%M%S')))
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError('--out %s is a file, not a folder; choose another --out' % out)
    # A run's rows would join those of the run it holds (a corpus: in traces/).
    if os.path.exists(os.path.join(out, 'periods.csv')) or \
            os.path.isdir(os.path.join(out, corpus.TRACES_DIR)):
        raise ConfigError('%s already holds a run; choose another --out' % out)
    servers = scenario.cluster.servers
    if servers.several and args.backend == Backend.MININET:
        cluster.require(servers)                                # before anything starts
    if args.backend == Backend.MININET and cleanup.lock_is_held():
        raise EdgecollabError('another emulation is running; only one may run at a time '
                              '(after a crash: edgecollab clean)')
    engine = experiment.path_engine(scenario, args.backend)     # before anything starts
    experiment.check_tcp(scenario, args.backend)
    token = secrets.token_hex(16)       # the API's and the dashboard's, every policy's run
    live = dashboard.Live() if args.dashboard is not None else None
    # The port is bound before the folder is made: a refused port leaves nothing behind.
    server = dashboard.Server(dashboard.Dashboard(out, live), token, args.dashboard) \
        if live else None
    try:
        results.make_folder(out)
    except ConfigError:
        if server:
            server.stop()
        raise
    handler = logging.FileHandler(os.path.join(out, 'run.log'))
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter('%(asctime)s %(name)s %(levelname)s %(message)s'))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    for noisy in ('urllib3', 'matplotlib', 'werkzeug', 'PIL'):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    experiment.write_metadata(scenario, {k: v for k, v in vars(args).items()
                                          if k != 'func'}, out, engine)
    report.write_readme(out)          # again with every file once the run ends
    log.info('*** %s: %d devices, %d periods of %g s, policies %s, backend %s -> %s',
             scenario.name, scenario.devices, scenario.control.periods, scenario.control.period_s,
             ', '.join(names), args.backend, out)
    if servers.several and args.backend == Backend.MININET:
        log.info('*** %s; devices: %s', servers.describe(), ', '.join(
            '%s on %s' % kv for kv in servers.place(scenario.device_names).items()))
    if engine not in ('none', 'fluid (none)'):
        log.info('*** Paths beyond the shaper (%s engine): %s', engine, ', '.join(
            '%s %g ms%s%s' % (name, p.delay_ms,
                              ' +%g jitter' % p.jitter_ms if p.jitter_ms else '',
                              ' %g%% loss' % p.loss_pct if p.loss_pct else '')
            for name, p in zip(scenario.device_names, scenario.paths.each)))
    statuses = {}
    if runs:
        return _run_corpus(runs, names, out, args, handler)
    if server:
        print('dashboard: %s#token=%s  (the token switches the policy; also in %s)'
              % (server.url, token, os.path.join(out, 'token')), flush=True)
    try:
        command_runner.record_to(os.path.join(out, 'commands.sh'))
        experiment.run_scenario(scenario, names, out, args.backend, args.cli,
                                keep_artifacts=args.keep_artifacts, statuses=statuses,
                                repeat=args.repeat, live=live, token=token)
    finally:
        command_runner.record_to(None)
        if server:
            server.stop()
        # The statuses are printed whatever the run left: a run stopped before its first
        # period ended has no rows to summarise.
        summary = results.summarise([], statuses)
        if os.path.exists(os.path.join(out, 'periods.csv')):
            try:
                summary = results.write_summary(out, statuses)
                results.plot(out)
                report.write(out, summary)
            except ConfigError as exc:
                log.warning('%s', exc)
        print(results.table(summary, results.read_ranking(out)))
        logging.getLogger().removeHandler(handler)
        handler.close()
        if not args.keep_artifacts and results.compress_logs(out):
            # README.txt and report.html list the files by the names they now have.
            report.write_readme(out)
            if os.path.exists(os.path.join(out, 'report.html')):
                report.write(out, summary)
    print('results in %s' % out)
    return 0 if statuses and all(v == 'completed' for v in statuses.values()) else 1


def _run_corpus(runs, names, out, args, handler):
    """run's corpus part: every trace into out/traces/, then the verdict across them."""
    log.info('*** corpus of %d traces: %s', len(runs.names), ', '.join(runs.names[:8]) +
             (', ...' if len(runs.names) > 8 else ''))
    statuses = {}
    try:
        runs.run(names, out, args.backend, args.repeat,
                 {k: v for k, v in vars(args).items() if k != 'func'}, statuses,
                 {'keep_artifacts': args.keep_artifacts})
    finally:
        try:
            print(corpus.table(corpus.write(out)))
        except ConfigError as exc:
            log.warning('%s', exc)
        logging.getLogger().removeHandler(handler)
        handler.close()
    print('results in %s (report.html; each trace in %s/)' % (out, corpus.TRACES_DIR))
    return 0 if statuses and all(v == 'completed' for each in statuses.values()
                                 for v in each.values()) else 1


def _cmd_report(args):
    if corpus.is_corpus(args.folder):
        print(corpus.table(corpus.write(args.folder)))
        print('report: %s' % os.path.join(args.folder, 'report.html'))
        return 0
    summary = results.write_summary(args.folder)
    results.plot(args.folder)
    report.write(args.folder, summary)
    print(results.table(summary, results.read_ranking(args.folder)))
    print('report: %s' % os.path.join(args.folder, 'report.html'))
    return 0


def _cmd_dashboard(args):
    if not os.path.isdir(args.folder):
        raise ConfigError('%s: no such folder (a results folder of edgecollab run)'
                          % args.folder)
    if not os.path.isfile(os.path.join(args.folder, 'metadata.json')):
        raise ConfigError('%s: not a results folder (no metadata.json)' % args.folder)
    if corpus.is_corpus(args.folder):
        raise ConfigError('%s: a corpus run (its report.html compares the traces); the '
                          'dashboard shows one trace\'s folder: %s/<trace>'
                          % (args.folder, os.path.join(args.folder, corpus.TRACES_DIR)))
    if os.path.exists(os.path.join(args.folder, 'periods.csv')):
        results.read_periods(args.folder)         # a damaged folder: one clear line
    server = dashboard.Server(dashboard.Dashboard(args.folder), secrets.token_hex(16),
                              args.port)
    print('dashboard of %s: %s  (Ctrl-C to stop)' % (args.folder, server.url), flush=True)
    try:
        signal.pause()              # the server answers in its thread until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _cmd_fit(args):
    rows = results.read_periods(args.folder)
    problem = results.folder_problem(args.folder)
    if problem is None:
        raise ConfigError('%s: no readable metadata.json (not a results folder?)'
                          % args.folder)
    model = accuracy.fit_measured(rows, problem.sample_bits)
    used = accuracy.measured_rows(rows)
    errors = [model.accuracy(r['upload_bytes'] * 8 / problem.sample_bits,
                             r['planned_model_bytes']) - r['measured_accuracy'] for r in used]
    fitted = dataclasses.asdict(model)
    if args.json:
        print(json.dumps({'parameters': fitted, 'rows': len(used),
                          'rmse': (sum(e * e for e in errors) / len(errors)) ** 0.5}))
        return 0
    print('accuracy model fitted to %d delivered checkpoints of %s (measured top-1 %%):'
          % (len(used), args.folder))
    for name, value in fitted.items():
        print('  %-6s %10.4g   (default %.4g)' % (name, value,
                                                  getattr(accuracy.AccuracyModel(), name)))
    print('  rmse   %10.3g   (percentage points)' % (sum(e * e for e in errors) /
                                                     len(errors)) ** 0.5)
    print("use it: a scenario's accuracy: {%s}" % ', '.join(
        '%s: %.4g' % kv for kv in fitted.items()))
    return 0


def _trace_spec(args):
    """The trace mapping the trace tools' flags describe, checked as a scenario's is."""
    spec = {'trace': os.path.abspath(args.file), 'format': args.format}
    time_spec = {key: value for key, value in (
        ('column', args.time_column), ('format', args.time_format),
        ('unit', args.time_unit)) if value is not None}
    for key, value in (('column', args.column), ('unit', args.unit), ('time', time_spec),
                       ('interval', args.interval), ('start', args.start),
                       ('duration', args.duration), ('scale', args.scale)):
        if value not in (None, {}):
            spec[key] = value
    validate({'capacity': spec}, 'arguments')
    return spec


def _cmd_trace(args):
    if args.action == 'inspect':
        step = duration_s(args.step, 'step')
        trace, _ = trace_of(_trace_spec(args), 'arguments', '.', bin_s=step, link=False)
        # Nine significant digits: what the file says, not float noise (0.9999999962...).
        stats = {k: float('%.9g' % v) if isinstance(v, float) else v
                 for k, v in trace.stats(step).items()}
        print(json.dumps(stats, indent=2) if args.json else '\n'.join(
            '%-11s %s' % (k, ('%.3f' % v) if isinstance(v, float) else v)
            for k, v in stats.items()))
    elif args.action == 'convert':
        trace, _ = trace_of(_trace_spec(args), 'arguments', '.', link=False)
        traces.write(trace, args.output, args.to)
        print('wrote %s (%s)' % (args.output, args.to))
    else:
        trace = _synthetic(args)
        traces.write(trace, args.output, args.to)
        print('wrote %s (%s, %s)' % (args.output, args.to, trace.source))
    return 0


def _synthetic(args):
    duration = duration_s(args.duration, 'duration')
    if args.kind == 'steps':
        levels = [rate_mbit(v, 'levels') for v in (args.levels or '').split(',') if v]
        return traces.steps(levels, duration_s(args.dwell, 'dwell'))
    if args.kind == 'random-walk':
        return traces.random_walk(rate_mbit(args.mean, 'mean'), rate_mbit(args.sigma, 'sigma'),
                                  duration_s(args.step, 'step'), duration, args.seed)
    return traces.on_off(rate_mbit(args.on, 'on'), rate_mbit(args.off, 'off'),
                         duration_s(args.dwell, 'dwell'), duration_s(args.dwell, 'dwell'),
                         duration)


def _cmd_probe(args):
    from edgecollab.scenarios import probe
    from edgecollab.scenarios.mininet_backend import scenario_topology
    scenario = load_scenario(args.scenario, _servers(args))
    servers = scenario.cluster.servers
    if servers.several:
        cluster.require(servers)
        log.info('*** %s; devices: %s', servers.describe(), ', '.join(
            '%s on %s' % kv for kv in servers.place(scenario.device_names).items()))
    rates = dict(zip(scenario.device_names, scenario.problem.rates)) \
        if scenario.link.channels else None
    report = probe.probe(scenario_topology(scenario), rates=rates)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print('\n'.join(probe.table(report)))
    return 0


def register(sub):
    """Add the ``run``, ``probe``, ``report``, ``dashboard``, ``fit`` and ``trace``
    subcommands."""
    p = sub.add_parser('run', help='run a scenario: every policy under real TCP')
    p.add_argument('scenario', help='scenario YAML file')
    p.add_argument('--policies', help='comma-separated policies (default: the scenario\'s)')
    p.add_argument('--out', help='results folder (default results/<name>-<time>)')
    p.add_argument('--periods', type=int, help='number of periods (overrides the scenario)')
    p.add_argument('--backend', choices=words(Backend), default=Backend.MININET.value,
                   help='mininet: real TCP (root); fluid: ideal transfers, no root')
    p.add_argument('--cli', action='store_true',
                   help='leave me at the Mininet CLI while the scenario runs')
    p.add_argument('--repeat', type=int, default=1, metavar='N',
                   help='run each policy N times, seeds seed..seed+N-1: the summary gives '
                        'means with 95%% confidence intervals and how often the ranking '
                        'held')
    p.add_argument('--keep-artifacts', action='store_true',
                   help='keep the checkpoints and data files in work/ (default: verified, '
                        'listed in work/<policy>/artifacts.csv with size and sha256, '
                        'deleted) and run.log and commands.sh as they are (default: '
                        'gzip-compressed above 1 MB)')
    p.add_argument('--traces', action='append', metavar='FILES',
                   help="a corpus: run the scenario on each trace file in place of its "
                        "capacity trace, read with its capacity keys (a glob, e.g. "
                        "'traces/*.csv'; repeat the flag for more); results per trace "
                        'and across them')
    p.add_argument('--traces-down', action='append', metavar='FILES',
                   help='a corpus of duplex links (medium: duplex): the download traces, '
                        'one flag for each --traces, the n-th file of each in name order '
                        "a pair (e.g. --traces 'm/*.up' --traces-down 'm/*.down')")
    p.add_argument('--trace-start', metavar='TIME',
                   help='cut each trace from this time, e.g. 600s (its capacity key '
                        "start; a duplex link's download trace too)")
    p.add_argument('--trace-duration', metavar='TIME',
                   help='cut each trace this long, e.g. 120s (its capacity key duration)')
    p.add_argument('--workload', help="the learning workload (overrides the scenario's): "
                   'synthetic, or digits (real training and top-1 accuracy measured)')
    p.add_argument('--dashboard', type=int, nargs='?', const=dashboard.DEFAULT_PORT,
                   metavar='PORT', help='serve a live page of the run on '
                   'http://127.0.0.1:PORT/ (default %d; 0: any free port)'
                   % dashboard.DEFAULT_PORT)
    p.add_argument('--servers', metavar='A,B,...',
                   help='run across these servers (Mininet Cluster Edition): the first is '
                        'this machine (localhost), devices placed round robin; overrides '
                        "the scenario's servers (edgecollab cluster up --local 2 makes two "
                        'on this machine)')
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser('probe', help="measure a scenario's network: each device's RTT and "
                       'TCP goodput through its share, configured against measured')
    p.add_argument('scenario', help='scenario YAML file')
    p.add_argument('--json', action='store_true', help='print JSON')
    p.add_argument('--servers', metavar='A,B,...',
                   help='run across these servers (Mininet Cluster Edition): the first is '
                        'this machine (localhost), devices placed round robin; overrides '
                        "the scenario's servers (edgecollab cluster up --local 2 makes two "
                        'on this machine)')
    p.set_defaults(func=_cmd_probe)

    p = sub.add_parser('report', help="re-make a results folder's summary, table and plots")
    p.add_argument('folder')
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser('dashboard', help="show a results folder in the dashboard's page "
                       '(finished, or still being written)')
    p.add_argument('folder')
    p.add_argument('--port', type=int, default=dashboard.DEFAULT_PORT,
                   help='serve on http://127.0.0.1:PORT/ (default %(default)s; 0: any free)')
    p.set_defaults(func=_cmd_dashboard)

    p = sub.add_parser('fit', help="fit the accuracy model to a results folder's measured "
                       'accuracies (a workload that learns, e.g. --workload digits)')
    p.add_argument('folder')
    p.add_argument('--json', action='store_true', help='print JSON')
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser('trace', help='inspect, convert or generate bandwidth traces')
    actions = p.add_subparsers(dest='action', required=True)
    inspect = actions.add_parser('inspect', help='print a trace\'s stats')
    convert = actions.add_parser('convert', help='write a trace in another format')
    for q in (inspect, convert):
        q.add_argument('file')
        q.add_argument('--format', default='auto', choices=['auto'] + list(traces.FORMATS))
        q.add_argument('--column', help='CSV rate column (default rate_mbit)')
        q.add_argument('--unit', choices=list(traces.RATE_UNITS),
                       help='the rate column\'s unit (default Mbit/s)')
        q.add_argument('--time-column', help='CSV time column (default time_s)')
        q.add_argument('--time-format', help="strptime format of the time column's "
                       "timestamps, e.g. '%%Y.%%m.%%d_%%H.%%M.%%S'")
        q.add_argument('--time-unit', choices=list(traces.TIME_UNITS),
                       help='unit of a numeric time column (default s)')
        q.add_argument('--interval', help='no time column: row i at i x interval, e.g. 1s')
        q.add_argument('--start', help='cut from this time, e.g. 600s')
        q.add_argument('--duration', help='cut this long, e.g. 120s')
        q.add_argument('--scale', type=float, help='multiply every rate')
    inspect.add_argument('--step', default='100ms', help='resampling step for p5/p95')
    inspect.add_argument('--json', action='store_true')
    convert.add_argument('--to', required=True, choices=traces.FORMATS)
    convert.add_argument('--output', '-o', required=True)
    gen = actions.add_parser('generate', help='write a synthetic trace')
    gen.add_argument('kind', choices=['steps', 'random-walk', 'on-off'])
    gen.add_argument('--output', '-o', required=True)
    gen.add_argument('--to', default=TraceFormat.TWOCOL.value, choices=traces.FORMATS)
    gen.add_argument('--levels', help='steps: comma-separated rates, e.g. 20mbit,5mbit')
    gen.add_argument('--dwell', default='10s', help='steps/on-off: time per level')
    gen.add_argument('--mean', default='10mbit')
    gen.add_argument('--sigma', default='2mbit')
    gen.add_argument('--on', default='20mbit')
    gen.add_argument('--off', default='1mbit')
    gen.add_argument('--step', default='1s')
    gen.add_argument('--duration', default='60s')
    gen.add_argument('--seed', type=int, default=0)
    for q in (inspect, convert, gen):
        q.set_defaults(func=_cmd_trace)
