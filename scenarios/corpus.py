"""A corpus of traces: a scenario run on each trace, every policy judged across them.

Adaptive-bitrate work (Pensieve, Puffer) judges a controller over sets of traces, never
one.  ``edgecollab run SCENARIO --traces 'DIR/*.csv'`` (or a scenario's ``traces:``
list) runs the scenario once per trace: each file takes the place of the scenario's
capacity trace and is read with the scenario's capacity keys (column, unit, time,
interval, start, duration, scale, loop), so one recording format needs one mapping.
Each trace's run is a results folder of its own (``traces/<name>/``); the folder of the
corpus holds what is judged across them (``judge``): per policy its mean over the traces
with the 95% confidence interval, wins, ties and losses against every other policy, the
regret to ``oracle`` and the share of ``oracle``'s lead over the best baseline a policy
captures; ``corpus.csv``, ``summary.json`` (``corpus``), two CDF plots and report.html.

The fluid backend runs the traces in parallel on the machine's cores; the Mininet
backend one after another (one emulation at a time), its progress naming the trace.
"""

import concurrent.futures
import copy
import html
import logging
import multiprocessing
import os
import statistics
import sys

from tqdm import tqdm

from edgecollab import confidence, files
from edgecollab.controller.policies import BASELINES
from edgecollab.errors import ConfigError, EdgecollabError
from edgecollab.scenarios import experiment, report, results
from edgecollab.scenarios.scenario import resolve, trace_sides, with_workload
from edgecollab.scenarios.schema import validate

log = logging.getLogger('edgecollab')
TRACES_DIR = 'traces'          # the corpus folder's per-trace results folders
CORPUS_CSV = 'corpus.csv'
TIE_MAP = 0.05                 # two policies within this (mAP) on a trace: a tie
MIN_LEAD_MAP = 0.3             # traces where oracle leads the best baseline by more count
                               # towards the captured share
PLOTS = ('corpus-accuracy-cdf.png', 'corpus-regret-cdf.png')
CSV_COLUMNS = {
    'trace': 'the trace (its results are in traces/<trace>/)',
    'file': 'the trace file (a duplex pair: its upload)',
    'file_down': "a duplex pair's download trace file (empty for one file)",
    'capacity_mbit': "the trace's mean capacity over the run, Mbit/s",
    'policy': 'the policy',
    'accuracy': 'its mean device accuracy on the trace (over devices, periods and '
                'repetitions), mAP',
    'ci95': "half the 95% confidence interval over the repetitions (--repeat), mAP",
    'utilisation': 'bytes delivered / bytes the link could carry',
    'utilisation_of_demand': 'bytes delivered / the least, each period, of the bytes the '
                             'link could carry and the bytes there were to carry',
    'regret': "oracle's mAP on the trace minus the policy's (empty without oracle)",
    'status': 'the policy\'s status on the trace',
}


def names_of(paths):
    """One folder name per trace file: its base name, with its parent folders in front
    where two files share a name."""
    def name(path, depth):
        parts = os.path.normpath(path).split(os.sep)
        return results.safe_name('-'.join(parts[-depth:]))
    names = [name(p, 1) for p in paths]
    depth = 1
    while len(set(names)) < len(names) and depth < 8:
        depth += 1
        names = [name(p, depth) for p in paths]
    if len(set(names)) < len(names):
        names = ['%03d-%s' % (i, n) for i, n in enumerate(names, 1)]
    return names


def scenario_on(scenario, entry, workload=None):
    """scenario with the trace entry as its capacity, read with the scenario's own
    capacity keys (the one resolver; a corpus of one scenario's traces): a file, or an
    (upload, download) pair of a duplex link, the download read with the keys of the
    scenario's capacity_down trace mapping, else with the capacity's."""
    raw = copy.deepcopy(scenario.raw)
    raw.pop('traces', None)
    up, down = trace_sides(entry)
    spec = raw.get('capacity')
    spec = dict(spec) if isinstance(spec, dict) else {}
    spec['trace'] = os.path.abspath(up)
    raw['capacity'] = spec
    if down is not None:
        own = raw.get('capacity_down')
        raw['capacity_down'] = dict(own if isinstance(own, dict) else spec,
                                    trace=os.path.abspath(down))
    resolved = resolve(validate(raw, scenario.path), scenario.path)
    return with_workload(resolved, workload) if workload else resolved


