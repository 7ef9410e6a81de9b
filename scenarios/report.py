"""What a person opens in a results folder: README.txt (the files it has and every
column of its CSV files) and report.html (one offline file: the summary with each
column explained, the plots, the notes on missed, infeasible and starved periods, and
the fluid reference).  Both are rebuilt from the folder alone by ``edgecollab report``.
"""

import base64
import fnmatch
import html
import os
import textwrap

from edgecollab import files
from edgecollab.controller.loop import OUTCOMES, RECORD_COLUMNS, WENT_WRONG
from edgecollab.scenarios import results

NOTED = WENT_WRONG                              # outcomes the report lists one by one
MAX_NOTES = 50                                  # device-periods listed per policy


def _metadata(folder):
    return results.read_meta(folder)


def _title(meta):
    args = meta.get('arguments') or {}
    return 'edgecollab run of %s (%s backend)' % (args.get('scenario', '?'),
                                                  args.get('backend', '?'))


def present_files(folder):
    """[(name, description)] of the FILES the folder has (a pattern: each match)."""
    names = sorted(os.listdir(folder))
    found = []
    for pattern, meaning in results.FILES.items():
        matches = [n for n in names if fnmatch.fnmatch(n, pattern)]
        if matches:
            found.append((', '.join(matches), meaning))
    return found


def _columns_text(title, columns):
    lines = ['%s columns:' % title]
    for name, meaning in columns.items():
        lines.extend(textwrap.wrap(meaning, 88, initial_indent='    %-27s ' % name,
                                   subsequent_indent=' ' * 32))
    return lines


def write_readme(folder):
    """README.txt: the files the folder has, what each holds, every column."""
    lines = [_title(_metadata(folder)), '', 'Files:']
    for name, meaning in present_files(folder):
        lines.extend(textwrap.wrap(meaning, 88, initial_indent='    %-19s ' % name,
                                   subsequent_indent=' ' * 24))
    lines.append('')
    if os.path.exists(os.path.join(folder, 'periods.csv')):
        lines += _columns_text('periods.csv (and %s)' % results.FLUID_REFERENCE,
                               RECORD_COLUMNS) + ['', 'outcome:']
        lines += ['    %-27s %s' % (k, v) for k, v in OUTCOMES.items()] + ['']
    if os.path.exists(os.path.join(folder, 'timeseries.csv')):
        lines += _columns_text('timeseries.csv', results.TIMESERIES_COLUMNS) + ['']
    if os.path.exists(os.path.join(folder, 'replay.csv')):
        lines += _columns_text('replay.csv', results.REPLAY_COLUMNS) + ['']
    lines += ['Summary table columns:']
    lines += ['    %-27s %s' % (name, meaning) for name, _, meaning in results.COLUMNS]
    lines += ['', 'Rebuild the summary, plots, this file and report.html: '
              'edgecollab report %s' % folder, '']
    files.write_replacing(os.path.join(folder, 'README.txt'), '\n'.join(lines))


def _image(folder, name):
    with open(os.path.join(folder, name), 'rb') as src:
        data = base64.b64encode(src.read()).decode('ascii')
    return '<figure><img alt="%s" src="data:image/png;base64,%s"><figcaption>%s' \
           '</figcaption></figure>' % (html.escape(name), data, html.escape(name))


def _summary_table(summary, fluid):
    head = [name for name, _, _ in results.COLUMNS] + (['fluid mAP'] if fluid else [])
    rows = []
    for cells, policy in results.table_rows(summary):
        if fluid:
            cells = cells + ['%.2f' % fluid[policy] if policy in fluid else '-']
        rows.append('<tr>%s</tr>' % ''.join('<td>%s</td>' % html.escape(c) for c in cells))
    legend = ''.join('<dt>%s</dt><dd>%s</dd>' % (html.escape(n), html.escape(m))
                     for n, _, m in results.COLUMNS)
    if fluid:
        legend += ('<dt>fluid mAP</dt><dd>the same policy on the fluid backend (ideal '
                   'transfers, %s): what real TCP costs is the difference</dd>'
                   % results.FLUID_REFERENCE)
    return ('<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table><dl>%s</dl>'
            % (''.join('<th>%s</th>' % html.escape(h) for h in head), ''.join(rows), legend))


