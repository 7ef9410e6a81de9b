"""``edgecollab cluster up``, ``down`` and ``check``: the servers of a cluster run."""

from edgecollab.errors import EdgecollabError


def _cmd_up(args):
    from edgecollab.topologies import localcluster
    value = localcluster.up(args.local)
    print('local cluster up: %d servers (this machine and %s)' % (
        args.local, ', '.join(localcluster.namespace(i) for i in range(2, args.local + 1))))
    print('--servers %s' % value)
    return 0


def _cmd_down(_args):
    from edgecollab.topologies import localcluster
    removed = localcluster.down()
    for item in removed:
        print('removed %s' % item)
    print('no local cluster was up' if not removed else 'local cluster down')
    return 0


def _cmd_check(args):
    from edgecollab.topologies import cluster
    servers = cluster.Servers.parse(args.servers)
    problems = dict(cluster.check(servers))
    for name in servers.remote():
        print('%s: %s' % (name, problems.get(name, 'ok (SSH as root, sudo, mnexec, '
                                                  'edgecollab, %s)' % servers.tunnel)))
    if problems:
        raise EdgecollabError('%d of %d servers cannot hold devices' % (
            len(problems), len(servers.remote())))
    return 0


def register(sub):
    """Add the ``cluster`` subcommand and its actions."""
    p = sub.add_parser('cluster', help='make, check and remove the servers of a cluster '
                       'run (Mininet Cluster Edition)')
    actions = p.add_subparsers(dest='action', required=True)
    up = actions.add_parser('up', help='make N servers on this machine (it and N-1 network '
                            'namespaces, each with its own sshd); print the --servers value')
    up.add_argument('--local', type=int, metavar='N', required=True,
                    help='servers to make on this machine (2-16)')
    up.set_defaults(func=_cmd_up)
    down = actions.add_parser('down', help='remove the servers cluster up made')
    down.set_defaults(func=_cmd_down)
    check = actions.add_parser('check', help='whether each server can hold devices: SSH as '
                               'root, sudo, Mininet, edgecollab, kernel modules')
    check.add_argument('--servers', metavar='A,B,...', required=True,
                       help='the servers, this machine first (localhost,...)')
    check.set_defaults(func=_cmd_check)
