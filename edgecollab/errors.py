"""The project's exceptions: one base class, a few plain kinds; and how a message
quotes a user's value."""


def quoted(value, limit=60):
    """repr(value), cut to limit characters: a message never prints a huge value."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


class EdgecollabError(Exception):
    """Base class of every error edgecollab raises on purpose."""


class ConfigError(EdgecollabError):
    """Bad input from a user: a scenario, a trace, an argument or an API request."""


class CommandError(EdgecollabError):
    """An external command failed; the message names what was being done."""

    def __init__(self, doing, argv, returncode, stderr):
        self.doing = doing
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = (stderr or '').strip()
        tool = self.argv[0] if self.argv else '?'
        detail = self.stderr.splitlines()[-1] if self.stderr else 'no output'
        super().__init__('%s: %s exited %s: %s' % (doing, tool, returncode, detail))


class UnsupportedError(EdgecollabError):
    """The machine lacks a kernel feature or tool a setting needs (e.g. netem)."""


class SolverError(EdgecollabError):
    """A solver's answer broke one of its guarantees (a bug, never bad input)."""


class PolicyError(EdgecollabError):
    """A user's policy (code from a policy file) failed while planning."""
