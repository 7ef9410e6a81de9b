"""What every benchmark shares: print a table and write the rows as JSON."""

import json
import os


def emit(rows, columns, path, title):
    """Print rows (dicts) as a table of columns [(key, header, format)] and write JSON."""
    print(title)
    print(' '.join('%14s' % header for _, header, _ in columns))
    for row in rows:
        print(' '.join('%14s' % (fmt % row[key] if row.get(key) is not None else '-')
                       for key, _, fmt in columns))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as out:
        json.dump(rows, out, indent=2)
    print('wrote %s' % path)
