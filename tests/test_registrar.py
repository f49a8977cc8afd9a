"""Registrar answers (RFC 3261 §10.3, digest auth, Asterisk's alwaysauthreject), pure."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from email.utils import formatdate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.config.conf import parse_text
from pypbx.config.sipconf import SipConfig, parse_sip_conf
from pypbx.location import ChangeKind, Location
from pypbx.peers import PeerDirectory
from pypbx.registrar import RegisterOutcome, Registrar
from pypbx.sip.auth import DigestServer, answer_challenge, parse_challenge
from pypbx.sip.message import Request
from pypbx.sip.parse import parse_message

T0 = 1_800_000_000.0
SRC = ("203.0.113.7", 40000)
MD5_1001 = hashlib.md5(b"1001:pypbx:pw1001").hexdigest()

CONF = f"""
[general]
realm=pypbx
defaultexpiry=120
minexpiry=60
maxexpiry=3600

[1000]
type=friend
host=dynamic
secret=s3cret
nat=force_rport,comedia

[1001]
type=friend
host=dynamic
md5secret={MD5_1001}
defaultuser=bob

[1002]
type=friend
host=dynamic
secret=pw1002
defaultuser=carol

[open]
type=friend
host=dynamic

[caller]
type=user
host=dynamic
secret=callerpw

[trunk]
type=peer
host=198.51.100.9
secret=trunkpw

