"""Facts of the wire that shaping and planning both use: frame and payload sizes.

HTB counts whole Ethernet frames; TCP delivers their payload.  A share of R Mbit/s on the
wire carries at most ``GOODPUT_PER_WIRE`` x R of payload (full-size segments with TCP
timestamps), so a plan in payload bytes and a shaper in wire bits meet through it.

A share's counters count every frame, a retransmitted one too; what a sender
retransmitted is read from its socket (``bytes_retransmitted``).
"""

import socket
import struct

MTU_FRAME = 1514          # bytes of a full-size Ethernet frame as HTB counts it
TCP_PAYLOAD = 1448        # TCP payload of that frame (20 IP + 32 TCP with timestamps)
GOODPUT_PER_WIRE = TCP_PAYLOAD / MTU_FRAME   # goodput of a full share: 0.956 of its rate
# The IP TOS byte (DSCP CS6, network control) the agents set on a connection whose
# upstream is control, not data: a checkpoint download's request and ACKs.  The link
# share puts such packets in the priority child, so a request is never stuck behind a
# device's own upload in a class given almost no share.
CONTROL_TOS = 0xc0

# struct tcp_info (linux/tcp.h): tcpi_bytes_retrans is the u64 at byte 208 (Linux 4.19+),
# tcpi_rto the u32 at byte 8 (microseconds, backoff included), tcpi_unacked the u32 at
# byte 24, tcpi_last_data_sent and tcpi_last_ack_recv the u32s at bytes 44 and 56
# (milliseconds ago), tcpi_bytes_acked the u64 at byte 120 (Linux 4.1+).
TCP_INFO_BYTES_RETRANS = 208
TCP_INFO_RTO = 8
TCP_INFO_UNACKED = 24
TCP_INFO_LAST_DATA_SENT = 44
TCP_INFO_LAST_ACK_RECV = 56
TCP_INFO_BYTES_ACKED = 120


def tcp_info(sock, needs):
    """The struct tcp_info of the TCP socket sock, or None where the kernel does not give
    needs bytes of it (an older kernel) or the socket is closed."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except (OSError, ValueError):
        return None
    return info if len(info) >= needs else None


def bytes_retransmitted(sock):
    """Payload bytes the TCP socket sock retransmitted so far (0 where the kernel does
    not say: an older kernel or a closed socket)."""
    info = tcp_info(sock, TCP_INFO_BYTES_RETRANS + 8)
    return 0 if info is None else struct.unpack_from('=Q', info, TCP_INFO_BYTES_RETRANS)[0]


def delivery_progress(sock):
    """(bytes acknowledged, segments in flight, seconds until TCP's retransmission timer
    fires) of the TCP socket sock: the timer runs from the later of the last ACK and the
    last send (an estimate: 0 once it is due); None where the kernel does not say (an
    older kernel or a closed socket)."""
    info = tcp_info(sock, TCP_INFO_BYTES_ACKED + 8)
    if info is None:
        return None
    since_ms = min(struct.unpack_from('=I', info, TCP_INFO_LAST_DATA_SENT)[0],
                   struct.unpack_from('=I', info, TCP_INFO_LAST_ACK_RECV)[0])
    return (struct.unpack_from('=Q', info, TCP_INFO_BYTES_ACKED)[0],
            struct.unpack_from('=I', info, TCP_INFO_UNACKED)[0],
            max(0.0, struct.unpack_from('=I', info, TCP_INFO_RTO)[0] / 1e6 - since_ms / 1e3))