class Corpus:
    """The traces of a scenario's corpus: their names, files and resolved scenarios
    (each checked before anything runs: a bad file is one line naming it)."""

    def __init__(self, scenario, workload=None):
        self.scenario = scenario
        self.files = list(scenario.corpus)
        self.names = names_of([trace_sides(entry)[0] for entry in self.files])
        self.scenarios = []
        for name, entry in zip(self.names, self.files):
            try:
                self.scenarios.append(scenario_on(scenario, entry, workload))
            except ConfigError as exc:
                raise ConfigError('trace %s: %s' % (' + '.join(
                    f for f in trace_sides(entry) if f), exc)) from None
        self.workload = workload

    def folder(self, out, name):
        return os.path.join(out, TRACES_DIR, name)

    def run(self, names, out, backend, repeat, arguments, statuses, run_args):
        """Run names on every trace into out/traces/<trace>/; statuses gets {trace:
        {policy: status}}."""
        for name in self.names:
            results.make_folder(self.folder(out, name))
        if not experiment.get_backend(backend).emulated:
            # Runs that share no network: in parallel on the machine's cores.
            self._run_fluid(names, out, repeat, arguments, statuses)
            return
        for k, (name, scenario) in enumerate(zip(self.names, self.scenarios), 1):
            log.info('*** trace %d of %d: %s', k, len(self.names), name)
            folder = self.folder(out, name)
            experiment.write_metadata(scenario, arguments, folder,
                                      experiment.path_engine(scenario, backend))
            own = statuses.setdefault(name, {})
            try:
                experiment.run_scenario(scenario, names, folder, backend, statuses=own,
                                        repeat=repeat, **run_args)
            finally:
                finish_trace(folder, own)

    def _run_fluid(self, names, out, repeat, arguments, statuses):
        jobs = [(scenario, name, self.folder(out, name), names, repeat, arguments)
                for name, scenario in zip(self.names, self.scenarios)]
        workers = max(1, min(os.cpu_count() or 1, len(jobs)))
        bar = tqdm(total=len(jobs), desc='traces', unit='trace') \
            if sys.stderr.isatty() else None
        # fork: the workers have the policies a scenario's policy file registered.
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context('fork'))
        try:
            pending = {pool.submit(_fluid_trace, *job): job[1] for job in jobs}
            for k, done in enumerate(concurrent.futures.as_completed(pending), 1):
                name = pending[done]
                statuses[name] = done.result()
                if bar is not None:
                    bar.set_postfix_str(name)
                    bar.update(1)
                else:
                    print('trace %d of %d done: %s' % (k, len(jobs), name),
                          file=sys.stderr, flush=True)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
            if bar is not None:
                bar.close()


def _fluid_trace(scenario, name, folder, names, repeat, arguments):
    """One trace of a corpus on the fluid backend (a worker process): its results
    folder written in full; return {policy: status}."""
    logging.getLogger().handlers[:] = []         # the parent's run.log is the parent's
    experiment.write_metadata(scenario, arguments, folder, 'fluid (none)')
    statuses = {}
    try:
        for r in range(1, repeat + 1):
            seeded = experiment.repetition(scenario, r, repeat)
            for policy in names:
                try:
                    status = experiment.run_fluid(seeded, policy, folder, r)
                except EdgecollabError as exc:
                    status = 'failed: %s' % exc
                if r == 1 or statuses.get(policy) == 'completed':
                    statuses[policy] = status
    finally:
        finish_trace(folder, statuses)
    return statuses


def finish_trace(folder, statuses):
    """A trace's folder made readable: summary, plots, report (what it holds)."""
    try:
        if os.path.exists(os.path.join(folder, 'periods.csv')):
            summary = results.write_summary(folder, statuses)
            results.plot(folder)
            report.write(folder, summary)
        else:
            report.write_readme(folder)
    except ConfigError as exc:
        log.warning('%s: %s', folder, exc)


# -- across the corpus --------------------------------------------------------------

def trace_folders(out):
    """[(name, folder)] of a corpus folder's traces that hold a run, in name order."""
    root = os.path.join(out, TRACES_DIR)
    if not os.path.isdir(root):
        raise ConfigError('%s: not a corpus folder (no %s/)' % (out, TRACES_DIR))
    found = []
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if os.path.isdir(folder) and os.path.isfile(os.path.join(folder, 'periods.csv')):
            found.append((name, folder))
    if not found:
        raise ConfigError('%s: no trace of the corpus holds a run' % out)
    return found


