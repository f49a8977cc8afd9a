"""SIP over TCP: a listener, outgoing connections, framing, keep-alives and limits.

RFC 3261 §18.3 (Content-Length frames messages on a stream; a framing error cannot be
recovered from, so the connection is closed), §18.2.2 (a response goes back over the
connection its request came on: connections are keyed by the remote address), §18.1.1
(a request reuses an open connection to its next hop), RFC 5626 §3.5.1 (CRLFCRLF ping →
CRLF pong) and RFC 5923's advice to close idle connections. Limits: message and header
size (``StreamFramer``), connections per remote host, idle time after last use. An
``accept_filter`` (the abuse guard) can refuse incoming connections from a source, and
:meth:`TcpTransport.close_host` closes every connection of a source that was just banned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from pypbx.sip.abnf import ParseError
from pypbx.sip.events import Addr
from pypbx.sip.framing import PONG, KeepAlivePing, MessageFramed, StreamFramer
from pypbx.transport.addr import from_sockaddr, hostport, ip_family, unbracket

__all__ = ["TcpConfig", "TcpConnection", "TcpTransport"]

log = logging.getLogger("pypbx.transport")

MessageHandler = Callable[[bytes, Addr], None]
AddrCallback = Callable[[Addr], None]
AcceptFilter = Callable[[Addr], bool]
BusyCheck = Callable[[Addr], bool]


@dataclass(frozen=True, slots=True)
class TcpConfig:
    """TCP limits.

    ``idle_timeout``: a connection unused for this long (and with no transaction on it,
    asked through ``is_busy``) is closed. ``max_message_size``/``max_header_size``: a
    larger message closes the connection. ``max_connections_per_host``: incoming
    connections beyond this from one IP are refused. ``connect_timeout`` bounds an
    outgoing connect; ``max_pending`` bounds bytes queued while it is in progress.
    """

    idle_timeout: float = 60.0
    max_message_size: int = 65536
    max_header_size: int = 16384
    max_connections_per_host: int = 32
    connect_timeout: float = 5.0
    max_pending: int = 262144


class TcpConnection(asyncio.Protocol):
    """One TCP connection, incoming or outgoing, framed with a :class:`StreamFramer`."""

    def __init__(self, owner: TcpTransport, remote: Addr | None = None) -> None:
        self._owner = owner
        self._transport: asyncio.Transport | None = None
        cfg = owner.config
        self._framer = StreamFramer(
            max_header_size=cfg.max_header_size, max_message_size=cfg.max_message_size
        )
        self.remote: Addr = remote or ("", 0)
        self.outgoing = remote is not None
        self.last_used = owner.loop.time()
        self.closed = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's: a cast, not an isinstance check
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        if not self.outgoing:
            self.remote = from_sockaddr(transport.get_extra_info("peername"))
        self.last_used = self._owner.loop.time()
        self._owner._attach(self)

    def data_received(self, data: bytes) -> None:
        self.last_used = self._owner.loop.time()
        framer = self._framer
        try:
            framer.feed(data)
            while (event := framer.next_event()) is not None:
                if isinstance(event, MessageFramed):
                    self._owner.on_message(event.data, self.remote)
                elif isinstance(event, KeepAlivePing):
                    self.write(PONG)
                if self.closed:
                    return
        except ParseError as exc:
            log.warning(
                "tcp %s: closing connection: %s (%s)", hostport(self.remote), exc.reason, exc.status
            )
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._transport = None
        self._owner._detach(self)

    # actions

    def write(self, data: bytes) -> None:
        """Queue ``data`` on the connection."""
        if self._transport is not None and not self.closed:
            self._transport.write(data)
            self.last_used = self._owner.loop.time()

    def close(self) -> None:
        """Close the connection (pending writes are flushed first)."""
        if not self.closed:
            self.closed = True
            if self._transport is not None:
                self._transport.close()
            self._owner._detach(self)


class TcpTransport:
    """The TCP side of a stack: listener, connection table and outgoing connects.

    ``on_message(data, remote)`` gets each framed message; ``on_send_error(remote)`` is
    called when queued data could not be delivered (connect failed or refused);
    ``is_busy(remote)`` keeps an idle connection open while transactions use it.
    """

    def __init__(
        self,
        on_message: MessageHandler,
        *,
        config: TcpConfig | None = None,
        on_send_error: AddrCallback | None = None,
        is_busy: BusyCheck | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.config = config or TcpConfig()
        self.on_message = on_message
        self._on_send_error = on_send_error
        self._is_busy = is_busy
        self.connections: dict[Addr, TcpConnection] = {}
        self._pending: dict[Addr, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.local_addr: Addr = ("", 0)
        self.refused = 0
        self.accept_filter: AcceptFilter | None = None
        """Asked for each incoming connection: False closes it at once (a banned source)."""

    async def listen(self, host: str, port: int) -> Addr:
        """Start accepting connections on ``host:port``; returns the bound address."""
        # ``::`` means every address, IPv4 too: let the loop bind one socket per family
        # (asyncio sets IPV6_V6ONLY on the IPv6 listener)
        bind: str | None = None if unbracket(host) == "::" else unbracket(host)
        self._server = await self.loop.create_server(
            lambda: TcpConnection(self), bind, port, family=(ip_family(host) or 0) if bind else 0
        )
        self.local_addr = from_sockaddr(self._server.sockets[0].getsockname())
        return self.local_addr

    # connection table

    def _attach(self, conn: TcpConnection) -> None:
        if not conn.outgoing:
            host = conn.remote[0]
            screen = self.accept_filter
            if screen is not None and not screen(conn.remote):
                self.refused += 1
                conn.close()
                return
            same = sum(1 for a, c in self.connections.items() if a[0] == host and not c.outgoing)
            if same >= self.config.max_connections_per_host:
                self.refused += 1
                log.warning(
                    "tcp %s: refused: %d connections from %s already",
                    hostport(conn.remote),
                    same,
                    host,
                )
                conn.close()
                return
        old = self.connections.get(conn.remote)
        if old is not None and old is not conn:
            old.close()
        self.connections[conn.remote] = conn
        for data in self._pending.pop(conn.remote, []):
            conn.write(data)
        self._arm_sweeper()

    def close_host(self, host: str) -> int:
        """Close every incoming connection from ``host``; how many were closed."""
        doomed = [c for a, c in self.connections.items() if a[0] == host and not c.outgoing]
        for conn in doomed:
            log.info("tcp %s: closing connection of a banned source", hostport(conn.remote))
            conn.close()
        return len(doomed)

    def _detach(self, conn: TcpConnection) -> None:
        if self.connections.get(conn.remote) is conn:
            del self.connections[conn.remote]

    # sending

    def send(self, data: bytes, addr: Addr) -> None:
        """Send over the connection to ``addr``, opening one if there is none."""
        conn = self.connections.get(addr)
        if conn is not None and not conn.closed:
            conn.write(data)
            return
        pending = self._pending.get(addr)
        if pending is not None:
            if sum(map(len, pending)) + len(data) > self.config.max_pending:
                log.warning("tcp %s: connect backlog full, message dropped", hostport(addr))
                return
            pending.append(data)
            return
        if ip_family(addr[0]) is None:
            log.warning("tcp %s: not an IP address, cannot connect", hostport(addr))
            self._send_failed(addr)
            return
        self._pending[addr] = [data]
        task = self.loop.create_task(self._connect(addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, addr: Addr) -> None:
        host, port = addr
        try:
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: TcpConnection(self, addr), host.strip("[]"), port
                ),
                self.config.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            log.warning("tcp %s: connect failed: %s", hostport(addr), exc or "timeout")
            self._pending.pop(addr, None)
            self._send_failed(addr)

    def _send_failed(self, addr: Addr) -> None:
        if self._on_send_error is not None:
            self._on_send_error(addr)

    # idle close

    def _arm_sweeper(self) -> None:
        if self._sweeper is None and self.connections:
            interval = max(0.01, min(self.config.idle_timeout / 4, 5.0))
            self._sweeper = self.loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        deadline = self.loop.time() - self.config.idle_timeout
        for addr, conn in list(self.connections.items()):
            if conn.last_used > deadline:
                continue
            if self._is_busy is not None and self._is_busy(addr):
                continue
            log.info("tcp %s: idle, closing", hostport(addr))
            conn.close()
        self._arm_sweeper()

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self.connections.values()):
            conn.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
