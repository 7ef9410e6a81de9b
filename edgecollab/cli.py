"""The ``edgecollab`` command: parse, call one core function, print.

Bad input prints one line and exits 2; an unexpected error prints ``Type: message``
(the traceback goes to the log at debug level) and exits 1.
"""

import argparse
import logging
import sys

from edgecollab import __version__
from edgecollab.errors import ConfigError, EdgecollabError

log = logging.getLogger('edgecollab')

EXIT_BAD_INPUT = 2


def _cmd_clean(args):
    from edgecollab.topologies import cleanup
    prefixes = [args.prefix] if args.prefix else cleanup.known_prefixes() or ['ec']
    if cleanup.lock_is_held() and not args.force:
        raise EdgecollabError('an emulation is running; stop it first (or --force)')
    total = 0
    for prefix in prefixes:
        removed = cleanup.clean(prefix)
        for item in removed:
            print('removed %s' % item)
        total += len(removed)
    print('nothing of edgecollab was left' if not total else 'cleaned %d items' % total)
    return 0


def build_parser():
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog='edgecollab',
        description='Network emulation for end-edge AI model collaboration.')
    parser.add_argument('--version', action='version', version='edgecollab ' + __version__)
    parser.add_argument('-v', '--verbose', action='store_true', help='debug output')
    sub = parser.add_subparsers(dest='command', required=True)

    clean = sub.add_parser('clean', help="remove what a killed run left (only edgecollab's)")
    clean.add_argument('--prefix', help='the run prefix (default: every recorded run)')
    clean.add_argument('--force', action='store_true',
                       help='clean even while an emulation holds the lock')
    clean.set_defaults(func=_cmd_clean)

    for register in _REGISTRARS:
        register(sub)
    return parser


# Subcommands defined in their own modules add themselves here.
_REGISTRARS = []


def _load_registrars():
    from edgecollab import cli_cluster, cli_run, cli_solve
    for module in (cli_solve, cli_run, cli_cluster):
        if module.register not in _REGISTRARS:
            _REGISTRARS.append(module.register)


def main(argv=None):
    """Entry point of the console command; returns the exit code."""
    _load_registrars()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(message)s')
    # The console stays at its level when a run adds a debug log file to the root.
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return args.func(args) or 0
    except ConfigError as exc:
        print('edgecollab: %s' % exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    except EdgecollabError as exc:
        print('edgecollab: %s' % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('edgecollab: interrupted; cleaned up', file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one line, traceback to the log
        log.debug('unexpected error', exc_info=True)
        print('%s: %s' % (type(exc).__name__, exc), file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
