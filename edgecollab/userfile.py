"""A user's Python file (policies, workloads) imported as a module: whatever it raises is a
ConfigError naming the file; its import and every call into it have a time limit."""

import importlib.util
import threading

from edgecollab.errors import ConfigError

# How long a user's file may take to import, and a user's policy to plan a period
# (scenario key user_code_time_limit).
DEFAULT_TIME_LIMIT_S = 10.0


class Overran(ConfigError):
    """User code did not return within its time limit."""


def limited(func, time_limit_s, what):
    """func() run with a time limit: its result, or what it raised; Overran naming what
    when it has not returned after time_limit_s.  Python cannot stop a thread, so code
    that spins is left in a daemon thread and the caller stops the run."""
    outcome = {}

    def call():
        try:
            outcome['value'] = func()
        except BaseException as exc:      # handed to the caller as it is
            outcome['error'] = exc
    worker = threading.Thread(target=call, name='user code: %s' % what, daemon=True)
    worker.start()
    worker.join(time_limit_s)
    if worker.is_alive():
        raise Overran('%s did not return within %g s (user_code_time_limit)'
                      % (what, time_limit_s))
    if 'error' in outcome:
        raise outcome['error']
    return outcome.get('value')


def load(path, module_name, what, time_limit_s=DEFAULT_TIME_LIMIT_S):
    """Import the Python file at path as module_name and return the module; what (e.g.
    'policy file') names it in errors.  The file is code and runs with the process's
    privileges; whatever it raises (sys.exit included) is a ConfigError, and so is an
    import that takes longer than time_limit_s."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError('%s: cannot load as a Python %s' % (path, what))
    module = importlib.util.module_from_spec(spec)
    try:
        limited(lambda: spec.loader.exec_module(module), time_limit_s,
                '%s: the %s' % (path, what))
    except Overran:
        raise
    except OSError as exc:
        raise ConfigError('%s: %s' % (path, exc.strerror)) from None
    except (Exception, SystemExit) as exc:        # a user's file is code: anything
        raise ConfigError('%s: the %s failed: %s: %s'
                          % (path, what, type(exc).__name__, exc)) from None
    return module