def is_corpus(folder):
    """Whether folder is a corpus run's (it has traces/ and no periods.csv)."""
    return os.path.isdir(os.path.join(folder, TRACES_DIR)) and \
        not os.path.exists(os.path.join(folder, 'periods.csv'))


def collect(out):
    """[row of corpus.csv] from every trace's folder (its summary rebuilt from its
    periods.csv)."""
    rows = []
    for name, folder in trace_folders(out):
        summary = results.write_summary(folder, _statuses(folder))
        meta = results.read_meta(folder)
        periods = results.read_periods(folder)
        capacity = statistics.fmean(r['capacity_mbit'] for r in periods
                                    if isinstance(r.get('capacity_mbit'), float)) \
            if any(isinstance(r.get('capacity_mbit'), float) for r in periods) else None
        files_of = meta.get('traces') or {}
        trace_file = (files_of.get('capacity') or {}).get('path')
        down_file = (files_of.get('capacity_down') or {}).get('path')
        for policy, s in summary.items():
            if not isinstance(s.get('mean_accuracy'), float):
                continue
            rows.append({'trace': name, 'file': trace_file, 'file_down': down_file,
                         'capacity_mbit': capacity,
                         'policy': policy, 'accuracy': s['mean_accuracy'],
                         'ci95': s.get('ci95'), 'utilisation': s.get('utilisation'),
                         'utilisation_of_demand': s.get('utilisation_of_demand'),
                         'status': s.get('status')})
    oracle = {r['trace']: r['accuracy'] for r in rows if r['policy'] == 'oracle'}
    for r in rows:
        r['regret'] = oracle[r['trace']] - r['accuracy'] if r['trace'] in oracle else None
    return rows


def _statuses(folder):
    """The statuses the folder's summary recorded (a re-made report keeps them)."""
    try:
        old = results.read_json(os.path.join(folder, 'summary.json')).get('policies', {})
    except (ConfigError, AttributeError):
        return None
    return {p: s.get('status') for p, s in old.items() if isinstance(s, dict)
            and isinstance(s.get('status'), str)} or None


def judge(rows):
    """What the corpus says of each policy, from corpus.csv's rows: over the traces
    every policy ran on, its mean with the 95% CI, wins/ties/losses against every
    other (TIE_MAP), regret to oracle, the best baseline's per trace and the share of
    oracle's lead over it each policy captures."""
    policies = list(dict.fromkeys(r['policy'] for r in rows))
    means = {}
    for r in rows:
        means.setdefault(r['trace'], {})[r['policy']] = r['accuracy']
    traces = [t for t, m in means.items() if all(p in m for p in policies)]
    verdict = {'traces': len(traces), 'traces_left_out': sorted(set(means) - set(traces)),
               'tie_map': TIE_MAP, 'min_lead_map': MIN_LEAD_MAP, 'policies': {},
               'versus': {}}
    if not traces:
        return verdict
    baselines = [p for p in policies if p in BASELINES]
    best = {t: max(baselines, key=lambda p: means[t][p]) for t in traces} \
        if baselines else {}
    verdict['best_baseline'] = best
    for p in policies:
        values = [means[t][p] for t in traces]
        entry = {'mean': statistics.fmean(values), 'ci95': confidence.half_width(values),
                 'min': min(values), 'max': max(values)}
        if 'oracle' in policies:
            regrets = [means[t]['oracle'] - means[t][p] for t in traces]
            entry['regret_mean'] = statistics.fmean(regrets)
            entry['regret_max'] = max(regrets)
        if best and p not in baselines:
            behind = [t for t in traces if means[t][p] < means[t][best[t]] - TIE_MAP]
            entry['below_best_baseline'] = behind
            entry['lead_over_best_baseline'] = statistics.fmean(
                means[t][p] - means[t][best[t]] for t in traces)
        if best and 'oracle' in policies and p not in baselines and p != 'oracle':
            led = [t for t in traces if means[t]['oracle'] - means[t][best[t]] > MIN_LEAD_MAP]
            entry['captured'] = statistics.fmean(
                (means[t][p] - means[t][best[t]]) / (means[t]['oracle'] - means[t][best[t]])
                for t in led) if led else None
            entry['captured_over'] = len(led)
        verdict['policies'][p] = entry
    for a in policies:
        verdict['versus'][a] = {}
        for b in policies:
            if a == b:
                continue
            diffs = [means[t][a] - means[t][b] for t in traces]
            verdict['versus'][a][b] = {'wins': sum(d > TIE_MAP for d in diffs),
                                       'ties': sum(abs(d) <= TIE_MAP for d in diffs),
                                       'losses': sum(d < -TIE_MAP for d in diffs)}
    return verdict


