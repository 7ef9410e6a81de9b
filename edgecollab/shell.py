"""The one executor for external commands.

Every command is logged at debug level, its exit status checked, and a failure raised
as ``CommandError`` naming what was being done.  A run can ask for every command to be
appended to a ``commands.sh`` so that its shaping can be replayed by hand.
"""

import logging
import re
import shlex
import subprocess
import threading

from edgecollab.errors import CommandError

log = logging.getLogger(__name__)

_BATCH_FAILED = re.compile(r'Command failed -:(\d+)')


class CommandRunner:
    """Runs commands in the root namespace or in a Mininet host's namespace."""

    def __init__(self):
        self._record = None
        self._lock = threading.Lock()

    def record_to(self, path):
        """Append every command run from now on to the shell script at path (None: stop)."""
        with self._lock:
            if self._record:
                self._record.close()
                self._record = None
            if path:
                self._record = open(path, 'a', encoding='utf-8')
                self._record.write('#!/bin/sh\n# Commands run by edgecollab, in order.\n')
                self._record.flush()

    def _note(self, line, ns_name=None):
        log.debug('%s%s', '[%s] ' % ns_name if ns_name else '', line)
        with self._lock:
            if self._record:
                prefix = '# in namespace of %s:\n' % ns_name if ns_name else ''
                self._record.write(prefix + line + '\n')
                self._record.flush()

    @staticmethod
    def _wrap(argv, ns_pid, via=None):
        argv = (['mnexec', '-a', str(ns_pid)] + list(argv)) if ns_pid else list(argv)
        return via + [shlex.join(['sudo', '-n'] + argv)] if via else argv

    @staticmethod
    def _place(node, ns_pid, ns_name, root):
        """(ns_pid, ns_name, via) of a command for node (a Mininet node; root: in the
        root namespace of the server that holds it): via is the SSH command that
        reaches a node on another server (Mininet Cluster Edition's ``RemoteMixin``)."""
        if node is None:
            return ns_pid, ns_name, None
        via = None
        if getattr(node, 'isRemote', False):
            via = getattr(node, 'commandssh', None) or [a for a in node.sshcmd if a != '-tt']
        where = '%s@%s' % (node.name, node.server) if via else node.name
        return (None if root else node.pid), ('root@%s' % node.server if root and via
                                              else None if root else where), via

    def run(self, argv, doing, ns_pid=None, ns_name=None, check=True, timeout=60, node=None,
            root=False):
        """Run argv (in the namespace of process ns_pid, or of Mininet node node, on
        the server that holds it; root: in that server's root namespace); return its
        stdout.

        doing: a short phrase for error messages ("set upload share of d3").
        """
        argv = [str(a) for a in argv]
        ns_pid, ns_name, via = self._place(node, ns_pid, ns_name, root)
        self._note(shlex.join(argv), ns_name)
        try:
            proc = subprocess.run(self._wrap(argv, ns_pid, via), capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except FileNotFoundError as exc:
            raise CommandError(doing, argv, 127, str(exc)) from None
        except subprocess.TimeoutExpired:
            raise CommandError(doing, argv, 'after timeout',
                               'no answer in %s s' % timeout) from None
        if check and proc.returncode != 0:
            raise CommandError(doing, argv, proc.returncode, proc.stderr or proc.stdout)
        return proc.stdout

    def tc_batch(self, commands, doing, ns_pid=None, ns_name=None, timeout=120, node=None):
        """Run many tc commands (each a list of arguments without the leading 'tc')
        in one ``tc -batch`` process (in a namespace as ``run``); a failure names the
        command that failed."""
        if not commands:
            return
        lines = [shlex.join(str(a) for a in cmd) for cmd in commands]
        ns_pid, ns_name, via = self._place(node, ns_pid, ns_name, False)
        for line in lines:
            self._note('tc ' + line, ns_name)
        argv = self._wrap(['tc', '-batch', '-'], ns_pid, via)
        try:
            proc = subprocess.run(argv, input='\n'.join(lines) + '\n', capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except FileNotFoundError as exc:
            raise CommandError(doing, ['tc'], 127, str(exc)) from None
        except subprocess.TimeoutExpired:
            raise CommandError(doing, ['tc', '-batch'], 'after timeout',
                               'no answer in %s s' % timeout) from None
        if proc.returncode != 0:
            match = _BATCH_FAILED.search(proc.stderr)
            failed = lines[int(match.group(1)) - 1] if match else '-batch'
            raise CommandError('%s (tc %s)' % (doing, failed), ['tc'], proc.returncode,
                               proc.stderr)


runner = CommandRunner()
