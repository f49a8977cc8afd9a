"""SipStack over UDP on loopback sockets: OPTIONS, §18.2.2 routing, bad input, client
requests with digest auth, timeouts and send failures (glue tests, real sockets)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from pypbx.sip.auth import DigestServer, Verdict, challenge_header, credentials_header
from pypbx.sip.events import Event, RequestReceived
from pypbx.sip.message import Request, make_request
from pypbx.sip.transaction import TimerConfig
from pypbx.transport import udp as udp_module
from pypbx.transport.loop import run
from pypbx.transport.stack import SipStack, StackConfig
from pypbx.transport.udp import RECEIVE_BUFFER, UdpTransport
from tests.transport.wire import UdpPeer, header, options, v6_available

T = TypeVar("T")

LOOPS = [pytest.param(True, id="uvloop"), pytest.param(False, id="asyncio")]
FAST = TimerConfig(t1=0.02, t2=0.08, t4=0.1)


def in_loop(main: Callable[[], Awaitable[T]], *, uvloop: bool = True) -> T:
    async def wrapper() -> T:
        return await asyncio.wait_for(main(), 10)

    return run(wrapper(), prefer_uvloop=uvloop)


def stack(host: str = "127.0.0.1", **kw: object) -> SipStack:
    handler = kw.pop("handler", None)
    config = StackConfig(bindaddr=host, bindport=0, **kw)  # type: ignore[arg-type]
    return SipStack(config, handler, rng=random.Random(7))  # type: ignore[arg-type]


@pytest.mark.parametrize("uvloop", LOOPS)
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_options_answered_200(host: str, uvloop: bool) -> None:
    if host == "::1" and not v6_available():
        pytest.skip("no IPv6 loopback")

    async def main() -> bytes:
        async with stack(host) as st:
            peer = await UdpPeer.open(host)
            peer.send(options(st.local_addr, peer.addr), st.local_addr)
            data, src = await peer.recv()
            assert src == st.local_addr
            peer.close()
            return data

    data = in_loop(main, uvloop=uvloop)
    assert data.startswith(b"SIP/2.0 200 OK\r\n")
    allow = header(data, "Allow") or ""
    assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER"} <= {
        m.strip() for m in allow.split(",")
    }
    assert header(data, "Accept") == "application/sdp"
    assert header(data, "Supported") is not None
    via = header(data, "Via") or ""
    # RFC 3581: rport filled in with the source port, received with the source address
    assert f"received={host}" in via
    assert ";rport=" in via


def test_response_routing_follows_via() -> None:
    """§18.2.2: without rport the response goes to the sent-by port (here another
    socket than the sender's); with rport it goes back to the source port."""

    async def main() -> tuple[bool, bytes, bytes]:
        async with stack() as st:
            sender = await UdpPeer.open()
            listener = await UdpPeer.open()
            sender.send(
                options(st.local_addr, listener.addr, rport=False, call_id="a"), st.local_addr
            )
            routed, _ = await listener.recv()
            sender.send(
                options(st.local_addr, listener.addr, call_id="b", branch="z9hG4bKb"),
                st.local_addr,
            )
            back, _ = await sender.recv()
            quiet = await listener.nothing(0.1)
            sender.close()
            listener.close()
            return quiet, routed, back

    quiet, routed, back = in_loop(main)
    assert header(routed, "Call-ID") == "a"
    assert header(back, "Call-ID") == "b"
    assert quiet


@pytest.mark.parametrize(
    ("data", "answer"),
    [
        pytest.param(b"\x00\xff garbage \r\n\r\n", None, id="garbage"),
        pytest.param(b"", None, id="empty"),
        pytest.param(
            b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKq\r\n"
            b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: bad-cseq\r\n"
            b"CSeq: nine INVITE\r\nContent-Length: 0\r\n\r\n",
            b"SIP/2.0 400 ",
            id="bad-cseq",
        ),
        pytest.param(
            b"OPTIONS sip:x@y SIP/7.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKv\r\n"
            b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: bad-version\r\n"
            b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            b"SIP/2.0 505 ",
            id="bad-version",
        ),
    ],
)
def test_malformed_datagram_answered_or_dropped_and_transport_lives(
    data: bytes, answer: bytes | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pypbx.transport")

    async def main() -> tuple[bytes | None, bytes, tuple[str, int]]:
        async with stack() as st:
            peer = await UdpPeer.open()
            peer.send(data.replace(b"{port}", str(peer.addr[1]).encode()), st.local_addr)
            first = None
            if answer is None:
                assert await peer.nothing(0.15)
            else:
                first, _ = await peer.recv()
            peer.send(options(st.local_addr, peer.addr), st.local_addr)
            alive, _ = await peer.recv()
            peer.close()
            return first, alive, peer.addr

    first, alive, src = in_loop(main)
    if answer is None:
        assert first is None
    else:
        assert first is not None
        assert first.startswith(answer)
    assert alive.startswith(b"SIP/2.0 200 OK")
    rejected = [r for r in caplog.records if "rejected message" in r.getMessage()]
    if data:
        assert len(rejected) == 1  # one line per bad datagram
        assert all(f"127.0.0.1:{src[1]}" in r.getMessage() for r in rejected)
        assert all("\n" not in r.getMessage() for r in rejected)


def test_handler_exception_is_one_log_line_and_transport_lives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(st: SipStack, event: Event) -> None:
        if isinstance(event, RequestReceived):
            raise RuntimeError("boom in the TU")

    async def main() -> tuple[bytes, int]:
        async with stack(handler=handler) as st:
            peer = await UdpPeer.open()
            msg = options(st.local_addr, peer.addr).replace(b"OPTIONS", b"MESSAGE")
            peer.send(msg, st.local_addr)
            await peer.nothing(0.1)
            peer.send(options(st.local_addr, peer.addr, call_id="after"), st.local_addr)
            alive, _ = await peer.recv()
            peer.close()
            return alive, st.internal_errors

    alive, errors = in_loop(main)
    assert alive.startswith(b"SIP/2.0 200 OK")
    assert errors == 1
    lines = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert len(lines) == 1
    assert "boom in the TU" in lines[0].getMessage()
    assert lines[0].exc_info is None  # one line, no traceback


def test_no_handler_answers_501() -> None:
    async def main() -> bytes:
        async with stack() as st:
            peer = await UdpPeer.open()
            msg = options(st.local_addr, peer.addr).replace(b"OPTIONS", b"MESSAGE")
            peer.send(msg, st.local_addr)
            data, _ = await peer.recv()
            peer.close()
            return data

    assert in_loop(main).startswith(b"SIP/2.0 501 ")


# --- client side: request() between two stacks ---------------------------------------


def _registrar(
    password: str, seen: list[str], status: int = 401
) -> Callable[[SipStack, Event], None]:
    digest = DigestServer(b"k" * 16, "pypbx.test")
    ask, answer = challenge_header(status), credentials_header(status)

    def handler(st: SipStack, event: Event) -> None:
        if not isinstance(event, RequestReceived):
            return
        req = event.request
        seen.append(f"{req.cseq.number} {req.top_via.branch}")
        creds = req.get(answer)
        now = st.loop.time()
        if creds is None:
            st.reply(event, status, headers=[(ask, digest.challenge(now))])
            return
        verdict = digest.verify(creds, req.method, password=password, now=now)
        st.reply(event, 200 if verdict is Verdict.OK else 403)

    return handler


def _register(target: tuple[str, int], local: tuple[str, int]) -> Request:
    return make_request(
        "REGISTER",
        f"sip:{target[0]}:{target[1]}",
        from_="<sip:1000@pypbx.test>;tag=r1",
        to="<sip:1000@pypbx.test>",
        call_id="reg-1@test",
        cseq=5,
        via=f"SIP/2.0/UDP {local[0]}:{local[1]};rport",
        contact=f"<sip:1000@{local[0]}:{local[1]}>",
    )


@pytest.mark.parametrize("challenge", [401, 407])
@pytest.mark.parametrize(("password", "status"), [("secret", 200), ("wrong", 403)])
def test_request_answers_challenge_with_credentials(
    password: str, status: int, challenge: int
) -> None:
    seen: list[str] = []

    async def main() -> int:
        async with (
            stack(handler=_registrar("secret", seen, challenge)) as server,
            stack() as client,
        ):
            req = _register(server.local_addr, client.local_addr)
            resp = await client.request(req, server.local_addr, auth=("1000", password))
            return resp.status

    assert in_loop(main) == status
    # the retry is a new transaction (new branch) with CSeq + 1 (§22.2)
    assert len(seen) == 2
    assert seen[0].split()[0] == "5"
    assert seen[1].split()[0] == "6"
    assert seen[0].split()[1] != seen[1].split()[1]
    assert all(entry.split()[1].startswith("z9hG4bK") for entry in seen)  # magic cookie


def test_request_without_credentials_returns_the_401() -> None:
    async def main() -> int:
        async with stack(handler=_registrar("secret", [])) as server, stack() as client:
            req = _register(server.local_addr, client.local_addr)
            return (await client.request(req, server.local_addr)).status

    assert in_loop(main) == 401


def test_request_timeout_is_a_local_408() -> None:
    async def main() -> tuple[int, float]:
        async with stack(timers=FAST) as client:
            silent = await UdpPeer.open()
            req = _register(silent.addr, client.local_addr)
            start = client.loop.time()
            resp = await client.request(req, silent.addr)
            silent.close()
            return resp.status, client.loop.time() - start

    status, took = in_loop(main)
    assert status == 408
    assert 64 * FAST.t1 * 0.9 <= took < 64 * FAST.t1 + 1.0  # Timer F


def test_request_timer_retransmits_over_udp() -> None:
    async def main() -> list[float]:
        async with stack(timers=FAST) as client:
            silent = await UdpPeer.open()
            req = _register(silent.addr, client.local_addr)
            task = asyncio.ensure_future(client.request(req, silent.addr))
            times: list[float] = []
            while len(times) < 4:
                await silent.recv()
                times.append(client.loop.time())
            task.cancel()
            silent.close()
            return times

    times = in_loop(main)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Timer E: T1, 2*T1, 4*T1 (capped at T2) between transmissions
    for gap, expected in zip(gaps, (0.02, 0.04, 0.08), strict=True):
        assert expected * 0.8 <= gap < expected + 0.1


def test_request_to_a_name_is_a_local_503() -> None:
    async def main() -> int:
        async with stack() as client:
            req = _register(("nowhere.invalid", 5060), client.local_addr)
            return (await client.request(req, ("nowhere.invalid", 5060))).status

    assert in_loop(main) == 503


def test_close_answers_waiting_requests_with_503() -> None:
    async def main() -> int:
        client = stack()
        await client.start()
        silent = await UdpPeer.open()
        task = asyncio.ensure_future(
            client.request(_register(silent.addr, client.local_addr), silent.addr)
        )
        await silent.recv()  # the request is on the wire
        await client.close()
        silent.close()
        return (await task).status

    assert in_loop(main) == 503


def _dual_stack() -> bool:
    try:
        with open("/proc/sys/net/ipv6/bindv6only") as f:
            return v6_available() and f.read().strip() == "0"
    except OSError:
        return False


@pytest.mark.parametrize("uvloop", LOOPS)
def test_ipv6_wildcard_serves_ipv4_peers(uvloop: bool) -> None:
    if not _dual_stack():
        pytest.skip("no dual-stack IPv6 sockets here")

    async def main() -> bytes:
        async with stack("::") as st:
            peer = await UdpPeer.open("127.0.0.1")
            target = ("127.0.0.1", st.local_addr[1])
            peer.send(options(target, peer.addr), target)
            data, _ = await peer.recv()
            peer.close()
            return data

    data = in_loop(main, uvloop=uvloop)
    assert data.startswith(b"SIP/2.0 200 OK")
    assert "received=127.0.0.1" in (header(data, "Via") or "")  # not ::ffff:127.0.0.1


@pytest.mark.parametrize("uvloop", LOOPS)
def test_receive_buffer_is_raised_for_bursts(uvloop: bool) -> None:
    async def main() -> int:
        async with stack() as st:
            assert st.udp is not None
            return st.udp.receive_buffer

    size = in_loop(main, uvloop=uvloop)
    with open("/proc/sys/net/core/rmem_max") as f:
        rmem_max = int(f.read())
    # Linux reports twice the size it accepted (bookkeeping), clamped to rmem_max
    assert size >= 2 * min(rmem_max, RECEIVE_BUFFER) - 1


class _FakeDatagramTransport:
    """What UdpTransport uses of an asyncio datagram transport, recording sendto."""

    def __init__(self, family: socket.AddressFamily, sockname: tuple[str, int]) -> None:
        self.family = family
        self.sockname = sockname
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def get_extra_info(self, name: str) -> object:
        return self.sockname if name == "sockname" else None

    def is_closing(self) -> bool:
        return False

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))


