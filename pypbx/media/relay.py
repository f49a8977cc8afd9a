"""The RTP relay: per-leg sockets, symmetric RTP, latching (comedia) and strict-RTP source
protection, RTCP relayed between the odd ports (RFC 3550 §11; symmetric RTP as RFC 4961 §3;
latching as RFC 7362 §4).

One :class:`RelayLeg` owns a :class:`~pypbx.media.ports.PortPair`. A :class:`Relay` joins two
legs: a packet received on leg A leaves through leg B's own socket (so the far end sees it come
from the port it sends to) towards B's remote address. RTP sockets are read by the loop's
:class:`~pypbx.media.poller.MediaPoller` (one epoll set, served in batches); RTCP by a datagram
protocol (a packet every few seconds).

Two paths per packet. The *slow* one (``recvfrom``, :meth:`RelayLeg.datagram_received`)
checks the source, feeds taps and sinks and follows the learning rules below. Once a leg is
joined, has no tap and its source is *locked*, its socket is connected to that source and the
*fast* path takes over: the kernel keeps every other sender out (their packets never reach the
socket and are not counted), so a packet costs ``recv``, the optional route, the peer's
``send`` (``sendto`` when the peer sends somewhere other than where it hears from) and a few
counters. Packets queued before the connect are read through the source check first. Any
change (tap, unjoin, SDP change, close) returns the leg to the slow path; an SDP change also
dissolves the connection (``connect(AF_UNSPEC)``). Payload-type rewriting and G.711
transcoding cost one table lookup or one ``bytes.translate`` on either path.

A leg may carry a *tap* (:meth:`RelayLeg.set_tap`): a callback for the packets of one payload
type it receives, which may consume them (RFC 4733 events converted to SIP INFO or tones for a
peer that does not take them) or only look at them (inband DTMF detection on the audio).

Source protection, per leg (Asterisk ``strictrtp``, ``probation``, as rtp.conf describes them):

- ``strictrtp=no``: every source is accepted; with latching the leg sends to the last source.
- ``strictrtp=yes`` and ``seqno``: the leg *learns* for ``learning_window`` seconds (5) after
  it is made or its SDP address changes (:meth:`RelayLeg.relearn`). Packets from the SDP
  address are accepted at once; another source is accepted once it has sent ``probation``
  packets with consecutive sequence numbers (those are dropped), and then replaces the
  current source. After the window the current source is *locked* (at its first packet after
  the window): packets from any other source are dropped until the next renegotiation.
  (Asterisk's ``yes`` also checks the packets' spacing while qualifying; pypbx checks the
  sequence only, as ``seqno``.)
"""

from __future__ import annotations

import asyncio
import ctypes
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pypbx.config.rtpconf import StrictRtp
from pypbx.media.codecs import Route
from pypbx.media.poller import MediaPoller
from pypbx.media.ports import PortPair
from pypbx.media.rtp import header_length

__all__ = ["Addr", "LegOptions", "LegStats", "Relay", "RelayLeg", "SourceState", "Tap"]

Addr = tuple[str | Any, int]
Clock = Callable[[], float]
Tap = Callable[[bytes], bool]
"""Sees one accepted packet of the tapped payload type; True consumes it (not relayed)."""
_OCTET = [bytes((i,)) for i in range(256)]
_NO_COUNTS = (0, 0, 0, 0, 0, 0.0)
RECV_SIZE = 4096
DRAIN_LIMIT = 1024
"""Packets read through the source check right after connecting (those queued before)."""


class _NoRoute(OSError):
    """The leg has nowhere to send (no remote yet, or closed)."""


def _no_route(data: bytes | bytearray) -> int:
    raise _NoRoute


def _sockaddr(family: int, addr: Addr) -> bytes | None:
    """``addr`` as the C library's ``struct sockaddr_in``/``sockaddr_in6`` (Linux layout), or
    None if it is not a numeric address of ``family``."""
    try:
        host = socket.inet_pton(family, addr[0])
        port = struct.pack("!H", addr[1])
    except (OSError, TypeError, ValueError, struct.error):
        return None
    if family == socket.AF_INET:
        return struct.pack("=H", family) + port + host + bytes(8)
    if family == socket.AF_INET6:
        flow = addr[2] if len(addr) > 2 else 0
        scope = addr[3] if len(addr) > 3 else 0
        return (
            struct.pack("=H", family)
            + port
            + struct.pack("!I", flow)
            + host
            + struct.pack("=I", scope)
        )
    return None


