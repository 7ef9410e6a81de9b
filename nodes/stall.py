"""Cutting a TCP connection that waits out a long retransmission timer.

A sender's retransmission timeout follows its round trips (srtt + 4 rttvar).  A class
that holds a deep queue while its share is small delays its segments by seconds (after
an outage, when the leaf queues are sized from the trace's mean: linkshare.py), and the
timer grows to match; when segments are then lost, the sender waits the timer out with
nothing acknowledged, whatever share its class has by then.  Under Mininet on a 5G
trace (the uccmisl 5G dataset's Static B_2020.02.14_13.21.26, ``cellular.yaml``,
2026-12-06) ``ss -ti`` showed a device's upload with 128 segments unacknowledged and an
rto of 14428 ms, its class given 44-225 Mbit/s and carrying nothing for 16 s; a
checkpoint download in the same run carried 0.3 Mbit/s in a class of 240.

So a sender whose data has been in flight with nothing acknowledged for ``STALL_S``,
and whose timer has at least as long again to run, is cut (reset) and the
transfer goes on over a new connection, whose timer starts from its own handshake: the
device resumes its upload stream with the samples it lost, the download resumes from
the bytes the device holds (HTTP Range).  A class at its floor still has a frame
acknowledged every second or two, and a segment lost at a round trip of a few hundred
ms is sent again by TCP's own timer well within ``STALL_S``, so neither is cut; in an
outage longer than ``STALL_S`` what was in flight is lost with the connection (it could
only have arrived after the outage).  Cut on the first condition alone, under Mininet
on the T-Mobile LTE trace 8 connections were cut in one run, most in dips of a few
seconds; cut while the timer was 3 s or more (however long it had run), on the Norway
3G trace 60 in one run, nearly all new connections whose first window waited 3 s behind
the dead one's segments in a class at its floor, cut again just before their timer
(3.2 s) fired; with the timer's time left instead, 48, the same new connections (their
handshake through a class at its floor took seconds, and their timer with it).  So only
a connection that has had data acknowledged is cut: one that never moved is left to
TCP.
"""

import logging
import socket
import struct
import threading
import time

from edgecollab.wire import delivery_progress

log = logging.getLogger(__name__)

STALL_S = 3.0      # data in flight this long with nothing acknowledged: cut the connection
WATCH_S = 0.25     # how often a watch reads its socket


class StallWatch:
    """Watches a sending socket from a thread of its own until closed; cuts the
    connection once data has been in flight with nothing acknowledged for stall_s while
    its retransmission timer has stall_s or more to run, if it has had data
    acknowledged since the watch began (``cut`` says it did: the owner's send or read
    then fails)."""

    def __init__(self, sock, what, stall_s=STALL_S):
        self.sock, self.what, self.stall_s = sock, what, stall_s
        self.cut = False
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True, name='stall-watch').start()

    def _run(self):
        acked, since, moved = None, time.monotonic(), False
        while not self.done.wait(WATCH_S):
            progress = delivery_progress(self.sock)
            if progress is None:
                return
            now = time.monotonic()
            done, in_flight, timer_s = progress
            if in_flight == 0 or done != acked:
                moved = moved or acked is not None
                acked, since = done, now
            elif moved and now - since >= self.stall_s and timer_s >= self.stall_s:
                log.info('%s: %d segments in flight, nothing acknowledged for %.1f s, '
                         'the retransmission timer due in %.1f s: the connection is cut, '
                         'the transfer resumes on a new one', self.what, in_flight,
                         now - since, timer_s)
                self.cut = True
                reset_on_close(self.sock)
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass                # closed meanwhile
                return

    def close(self):
        """Stop watching (the transfer ended)."""
        self.done.set()


def reset_on_close(sock):
    """Make closing sock reset its connection, dropping what it still holds to send (a
    stalled connection's, or an upload's cut at its deadline, whose bytes can only
    arrive late: closed gracefully, a socket drains them at its class's share, which a
    dip can leave at a few kbit/s; under Mininet on the T-Mobile LTE trace a period's
    stream still drained 52 s after its deadline, in the class that the device's next
    streams shared, 2026-12-06)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    except OSError:
        pass                    # closed already
