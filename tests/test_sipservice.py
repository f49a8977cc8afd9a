"""SipService glue on loopback: REGISTER through the registrar into the store, the request
dispatcher's answers, persistence across a restart, reload, provider registration.

Each test runs one event loop with the service on 127.0.0.1 (a free port) and a client
:class:`~pypbx.transport.stack.SipStack`; a fake clock drives binding expiry.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pypbx.check import load_config_dir
from pypbx.location_store import LocationStore
from pypbx.server import Pbx
from pypbx.sip.auth import ClientAuthState
from pypbx.sip.events import AckReceived, CancelReceived, RequestReceived
from pypbx.sip.message import Request, Response, make_request
from pypbx.sipservice import SipService
from pypbx.transport.stack import SipStack, StackConfig
from tests.interop.sipp import free_port

PEERS = """
[1000]
type=friend
host=dynamic
secret=mysecretpassword
context=internal

[1001]
type=friend
host=dynamic
secret=othersecret
qualify=yes
context=internal

[trunk]
type=peer
host=127.0.0.9
secret=trunkpw
"""


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def write_conf(root: Path, port: int, *, general: str = "", peers: str = PEERS) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "sip.conf").write_text(
        f"[general]\nbindaddr=127.0.0.1\nbindport={port}\nminexpiry=60\n{general}\n{peers}"
    )
    (root / "extensions.conf").write_text("[internal]\nexten => 1,1,Hangup()\n")


def make_pbx(root: Path) -> Pbx:
    pbx = Pbx(load_config_dir(root))
    pbx.dirs.datadir.mkdir(parents=True, exist_ok=True)
    return pbx


Body = Callable[[SipService, SipStack, tuple[str, int], Clock], Awaitable[None]]


def run(tmp_path: Path, body: Body, *, general: str = "", clock: Clock | None = None) -> Pbx:
    """Start a service on a free port and a client stack, run ``body``, stop both."""
    port = free_port("127.0.0.1")
    write_conf(tmp_path, port, general=general)
    pbx = make_pbx(tmp_path)
    clk = clock or Clock()

    async def main() -> None:
        svc = SipService(clock=clk, rng=random.Random(7))
        await svc.start(pbx)
        client = SipStack(StackConfig(bindaddr="127.0.0.1", bindport=0), rng=random.Random(8))
        await client.start()
        try:
            await asyncio.wait_for(body(svc, client, ("127.0.0.1", port), clk), 10)
        finally:
            await client.close()
            await svc.stop()

    asyncio.run(main())
    return pbx


def register(
    client: SipStack,
    dest: tuple[str, int],
    user: str = "1000",
    *,
    expires: str = "300",
    contact: str | None = None,
    call_id: str = "reg-1@test",
    cseq: int = 1,
    headers: list[tuple[str, str]] | None = None,
) -> Request:
    host, port = client.local_addr
    return make_request(
        "REGISTER",
        f"sip:{dest[0]}:{dest[1]}",
        from_=f"<sip:{user}@{dest[0]}>;tag=ft{cseq}",
        to=f"<sip:{user}@{dest[0]}>",
        call_id=call_id,
        cseq=cseq,
        via=f"SIP/2.0/UDP {host}:{port};branch={client.ids.branch()};rport",
        contact=contact if contact is not None else f"<sip:{user}@{host}:{port}>",
        headers=[("Expires", expires), *(headers or [])],
    )


def request(client: SipStack, dest: tuple[str, int], method: str, *, to_tag: str = "") -> Request:
    host, port = client.local_addr
    to = f"<sip:1@{dest[0]}>" + (f";tag={to_tag}" if to_tag else "")
    return make_request(
        method,
        f"sip:1@{dest[0]}:{dest[1]}",
        from_=f"<sip:1000@{host}>;tag=abc",
        to=to,
        call_id=f"{method}-{client.ids.tag()}@test",
        cseq=1,
        via=f"SIP/2.0/UDP {host}:{port};branch={client.ids.branch()};rport",
        contact=f"<sip:1000@{host}:{port}>",
    )


# -- REGISTER -----------------------------------------------------------------------------


def test_register_with_digest_is_stored_and_shown(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        first = await client.request(register(client, dest), dest)
        seen["challenge"] = first
        ok = await client.request(
            register(client, dest, cseq=2), dest, auth=("1000", "mysecretpassword")
        )
        seen["ok"] = ok
        seen["status"] = svc.peer_status("1000")

    pbx = run(tmp_path, body)
    assert seen["challenge"].status == 401
    assert seen["ok"].status == 200
    assert "expires=300" in (seen["ok"].get("contact") or "")
    status = seen["status"]
    assert status is not None
    assert status.address == "127.0.0.1"
    with LocationStore.in_dir(pbx.dirs.datadir) as store:
        rows = store.load(0.0)
        assert [(b.aor, b.contact.startswith("sip:1000@127.0.0.1")) for b in rows] == [
            ("1000", True)
        ]
        assert store.integrity_check() == "ok"
    assert pbx.sip_runtime is None  # stop() withdrew the runtime view


def test_wrong_password_and_unknown_user_get_the_same_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[int] = []

    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        for user, pw in (("1000", "nope"), ("9999", "nope")):
            req = register(client, dest, user, call_id=f"{user}@x")
            resp = await client.request(req, dest, auth=(user, pw))
            answers.append(resp.status)
        assert svc.peer_status("1000") is not None
        assert svc.location.aors() == []

    with caplog.at_level(logging.WARNING, logger="pypbx.sip"):
        pbx = run(tmp_path, body)
    assert answers == [401, 401]
    assert any("Wrong password" in r.getMessage() for r in caplog.records)
    assert any("No matching peer found" in r.getMessage() for r in caplog.records)
    with LocationStore.in_dir(pbx.dirs.datadir) as store:
        assert store.count() == 0


BAD_INPUT = [
    pytest.param({"expires": "soon"}, 400, id="garbage-expires"),
    pytest.param({"expires": "10"}, 423, id="below-minexpiry"),
    pytest.param({"contact": "*", "expires": "300"}, 400, id="star-without-expires-0"),
    pytest.param(
        {"headers": [("Authorization", 'Digest username="1000"')] * 2}, 400, id="two-auth"
    ),
    pytest.param(
        {
            "headers": [
                (
                    "Authorization",
                    'Digest username="1000", realm="elsewhere", nonce="x", '
                    'uri="sip:127.0.0.1", response="00000000000000000000000000000000"',
                )
            ]
        },
        401,
        id="wrong-realm",
    ),
]


@pytest.mark.parametrize(("kwargs", "status"), BAD_INPUT)
def test_bad_register_input_gets_a_clear_answer(
    tmp_path: Path, kwargs: dict[str, Any], status: int, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[Response] = []

    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        auth = None if "headers" in kwargs else ("1000", "mysecretpassword")
        caplog.clear()
        got.append(await client.request(register(client, dest, **kwargs), dest, auth=auth))

    with caplog.at_level(logging.INFO, logger="pypbx"):
        pbx = run(tmp_path, body)
    assert got[0].status == status
    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name in ("pypbx.sip", "pypbx.transport")
    ]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "127.0.0.1" in warnings[0].getMessage()
    if status == 423:
        assert got[0].get("min-expires") == "60"
    with LocationStore.in_dir(pbx.dirs.datadir) as store:
        assert store.count() == 0
        assert store.integrity_check() == "ok"


def test_static_host_peer_cannot_register(tmp_path: Path) -> None:
    got: list[int] = []

    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        resp = await client.request(register(client, dest, "trunk"), dest, auth=("trunk", "x"))
        got.append(resp.status)
        right = register(client, dest, "trunk", call_id="t2@x")
        got.append((await client.request(right, dest, auth=("trunk", "trunkpw"))).status)

    run(tmp_path, body)
    assert got == [401, 403]  # alwaysauthreject: only the right password learns 403


def test_unregister_removes_from_store(tmp_path: Path) -> None:
    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        auth = ("1000", "mysecretpassword")
        ok = await client.request(register(client, dest), dest, auth=auth)
        assert ok.status == 200
        assert svc.store is not None
        assert svc.store.count() == 1
        gone = register(client, dest, contact="*", expires="0", cseq=5)
        assert (await client.request(gone, dest, auth=auth)).status == 200
        assert svc.store.count() == 0
        assert svc.location.aors() == []

    run(tmp_path, body)


# -- persistence --------------------------------------------------------------------------


def test_bindings_survive_a_restart_and_expired_ones_are_dropped(tmp_path: Path) -> None:
    clock = Clock()

    async def first(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        ok = await client.request(register(client, dest), dest, auth=("1000", "mysecretpassword"))
        assert ok.status == 200
        short = register(client, dest, "1001", expires="60", call_id="b@x")
        assert (await client.request(short, dest, auth=("1001", "othersecret"))).status == 200

    run(tmp_path, first, clock=clock)
    clock.now += 120  # 1001's 60 s binding is over, 1000's 300 s one is not
    after: dict[str, Any] = {}

    async def second(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        after["aors"] = sorted(svc.location.aors())
        after["1000"] = svc.peer_status("1000")
        after["1001"] = svc.peer_status("1001")

    run(tmp_path, second, clock=clock)
    assert after["aors"] == ["1000"]
    assert after["1000"].address == "127.0.0.1"
    assert after["1001"].address is None


# -- other requests -----------------------------------------------------------------------

DISPATCH = [
    pytest.param("INVITE", "", 480, id="invite-without-call-layer"),
    pytest.param("SUBSCRIBE", "", 480, id="subscribe-without-call-layer"),
    pytest.param("BYE", "t1", 481, id="in-dialog-unknown"),
    pytest.param("MESSAGE", "", 405, id="known-not-handled"),
    pytest.param("FOOBAR", "", 501, id="unknown-method"),
    pytest.param("OPTIONS", "", 200, id="options"),
]


@pytest.mark.parametrize(("method", "tag", "status"), DISPATCH)
def test_requests_get_asterisk_answers(tmp_path: Path, method: str, tag: str, status: int) -> None:
    got: list[Response] = []

    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        got.append(await client.request(request(client, dest, method, to_tag=tag), dest))

    run(tmp_path, body)
    assert got[0].status == status
    if status == 405:
        assert "INVITE" in (got[0].get("allow") or "")


def test_call_handler_gets_dialog_requests(tmp_path: Path) -> None:
    calls: list[str] = []
    port = free_port("127.0.0.1")
    write_conf(tmp_path, port)
    pbx = make_pbx(tmp_path)

    def handler(svc: SipService, event: RequestReceived | AckReceived | CancelReceived) -> None:
        calls.append(event.request.method)
        if isinstance(event, RequestReceived):
            assert svc.stack is not None
            svc.stack.reply(event, 486, "Busy Here")

    pbx.call_handler = handler

    async def main() -> int:
        svc = SipService(clock=Clock())
        await svc.start(pbx)
        client = SipStack(StackConfig(bindaddr="127.0.0.1", bindport=0))
        await client.start()
        try:
            resp = await client.request(
                request(client, ("127.0.0.1", port), "INVITE"), ("127.0.0.1", port)
            )
            return resp.status
        finally:
            await client.close()
            await svc.stop()

    assert asyncio.run(main()) == 486
    assert calls[0] == "INVITE"


def test_a_crashing_call_handler_gives_500_and_the_service_lives(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    write_conf(tmp_path, port)
    pbx = make_pbx(tmp_path)

    def handler(svc: SipService, event: RequestReceived | AckReceived | CancelReceived) -> None:
        raise RuntimeError("boom")

    pbx.call_handler = handler

    async def main() -> list[int]:
        svc = SipService(clock=Clock())
        await svc.start(pbx)
        client = SipStack(StackConfig(bindaddr="127.0.0.1", bindport=0))
        await client.start()
        dest = ("127.0.0.1", port)
        try:
            first = await client.request(request(client, dest, "INVITE"), dest)
            second = await client.request(request(client, dest, "OPTIONS"), dest)
            return [first.status, second.status]
        finally:
            await client.close()
            await svc.stop()

    assert asyncio.run(main()) == [500, 200]


# -- reload -------------------------------------------------------------------------------


def test_reload_keeps_bindings_of_unchanged_peers_and_drops_removed_ones(tmp_path: Path) -> None:
    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        for user, pw in (("1000", "mysecretpassword"), ("1001", "othersecret")):
            req = register(client, dest, user, call_id=f"{user}@r")
            assert (await client.request(req, dest, auth=(user, pw))).status == 200
        write_conf(tmp_path, dest[1], peers=PEERS.split("[1001]")[0])
        await svc.reload(load_config_dir(tmp_path))
        assert svc.location.aors() == ["1000"]
        assert svc.store is not None
        await asyncio.sleep(0)  # the store is written on the next loop tick
        assert svc.store.count() == 1
        assert svc.peer_status("1000") is not None
        assert svc.peer_status("1001") is None

    run(tmp_path, body)


# -- outbound registration ----------------------------------------------------------------


class FakeProvider:
    """A registrar that challenges once then accepts; records what it got."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.stack = SipStack(StackConfig(bindaddr="127.0.0.1", bindport=0), self.on_event)

    def on_event(self, stack: SipStack, event: object) -> None:
        if not isinstance(event, RequestReceived):
            return
        self.requests.append(event.request)
        if event.request.get("authorization") is None:
            stack.reply(
                event,
                401,
                headers=[("WWW-Authenticate", 'Digest realm="provider.test", nonce="n1"')],
            )
        else:
            expires = event.request.get("expires") or "0"
            contact = (event.request.get("contact") or "") + f";expires={expires}"
            stack.reply(event, 200, headers=[("Contact", contact)])