[office]
type=friend
host=dynamic
secret=officepw
deny=0.0.0.0/0
permit=10.0.0.0/8
"""


def make_config(text: str = CONF, **general: object) -> SipConfig:
    cfg = parse_sip_conf(parse_text(text, "sip.conf"))
    if general:
        cfg = replace(cfg, general=replace(cfg.general, **general))  # type: ignore[arg-type]
    return cfg


def make_registrar(cfg: SipConfig | None = None, *, max_contacts: int = 10) -> Registrar:
    cfg = cfg or make_config()
    location = Location(max_contacts=max_contacts)
    digest = DigestServer(b"test-key", cfg.general.realm, nonce_lifetime=30.0)
    peers = PeerDirectory(cfg, location, digest=digest)
    return Registrar(location, peers, cfg.general, digest, user_agent="pypbx-test")


def register(
    user: str = "1000",
    *,
    contacts: tuple[str, ...] = ("<sip:1000@192.168.1.10:5060>",),
    expires: str | None = None,
    call_id: str = "call-1",
    cseq: int = 1,
    auth: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
) -> Request:
    lines = [
        "REGISTER sip:pbx.example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-1;rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@pbx.example.com>;tag=abc",
        f"To: <sip:{user}@pbx.example.com>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        *(f"Contact: {c}" for c in contacts),
        *([f"Expires: {expires}"] if expires is not None else []),
        *(f"Authorization: {a}" for a in auth),
        "User-Agent: TestPhone/1.0",
        *extra,
        "Content-Length: 0",
    ]
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def creds(
    outcome: RegisterOutcome,
    user: str,
    password: str,
    *,
    nc: int = 1,
    uri: str = "sip:pbx.example.com",
    realm: str | None = None,
) -> str:
    value = outcome.response.get("WWW-Authenticate")
    assert value is not None
    ch = parse_challenge(value)
    if realm is not None:
        ch = replace(ch, realm=realm)
    return answer_challenge(
        ch, method="REGISTER", uri=uri, username=user, password=password, cnonce="cn", nc=nc
    )


def do_register(
    reg: Registrar,
    user: str = "1000",
    password: str = "s3cret",
    *,
    now: float = T0,
    auth_user: str | None = None,
    source: tuple[str, int] = SRC,
    cseq: int = 1,
    **kw: object,
) -> RegisterOutcome:
    """Challenge, then answer it: the usual two-step registration."""
    first = reg.handle(register(user, cseq=cseq, **kw), source, now=now)  # type: ignore[arg-type]
    if first.response.status != 401:
        return first
    value = creds(first, auth_user or user, password)
    second = register(user, cseq=cseq + 1, auth=(value,), **kw)  # type: ignore[arg-type]
    return reg.handle(second, source, now=now)


# -- authentication --------------------------------------------------------------------------


def test_first_register_draws_a_challenge_and_is_not_a_failure() -> None:
    out = make_registrar().handle(register(), SRC, now=T0)
    assert out.response.status == 401
    ch = parse_challenge(out.response.get("WWW-Authenticate") or "")
    assert ch.realm == "pypbx"
    assert ch.qop == ("auth",)
    assert not ch.stale
    assert out.auth_failure is False
    assert out.log is None
    assert out.changes == ()
    assert out.response.to.tag  # final responses carry a To tag


def test_right_password_registers_with_default_expiry() -> None:
    reg = make_registrar()
    out = do_register(reg)
    assert out.response.status == 200
    assert out.peer == "1000"
    assert out.response.get_all("Contact") == ["<sip:1000@192.168.1.10:5060>;expires=120"]
    assert out.response.get("Date") == "Fri, 15 Jan 2027 08:00:00 GMT"
    assert out.response.get("Server") == "pypbx-test"
    assert [c.kind for c in out.changes] == [ChangeKind.ADDED]
    b = reg.location.lookup("1000", T0)
    assert b is not None
    assert b.received == SRC
    assert b.user_agent == "TestPhone/1.0"
    assert b.expires_at == T0 + 120
    assert reg.peers.target("1000", T0) == (SRC, "udp")  # nat: reached at the source


def test_date_follows_the_clock_second_by_second() -> None:
    """The Date text is reused within one second and follows the clock across seconds
    (forwards, and backwards after a clock step), equal to a fresh formatdate each time."""
    reg = make_registrar()
    times = [T0, T0 + 0.4, T0 + 0.999, T0 + 1.0, T0 + 61.5, T0 - 3600.25, T0 + 0.5]
    for i, now in enumerate(times):
        out = do_register(reg, now=now, call_id=f"date-{i}")
        assert out.response.status == 200
        assert out.response.get("Date") == formatdate(int(now), usegmt=True)
    out = do_register(reg, now=T0 + 1.0, call_id="again")
    assert out.response.get("Date") == "Fri, 15 Jan 2027 08:00:01 GMT"


@pytest.mark.parametrize(
    ("user", "auth_user", "password", "status", "failure", "log_part"),
    [
        ("1000", "1000", "wrong", 401, True, "Wrong password"),
        ("nosuch", "nosuch", "whatever", 401, True, "No matching peer found"),
        ("1000", "someoneelse", "s3cret", 401, True, "Username/auth name mismatch"),
        ("1001", "1001", "pw1001", 200, False, None),  # md5secret = md5(1001:pypbx:pw1001)
        ("1001", "bob", "pw1001", 401, True, "Wrong password"),  # the md5 was made for 1001
        ("1001", "1001", "bad", 401, True, "Wrong password"),
        ("1002", "carol", "pw1002", 200, False, None),  # defaultuser as the auth name
        ("1002", "1002", "pw1002", 200, False, None),  # ... or the peer name
        ("1002", "bob", "pw1002", 401, True, "Username/auth name mismatch"),
        ("trunk", "trunk", "bad", 401, True, "Wrong password"),
        ("trunk", "trunk", "trunkpw", 403, True, "Peer is not supposed to register"),
        ("office", "office", "officepw", 401, True, "Device does not match ACL"),
        ("caller", "caller", "callerpw", 401, True, "No matching peer found"),  # type=user
    ],
)
def test_auth_answers_with_alwaysauthreject(
    user: str, auth_user: str, password: str, status: int, failure: bool, log_part: str | None
) -> None:
    reg = make_registrar()
    out = do_register(reg, user, password, auth_user=auth_user)
    assert out.response.status == status
    assert out.auth_failure is failure
    if log_part is None:
        assert out.log is None
    else:
        assert out.log is not None
        assert out.log == (
            f"Registration from '<sip:{user}@pbx.example.com>;tag=abc' failed for "
            f"'203.0.113.7:40000' - {log_part}"
        ) or out.log.startswith(
            f"Registration from '<sip:{user}@pbx.example.com>;tag=abc' failed for "
            f"'203.0.113.7:40000' - {log_part} ("
        )
    if status == 401:
        assert out.response.get("WWW-Authenticate")
        assert out.changes == ()


def test_unknown_user_and_wrong_password_look_the_same() -> None:
    reg = make_registrar()
    a = do_register(reg, "1000", "wrong")
    b = do_register(reg, "nosuch", "wrong")
    assert a.response.status == b.response.status == 401
    assert [n for n, _ in a.response.headers] == [n for n, _ in b.response.headers]
    ca = parse_challenge(a.response.get("WWW-Authenticate") or "")
    cb = parse_challenge(b.response.get("WWW-Authenticate") or "")
    assert (ca.realm, ca.qop, ca.stale, ca.algorithm) == (cb.realm, cb.qop, cb.stale, cb.algorithm)
    # and the first, unauthenticated request too
    fa = reg.handle(register("1000"), SRC, now=T0)
    fb = reg.handle(register("nosuch"), SRC, now=T0)
    assert fa.response.status == fb.response.status == 401
    assert fa.auth_failure is fb.auth_failure is False


@pytest.mark.parametrize(
    ("user", "password", "status", "log_part"),
    [
        ("nosuch", "x", 404, "No matching peer found"),
        ("trunk", "trunkpw", 403, "Peer is not supposed to register"),
        ("office", "officepw", 403, "Device does not match ACL"),
        ("1000", "wrong", 403, "Wrong password"),
    ],
)
def test_auth_answers_without_alwaysauthreject(
    user: str, password: str, status: int, log_part: str
) -> None:
    reg = make_registrar(make_config(alwaysauthreject=False))
    out = do_register(reg, user, password)
    assert out.response.status == status
    assert out.auth_failure is True
    assert out.log is not None
    assert log_part in out.log


def test_peer_without_secret_registers_without_challenge() -> None:
    reg = make_registrar()
    out = reg.handle(register("open", contacts=("<sip:open@10.1.1.1>",)), SRC, now=T0)
    assert out.response.status == 200
    assert reg.location.lookup("open", T0) is not None


def test_duplicate_authorization_is_400() -> None:
    reg = make_registrar()
    first = reg.handle(register(), SRC, now=T0)
    value = creds(first, "1000", "s3cret")
    out = reg.handle(register(cseq=2, auth=(value, value)), SRC, now=T0)
    assert out.response.status == 400
    assert out.log is not None
    assert "more than one Authorization" in out.log


def test_garbled_authorization_is_400() -> None:
    out = make_registrar().handle(register(auth=("Digest realm",)), SRC, now=T0)
    assert out.response.status == 400
    assert out.log is not None


def test_wrong_realm_is_rechallenged_and_logged() -> None:
    reg = make_registrar()
    first = reg.handle(register(), SRC, now=T0)
    value = creds(first, "1000", "s3cret", realm="elsewhere")
    out = reg.handle(register(cseq=2, auth=(value,)), SRC, now=T0)
    assert out.response.status == 401
    assert out.auth_failure is False
    assert out.log is not None
    assert "wrong realm" in out.log


def test_digest_uri_must_match_request_uri() -> None:
    reg = make_registrar()
    first = reg.handle(register(), SRC, now=T0)
    value = creds(first, "1000", "s3cret", uri="sip:other.example.com")
    out = reg.handle(register(cseq=2, auth=(value,)), SRC, now=T0)
    assert out.response.status == 400


def test_stale_nonce_gets_stale_true() -> None:
    reg = make_registrar()
    first = reg.handle(register(), SRC, now=T0)
    value = creds(first, "1000", "s3cret")
    out = reg.handle(register(cseq=2, auth=(value,)), SRC, now=T0 + 31)
    assert out.response.status == 401
    ch = parse_challenge(out.response.get("WWW-Authenticate") or "")
    assert ch.stale is True
    assert out.auth_failure is False
    assert out.log is not None
    assert "stale" in out.log


def test_replayed_nonce_count_is_rechallenged() -> None:
    reg = make_registrar()
    first = reg.handle(register(), SRC, now=T0)
    value = creds(first, "1000", "s3cret", nc=1)
    assert reg.handle(register(cseq=2, auth=(value,)), SRC, now=T0).response.status == 200
    out = reg.handle(register(cseq=3, auth=(value,)), SRC, now=T0 + 1)
    assert out.response.status == 401
    assert out.log is not None
    assert "replayed" in out.log
    # the next nonce-count is fine
    value2 = creds(first, "1000", "s3cret", nc=2)
    assert reg.handle(register(cseq=4, auth=(value2,)), SRC, now=T0 + 2).response.status == 200


# -- bindings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contacts", "expires", "status", "granted"),
    [
        (("<sip:1000@192.168.1.10>",), "300", 200, [300]),
        (("<sip:1000@192.168.1.10>",), "99999", 200, [3600]),  # maxexpiry clamps
        (("<sip:1000@192.168.1.10>;expires=600",), "300", 200, [600]),  # param wins
        (("<sip:1000@192.168.1.10>",), None, 200, [120]),  # defaultexpiry
        (("<sip:1000@192.168.1.10>",), "59", 423, []),
        (("<sip:1000@192.168.1.10>;expires=10",), "300", 423, []),
        (("<sip:1000@192.168.1.10>",), "60", 200, [60]),
        (("<sip:a@10.0.0.1>", "<sip:b@10.0.0.2>;expires=200"), "100", 200, [200, 100]),
    ],
)
def test_expiry_rules(
    contacts: tuple[str, ...], expires: str | None, status: int, granted: list[int]
) -> None:
    reg = make_registrar()
    out = do_register(reg, contacts=contacts, expires=expires)
    assert out.response.status == status
    if status == 423:
        assert out.response.get("Min-Expires") == "60"
        assert out.log is not None
        assert reg.location.bindings("1000", T0) == []
    got = sorted((b.remaining(T0) for b in reg.location.bindings("1000", T0)), reverse=True)
    assert got == granted
    assert len(out.response.get_all("Contact")) == len(granted)


@pytest.mark.parametrize("expires", ["abc", "-5", "1e3", "99999999999"])
def test_garbage_expires_is_400(expires: str) -> None:
    out = make_registrar().handle(register(expires=expires), SRC, now=T0)
    assert out.response.status == 400
    assert out.log is not None
    assert "Expires" in out.log


def test_to_without_user_is_400() -> None:
    req = register()
    req.set("To", "<sip:pbx.example.com>")
    out = make_registrar().handle(req, SRC, now=T0)
    assert out.response.status == 400


def test_unregister_one_contact_and_query() -> None:
    reg = make_registrar()
    contacts = ("<sip:a@10.0.0.1>", "<sip:b@10.0.0.2>")
    assert do_register(reg, contacts=contacts, cseq=1).response.status == 200
    out = do_register(reg, contacts=("<sip:a@10.0.0.1>;expires=0",), cseq=10)
    assert out.response.status == 200
    assert [c.kind for c in out.changes] == [ChangeKind.REMOVED]
    assert out.response.get_all("Contact") == ["<sip:b@10.0.0.2>;expires=120"]
    # a query (no Contact) lists what is left, with time decreasing
    q = do_register(reg, contacts=(), cseq=20, now=T0 + 20)
    assert q.response.status == 200
    assert q.changes == ()
    assert q.response.get_all("Contact") == ["<sip:b@10.0.0.2>;expires=100"]


def test_unregister_with_expires_header_zero() -> None:
    reg = make_registrar()
    do_register(reg, cseq=1)
    out = do_register(reg, expires="0", cseq=5)
    assert out.response.status == 200
    assert out.response.get_all("Contact") == []
    assert reg.location.bindings("1000", T0) == []


def test_wildcard_unregister_needs_expires_zero() -> None:
    reg = make_registrar()
    do_register(reg, contacts=("<sip:a@10.0.0.1>", "<sip:b@10.0.0.2>"), cseq=1)
    bad = do_register(reg, contacts=("*",), expires="60", cseq=5)
    assert bad.response.status == 400
    assert len(reg.location.bindings("1000", T0)) == 2
    out = do_register(reg, contacts=("*",), expires="0", call_id="other", cseq=5)
    assert out.response.status == 200
    assert sorted(c.kind for c in out.changes) == [ChangeKind.REMOVED] * 2
    assert reg.location.bindings("1000", T0) == []


def test_out_of_order_cseq_is_500_and_changes_nothing() -> None:
    reg = make_registrar()
    assert do_register(reg, expires="300", cseq=10).response.status == 200
    out = do_register(reg, expires="0", cseq=3)  # same Call-ID, lower CSeq (authed at 4)
    assert out.response.status == 500
    assert out.log is not None
    assert len(reg.location.bindings("1000", T0)) == 1
    # another Call-ID with a low CSeq is fine (a rebooted phone)
    assert do_register(reg, expires="0", cseq=1, call_id="new").response.status == 200


def test_contact_cap_is_503() -> None:
    reg = make_registrar(max_contacts=2)
    ok = do_register(reg, contacts=("<sip:a@10.0.0.1>", "<sip:b@10.0.0.2>"), cseq=1)
    assert ok.response.status == 200
    out = do_register(reg, contacts=("<sip:c@10.0.0.3>",), cseq=5)
    assert out.response.status == 503
    assert out.log is not None
    assert "Too Many" in out.log
    # refreshing an existing one is still allowed
    again = do_register(reg, contacts=("<sip:a@10.0.0.1>",), cseq=9)
    assert again.response.status == 200


def test_bindings_expire_with_time() -> None:
    reg = make_registrar()
    do_register(reg, expires="60")
    assert reg.location.lookup("1000", T0 + 59) is not None
    assert reg.location.lookup("1000", T0 + 60) is None
    changes = reg.location.expire(T0 + 61)
    assert [c.kind for c in changes] == [ChangeKind.REMOVED]


def test_refresh_keeps_registered_at_and_reports_refresh() -> None:
    reg = make_registrar()
    do_register(reg, cseq=1)
    out = do_register(reg, cseq=5, now=T0 + 50)
    assert [c.kind for c in out.changes] == [ChangeKind.REFRESHED]
    b = reg.location.lookup("1000", T0 + 50)
    assert b is not None
    assert b.registered_at == T0
    assert b.expires_at == T0 + 50 + 120


def test_non_register_is_a_programming_error() -> None:
    req = register()
    req.method = "OPTIONS"
    with pytest.raises(ValueError, match="OPTIONS"):
        make_registrar().handle(req, SRC, now=T0)


def test_burst_of_1000_authenticated_registrations() -> None:
    n = 1000
    text = "[general]\nrealm=pypbx\n" + "".join(
        f"[u{i:04d}]\ntype=friend\nhost=dynamic\nsecret=pw{i}\n" for i in range(n)
    )
    reg = make_registrar(make_config(text))
    started = time.perf_counter()
    ok = 0
    for i in range(n):
        user = f"u{i:04d}"
        out = do_register(
            reg,
            user,
            f"pw{i}",
            contacts=(f"<sip:{user}@10.{i // 250}.{i % 250}.1:5060>",),
            source=(f"10.{i // 250}.{i % 250}.1", 5060),
            call_id=f"c{i}",
        )
        ok += out.response.status == 200
    elapsed = time.perf_counter() - started
    print(f"\n{n} authenticated REGISTER (2 requests each): {n / elapsed:.0f} bindings/s")
    assert ok == n
    assert len(reg.location) == n
    assert reg.peers.by_source(("10.1.3.1", 5060), T0) is not None


@pytest.mark.parametrize(
    ("contacts", "expires", "extra"),
    [
        (("*", "<sip:a@10.0.0.1>"), "0", ()),  # '*' must stand alone
        (("<sip:a@10.0.0.1>;expires=abc",), None, ()),
        (("<sip:a@10.0.0.1>;q=7",), None, ()),
        (("<sip:a@10.0.0.1>",), "12 34", ()),
        (("<sip:a@10.0.0.1>",), "60", ("Expires: 60",)),  # two Expires headers
    ],
)
def test_bad_input_gets_400_and_exactly_one_log_line(
    contacts: tuple[str, ...], expires: str | None, extra: tuple[str, ...]
) -> None:
    reg = make_registrar()
    out = do_register(reg, contacts=contacts, expires=expires, extra=extra)
    assert out.response.status == 400
    assert out.log is not None
    assert "\n" not in out.log
    assert out.changes == ()
    assert reg.location.bindings("1000", T0) == []


def test_received_source_and_transport_are_stored() -> None:
    reg = make_registrar()
    first = reg.handle(register(), ("198.51.100.1", 6000), now=T0, transport="tcp")
    value = creds(first, "1000", "s3cret")
    out = reg.handle(
        register(cseq=2, auth=(value,)), ("198.51.100.1", 6000), now=T0, transport="TCP"
    )
    assert out.response.status == 200
    b = reg.location.lookup("1000", T0)
    assert b is not None
    assert (b.received, b.transport) == (("198.51.100.1", 6000), "tcp")
    assert reg.peers.target("1000", T0) == (("198.51.100.1", 6000), "tcp")


_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"),
    max_size=60,
)
_HEADERS = ["To", "From", "Contact", "Expires", "Authorization", "CSeq", "Call-ID"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_HEADERS), _text), max_size=6))
def test_any_header_values_give_an_answer_never_an_exception(
    changes: list[tuple[str, str]],
) -> None:
    reg = make_registrar()
    req = register()
    for name, value in changes:
        try:
            req.headers.set(name, value)
        except ValueError:
            continue
    out = reg.handle(req, SRC, now=T0)
    assert 200 <= out.response.status < 700
    assert out.response.serialize()
