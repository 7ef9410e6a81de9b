"""Check an installation: import every module of edgecollab and its subpackages.

install.sh runs ``python -m edgecollab.installcheck`` from outside the repository, so a
package_dir mapping the installer ignored (pip's legacy ``setup.py develop`` route) shows
as a failure here and not as a ``ModuleNotFoundError`` in the user's first run.
"""

import importlib
import pkgutil
import sys

def modules():
    """Names of every module of the installed edgecollab package."""
    import edgecollab
    names = ['mininet.net']
    for package in ['edgecollab'] + ['edgecollab.%s' % layer for layer in edgecollab.LAYERS]:
        imported = importlib.import_module(package)
        names.append(package)
        names += [package + '.' + info.name
                  for info in pkgutil.iter_modules(imported.__path__)
                  if not info.name.startswith('_')]
    return names


def main():
    """Import each module; exit 1 naming those that fail."""
    failed = []
    try:
        names = modules()
    except ImportError as err:
        names, failed = [], ['%s: %s' % (type(err).__name__, err)]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as err:  # any failure to import is what this check reports
            failed.append('%s: %s: %s' % (name, type(err).__name__, err))
    for line in failed:
        print('installcheck: ' + line, file=sys.stderr)
    if not failed:
        print('installcheck: %d modules import' % len(names))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