def test_register_line_registers_then_unregisters_on_stop(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    provider = FakeProvider()
    rows: list[str] = []

    async def main() -> None:
        await provider.stack.start()
        pport = provider.stack.local_addr[1]
        line = f"register => acct1:pw@127.0.0.1:{pport}/7000"
        write_conf(tmp_path, port, general=line)
        pbx = make_pbx(tmp_path)
        svc = SipService()
        await svc.start(pbx)
        try:
            reg = pbx.config.sip.registrations[0]  # type: ignore[union-attr]
            for _ in range(100):
                status = svc.registration_status(reg)
                if status is not None and status.state == "Registered":
                    break
                await asyncio.sleep(0.02)
            assert status is not None
            rows.append(status.state)
        finally:
            await svc.stop()
            await provider.stack.close()

    asyncio.run(main())
    assert rows == ["Registered"]
    expiries = [r.get("expires") for r in provider.requests]
    assert expiries[:2] == ["120", "120"]  # challenged, then answered with credentials
    assert expiries[-1] == "0"  # stop() unregistered
    assert all(f"sip:7000@127.0.0.1:{port}" in (r.get("contact") or "") for r in provider.requests)
    assert len({r.get("call-id") for r in provider.requests}) == 1


def test_replayed_nonce_count_and_stale_nonce_are_challenged_again(tmp_path: Path) -> None:
    got: list[tuple[int, str]] = []

    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], clk: Clock) -> None:
        uri = f"sip:{dest[0]}:{dest[1]}"
        first = await client.request(register(client, dest), dest)
        state = ClientAuthState("1000", "mysecretpassword")
        state.learn(first.get("www-authenticate") or "")
        realm = state.realms[0]
        creds = state.authorization(realm, method="REGISTER", uri=uri, cnonce="c1")
        for cseq in (2, 3):  # the same credentials twice: the second is a replay
            req = register(client, dest, cseq=cseq, headers=[("Authorization", creds)])
            resp = await client.request(req, dest)
            got.append((resp.status, resp.get("www-authenticate") or ""))
        clk.now += 3600  # the nonce is long past its lifetime
        late = state.authorization(realm, method="REGISTER", uri=uri, cnonce="c2")
        req = register(client, dest, cseq=4, headers=[("Authorization", late)])
        resp = await client.request(req, dest)
        got.append((resp.status, resp.get("www-authenticate") or ""))

    run(tmp_path, body)
    assert [status for status, _ in got] == [200, 401, 401]
    assert "stale=true" not in got[1][1].lower()
    assert "stale=true" in got[2][1].lower()