def _dissolve(sock: socket.socket) -> bool:
    """Undo ``connect`` on a UDP socket (connect to AF_UNSPEC, Linux ``udp_disconnect``)."""
    if _LIBC is None:
        return False
    unspec = (ctypes.c_ubyte * 16)()  # sa_family 0 = AF_UNSPEC
    return int(_LIBC.connect(sock.fileno(), unspec, ctypes.sizeof(unspec))) == 0


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


class SourceState(StrEnum):
    """Where a leg stands with the source it accepts packets from."""

    OPEN = "open"  # strictrtp=no: anyone
    LEARNING = "learning"  # other sources may qualify and take over
    LOCKED = "locked"  # one source accepted, others dropped


@dataclass(frozen=True, slots=True)
class LegOptions:
    """Per-leg media settings: ``latch`` is comedia / ``nat=yes`` (send where packets come from)."""

    latch: bool = False
    strict: StrictRtp = StrictRtp.YES
    probation: int = 4
    learning_window: float = 5.0


@dataclass(frozen=True, slots=True)
class LegStats:
    """Counters of one leg: ``*_in`` received on its socket, ``*_out`` sent from it."""

    packets_in: int
    bytes_in: int
    packets_out: int
    bytes_out: int
    rtcp_in: int
    rtcp_out: int
    dropped_strict: int
    dropped_learning: int
    dropped_unroutable: int
    fast_in: int = 0
    """Of ``packets_in``, those that took the fast path (joined, source locked, no tap)."""


class _RtcpProtocol(asyncio.DatagramProtocol):
    """The odd port: RTCP accepted from the RTP source's host and relayed to the peer leg."""

    def __init__(self, leg: RelayLeg) -> None:
        self.leg = leg

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        leg = self.leg
        source = leg.source
        if source is not None and addr[0] != source[0]:
            leg.dropped_strict += 1
            return
        leg.rtcp_in += 1
        if leg.options.latch:
            leg.remote_rtcp = addr
        peer = leg.peer
        if peer is not None and peer.remote_rtcp is not None and peer.rtcp_transport is not None:
            peer.rtcp_transport.sendto(data, peer.remote_rtcp)
            peer.rtcp_out += 1