def _opened(family: socket.AddressFamily, host: str) -> tuple[UdpTransport, _FakeDatagramTransport]:
    udp = UdpTransport(lambda data, addr: None)
    fake = _FakeDatagramTransport(family, (host, 5060))
    udp.connection_made(fake)  # type: ignore[arg-type]
    udp.family = family  # no socket object in the fake: set what connection_made would read
    return udp, fake


@pytest.mark.parametrize(
    ("family", "host", "sent_to"),
    [
        (socket.AF_INET, "192.0.2.7", "192.0.2.7"),
        (socket.AF_INET, "sip.example.com", None),  # names need a resolver above this layer
        (socket.AF_INET, "2001:db8::1", None),  # not this socket's family
        (socket.AF_INET6, "[2001:db8::1]", "2001:db8::1"),
        (socket.AF_INET6, "192.0.2.7", None),  # IPv6-only socket
    ],
)
def test_send_targets_are_decided_once_per_host(
    family: socket.AddressFamily, host: str, sent_to: str | None
) -> None:
    udp, fake = _opened(family, "::" if family == socket.AF_INET6 else "0.0.0.0")
    for _ in range(3):  # the second and third sends use the remembered verdict
        assert udp.send(b"x", (host, 5060)) is (sent_to is not None)
    assert fake.sent == ([(b"x", (sent_to, 5060))] * 3 if sent_to else [])
    assert udp.sent == len(fake.sent)
    assert not udp.send(b"x", (host, 0))  # the port is checked on every send