def test_contacts_per_peer_are_capped(tmp_path: Path) -> None:
    statuses: list[int] = []

    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        for n in range(svc.max_contacts + 1):
            contact = f"<sip:1000-{n}@127.0.0.1:{5000 + n}>"
            req = register(client, dest, contact=contact, call_id=f"cap{n}@x")
            resp = await client.request(req, dest, auth=("1000", "mysecretpassword"))
            statuses.append(resp.status)
        assert svc.store is not None
        assert svc.store.count() == svc.max_contacts

    run(tmp_path, body)
    assert statuses[:-1] == [200] * (len(statuses) - 1)
    assert statuses[-1] == 503


def test_reload_unregisters_removed_lines_and_registers_new_ones(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    old, new = FakeProvider(), FakeProvider()
    states: list[str | None] = []

    async def wait_registered(svc: SipService, pbx: Pbx, index: int) -> None:
        for _ in range(200):
            reg = pbx.config.sip.registrations[index]  # type: ignore[union-attr]
            status = svc.registration_status(reg)
            if status is not None and status.state == "Registered":
                break
            await asyncio.sleep(0.01)
        states.append(status.state if status is not None else None)

    async def main() -> None:
        await old.stack.start()
        await new.stack.start()
        a = f"register => acct1:pw@127.0.0.1:{old.stack.local_addr[1]}"
        b = f"register => acct2:pw@127.0.0.1:{new.stack.local_addr[1]}"
        write_conf(tmp_path, port, general=a)
        pbx = make_pbx(tmp_path)
        svc = SipService()
        await svc.start(pbx)
        pbx.services.append(svc)
        try:
            await wait_registered(svc, pbx, 0)
            write_conf(tmp_path, port, general=b)
            result = await pbx.reload_sip()
            assert result.ok
            await wait_registered(svc, pbx, 0)
            assert [line.name for line in svc.lines] == ["acct2@127.0.0.1"]
        finally:
            await svc.stop()
            await old.stack.close()
            await new.stack.close()

    asyncio.run(main())
    assert states == ["Registered", "Registered"]
    assert [r.get("expires") for r in old.requests][-1] == "0"
    assert {r.get("expires") for r in new.requests[:-1]} == {"120"}
    assert new.requests[-1].get("expires") == "0"


@pytest.mark.parametrize(
    ("general", "contact_host"),
    [
        pytest.param("", "127.0.0.1", id="local"),
        pytest.param("externaddr=192.0.2.7\nlocalnet=10.0.0.0/8", "192.0.2.7", id="externaddr"),
        pytest.param("externaddr=192.0.2.7\nlocalnet=127.0.0.0/8", "127.0.0.1", id="in-localnet"),
    ],
)
def test_register_contact_uses_externaddr_outside_localnet(
    tmp_path: Path, general: str, contact_host: str
) -> None:
    port = free_port("127.0.0.1")
    provider = FakeProvider()

    async def main() -> None:
        await provider.stack.start()
        line = f"register => acct1:pw@127.0.0.1:{provider.stack.local_addr[1]}/55"
        write_conf(tmp_path, port, general=f"{general}\n{line}")
        pbx = make_pbx(tmp_path)
        svc = SipService()
        await svc.start(pbx)
        try:
            for _ in range(100):
                if provider.requests:
                    break
                await asyncio.sleep(0.01)
        finally:
            await svc.stop()
            await provider.stack.close()

    asyncio.run(main())
    assert provider.requests
    assert f"<sip:55@{contact_host}:{port}>" in (provider.requests[0].get("contact") or "")


def test_sip_trace_logs_full_messages_with_the_peer_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trace = logging.getLogger("pypbx.sip.trace")

    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        await client.request(request(client, dest, "FOOBAR"), dest)

    with caplog.at_level(logging.DEBUG, logger="pypbx.sip.trace"):
        trace.setLevel(logging.DEBUG)
        run(tmp_path, body)
    records = [r for r in caplog.records if r.name == "pypbx.sip.trace"]
    texts = [r.getMessage() for r in records]
    assert any("SIP read from 127.0.0.1" in t and "FOOBAR sip:1@" in t for t in texts)
    assert any("Transmitting to 127.0.0.1" in t and "SIP/2.0 501" in t for t in texts)
    assert {getattr(r, "peer_ip", None) for r in records} == {"127.0.0.1"}


def test_an_unusable_store_refuses_the_start_with_a_clear_error(tmp_path: Path) -> None:
    from pypbx.sipservice import SipServiceError

    port = free_port("127.0.0.1")
    write_conf(tmp_path, port)
    pbx = make_pbx(tmp_path)
    (pbx.dirs.datadir / "location.sqlite3").write_bytes(b"this is not a database" * 100)

    async def main() -> None:
        await SipService().start(pbx)

    with pytest.raises(SipServiceError, match="location store unusable"):
        asyncio.run(main())


class RefusingProvider(FakeProvider):
    """A registrar that refuses every REGISTER with 403."""

    def on_event(self, stack: SipStack, event: object) -> None:
        if isinstance(event, RequestReceived):
            self.requests.append(event.request)
            stack.reply(event, 403, "Forbidden")


def test_a_refused_line_shows_rejected_and_stop_sends_no_unregister(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    provider = RefusingProvider()
    states: list[str] = []

    async def main() -> None:
        await provider.stack.start()
        line = f"register => acct1:pw@127.0.0.1:{provider.stack.local_addr[1]}"
        write_conf(tmp_path, port, general=line)
        pbx = make_pbx(tmp_path)
        svc = SipService()
        await svc.start(pbx)
        try:
            reg = pbx.config.sip.registrations[0]  # type: ignore[union-attr]
            for _ in range(100):
                status = svc.registration_status(reg)
                if status is not None and status.state == "Rejected":
                    break
                await asyncio.sleep(0.01)
            states.append(status.state if status is not None else "")
        finally:
            await svc.stop()
            await provider.stack.close()

    asyncio.run(main())
    assert states == ["Rejected"]
    assert [r.get("expires") for r in provider.requests] == ["120"]


def test_registrationlimit_caps_contacts_per_peer(tmp_path: Path) -> None:
    statuses: list[int] = []

    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], _: Clock) -> None:
        assert svc.max_contacts == 2
        for n in range(3):
            contact = f"<sip:1000-{n}@127.0.0.1:{5000 + n}>"
            req = register(client, dest, contact=contact, call_id=f"lim{n}@x")
            resp = await client.request(req, dest, auth=("1000", "mysecretpassword"))
            statuses.append(resp.status)

    run(tmp_path, body, general="registrationlimit=2")
    assert statuses == [200, 200, 503]


