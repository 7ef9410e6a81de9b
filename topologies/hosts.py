"""The hosts of an edgecollab topology: TCP buffers that hold a long fat path, and the
TCP congestion control a scenario asks for.

A TCP flow carries at most its window per round trip.  The kernel's default buffer
ceilings (tcp_rmem and tcp_wmem, 4-6 MB in a new network namespace) hold 1 Gbit/s for
under 50 ms of round trip; the scenarios' paths reach 300 ms (``topologies/paths.py``).
Every data host gets ceilings of BUFFER_BYTES, a bandwidth-delay product of 1 Gbit/s x
300 ms (37.5 MB) rounded up to a power of two.  They are ceilings: autotuning grows a
socket's buffer only as far as its flow needs, so a slow share uses what it did before.

Every connection a host opens or accepts uses its namespace's default congestion control,
which a new namespace takes from the machine's (Debian's is cubic; many machines run
bbr).  It decides how fast a flow takes a share opened to it, so a scenario may name one
(``congestion_control``) to make runs on different machines comparable; each data host's
namespace is then set to it.  The kernel lets a namespace other than the root one choose
only an algorithm listed in net.ipv4.tcp_allowed_congestion_control.
"""

import subprocess

from mininet.node import Host

from edgecollab.errors import UnsupportedError
from edgecollab.topologies.linkshare import NetemPath
from edgecollab.shell import runner

BUFFER_BYTES = 64 << 20
# net.ipv4.tcp_rmem / tcp_wmem: min, default, max (per network namespace).
TCP_BUFFERS = {'net.ipv4.tcp_rmem': '4096 131072 %d' % BUFFER_BYTES,
               'net.ipv4.tcp_wmem': '4096 16384 %d' % BUFFER_BYTES}


CONGESTION = '/proc/sys/net/ipv4/tcp_%s_congestion_control'


def check_congestion_control(name):
    """Raise UnsupportedError unless this machine's data hosts can use TCP congestion
    control name (its module is loaded here if it is not yet)."""
    def listed(which):
        with open(CONGESTION % which, encoding='ascii') as f:
            return f.read().split()
    if name not in listed('available'):
        try:
            subprocess.run(['modprobe', '-q', 'tcp_%s' % name], check=False, timeout=30,
                           capture_output=True)
        except (OSError, subprocess.SubprocessError):
            pass                # no modprobe, or it hung: the list says what there is
    available = listed('available')
    if name not in available:
        raise UnsupportedError('congestion_control: this kernel has no %r (it has %s)'
                               % (name, ', '.join(available)))
    allowed = listed('allowed')
    if name not in allowed:
        raise UnsupportedError(
            "congestion_control: %s is not allowed outside the root namespace here; allow "
            "it with: sysctl -w net.ipv4.tcp_allowed_congestion_control='%s'"
            % (name, ' '.join(allowed + [name])))


class DataHost(Host):
    """A device or edge host whose TCP buffers hold BUFFER_BYTES; netem: (delay ms,
    loss %, limit packets) of its path imposed by netem on its data interface;
    congestion_control: its TCP's (None: the machine's default)."""

    def config(self, netem=None, congestion_control=None, **params):
        result = Host.config(self, **params)
        settings = dict(TCP_BUFFERS)
        if congestion_control:
            settings['net.ipv4.tcp_congestion_control'] = congestion_control
        runner.run(['sysctl', '-q', '-w'] + ['%s=%s' % item for item in settings.items()],
                   'set the TCP of %s' % self.name, node=self)
        if netem:
            delay_ms, loss_pct, limit = netem
            NetemPath(self.intfs[0].name, '%s-ifb' % self.name, delay_ms, loss_pct, limit,
                      self).start()
        return result
