"""Loopback helpers for the transport glue tests: a raw UDP peer, a raw TCP peer and
wire-format request builders (no pypbx code on the sending side)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from pypbx.sip.events import Addr


def v6_available() -> bool:
    """True when ``::1`` can be bound."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def options(
    target: Addr,
    sent_by: Addr,
    *,
    call_id: str = "opt-1@test",
    branch: str = "z9hG4bKopt1",
    transport: str = "UDP",
    rport: bool = True,
    cseq: int = 1,
) -> bytes:
    """An out-of-dialog OPTIONS as a phone would send it."""
    host, port = target
    via = f"SIP/2.0/{transport} {bracket(sent_by[0])}:{sent_by[1]};branch={branch}"
    return (
        f"OPTIONS sip:{bracket(host)}:{port} SIP/2.0\r\n"
        f"Via: {via}{';rport' if rport else ''}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{bracket(sent_by[0])}>;tag=t{cseq}\r\n"
        f"To: <sip:{bracket(host)}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def header(data: bytes, name: str) -> str | None:
    """The first value of header ``name`` in a wire message (None if absent)."""
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


class _Queue(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Addr]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, (str(addr[0]), int(addr[1]))))


class UdpPeer:
    """A raw UDP socket on loopback that collects what it receives."""

    def __init__(self, transport: asyncio.DatagramTransport, proto: _Queue) -> None:
        self._transport = transport
        self._proto = proto
        sockname = transport.get_extra_info("sockname")
        self.addr: Addr = (str(sockname[0]), int(sockname[1]))

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> UdpPeer:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(_Queue, local_addr=(host, 0))
        return cls(transport, proto)

    def send(self, data: bytes, addr: Addr) -> None:
        self._transport.sendto(data, addr)

    async def recv(self, timeout: float = 2.0) -> tuple[bytes, Addr]:
        return await asyncio.wait_for(self._proto.queue.get(), timeout)

    async def nothing(self, wait: float = 0.2) -> bool:
        """True if nothing arrives within ``wait`` seconds."""
        try:
            await asyncio.wait_for(self._proto.queue.get(), wait)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self._transport.close()


async def read_message(reader: asyncio.StreamReader, timeout: float = 2.0) -> bytes:
    """One Content-Length framed message from a stream (leading CRLFs skipped)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    head = head.lstrip(b"\r\n")
    length = int(header(head, "Content-Length") or "0")
    body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
    return head + body