class RelayLeg:
    """One call leg's RTP and RTCP sockets, source protection, counters and last-packet time.

    ``remote`` is where this leg sends RTP (from the SDP, or latched); ``sink`` receives the
    packets that arrive while the leg is not joined to a peer (Echo, DTMF, recording).
    """

    # slots: the per-packet paths read a dozen attributes; slot access stays cheap (an
    # instance with this many attributes would otherwise fall back to dictionary lookups)
    __slots__ = (
        "_c_target", "_candidate", "_candidate_count", "_candidate_seq", "_clock", "_closed",
        "_connected", "_fast", "_fast_base", "_fast_total", "_feeders", "_learn_until",
        "_on_close", "_out", "_peer", "_poller", "_recv", "_route", "_sock", "_tap",
        "_tap_type", "_target", "bytes_in", "bytes_out", "dropped_learning", "dropped_strict",
        "dropped_unroutable", "expected", "last_rx", "options", "packets_in", "packets_out",
        "pair", "remote", "remote_rtcp", "rtcp_in", "rtcp_out", "rtcp_transport", "sink",
        "source", "state"
    )  # fmt: skip

    def __init__(
        self,
        pair: PortPair,
        *,
        remote: Addr | None = None,
        remote_rtcp: Addr | None = None,
        options: LegOptions = LegOptions(),
        clock: Clock = time.monotonic,
        on_close: Callable[[PortPair], None] | None = None,
    ) -> None:
        self.pair = pair
        self.options = options
        self.remote: Addr | None = None
        self.remote_rtcp: Addr | None = None
        self.expected: Addr | None = None
        self.source: Addr | None = None
        self.state = SourceState.OPEN if options.strict is StrictRtp.NO else SourceState.LEARNING
        self._peer: RelayLeg | None = None
        self._target: RelayLeg = self  # the peer, while the fast path is on
        self.sink: Callable[[bytes], None] | None = None
        self.rtcp_transport: asyncio.DatagramTransport | None = None
        self._sock = pair.rtp
        self._recv = pair.rtp.recv
        self._out: Callable[[bytes | bytearray], int] = _no_route
        self._poller: MediaPoller | None = None
        self._connected: Addr | None = None
        self._fast = False
        self._fast_base = self._fast_total = 0
        self._c_target: RelayLeg | None = None  # the leg C forwards to (None: C does not)
        self._feeders: set[RelayLeg] = set()  # legs whose C entries send through this one
        self._route: Callable[[bytes], bytes | bytearray] | None = None
        self._tap: Tap | None = None
        self._tap_type = -1
        self._clock = clock
        self._on_close = on_close
        self._closed = False
        self._candidate: Addr | None = None
        self._candidate_seq = 0
        self._candidate_count = 0
        self._learn_until = clock() + options.learning_window
        self.packets_in = self.bytes_in = self.packets_out = self.bytes_out = 0
        self.rtcp_in = self.rtcp_out = 0
        self.dropped_strict = self.dropped_learning = self.dropped_unroutable = 0
        self.last_rx = clock()
        if remote is not None:
            self.set_remote(remote, remote_rtcp)

    @property
    def port(self) -> int:
        """The local RTP port (even); RTCP is on ``port + 1``."""
        return self.pair.port

    async def open(self) -> None:
        """Start reading the RTP socket (the loop's :class:`MediaPoller`) and the RTCP one."""
        loop = asyncio.get_running_loop()
        rtcp = _RtcpProtocol(self)
        self.rtcp_transport, _ = await loop.create_datagram_endpoint(
            lambda: rtcp, sock=self.pair.rtcp
        )
        if self._closed:
            return
        self._sock.setblocking(False)
        self._poller = MediaPoller.of(loop)
        self._poller.add(self._sock.fileno(), self._read)
        self._update_out()
        self._refresh()

    @property
    def peer(self) -> RelayLeg | None:
        """The leg packets received here are sent out of (None: they go to ``sink``)."""
        return self._peer

    @peer.setter
    def peer(self, leg: RelayLeg | None) -> None:
        self._peer = leg
        self._refresh()

    @property
    def fast(self) -> bool:
        """True while packets take the fast path: joined, no tap, source locked (the socket is
        then connected to the source, so the kernel drops every other sender's packets)."""
        return self._fast

    @property
    def in_c(self) -> bool:
        """True while the C table forwards this leg's packets (its fast path with nothing to
        change in them, when the extension is built)."""
        return self._c_target is not None

    def set_remote(self, remote: Addr, rtcp: Addr | None = None) -> None:
        """The address the SDP gave (RTCP defaults to port + 1); learning starts again."""
        self.remote = self.expected = remote
        self.remote_rtcp = rtcp if rtcp is not None else (remote[0], remote[1] + 1)
        self._update_out()
        self.relearn()

    def relearn(self) -> None:
        """Forget the accepted source and learn again (strict modes) after an SDP change."""
        if self.options.strict is not StrictRtp.NO:
            self.state = SourceState.LEARNING
            self._learn_until = self._clock() + self.options.learning_window
            self._candidate = None
            self._refresh()
            self._disconnect()

    def set_route(self, route: Route | None) -> None:
        """How packets received on this leg are changed before the peer sends them."""
        self._route = None if route is None or route.identity else _route_function(route)
        self._sync_c()

    def set_tap(self, tap: Tap, payload_type: int) -> None:
        """Hand the accepted RTP packets of ``payload_type`` to ``tap`` before they are relayed
        or given to ``sink``; a packet the tap answers True for goes no further."""
        self._tap, self._tap_type = tap, payload_type
        self._refresh()

    def clear_tap(self) -> None:
        self._tap, self._tap_type = None, -1
        self._refresh()

    @property
    def tapped(self) -> int | None:
        """The payload type the tap watches (None: no tap)."""
        return None if self._tap is None else self._tap_type

    # --- the per-packet paths ---------------------------------------------------------------

    def _forward(self) -> None:
        """The fast path: the socket only hears the locked source; relay to the peer as is
        (or changed by the route)."""
        try:
            data = self._recv(RECV_SIZE)
        except OSError:  # nothing after all, or an ICMP error for an earlier send
            return
        self.packets_in += 1
        self.bytes_in += len(data)
        self.last_rx = self._clock()
        self._send_via(self._target, data)

    def _read(self) -> None:
        """The slow path: one packet through the source check, taps and sink."""
        try:
            data, addr = self._sock.recvfrom(RECV_SIZE)
        except OSError:
            return
        self.datagram_received(data, addr)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        """One packet from ``addr`` received on the RTP port (the slow path's work)."""
        if addr != self.source and not self._accept_new_source(data, addr):
            return
        self.packets_in += 1
        self.bytes_in += len(data)
        now = self.last_rx = self._clock()
        self._pass(data)
        if self.state is SourceState.LEARNING and now >= self._learn_until:
            self.state = SourceState.LOCKED  # the accepted source sends on: keep it
            self._refresh()  # after this packet went out: the switch may read queued ones

    def _pass(self, data: bytes) -> None:
        tap = self._tap
        if tap is not None and len(data) > 12 and data[1] & 0x7F == self._tap_type and tap(data):
            return
        peer = self._peer
        if peer is None:
            if self.sink is not None:
                self.sink(data)
            return
        self._send_via(peer, data)

    def _send_via(self, peer: RelayLeg, data: bytes) -> None:
        """Out of ``peer``'s socket to its remote, changed by this leg's route."""
        route = self._route
        out = data if route is None else route(data)
        try:
            peer._out(out)
        except OSError:
            self.dropped_unroutable += 1
            return
        peer.packets_out += 1
        peer.bytes_out += len(out)

    def _accept_new_source(self, data: bytes, addr: Addr) -> bool:
        """A packet from an address other than the accepted source: accept (and maybe latch)?"""
        if len(data) < 12 or data[0] >> 6 != 2:
            self.dropped_strict += 1
            return False
        state = self.state
        if state is SourceState.OPEN:
            self._take(addr)
            return True
        if (
            state is SourceState.LEARNING
            and self.source is not None
            and self._clock() >= self._learn_until
        ):
            self.state = state = SourceState.LOCKED
            self._refresh()
        if state is SourceState.LOCKED:
            self.dropped_strict += 1
            return False
        if addr == self.expected:
            self._candidate = None
            self._take(addr)
            return True
        seq = (data[2] << 8) | data[3]
        if addr == self._candidate and seq == (self._candidate_seq + 1) & 0xFFFF:
            self._candidate_count += 1
        else:
            self._candidate, self._candidate_count = addr, 1
        self._candidate_seq = seq
        if self._candidate_count >= self.options.probation:
            self._candidate = None
            self._take(addr)
            return True
        self.dropped_learning += 1
        return False

    def source_state(self, now: float) -> SourceState:
        """Where source protection stands at ``now`` (the lock is taken lazily)."""
        if (
            self.state is SourceState.LEARNING
            and self.source is not None
            and now >= self._learn_until
        ):
            return SourceState.LOCKED
        return self.state

    def source_state_now(self) -> SourceState:
        """:meth:`source_state` on the leg's own clock."""
        return self.source_state(self._clock())

    def _take(self, addr: Addr) -> None:
        self.source = addr
        if self.options.latch and addr != self.remote:
            self.remote = addr
            self.remote_rtcp = (addr[0], addr[1] + 1)
            self._update_out()

    # --- the fast path's switch ---------------------------------------------------------------

    def _refresh(self) -> None:
        """Take the fast path when it gives the same result as the slow one, else leave it."""
        poller = self._poller
        if poller is None or self._closed:
            return
        peer = self._peer
        fast = (
            poller.batched
            and _LIBC is not None
            and peer is not None
            and self._tap is None
            and self.state is SourceState.LOCKED
            and self.source is not None
        )
        if fast and self._connected != self.source:
            fast = self._connect()
        if fast != self._fast:
            if fast:
                self._fast_base = self.packets_in
            else:
                self._fast_total += self.packets_in - self._fast_base
            self._fast = fast
            poller.set_handler(self._sock.fileno(), self._forward if fast else self._read)
        self._target = peer if fast and peer is not None else self
        self._sync_c()

    def _sync_c(self) -> None:
        """Hand the fast path to the C table when it would do exactly what :meth:`_forward`
        does (no route to apply, the monotonic clock), else take it back."""
        poller = self._poller
        table = None if poller is None else poller.table
        if table is None:
            return
        target = self._target
        dest: bytes | None = None
        if (
            self._fast
            and not self._closed
            and self._route is None
            and self._clock is time.monotonic
            and target is not self
            and not target._closed
            and target._poller is poller
            and target.remote is not None
        ):
            if target.remote == target._connected:
                dest = b""
            else:
                dest = _sockaddr(target._sock.family, target.remote)
        old = self._c_target
        if old is not None and (dest is None or old is not target):
            old._feeders.discard(self)
            self._c_target = None
        fd = self._sock.fileno()
        if dest is None:
            table.deactivate(fd)
            return
        table.activate(fd, target._sock.fileno(), dest)
        target._feeders.add(self)
        self._c_target = target

    def _connect(self) -> bool:
        """Connect the socket to the locked source, then read what was queued before through
        the source check (a connected socket no longer says who sent a packet)."""
        source = self.source
        if source is None:
            return False
        try:
            self._sock.connect(source)
        except (OSError, TypeError):
            return False
        self._connected = source
        self._update_out()
        for _ in range(DRAIN_LIMIT):
            try:
                data, addr = self._sock.recvfrom(RECV_SIZE)
            except OSError:
                break
            self.datagram_received(data, addr)
        return True

    def _disconnect(self) -> None:
        if self._connected is None:
            return
        if _dissolve(self._sock):
            self._connected = None
            self._update_out()

    def _update_out(self) -> None:
        """How this leg sends to ``remote``: ``send`` when connected there, else ``sendto``."""
        remote = self.remote
        if self._closed or remote is None or self._poller is None:
            self._out = _no_route
        elif remote == self._connected:
            self._out = self._sock.send
        else:
            sendto = self._sock.sendto

            def out(data: bytes | bytearray) -> int:
                return sendto(data, remote)

            self._out = out
        for feeder in list(self._feeders):
            feeder._sync_c()

    # --- sending for players, Echo --------------------------------------------------------

    def send(self, data: bytes | bytearray) -> bool:
        """Send one RTP packet to the remote address; False if there is none yet."""
        if self.remote is None or self._poller is None or self._closed:
            return False
        try:
            self._out(data)
        except OSError:
            return True  # the network lost it; the caller still paced it
        self.packets_out += 1
        self.bytes_out += len(data)
        return True

    # --- the call layer's view --------------------------------------------------------------

    def idle_for(self, now: float) -> float:
        """Seconds since the last accepted RTP packet (or since the leg was made)."""
        return max(0.0, now - max(self.last_rx, self._c_counts()[5]))

    def stats(self) -> LegStats:
        c = self._c_counts()
        return LegStats(
            self.packets_in + c[0],
            self.bytes_in + c[1],
            self.packets_out + c[2],
            self.bytes_out + c[3],
            self.rtcp_in,
            self.rtcp_out,
            self.dropped_strict,
            self.dropped_learning,
            self.dropped_unroutable + c[4],
            self._fast_total + (self.packets_in - self._fast_base if self._fast else 0) + c[0],
        )

    def _c_counts(self) -> tuple[int, int, int, int, int, float]:
        """What the C table counted for this leg's socket (in, bytes, out, bytes, dropped,
        last receive time)."""
        poller = self._poller
        if poller is None or poller.table is None or self._closed:
            return _NO_COUNTS
        return poller.table.counters(self._sock.fileno())

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop relaying and free the ports at once (idempotent)."""
        if self._closed:
            return
        peer = self._peer
        self._peer = None
        if peer is not None and peer._peer is self:
            peer.peer = None
        self.sink = None
        self._tap = None
        if self._fast:
            self._fast_total += self.packets_in - self._fast_base
            self._fast = False
        c = self._c_counts()
        self.packets_in += c[0]
        self.bytes_in += c[1]
        self.packets_out += c[2]
        self.bytes_out += c[3]
        self.dropped_unroutable += c[4]
        self.last_rx = max(self.last_rx, c[5])
        self._fast_total += c[0]
        self._closed = True
        self._out = _no_route
        for feeder in list(self._feeders):
            feeder._sync_c()
        if self._c_target is not None:
            self._c_target._feeders.discard(self)
            self._c_target = None
        if self._poller is not None:
            self._poller.remove(self._sock.fileno())
            self._poller = None
        if self.rtcp_transport is not None:
            self.rtcp_transport.abort()
        self.pair.rtp.close()
        self.pair.rtcp.close()
        if self._on_close is not None:
            self._on_close(self.pair)


def _route_function(route: Route) -> Callable[[bytes], bytes | bytearray]:
    octet1, tables = route.octet1, dict(route.payload)

    def apply(data: bytes) -> bytes | bytearray:
        first = data[1]
        table = tables.get(first & 0x7F)
        changed = octet1[first]
        if table is None:
            if changed == first:
                return data
            return b"".join((data[:1], _OCTET[changed], data[2:]))
        start = header_length(data)
        end = len(data) - (data[-1] if data[0] & 0x20 else 0)
        buf = bytearray(data)
        buf[1] = changed
        if start < end:
            buf[start:end] = data[start:end].translate(table)
        return buf

    return apply


class Relay:
    """Two legs joined: each forwards what it accepts to the other, changed by its route."""

    def __init__(
        self, a: RelayLeg, b: RelayLeg, *, a_to_b: Route | None = None, b_to_a: Route | None = None
    ) -> None:
        self.a, self.b = a, b
        a.set_route(a_to_b)
        b.set_route(b_to_a)
        a.peer, b.peer = b, a

    def unjoin(self) -> None:
        """Stop forwarding; both legs stay open (their ``sink`` gets packets again)."""
        if self.a.peer is self.b:
            self.a.peer = None
        if self.b.peer is self.a:
            self.b.peer = None

    def close(self) -> None:
        """Stop forwarding and free both legs' ports."""
        self.unjoin()
        self.a.close()
        self.b.close()