def _notes(rows):
    """HTML list of the device-periods whose outcome is in NOTED, per policy."""
    items = []
    for policy in dict.fromkeys(r['policy'] for r in rows):
        noted = [r for r in rows if r['policy'] == policy and r.get('outcome') in NOTED]
        if not noted:
            items.append('<li><b>%s</b>: every device-period delivered, resumed or kept '
                         'its model as planned.</li>' % html.escape(policy))
            continue
        listed = ', '.join('%speriod %d %s %s' % (
            'run %d ' % results.repeat_of(r) if results.repeat_of(r) > 1 else '',
            r['period'], r['device'], r['outcome']) for r in noted[:MAX_NOTES])
        more = ' and %d more' % (len(noted) - MAX_NOTES) if len(noted) > MAX_NOTES else ''
        items.append('<li><b>%s</b>: %d device-period(s): %s%s.</li>'
                     % (html.escape(policy), len(noted), html.escape(listed), more))
    meanings = ''.join('<dt>%s</dt><dd>%s</dd>' % (k, html.escape(OUTCOMES[k])) for k in NOTED)
    return '<ul>%s</ul><dl>%s</dl>' % (''.join(items), meanings)


def _channels(channels):
    """HTML of each device's own channel (per-device channels only): its mean and the
    periods its channel starved it of any checkpoint."""
    if not channels:
        return ''
    items = ''.join(
        '<li><b>%s</b>: channel mean %.2f Mbit/s; %s</li>' % (
            html.escape(d), c['mean_mbit'],
            'starved by its channel in %d of %d periods (even all the airtime at its '
            "channel's mean carried no checkpoint)" % (c['starved_periods'], c['periods'])
            if c['starved_periods'] else 'its channel could carry a checkpoint every period')
        for d, c in channels.items())
    return '<h2>Channels</h2><ul>%s</ul>' % items


def fluid_means(folder):
    """{policy: mean accuracy} of the folder's fluid reference ({} without one)."""
    path = os.path.join(folder, results.FLUID_REFERENCE)
    if not os.path.exists(path):
        return {}
    rows, _ = results.read_rows(path, ('accuracy',))
    means = {}
    for policy in dict.fromkeys(r['policy'] for r in rows):
        mine = [r['accuracy'] for r in rows if r['policy'] == policy]
        means[policy] = sum(mine) / len(mine)
    return means


STYLE = '''
body { font-family: sans-serif; max-width: 1100px; margin: 1em auto; color: #222; }
table { border-collapse: collapse; } td, th { border: 1px solid #bbb; padding: 3px 8px; }
td:nth-child(n+3) { text-align: right; } th { background: #eee; }
dt { font-weight: bold; float: left; clear: left; width: 11em; } dd { margin-left: 12em; }
img { max-width: 100%; } figure { margin: 1em 0; } figcaption { color: #666; }
'''


def write_html(folder, summary):
    """report.html: one offline file (plots embedded)."""
    meta = _metadata(folder)
    rows = results.read_periods(folder)
    parts = ['<!doctype html><html><head><meta charset="utf-8"><title>%s</title>'
             '<style>%s</style></head><body>' % (html.escape(_title(meta)), STYLE),
             '<h1>%s</h1>' % html.escape(_title(meta))]
    scenario = meta.get('scenario') or {}
    if scenario.get('description'):
        parts.append('<p>%s</p>' % html.escape(str(scenario['description'])))
    order = results.ranking_text(results.read_ranking(folder))
    parts += ['<h2>Summary</h2>', _summary_table(summary, fluid_means(folder)),
              '<p>%s</p>' % html.escape(order) if order else '',
              '<h2>Missed, infeasible and starved periods</h2>', _notes(rows),
              _channels(results.channel_summary(rows, results.folder_problem(folder))),
              '<h2>Plots</h2>']
    for name in ['accuracy.png'] + sorted(n for n in os.listdir(folder)
                                          if fnmatch.fnmatch(n, 'timeseries-*.png')):
        if os.path.exists(os.path.join(folder, name)):
            parts.append(_image(folder, name))
    parts += ['<h2>Files</h2><dl>%s</dl>' % ''.join(
        '<dt>%s</dt><dd>%s</dd>' % (html.escape(n), html.escape(m))
        for n, m in present_files(folder)),
        '<h2>periods.csv columns</h2><dl>%s</dl>' % ''.join(
            '<dt>%s</dt><dd>%s</dd>' % (html.escape(n), html.escape(m))
            for n, m in RECORD_COLUMNS.items()),
        '</body></html>']
    files.write_replacing(os.path.join(folder, 'report.html'), '\n'.join(parts))


def write(folder, summary):
    """report.html, then README.txt (which lists it)."""
    write_html(folder, summary)
    write_readme(folder)
