"""SipStack over TCP on loopback: OPTIONS, stream framing (split writes, two messages in
one write), CRLF keep-alive, limits (size, connections per host), idle close, outgoing
connections and their reuse (glue tests, real sockets)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from pypbx.sip.events import Event, RequestReceived
from pypbx.sip.message import Request, make_request
from pypbx.transport.loop import run
from pypbx.transport.stack import SipStack, StackConfig
from pypbx.transport.tcp import TcpConfig
from tests.transport.wire import header, options, read_message, v6_available

T = TypeVar("T")


def in_loop(main: Callable[[], Awaitable[T]], *, uvloop: bool = True) -> T:
    async def wrapper() -> T:
        return await asyncio.wait_for(main(), 10)

    return run(wrapper(), prefer_uvloop=uvloop)


def tcp_stack(
    host: str = "127.0.0.1",
    limits: TcpConfig | None = None,
    handler: Callable[[SipStack, Event], None] | None = None,
) -> SipStack:
    config = StackConfig(bindaddr=host, bindport=0, tcp=True, tcp_limits=limits or TcpConfig())
    return SipStack(config, handler, rng=random.Random(3))


async def connect(st: SipStack) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    addr = st.tcp_addr
    assert addr is not None
    return await asyncio.open_connection(addr[0], addr[1])


def tcp_options(st: SipStack, writer: asyncio.StreamWriter, call_id: str, n: int = 1) -> bytes:
    addr = st.tcp_addr
    assert addr is not None
    local = writer.get_extra_info("sockname")
    return options(
        addr,
        (local[0], local[1]),
        transport="TCP",
        call_id=call_id,
        branch=f"z9hG4bKtcp{call_id}",
        cseq=n,
    )


@pytest.mark.parametrize("uvloop", [True, False], ids=["uvloop", "asyncio"])
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_options_over_tcp(host: str, uvloop: bool) -> None:
    if host == "::1" and not v6_available():
        pytest.skip("no IPv6 loopback")

    async def main() -> bytes:
        async with tcp_stack(host) as st:
            reader, writer = await connect(st)
            writer.write(tcp_options(st, writer, "one"))
            data = await read_message(reader)
            writer.close()
            return data

    data = in_loop(main, uvloop=uvloop)
    assert data.startswith(b"SIP/2.0 200 OK")
    assert header(data, "Allow")
    assert header(data, "Accept") == "application/sdp"
    assert header(data, "Supported") is not None
    assert "SIP/2.0/TCP" in (header(data, "Via") or "")


def test_split_writes_are_reassembled() -> None:
    async def main() -> bytes:
        async with tcp_stack() as st:
            reader, writer = await connect(st)
            msg = tcp_options(st, writer, "split")
            for i in range(0, len(msg), 7):
                writer.write(msg[i : i + 7])
                await writer.drain()
                await asyncio.sleep(0)
            data = await read_message(reader)
            writer.close()
            return data

    data = in_loop(main)
    assert data.startswith(b"SIP/2.0 200 OK")
    assert header(data, "Call-ID") == "split"


def test_two_messages_in_one_write() -> None:
    async def main() -> list[str | None]:
        async with tcp_stack() as st:
            reader, writer = await connect(st)
            writer.write(tcp_options(st, writer, "first") + tcp_options(st, writer, "second"))
            got = [header(await read_message(reader), "Call-ID") for _ in range(2)]
            writer.close()
            return got

    assert in_loop(main) == ["first", "second"]


def test_crlf_keepalive_answered_with_crlf() -> None:
    async def main() -> tuple[bytes, bytes]:
        async with tcp_stack() as st:
            reader, writer = await connect(st)
            writer.write(b"\r\n\r\n")
            pong = await asyncio.wait_for(reader.readexactly(2), 2)
            writer.write(b"\r\n")  # a pong from the peer: nothing to answer
            writer.write(tcp_options(st, writer, "after-ping"))
            data = await read_message(reader)
            writer.close()
            return pong, data

    pong, data = in_loop(main)
    assert pong == b"\r\n"
    assert header(data, "Call-ID") == "after-ping"


def test_idle_connection_is_closed() -> None:
    limits = TcpConfig(idle_timeout=0.2)

    async def main() -> tuple[bytes, float, int]:
        async with tcp_stack(limits=limits) as st:
            reader, writer = await connect(st)
            writer.write(tcp_options(st, writer, "idle"))
            await read_message(reader)
            start = st.loop.time()
            try:
                rest = await asyncio.wait_for(reader.read(), 3)  # EOF when the stack closes
            except ConnectionResetError:
                rest = b""
            took = st.loop.time() - start
            assert st.tcp is not None
            left = len(st.tcp.connections)
            writer.close()
            return rest, took, left

    rest, took, left = in_loop(main)
    assert rest == b""
    assert 0.15 <= took < 1.5
    assert left == 0


def test_busy_connection_is_not_closed_while_a_transaction_waits() -> None:
    limits = TcpConfig(idle_timeout=0.1)
    held: list[RequestReceived] = []

    def handler(st: SipStack, event: Event) -> None:
        if isinstance(event, RequestReceived):
            held.append(event)  # answer later

    async def main() -> bytes:
        async with tcp_stack(limits=limits, handler=handler) as st:
            reader, writer = await connect(st)
            msg = tcp_options(st, writer, "slow").replace(b"OPTIONS", b"MESSAGE")
            writer.write(msg)
            await asyncio.sleep(0.4)  # several idle sweeps
            st.reply(held[0], 200)
            data = await read_message(reader)
            writer.close()
            return data

    data = in_loop(main)
    assert data.startswith(b"SIP/2.0 200 OK")
    assert header(data, "Call-ID") == "slow"


def test_oversized_message_closes_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pypbx.transport")
    limits = TcpConfig(max_message_size=600)

    async def main() -> bytes:
        async with tcp_stack(limits=limits) as st:
            reader, writer = await connect(st)
            msg = tcp_options(st, writer, "big")
            head, _ = msg.split(b"Content-Length: 0", 1)
            writer.write(head + b"Content-Length: 4000\r\n\r\n" + b"x" * 4000)
            rest = await asyncio.wait_for(reader.read(), 3)
            writer.close()
            # the listener still works
            reader2, writer2 = await connect(st)
            writer2.write(tcp_options(st, writer2, "small"))
            await read_message(reader2)
            writer2.close()
            return rest

    assert in_loop(main) == b""
    lines = [r.getMessage() for r in caplog.records if "closing connection" in r.getMessage()]
    assert len(lines) == 1
    assert "message too large" in lines[0]
    assert "127.0.0.1:" in lines[0]


def test_connections_per_host_are_limited(caplog: pytest.LogCaptureFixture) -> None:
    limits = TcpConfig(max_connections_per_host=2)

    async def main() -> tuple[list[bool], int]:
        async with tcp_stack(limits=limits) as st:
            conns = [await connect(st) for _ in range(3)]
            await asyncio.sleep(0.05)
            served: list[bool] = []
            for reader, writer in conns:
                writer.write(tcp_options(st, writer, f"c{len(served)}"))
                try:
                    await read_message(reader, timeout=1)
                    served.append(True)
                except (asyncio.IncompleteReadError, ConnectionError):
                    served.append(False)
            for _, writer in conns:
                writer.close()
            assert st.tcp is not None
            return served, st.tcp.refused

    served, refused = in_loop(main)
    assert served == [True, True, False]
    assert refused == 1


# --- outgoing connections ------------------------------------------------------------


def _message(target: tuple[str, int], local: tuple[str, int], n: int) -> Request:
    return make_request(
        "MESSAGE",
        f"sip:1000@{target[0]}:{target[1]};transport=tcp",
        from_="<sip:pypbx@pypbx.test>;tag=m1",
        to="<sip:1000@pypbx.test>",
        call_id=f"msg-{n}@test",
        cseq=n,
        via=f"SIP/2.0/TCP {local[0]}:{local[1]}",
        body=b"hi",
        content_type="text/plain",
    )


def test_requests_over_tcp_reuse_one_connection() -> None:
    sources: list[tuple[str, int]] = []

    def handler(st: SipStack, event: Event) -> None:
        if isinstance(event, RequestReceived):
            sources.append(event.source)
            st.reply(event, 200)

    async def main() -> tuple[list[int], int]:
        async with tcp_stack(handler=handler) as server, tcp_stack() as client:
            dest = server.tcp_addr
            local = client.tcp_addr
            assert dest is not None
            assert local is not None
            statuses: list[int] = []
            for n in (1, 2):
                resp = await client.request(_message(dest, local, n), dest, transport="TCP")
                statuses.append(resp.status)
            assert client.tcp is not None
            return statuses, len(client.tcp.connections)

    statuses, conns = in_loop(main)
    assert statuses == [200, 200]
    assert conns == 1
    assert len(sources) == 2
    assert sources[0] == sources[1]  # same connection, same source port


def test_tcp_connect_failure_is_a_local_503() -> None:
    async def main() -> int:
        async with tcp_stack() as client:
            # a port that was free a moment ago: connection refused
            probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
            port = probe.sockets[0].getsockname()[1]
            probe.close()
            await probe.wait_closed()
            local = client.tcp_addr
            assert local is not None
            dest = ("127.0.0.1", port)
            resp = await client.request(_message(dest, local, 1), dest, transport="TCP")
            return resp.status

    assert in_loop(main) == 503


def test_ipv6_wildcard_listener_accepts_ipv4() -> None:
    if not v6_available():
        pytest.skip("no IPv6 loopback")

    async def main() -> list[bytes]:
        async with tcp_stack("::") as st:
            port = st.local_addr[1]
            got: list[bytes] = []
            for host in ("127.0.0.1", "::1"):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(tcp_options(st, writer, f"via-{host}"))
                got.append(await read_message(reader))
                writer.close()
            return got

    replies = in_loop(main)
    assert [r.split(b"\r\n", 1)[0] for r in replies] == [b"SIP/2.0 200 OK"] * 2


def test_response_reopens_connection_to_sent_by_when_closed() -> None:
    """§18.2.2: the request's connection closed before the answer: the response goes over
    a new connection to received/sent-by host and the sent-by port."""
    held: list[RequestReceived] = []

    def handler(st: SipStack, event: Event) -> None:
        if isinstance(event, RequestReceived):
            held.append(event)

    async def main() -> bytes:
        arrived: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            arrived.put_nowait(await read_message(r))
            w.close()

        phone = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        phone_port = phone.sockets[0].getsockname()[1]
        async with tcp_stack(handler=handler) as st:
            _reader, writer = await connect(st)
            addr = st.tcp_addr
            assert addr is not None
            msg = options(
                addr, ("127.0.0.1", phone_port), transport="TCP", call_id="late", rport=False
            ).replace(b"OPTIONS", b"MESSAGE")
            writer.write(msg)
            await writer.drain()
            while not held:
                await asyncio.sleep(0.01)
            writer.close()
            await asyncio.sleep(0.05)  # the stack sees the close
            st.reply(held[0], 200)
            data = await asyncio.wait_for(arrived.get(), 3)
        phone.close()
        return data

    data = in_loop(main)
    assert data.startswith(b"SIP/2.0 200 OK")
    assert header(data, "Call-ID") == "late"


def test_accept_filter_refuses_and_close_host_drops_a_banned_source() -> None:
    async def main() -> tuple[bool, int, int, int]:
        async with tcp_stack() as st:
            assert st.tcp is not None
            reader, writer = await connect(st)
            writer.write(tcp_options(st, writer, "before"))
            await read_message(reader, timeout=1)
            closed = st.tcp.close_host("127.0.0.1")  # the source was just banned
            gone = await reader.read() == b""  # EOF: the connection was closed
            st.tcp.accept_filter = lambda addr: addr[0] != "127.0.0.1"
            reader2, writer2 = await connect(st)
            await asyncio.sleep(0.05)
            refused_eof = await asyncio.wait_for(reader2.read(), 1) == b""
            writer.close()
            writer2.close()
            return gone and refused_eof, closed, st.tcp.refused, len(st.tcp.connections)

    ok, closed, refused, left = in_loop(main)
    assert ok
    assert (closed, refused, left) == (1, 1, 0)
