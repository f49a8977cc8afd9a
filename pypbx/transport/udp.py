"""SIP over UDP: an asyncio datagram protocol bound on ``bindaddr:bindport``.

RFC 3261 §18.1.1/§18.2.1 (a datagram is one message; the receiver learns the source
address, which the endpoint stamps into ``received``/``rport``, RFC 3581 §4) and §18.2.2
(responses go to the address the endpoint computes). This module only moves bytes: every
datagram is handed with its source address to ``on_datagram``; ``send`` refuses, without
a resolver, destinations that are not IP literals of the socket's family.

Limits (issue 9 item 4): a datagram is at most 65,535 bytes by construction and the abuse
guard drops anything above ``maxmessagesize`` before parsing; the socket's receive buffer is
raised to :data:`RECEIVE_BUFFER` (the kernel clamps it to ``net.core.rmem_max``) so a burst
of datagrams waits in the kernel rather than being lost before pypbx can screen it. (A
smaller buffer, 256 KiB, was measured under the SIPp registration burst: it dropped
thousands of datagrams during short stalls, and the senders' 500 ms retransmissions cost
more than the longer queue did.)

Sending: what a destination host becomes for ``sendto`` (or that it cannot be sent to) is
decided once per host and remembered, at most :data:`TARGET_CACHE` hosts at a time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import cast

from pypbx.sip.events import Addr
from pypbx.transport.addr import from_sockaddr, hostport, ip_family

__all__ = ["UdpTransport", "open_udp"]

log = logging.getLogger("pypbx.transport")

DatagramHandler = Callable[[bytes, Addr], None]

RECEIVE_BUFFER = 4 * 1024 * 1024
"""Bytes asked for SO_RCVBUF: about 4,000 full-size SIP datagrams of headroom."""

TARGET_CACHE = 4096
"""How many destination hosts :meth:`UdpTransport.send` remembers (all forgotten when full)."""


class UdpTransport(asyncio.DatagramProtocol):
    """One bound UDP socket. ``on_datagram(data, source)`` is called for each datagram."""

    def __init__(self, on_datagram: DatagramHandler) -> None:
        self._on_datagram = on_datagram
        self._transport: asyncio.DatagramTransport | None = None
        self.family: int = socket.AF_INET
        self.dual_stack = False
        self.local_addr: Addr = ("", 0)
        self.sent = 0
        self.received = 0
        self._targets: dict[str, str | None] = {}  # host -> sendto host, None: not sendable

    # asyncio.DatagramProtocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's: a cast, not an isinstance check
        transport = cast(asyncio.DatagramTransport, transport)
        self._transport = transport
        self._targets.clear()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.family = sock.family
            if sock.family == socket.AF_INET6:
                v6only = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
                self.dual_stack = not v6only
        self.local_addr = from_sockaddr(transport.get_extra_info("sockname"))
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            except OSError as exc:  # not fatal: the default buffer still works
                log.debug("udp %s: cannot raise SO_RCVBUF: %s", hostport(self.local_addr), exc)

    @property
    def receive_buffer(self) -> int:
        """The socket's receive buffer as the kernel reports it (0 when closed)."""
        if self._transport is None:
            return 0
        sock = self._transport.get_extra_info("socket")
        return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)) if sock else 0

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.received += 1
        if self.family == socket.AF_INET and type(addr) is tuple and len(addr) == 2:
            self._on_datagram(data, cast(Addr, addr))  # (host, port) as it is: nothing to unmap
        else:
            self._on_datagram(data, from_sockaddr(addr))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable ...) reported by the kernel on a later call.
        log.debug("udp %s: %s", hostport(self.local_addr), exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    # sending

    @property
    def is_open(self) -> bool:
        """True until :meth:`close`."""
        return self._transport is not None and not self._transport.is_closing()

    def send(self, data: bytes, addr: Addr) -> bool:
        """Send one datagram; ``False`` when it cannot be sent (closed, not an IP literal
        of our family: names need a resolver, which belongs above this layer)."""
        host, port = addr
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        try:
            target = self._targets[host]
        except KeyError:
            target = self._target(host)
        if target is None or not 0 < port < 65536:
            log.warning(
                "udp %s: cannot send to %s (not an address of this socket's family)",
                hostport(self.local_addr),
                hostport(addr),
            )
            return False
        transport.sendto(data, (target, port))
        self.sent += 1
        return True

    def _target(self, host: str) -> str | None:
        """The host as ``sendto`` takes it on this socket, or None; remembered."""
        family = ip_family(host)
        target: str | None = host.strip("[]")
        if family == socket.AF_INET and self.family == socket.AF_INET6 and self.dual_stack:
            target, family = f"::ffff:{target}", socket.AF_INET6  # IPv4 peer, dual-stack socket
        if family != self.family:
            target = None
        if len(self._targets) >= TARGET_CACHE:
            self._targets.clear()
        self._targets[host] = target
        return target

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()


async def open_udp(host: str, port: int, on_datagram: DatagramHandler) -> UdpTransport:
    """Bind a UDP socket on ``host:port`` (IPv4 or IPv6 literal; port 0 picks one)."""
    loop = asyncio.get_running_loop()
    family = ip_family(host) or socket.AF_INET
    _, protocol = await loop.create_datagram_endpoint(
        lambda: UdpTransport(on_datagram),
        local_addr=(host.strip("[]"), port),
        family=family,
    )
    return protocol
