"""RTP port pairs from rtp.conf's ``rtpstart``-``rtpend``: RTP on an even port, RTCP on the next
odd one (RFC 3550 §11), both sockets bound before the pair is handed out.

Release is immediate. UDP has no TIME_WAIT, so a closed socket's port can be bound again at
once; chan_sip's 32 s hold on a finished call's ports is a policy of its own, not a need of
the protocol. ``SO_REUSEADDR`` is deliberately *not* set: on Linux it lets two UDP sockets
bind the same port, which would hide a port already used by another program (or by a leg
not yet closed) and split its packets between the two. The search for a free pair starts
after the last pair handed out, so a just-released port is the last to be reused and late
packets of a finished call do not land in the next one.

``rcvbuf`` sets ``SO_RCVBUF`` on the RTP socket (the kernel caps it at
``net.core.rmem_max``). Left at None the system default applies (``rmem_default``, commonly
208 KiB: 256 queued 172-octet packets on loopback, 5 s of one stream); a larger buffer only
helps a relay that stalls for seconds, and when the relay is short of CPU it turns loss into
delay (see bench/rtp_relay.py).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from pypbx.errors import PbxError

__all__ = ["PortAllocator", "PortPair", "PortsExhausted"]


class PortsExhausted(PbxError):
    """No free even/odd pair is left in the configured range."""


@dataclass(frozen=True, slots=True)
class PortPair:
    """Two bound non-blocking UDP sockets: ``rtp`` on ``port`` (even), ``rtcp`` on ``port + 1``."""

    host: str
    port: int
    rtp: socket.socket
    rtcp: socket.socket

    @property
    def rtcp_port(self) -> int:
        return self.port + 1


class PortAllocator:
    """Hands out bound :class:`PortPair` objects over ``[start, end]`` on ``host``.

    ``limit`` bounds how many pairs may be out at once (defaults to the whole range). Ports
    another program holds are skipped. :meth:`release` closes both sockets at once.
    """

    def __init__(
        self,
        start: int,
        end: int,
        host: str = "0.0.0.0",
        *,
        limit: int | None = None,
        rcvbuf: int | None = None,
    ) -> None:
        first = start + (start % 2)
        if first + 1 > end:
            raise ValueError(f"RTP port range {start}-{end} holds no even/odd pair")
        self.start, self.end, self.host = first, end, host
        self.capacity = (end - first + 1) // 2
        self.limit = self.capacity if limit is None else min(limit, self.capacity)
        self.rcvbuf = rcvbuf
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._in_use: set[int] = set()
        self._next = 0  # index of the pair to try first

    @property
    def in_use(self) -> int:
        """Number of pairs handed out and not yet released."""
        return len(self._in_use)

    def allocate(self) -> PortPair:
        """Bind and return the next free pair; raises :class:`PortsExhausted`."""
        if len(self._in_use) >= self.limit:
            raise PortsExhausted(
                f"all {self.limit} RTP port pairs of {self.start}-{self.end} are in use"
            )
        for step in range(self.capacity):
            index = (self._next + step) % self.capacity
            port = self.start + 2 * index
            if port in self._in_use:
                continue
            pair = self._bind(port)
            if pair is not None:
                self._next = (index + 1) % self.capacity
                self._in_use.add(port)
                return pair
        raise PortsExhausted(
            f"no free RTP port pair in {self.start}-{self.end} on {self.host} "
            f"({len(self._in_use)} ours, the rest held by other programs)"
        )

    def release(self, pair: PortPair) -> None:
        """Close both sockets and free the pair for reuse at once (idempotent)."""
        pair.rtp.close()
        pair.rtcp.close()
        self._in_use.discard(pair.port)

    def _bind(self, port: int) -> PortPair | None:
        socks: list[socket.socket] = []
        try:
            for p in (port, port + 1):
                sock = socket.socket(self._family, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.setblocking(False)
                if self.rcvbuf is not None and p == port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
                sock.bind((self.host, p))
        except OSError as exc:
            for sock in socks:
                sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return None
            raise
        return PortPair(self.host, port, socks[0], socks[1])
