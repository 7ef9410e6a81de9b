"""A user's Python file (policies, workloads) imported as a module: whatever it raises is a
ConfigError naming the file."""

import importlib.util

from edgecollab.errors import ConfigError


def load(path, module_name, what):
    """Import the Python file at path as module_name and return the module; what (e.g.
    'policy file') names it in errors.  The file is code and runs with the process's
    privileges; whatever it raises (sys.exit included) is a ConfigError."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError('%s: cannot load as a Python %s' % (path, what))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except OSError as exc:
        raise ConfigError('%s: %s' % (path, exc.strerror)) from None
    except (Exception, SystemExit) as exc:        # a user's file is code: anything
        raise ConfigError('%s: the %s failed: %s: %s'
                          % (path, what, type(exc).__name__, exc)) from None
    return module
