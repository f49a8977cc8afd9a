"""Property: however a TCP stream is cut into reads, the connection glue hands the same
messages to the stack, in order, and answers every CRLFCRLF ping with one CRLF pong
(RFC 3261 §18.3, RFC 5626 §3.5.1). Drives :class:`TcpConnection` with a fake transport."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.sip.events import Addr
from pypbx.transport.tcp import TcpConfig, TcpConnection, TcpTransport


class FakeTransport:
    """Just what TcpConnection uses of an asyncio transport."""

    def __init__(self, peer: Addr) -> None:
        self.peer = peer
        self.written: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str) -> object:
        return self.peer if name == "peername" else None

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _message(n: int, body: bytes) -> bytes:
    return (
        f"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h:5060;branch=z9hG4bK{n}\r\n"
        f"From: <sip:x@y>;tag={n}\r\nTo: <sip:a@b>\r\nCall-ID: {n}\r\nCSeq: {n} MESSAGE\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


PING = b"\r\n\r\n"
items = st.lists(
    st.one_of(
        st.just(PING),
        st.builds(_message, st.integers(0, 999), st.binary(max_size=40)),
    ),
    max_size=6,
)


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


async def _feed(stream: bytes, cuts: list[int]) -> tuple[list[bytes], list[bytes], bool]:
    got: list[bytes] = []
    owner = TcpTransport(lambda data, addr: got.append(data), config=TcpConfig())
    conn = TcpConnection(owner)
    fake = FakeTransport(("127.0.0.1", 40000))
    conn.connection_made(fake)  # type: ignore[arg-type]
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    for start, end in itertools.pairwise(points):
        conn.data_received(stream[start:end])
    await owner.close()
    return got, fake.written, owner.connections == {}


@settings(max_examples=150, deadline=None)
@given(parts=items, cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_any_split_gives_the_same_messages(
    runner: asyncio.Runner, parts: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(parts)
    got, written, emptied = runner.run(_feed(stream, cuts))
    assert got == [p for p in parts if p != PING]
    assert written == [b"\r\n"] * parts.count(PING)
    assert emptied


def test_message_over_the_limit_closes(runner: asyncio.Runner) -> None:
    async def main() -> tuple[list[bytes], bool]:
        got: list[bytes] = []
        owner = TcpTransport(lambda d, a: got.append(d), config=TcpConfig(max_message_size=200))
        conn = TcpConnection(owner)
        fake = FakeTransport(("127.0.0.1", 40001))
        conn.connection_made(fake)  # type: ignore[arg-type]
        conn.data_received(_message(1, b"x" * 300) + _message(2, b""))
        return got, fake.closed

    got, closed = runner.run(main())
    assert got == []  # nothing after the bad frame either: the stream cannot resync
    assert closed