# -- the abuse guard ----------------------------------------------------------------------


def test_failed_registrations_ban_the_source_until_unbanned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    statuses: list[int] = []

    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], clk: Clock) -> None:
        for n in range(3):  # banfailures=3
            req = register(client, dest, "1000", call_id=f"guess{n}@x")
            statuses.append((await client.request(req, dest, auth=("1000", f"guess{n}"))).status)
        assert [b.addr for b in svc.bans()] == ["127.0.0.1"]
        with pytest.raises(TimeoutError):  # dropped silently: no answer at all
            await asyncio.wait_for(client.request(request(client, dest, "OPTIONS"), dest), 0.5)
        assert svc.guard.drops
        clk.now += 59
        assert svc.bans()[0].until - clk.now == pytest.approx(1)
        assert svc.unban("127.0.0.1")
        assert not svc.unban("127.0.0.1")
        resp = await client.request(request(client, dest, "OPTIONS"), dest)
        statuses.append(resp.status)
        req = register(client, dest, "1000", call_id="good@x")
        statuses.append((await client.request(req, dest, auth=("1000", "mysecretpassword"))).status)
        assert svc.guard.rate.is_trusted("127.0.0.1", now=clk.now)

    with caplog.at_level(logging.WARNING, logger="pypbx.security"):
        run(tmp_path, body, general="banfailures=3\nbantime=60")
    assert statuses == [401, 401, 401, 200, 200]
    lines = [r.getMessage() for r in caplog.records if r.name == "pypbx.security"]
    assert lines[0] == (
        "SECURITY: banned 127.0.0.1 for 60 s after 3 failed authentications (last user '1000')"
    )
    assert lines[1] == "SECURITY: unbanned 127.0.0.1 by the operator"


