"""Peer directory: lookups by name/address/registration and the INVITE auth decision."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.config.conf import parse_text
from pypbx.config.sipconf import SipConfig, parse_sip_conf
from pypbx.location import Location
from pypbx.peers import InviteDecision, PeerDirectory
from pypbx.sip.auth import DigestServer, answer_challenge, parse_challenge
from pypbx.sip.message import Request, Response
from pypbx.sip.parse import parse_message

T0 = 1_800_000_000.0

CONF = """
[general]
realm=pypbx
context=guests

[1000]
type=friend
host=dynamic
secret=s3cret
context=internal
qualify=yes

[1001]
type=friend
host=dynamic
secret=pw1001
nat=no
insecure=invite

[nosecret]
type=friend
host=dynamic
context=lobby

[trunk]
type=peer
host=198.51.100.9
insecure=invite
context=from-trunk

[portless]
type=peer
host=198.51.100.10
insecure=port,invite
context=from-portless

[named]
type=peer
host=sip.carrier.test
port=5080
context=from-named
secret=namedpw

[user-only]
type=user
host=198.51.100.11
secret=x

[locked]
type=friend
host=dynamic
secret=lockedpw
deny=0.0.0.0/0
permit=10.0.0.0/8
"""


def make(**general: object) -> PeerDirectory:
    cfg: SipConfig = parse_sip_conf(parse_text(CONF, "sip.conf"))
    if general:
        cfg = replace(cfg, general=replace(cfg.general, **general))  # type: ignore[arg-type]
    digest = DigestServer(b"k", "pypbx", nonce_lifetime=30)
    return PeerDirectory(cfg, Location(), digest=digest)


def invite(from_user: str = "1000", *, auth: str | None = None) -> Request:
    lines = [
        "INVITE sip:18002223333@pbx.example.com SIP/2.0",
        "Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK-x",
        "Max-Forwards: 70",
        f"From: <sip:{from_user}@pbx.example.com>;tag=f",
        "To: <sip:18002223333@pbx.example.com>",
        "Call-ID: inv-1",
        "CSeq: 1 INVITE",
        "Contact: <sip:x@203.0.113.5>",
        *([f"Proxy-Authorization: {auth}"] if auth else []),
        "Content-Length: 0",
    ]
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def answer(resp: Response | None, user: str, password: str, *, nc: int = 1) -> str:
    assert resp is not None
    ch = parse_challenge(resp.get("Proxy-Authenticate") or "")
    return answer_challenge(
        ch,
        method="INVITE",
        uri="sip:18002223333@pbx.example.com",
        username=user,
        password=password,
        cnonce="c",
        nc=nc,
    )


# -- lookups ---------------------------------------------------------------------------------


def test_get_is_case_insensitive() -> None:
    d = make()
    peer = d.get("TRUNK")
    assert peer is not None
    assert peer.name == "trunk"
    assert d.get("nobody") is None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (("198.51.100.9", 5060), "trunk"),
        (("198.51.100.9", 5999), None),  # port must match without insecure=port
        (("198.51.100.10", 5999), "portless"),  # insecure=port: ip only
        (("198.51.100.11", 5060), None),  # type=user is never matched by address
        (("192.0.2.1", 5060), None),
    ],
)
def test_by_source_fixed_hosts(source: tuple[str, int], expected: str | None) -> None:
    peer = make().by_source(source, T0)
    assert (peer.name if peer else None) == expected


def test_resolved_host_names() -> None:
    d = make()
    assert d.by_source(("192.0.2.80", 5080), T0) is None
    d.set_resolved("named", ["192.0.2.80", "not-an-ip"])
    peer = d.by_source(("192.0.2.80", 5080), T0)
    assert peer is not None
    assert peer.name == "named"
    assert d.by_source(("192.0.2.80", 5060), T0) is None
    assert d.target("named", T0) == (("192.0.2.80", 5080), "udp")
    d.set_resolved("named", [])
    assert d.by_source(("192.0.2.80", 5080), T0) is None
    with pytest.raises(KeyError):
        d.set_resolved("nobody", ["1.2.3.4"])


def test_registered_peer_found_by_source_and_target() -> None:
    d = make()
    src = ("203.0.113.5", 41000)
    d.location.update(
        "1000", "sip:1000@192.168.1.10:5062", expires=60, call_id="c", cseq=1, now=T0, received=src
    )
    d.location.update(
        "1001", "sip:1001@192.168.1.11:5064", expires=60, call_id="d", cseq=1, now=T0,
        received=("203.0.113.6", 42000),
    )  # fmt: skip
    peer = d.by_source(src, T0)
    assert peer is not None
    assert peer.name == "1000"
    assert d.target("1000", T0) == (src, "udp")  # nat=force_rport (default): source address
    assert d.target("1001", T0) == (("192.168.1.11", 5064), "udp")  # nat=no: the Contact
    assert d.by_source(src, T0 + 60) is None  # expired
    assert d.target("1000", T0 + 60) is None
    assert d.target("trunk", T0) == (("198.51.100.9", 5060), "udp")
    view = d.status("1000", T0, lastms=12)
    assert view is not None
    assert (view.address, view.port, view.lastms) == ("203.0.113.5", 41000, 12)
    assert view.contact == "sip:1000@192.168.1.10:5062"


# -- INVITE decisions ------------------------------------------------------------------------


def test_trunk_matched_by_address_with_insecure_invite_needs_no_auth() -> None:
    out = make().authenticate_invite(invite("anyone"), ("198.51.100.9", 5060), now=T0)
    assert out.decision is InviteDecision.ACCEPT
    assert out.context == "from-trunk"
    assert out.response is None


def test_spoofed_trunk_name_from_elsewhere_is_not_trusted() -> None:
    d = make()
    out = d.authenticate_invite(invite("trunk"), ("192.0.2.66", 5060), now=T0)
    assert out.decision is InviteDecision.CHALLENGE
    assert out.response is not None
    assert out.response.status == 407


def test_insecure_invite_friend_matched_by_name_is_still_challenged() -> None:
    out = make().authenticate_invite(invite("1001"), ("192.0.2.66", 5060), now=T0)
    assert out.decision is InviteDecision.CHALLENGE


def test_phone_challenge_then_accept() -> None:
    d = make()
    src = ("192.0.2.20", 5060)
    first = d.authenticate_invite(invite("1000"), src, now=T0)
    assert first.decision is InviteDecision.CHALLENGE
    assert first.auth_failure is False
    assert first.response is not None
    assert first.response.get("Proxy-Authenticate")
    good = answer(first.response, "1000", "s3cret")
    out = d.authenticate_invite(invite("1000", auth=good), src, now=T0)
    assert out.decision is InviteDecision.ACCEPT
    assert out.context == "internal"
    assert out.peer is not None
    assert out.peer.name == "1000"


@pytest.mark.parametrize(
    ("from_user", "auth_user", "password"),
    [
        ("1000", "1000", "wrong"),
        ("ghost", "ghost", "whatever"),
        ("1000", "someone", "s3cret"),
        ("locked", "locked", "lockedpw"),  # right password, ACL says no
    ],
)
def test_refusals_look_alike(from_user: str, auth_user: str, password: str) -> None:
    d = make()
    src = ("192.0.2.20", 5060)
    first = d.authenticate_invite(invite(from_user), src, now=T0)
    assert first.decision is InviteDecision.CHALLENGE
    assert first.response is not None
    assert first.response.status == 407
    assert first.auth_failure is False
    creds = answer(first.response, auth_user, password)
    out = d.authenticate_invite(invite(from_user, auth=creds), src, now=T0)
    assert out.decision is InviteDecision.REFUSE
    assert out.response is not None
    assert out.response.status == 403
    assert out.auth_failure is True
    assert out.log


def test_stale_nonce_is_rechallenged_with_stale() -> None:
    d = make()
    src = ("192.0.2.20", 5060)
    first = d.authenticate_invite(invite("1000"), src, now=T0)
    creds = answer(first.response, "1000", "s3cret")
    out = d.authenticate_invite(invite("1000", auth=creds), src, now=T0 + 40)
    assert out.decision is InviteDecision.CHALLENGE
    assert out.response is not None
    assert parse_challenge(out.response.get("Proxy-Authenticate") or "").stale


def test_guest_and_no_alwaysauthreject() -> None:
    src = ("192.0.2.30", 5060)
    guest = make(allowguest=True).authenticate_invite(invite("ghost"), src, now=T0)
    assert guest.decision is InviteDecision.ACCEPT
    assert guest.context == "guests"
    assert guest.peer is None
    plain = make(alwaysauthreject=False).authenticate_invite(invite("ghost"), src, now=T0)
    assert plain.decision is InviteDecision.REFUSE
    assert plain.response is not None
    assert plain.response.status == 403
    assert plain.log is not None
    assert "ghost" in plain.log


def test_peer_without_secret_is_accepted_by_name() -> None:
    out = make().authenticate_invite(invite("nosecret"), ("192.0.2.1", 5060), now=T0)
    assert out.decision is InviteDecision.ACCEPT
    assert out.context == "lobby"


def test_bad_proxy_authorization_is_400() -> None:
    out = make().authenticate_invite(
        invite("1000", auth="Digest nonsense"), ("192.0.2.1", 5060), now=T0
    )
    assert out.decision is InviteDecision.REFUSE
    assert out.response is not None
    assert out.response.status == 400


# -- sip show peers / sip show peer (pypbx.sipshow) ----------------------------------------


def test_sip_show_peers_text() -> None:
    from pypbx.qualify import Qualifier
    from pypbx.sipshow import format_peers, peer_rows

    d = make()
    q = Qualifier()
    q.add("1000", maxms=2000, freq=60, now=T0)
    d.location.update(
        "1000", "sip:1000@192.168.1.10", expires=60, call_id="c", cseq=1, now=T0,
        received=("203.0.113.5", 41000),
    )  # fmt: skip
    q.sent("1000", T0)
    q.answered("1000", T0 + 0.012)
    lines = format_peers(peer_rows(d, q, T0)).splitlines()
    assert lines[0] == (
        "Name/username             Host                                    Dyn Forcerport "
        "Comedia    ACL Port     Status      Description"
    )
    row = next(line for line in lines if line.startswith("1000 "))
    assert row.split() == ["1000", "203.0.113.5", "D", "Yes", "No", "41000", "OK", "(12", "ms)"]
    trunk = next(line for line in lines if line.startswith("trunk "))
    assert trunk.split() == ["trunk", "198.51.100.9", "Yes", "No", "5060", "Unmonitored"]
    locked = next(line for line in lines if line.startswith("locked "))
    assert "(Unspecified)" in locked
    assert " A " in locked
    assert not any(line.startswith("user-only") for line in lines)
    assert lines[-1] == (
        "7 sip peers [Monitored: 1 online, 0 offline Unmonitored: 2 online, 4 offline]"
    )


def test_sip_show_peer_text() -> None:
    from pypbx.qualify import Qualifier
    from pypbx.sipshow import format_peer

    d = make()
    q = Qualifier()
    d.location.update(
        "1000", "sip:1000@192.168.1.10", expires=60, call_id="c", cseq=1, now=T0,
        received=("203.0.113.5", 41000), user_agent="Phone/2",
    )  # fmt: skip
    text = format_peer(d, q, "1000", T0 + 10)
    lines = text.splitlines()
    assert lines[1] == "  * Name       : 1000"
    assert "  Secret       : <Set>" in lines
    assert "  MD5Secret    : <Not set>" in lines
    assert "  Context      : internal" in lines
    assert "  Addr->IP     : 203.0.113.5:41000" in lines
    assert "  Useragent    : Phone/2" in lines
    assert "  Reg. Contact : sip:1000@192.168.1.10" in lines
    assert "  Reg. Expires : 50" in lines
    assert "  Qualify      : 2000 ms" in lines
    assert "  Status       : UNKNOWN" in lines  # qualify=yes, but not polled yet
    assert format_peer(d, q, "ghost", T0) == "Peer ghost not found.\n"


_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["From", "To", "Proxy-Authorization", "CSeq"]), _text),
        max_size=5,
    ),
    st.sampled_from([("192.0.2.1", 5060), ("198.51.100.9", 5060)]),
)
def test_any_header_values_give_a_decision(
    changes: list[tuple[str, str]], source: tuple[str, int]
) -> None:
    req = invite("1000")
    for name, value in changes:
        try:
            req.headers.set(name, value)
        except ValueError:
            continue
    out = make().authenticate_invite(req, source, now=T0)
    assert out.decision in set(InviteDecision)
    if out.response is not None:
        assert out.response.serialize()