def test_send_target_memo_is_bounded_and_follows_the_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(udp_module, "TARGET_CACHE", 4)
    udp, fake = _opened(socket.AF_INET, "0.0.0.0")
    for i in range(20):
        assert udp.send(b"x", (f"192.0.2.{i}", 5060))
        assert len(udp._targets) <= 4
    assert [addr for _, addr in fake.sent] == [(f"192.0.2.{i}", 5060) for i in range(20)]
    # a new socket of the other family: what was sendable before is not any more
    fake6 = _FakeDatagramTransport(socket.AF_INET6, ("::", 5060))
    udp.connection_made(fake6)  # type: ignore[arg-type]
    udp.family = socket.AF_INET6
    assert not udp.send(b"x", ("192.0.2.19", 5060))
    assert fake6.sent == []


@pytest.mark.parametrize(
    ("family", "sockaddr", "source"),
    [
        (socket.AF_INET, ("192.0.2.7", 5060), ("192.0.2.7", 5060)),
        (socket.AF_INET6, ("::ffff:192.0.2.7", 5060, 0, 0), ("192.0.2.7", 5060)),
        (socket.AF_INET6, ("2001:db8::1", 5062, 0, 0), ("2001:db8::1", 5062)),
    ],
)
def test_datagram_source_is_reported_as_host_and_port(
    family: socket.AddressFamily, sockaddr: tuple[object, ...], source: tuple[str, int]
) -> None:
    got: list[tuple[bytes, tuple[str, int]]] = []
    udp = UdpTransport(lambda data, addr: got.append((data, addr)))
    udp.family = family
    udp.datagram_received(b"x", sockaddr)  # type: ignore[arg-type]
    assert got == [(b"x", source)]
    assert udp.received == 1