def test_an_unauthenticated_challenge_is_not_a_failure(tmp_path: Path) -> None:
    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], clk: Clock) -> None:
        for n in range(8):
            resp = await client.request(register(client, dest, call_id=f"plain{n}@x"), dest)
            assert resp.status == 401
        assert svc.bans() == []
        assert svc.guard.bans.failures("127.0.0.1", now=clk.now) == 0

    run(tmp_path, body)


def test_auth_failed_hook_counts_for_other_layers(tmp_path: Path) -> None:
    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], clk: Clock) -> None:
        for _ in range(5):
            svc.auth_failed(("192.0.2.5", 5060), "1000")
        assert [b.addr for b in svc.bans()] == ["192.0.2.5"]
        svc.auth_ok(("192.0.2.6", 5060), "1000")
        assert svc.guard.rate.is_trusted("192.0.2.6", now=clk.now)

    run(tmp_path, body)


def test_maxmessagesize_bounds_tcp_messages_and_the_guard(tmp_path: Path) -> None:
    async def body(svc: SipService, client: SipStack, dest: tuple[str, int], clk: Clock) -> None:
        assert svc.stack is not None
        assert svc.stack.tcp is not None
        assert svc.stack.tcp.config.max_message_size == 2048
        assert svc.guard.config.max_message_size == 2048
        big = request(client, dest, "OPTIONS")
        big.headers.add("X-Pad", "x" * 3000)
        with pytest.raises(TimeoutError):  # dropped before parsing
            await asyncio.wait_for(client.request(big, dest), 0.5)
        resp = await client.request(request(client, dest, "OPTIONS"), dest)
        assert resp.status == 200

    run(tmp_path, body, general="tcpenable=yes\nmaxmessagesize=2048")