def write(out):
    """corpus.csv, summary.json (corpus), the CDF plots, report.html and README.txt of
    a corpus folder, from its traces' folders; return the verdict."""
    rows = collect(out)
    log_csv = results.CsvLog(os.path.join(out, CORPUS_CSV), tuple(CSV_COLUMNS))
    log_csv.write(rows)
    log_csv.close()
    verdict = judge(rows)
    files.write_json(os.path.join(out, 'summary.json'), {'corpus': verdict})
    plot(out, rows)
    write_html(out, rows, verdict)
    write_readme(out)
    return verdict


def _ecdf(values):
    xs = sorted(values)
    return xs, [(i + 1) / len(xs) for i in range(len(xs))]


def plot(out, rows):
    """corpus-accuracy-cdf.png (each policy's per-trace mAP) and corpus-regret-cdf.png
    (each policy's regret to oracle per trace), legends outside the axes."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    policies = list(dict.fromkeys(r['policy'] for r in rows))
    for name, key, label in ((PLOTS[0], 'accuracy', 'mean device accuracy on a trace (mAP)'),
                             (PLOTS[1], 'regret', "oracle's mAP minus the policy's on a "
                                                  'trace')):
        fig, ax = plt.subplots(figsize=(8, 4.2))
        drawn = 0
        for k, p in enumerate(policies):
            values = [r[key] for r in rows if r['policy'] == p and
                      isinstance(r.get(key), float)]
            if not values or (key == 'regret' and p == 'oracle'):
                continue
            xs, ys = _ecdf(values)
            ax.step(xs, ys, where='post', label=p, linewidth=1.6,
                    linestyle=('-', '--', '-.', ':')[k // 10 % 4])
            drawn += 1
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel(label)
        ax.set_ylabel('fraction of traces')
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.set_title('%s over %d traces' % ('accuracy' if key == 'accuracy' else
                                            'regret to oracle',
                                            len({r['trace'] for r in rows})))
        results._legend_outside(ax)
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)


def table_rows(verdict):
    """[(policy, cells)] of the corpus table: mean +- CI, worst trace, regret, lead over
    the best baseline, traces below it, captured share."""
    rows = []
    order = sorted(verdict['policies'], key=lambda p: -verdict['policies'][p]['mean'])
    for p in order:
        e = verdict['policies'][p]
        cells = ['%.2f +- %.2f' % (e['mean'], e['ci95']), '%.2f' % e['min'],
                 '%.2f' % e['regret_mean'] if 'regret_mean' in e else '-',
                 '%+.2f' % e['lead_over_best_baseline']
                 if 'lead_over_best_baseline' in e else 'baseline',
                 str(len(e['below_best_baseline'])) if 'below_best_baseline' in e else '-',
                 '%.0f%%' % (100 * e['captured']) if e.get('captured') is not None else '-']
        rows.append((p, cells))
    return rows


TABLE_HEADS = (('policy', 'the policy'),
               ('mAP', 'its mean over the traces +- the 95% confidence interval'),
               ('worst', 'its mAP on its worst trace'),
               ('regret', "oracle's mAP minus its own, mean over the traces"),
               ('vs best', 'its mean lead over the best baseline of each trace'),
               ('below', 'traces on which it is more than %g mAP below the best baseline'
                % TIE_MAP),
               ('captured', "the mean share of oracle's lead over the best baseline it "
                            'captures, over the traces where that lead is above %g mAP'
                % MIN_LEAD_MAP))


def table(verdict):
    """The corpus table as text."""
    lines = ['over %d traces:' % verdict['traces'],
             '%-14s %-15s %6s %7s %8s %6s %9s' % tuple(h for h, _ in TABLE_HEADS)]
    for p, cells in table_rows(verdict):
        lines.append('%-14s %-15s %6s %7s %8s %6s %9s' % ((p,) + tuple(cells)))
    return '\n'.join(lines)


def write_html(out, rows, verdict):
    """report.html of a corpus folder: the table, the matrix of wins, the CDFs, each
    trace's figures with a link to its own report."""
    title = 'edgecollab corpus run over %d traces' % verdict['traces']
    meta = results.read_meta(out)
    scenario = meta.get('scenario') or {}
    parts = ['<!doctype html><html><head><meta charset="utf-8"><title>%s</title>'
             '<style>%s</style></head><body><h1>%s</h1>' % (title, report.STYLE, title)]
    if scenario.get('description'):
        parts.append('<p>%s</p>' % html.escape(str(scenario['description'])))
    parts.append('<h2>Across the corpus</h2><table><thead><tr>%s</tr></thead><tbody>%s'
                 '</tbody></table><dl>%s</dl>' % (
                     ''.join('<th>%s</th>' % h for h, _ in TABLE_HEADS),
                     ''.join('<tr><td>%s</td>%s</tr>' % (html.escape(p), ''.join(
                         '<td>%s</td>' % html.escape(c) for c in cells))
                             for p, cells in table_rows(verdict)),
                     ''.join('<dt>%s</dt><dd>%s</dd>' % (h, html.escape(m))
                             for h, m in TABLE_HEADS)))
    policies = list(verdict['versus'])
    if policies:
        parts.append('<h2>Wins / ties / losses</h2><p>Each row against each column, over '
                     'the traces (a tie: within %g mAP).</p><table><thead><tr><th></th>%s'
                     '</tr></thead><tbody>%s</tbody></table>' % (TIE_MAP, ''.join(
                         '<th>%s</th>' % html.escape(p) for p in policies), ''.join(
                         '<tr><td>%s</td>%s</tr>' % (html.escape(a), ''.join(
                             '<td>%s</td>' % ('%(wins)d/%(ties)d/%(losses)d'
                                              % verdict['versus'][a][b] if a != b else '')
                             for b in policies)) for a in policies)))
    parts.append('<h2>Plots</h2>')
    for name in PLOTS:
        if os.path.exists(os.path.join(out, name)):
            parts.append(report._image(out, name))
    by_trace = {}
    for r in rows:
        by_trace.setdefault(r['trace'], {})[r['policy']] = r
    all_policies = list(dict.fromkeys(r['policy'] for r in rows))
    parts.append('<h2>Each trace</h2><table><thead><tr><th>trace</th><th>Mbit/s</th>%s'
                 '</tr></thead><tbody>' % ''.join('<th>%s</th>' % html.escape(p)
                                                  for p in all_policies))
    for trace, mine in by_trace.items():
        cap = next(iter(mine.values()))['capacity_mbit']
        parts.append('<tr><td><a href="%s/%s/report.html">%s</a></td><td>%s</td>%s</tr>' % (
            TRACES_DIR, html.escape(trace), html.escape(trace),
            '%.2f' % cap if isinstance(cap, float) else '-', ''.join(
                '<td>%s</td>' % ('%.2f' % mine[p]['accuracy'] if p in mine else '-')
                for p in all_policies)))
    parts.append('</tbody></table><h2>corpus.csv columns</h2><dl>%s</dl></body></html>'
                 % ''.join('<dt>%s</dt><dd>%s</dd>' % (n, html.escape(m))
                           for n, m in CSV_COLUMNS.items()))
    files.write_replacing(os.path.join(out, 'report.html'), '\n'.join(parts))


def write_readme(out):
    """README.txt of a corpus folder: its files and corpus.csv's columns."""
    lines = ['edgecollab corpus run', '', 'Files:',
             '    report.html         the corpus report: the table across the traces, '
             'wins/ties/losses, CDFs, each trace',
             '    summary.json        corpus: per policy mean, CI, regret, captured share; '
             'wins/ties/losses',
             '    corpus.csv          one row per trace and policy',
             '    %-19s per policy, its mAP on each trace (CDF)' % PLOTS[0],
             '    %-19s per policy, its regret to oracle on each trace (CDF)' % PLOTS[1],
             '    traces/<trace>/     the results folder of each trace (its own '
             'report.html)',
             '    metadata.json       the scenario, the arguments, the trace files', '',
             'corpus.csv columns:']
    lines += ['    %-15s %s' % kv for kv in CSV_COLUMNS.items()]
    lines += ['', 'Rebuild: edgecollab report %s' % out, '']
    files.write_replacing(os.path.join(out, 'README.txt'), '\n'.join(lines))

