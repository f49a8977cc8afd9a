"""INVITE authentication outcomes reach the guard through GuardedDirectory (pure)."""

from __future__ import annotations

from pypbx.config.conf import parse_text
from pypbx.config.sipconf import parse_sip_conf
from pypbx.location import Location
from pypbx.peers import InviteDecision
from pypbx.security.bans import BanEvent
from pypbx.security.guard import Guard
from pypbx.security.invite import GuardedDirectory, claimed_user
from pypbx.sip.auth import DigestServer, answer_challenge, parse_challenge
from pypbx.sip.message import Request, Response
from pypbx.sip.parse import parse_message

T0 = 1_800_000_000.0
SRC = ("127.0.0.66", 5060)
CONF = """
[general]
realm=pypbx

[1000]
type=friend
host=dynamic
secret=s3cret
context=internal

[trunk]
type=peer
host=127.0.0.9
insecure=port,invite
context=from-trunk
"""


def make() -> tuple[GuardedDirectory, Guard, list[BanEvent]]:
    cfg = parse_sip_conf(parse_text(CONF, "sip.conf"))
    directory = GuardedDirectory(cfg, Location(), digest=DigestServer(b"k", "pypbx"))
    bans: list[BanEvent] = []
    guard = Guard(on_ban=bans.append)
    directory.guard = guard
    return directory, guard, bans


def invite(from_user: str = "1000", *, auth: str | None = None) -> Request:
    lines = [
        "INVITE sip:600@pbx SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.66:5060;branch=z9hG4bK-x",
        f"From: <sip:{from_user}@pbx>;tag=f",
        "To: <sip:600@pbx>",
        "Call-ID: inv-1",
        "CSeq: 1 INVITE",
        *([f"Proxy-Authorization: {auth}"] if auth else []),
        "Content-Length: 0",
    ]
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def creds(resp: Response | None, user: str, password: str) -> str:
    assert resp is not None
    challenge = parse_challenge(resp.get("Proxy-Authenticate") or "")
    return answer_challenge(
        challenge,
        method="INVITE",
        uri="sip:600@pbx",
        username=user,
        password=password,
        cnonce="c",
        nc=1,
    )


def test_wrong_passwords_on_invite_ban_after_five() -> None:
    directory, guard, bans = make()
    for i in range(5):
        first = directory.authenticate_invite(invite(), SRC, now=T0 + i)
        assert first.decision is InviteDecision.CHALLENGE  # a challenge is not a failure
        bad = invite(auth=creds(first.response, "1000", "guess"))
        assert directory.authenticate_invite(bad, SRC, now=T0 + i).auth_failure
    assert [e.ban.addr for e in bans] == ["127.0.0.66"]
    assert "(last user '1000')" in bans[0].log_line
    assert guard.bans.is_banned("127.0.0.66", now=T0 + 10)


def test_a_good_password_trusts_the_source_and_clears_its_failures() -> None:
    directory, guard, bans = make()
    for _ in range(4):
        first = directory.authenticate_invite(invite(), SRC, now=T0)
        directory.authenticate_invite(invite(auth=creds(first.response, "1000", "x")), SRC, now=T0)
    assert guard.bans.failures("127.0.0.66", now=T0) == 4
    first = directory.authenticate_invite(invite(), SRC, now=T0)
    ok = directory.authenticate_invite(
        invite(auth=creds(first.response, "1000", "s3cret")), SRC, now=T0
    )
    assert ok.decision is InviteDecision.ACCEPT
    assert guard.bans.failures("127.0.0.66", now=T0) == 0
    assert guard.rate.is_trusted("127.0.0.66", now=T0)
    assert bans == []


def test_trunk_matched_by_host_earns_no_trust() -> None:
    directory, guard, _ = make()
    out = directory.authenticate_invite(invite("spoofed"), ("127.0.0.9", 5999), now=T0)
    assert out.decision is InviteDecision.ACCEPT
    assert not guard.rate.is_trusted("127.0.0.9", now=T0)


def test_claimed_user_prefers_the_digest_username() -> None:
    assert claimed_user(invite("alice")) == "alice"
    auth = 'Digest username="bob", realm="pypbx", nonce="n", uri="sip:600@pbx", response="0"'
    assert claimed_user(invite("alice", auth=auth)) == "bob"
