"""A connection waiting out a long retransmission timer is cut (nodes/stall.py)."""

import socket
import struct
import threading
import time

from edgecollab import wire
from edgecollab.nodes import stall


def connected_pair():
    """(sender, receiver): the two ends of a TCP connection over loopback."""
    server = socket.create_server(('127.0.0.1', 0))
    sender = socket.create_connection(server.getsockname())
    receiver, _ = server.accept()
    server.close()
    return sender, receiver


def test_delivery_progress_reads_what_the_kernel_acknowledged():
    sender, receiver = connected_pair()
    got = []
    reader = threading.Thread(
        target=lambda: got.append(receiver.recv(1 << 20, socket.MSG_WAITALL)))
    reader.start()
    sender.sendall(b'x' * (1 << 20))
    reader.join(10)
    deadline = time.monotonic() + 10
    while wire.delivery_progress(sender)[1] and time.monotonic() < deadline:
        time.sleep(0.01)
    acked, in_flight, timer_s = wire.delivery_progress(sender)
    assert len(got[0]) == 1 << 20
    assert in_flight == 0 and acked == (1 << 20) + 1      # the SYN counts one
    assert 0 <= timer_s <= 3                # nothing waits: at most TCP's floor, 200 ms
    sender.close()
    receiver.close()
    assert wire.delivery_progress(sender) is None


def watched(monkeypatch, progress, stall_s=0.2):
    """A StallWatch on a real connection whose socket reports progress() at each look
    (the first look sees 10 bytes fewer acknowledged: the connection had moved)."""
    looks = iter(range(10 ** 6))

    def seen():
        acked, in_flight, timer_s = progress()
        return (acked - 10 if next(looks) == 0 else acked), in_flight, timer_s
    monkeypatch.setattr(stall, 'WATCH_S', 0.02)
    monkeypatch.setattr(stall, 'delivery_progress', lambda sock: seen())
    sender, receiver = connected_pair()
    return stall.StallWatch(sender, 'test', stall_s=stall_s), sender, receiver


def test_data_in_flight_with_nothing_acknowledged_and_a_long_timer_is_cut(monkeypatch):
    watch, sender, receiver = watched(monkeypatch, lambda: (1000, 12, 14.4))
    began = time.monotonic()
    sender.settimeout(10)           # uncut, the read below would time out
    # The owner is blocked reading the answer: the cut ends its wait.
    assert sender.recv(10) == b''
    waited = time.monotonic() - began
    assert watch.cut and 0.2 <= waited < 10
    # Closing it resets the connection (SO_LINGER 0): nothing drains after the cut.
    assert struct.unpack('ii', sender.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)) \
        == (1, 0)
    sender.close()
    receiver.close()


def test_progress_nothing_in_flight_or_a_short_timer_is_never_cut(monkeypatch):
    acked = iter(range(10 ** 6))
    for progress in (lambda: (next(acked), 12, 14.4),  # acknowledged, a little each look
                     lambda: (1000, 0, 14.4),          # nothing in flight (idle, or a
                                                       # zero window)
                     lambda: (1000, 12, 0.19)):        # TCP itself sends again soon
                                                       # (a timer that has run)
        watch, sender, receiver = watched(monkeypatch, progress)
        time.sleep(0.8)
        assert not watch.cut
        watch.close()
        sender.close()
        receiver.close()


def test_a_connection_that_never_moved_is_left_to_tcp(monkeypatch):
    """A new connection whose first window waits behind a dead one's segments (its
    timer long from a slow handshake) is not cut again and again."""
    monkeypatch.setattr(stall, 'WATCH_S', 0.02)
    monkeypatch.setattr(stall, 'delivery_progress', lambda sock: (1, 11, 5.8))
    sender, receiver = connected_pair()
    watch = stall.StallWatch(sender, 'test', stall_s=0.2)
    time.sleep(0.8)
    assert not watch.cut
    watch.close()
    sender.close()
    receiver.close()


def test_a_closed_watch_cuts_nothing(monkeypatch):
    watch, sender, receiver = watched(monkeypatch, lambda: (1000, 12, 14.4), stall_s=0.3)
    watch.close()
    time.sleep(0.6)
    assert not watch.cut
    sender.close()
    receiver.close()
