"""The hosts of an edgecollab topology: TCP buffers that hold a long fat path.

A TCP flow carries at most its window per round trip.  The kernel's default buffer
ceilings (tcp_rmem and tcp_wmem, 4-6 MB in a new network namespace) hold 1 Gbit/s for
under 50 ms of round trip; the scenarios' paths reach 300 ms (``topologies/paths.py``).
Every data host gets ceilings of BUFFER_BYTES, a bandwidth-delay product of 1 Gbit/s x
300 ms (37.5 MB) rounded up to a power of two.  They are ceilings: autotuning grows a
socket's buffer only as far as its flow needs, so a slow share uses what it did before.
"""

from mininet.node import Host

from edgecollab.topologies.linkshare import NetemPath
from edgecollab.shell import runner

BUFFER_BYTES = 64 << 20
# net.ipv4.tcp_rmem / tcp_wmem: min, default, max (per network namespace).
TCP_BUFFERS = {'net.ipv4.tcp_rmem': '4096 131072 %d' % BUFFER_BYTES,
               'net.ipv4.tcp_wmem': '4096 16384 %d' % BUFFER_BYTES}


class DataHost(Host):
    """A device or edge host whose TCP buffers hold BUFFER_BYTES; netem: (delay ms,
    loss %, limit packets) of its path imposed by netem on its data interface."""

    def config(self, netem=None, **params):
        result = Host.config(self, **params)
        runner.run(['sysctl', '-q', '-w'] + ['%s=%s' % item for item in TCP_BUFFERS.items()],
                   'size the TCP buffers of %s' % self.name, node=self)
        if netem:
            delay_ms, loss_pct, limit = netem
            NetemPath(self.intfs[0].name, '%s-ifb' % self.name, delay_ms, loss_pct, limit,
                      self).start()
        return result
