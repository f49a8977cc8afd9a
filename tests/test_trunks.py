"""Outbound registration state machine against scripted provider answers (pure)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.config.conf import Origin
from pypbx.config.netaddr import parse_network
from pypbx.config.sipconf import General, Registration
from pypbx.sip.auth import DigestServer
from pypbx.sip.ids import IdFactory
from pypbx.sip.message import Request, Response, build_response
from pypbx.trunks import (
    TRANSITIONS,
    IllegalTransition,
    OutboundRegistration,
    RegistryRow,
    RegState,
    contact_address,
    format_registry,
    refresh_after,
)

T0 = 1_800_000_000.0
ORIGIN = Origin("sip.conf", 3)
LOCAL = ("192.168.1.5", 5060)


def make_reg(
    *, expiry: int | None = None, attempts: int = 0, timeout: int = 20, **reg: object
) -> OutboundRegistration:
    registration = Registration(
        user="acct",
        host="sip.provider.test",
        origin=ORIGIN,
        secret="pw",
        extension="1234",
        expiry=expiry,
        **reg,  # type: ignore[arg-type]
    )
    general = replace(General(), registerattempts=attempts, registertimeout=timeout)
    return OutboundRegistration(
        registration,
        general,
        ids=IdFactory(random.Random(7)),
        contact_addr=LOCAL,
        start=T0,
    )


def state_of(r: OutboundRegistration) -> RegState:
    """The state, read through a call so mypy does not narrow it between steps."""
    return r.state


class Provider:
    """A scripted registrar with digest auth."""

    def __init__(self, password: str = "pw", realm: str = "prov") -> None:
        self.digest = DigestServer(b"prov-key", realm, nonce_lifetime=300)
        self.password = password

    def challenge(
        self, req: Request, now: float, status: int = 401, stale: bool = False
    ) -> Response:
        header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
        return build_response(
            req, status, to_tag="t", headers=[(header, self.digest.challenge(now, stale=stale))]
        )

    def verify(self, req: Request, now: float, header: str = "Authorization") -> bool:
        value = req.get(header)
        if value is None:
            return False
        verdict = self.digest.verify(value, "REGISTER", password=self.password, now=now)
        return verdict.value == "ok"


def ok(req: Request, expires: int | None = None, contact_expires: int | None = None) -> Response:
    headers = []
    if contact_expires is not None:
        headers.append(("Contact", f"{req.get('Contact')};expires={contact_expires}"))
    if expires is not None:
        headers.append(("Expires", str(expires)))
    return build_response(req, 200, to_tag="t", headers=headers)


def test_request_shape() -> None:
    r = make_reg(expiry=300)
    assert state_of(r) is RegState.UNREGISTERED
    assert r.next_timer() == T0
    assert r.next_action(T0 - 1) is None
    req = r.next_action(T0)
    assert req is not None
    assert state_of(r) is RegState.REQUEST_SENT
    assert req.method == "REGISTER"
    assert req.uri_text == "sip:sip.provider.test"
    assert (req.get("From") or "").startswith("<sip:acct@sip.provider.test>;tag=")
    assert req.get("To") == "<sip:acct@sip.provider.test>"
    assert req.get("Contact") == "<sip:1234@192.168.1.5:5060>"
    assert req.get("Expires") == "300"
    assert req.cseq.number == 101
    assert req.top_via.has_rport
    assert req.get("Authorization") is None
    assert r.next_timer() == T0 + 20  # registertimeout deadline


def test_domain_and_port_in_uris() -> None:
    r = make_reg(domain="example.org", domain_port=5070, port=5080)
    req = r.next_action(T0)
    assert req is not None
    assert req.uri_text == "sip:example.org:5070"
    assert req.get("To") == "<sip:acct@example.org:5070>"
    assert r.row().host == "sip.provider.test:5080"


def test_401_then_200_and_refresh_keeps_call_id_and_contact() -> None:
    prov = Provider()
    r = make_reg(expiry=120)
    first = r.next_action(T0)
    assert first is not None
    retry = r.on_response(prov.challenge(first, T0), T0)
    assert retry is not None
    assert state_of(r) is RegState.AUTH_SENT
    assert retry.cseq.number == 102
    assert prov.verify(retry, T0)
    assert r.on_response(ok(retry, expires=120), T0 + 0.1) is None
    assert state_of(r) is RegState.REGISTERED
    assert r.regtime == T0 + 0.1
    assert r.refresh == 105
    assert r.next_timer() == pytest.approx(T0 + 0.1 + 105)
    assert r.next_action(T0 + 100) is None
    again = r.next_action(T0 + 105.1)
    assert again is not None
    assert again.call_id == first.call_id
    assert again.get("Contact") == first.get("Contact")
    assert again.get("From") == first.get("From")
    assert again.cseq.number == 103
    # the cached challenge is reused with the next nonce-count
    assert state_of(r) is RegState.AUTH_SENT
    assert prov.verify(again, T0 + 105.1)
    assert "nc=00000002" in (again.get("Authorization") or "")


def test_407_is_answered_with_proxy_authorization() -> None:
    prov = Provider()
    r = make_reg()
    first = r.next_action(T0)
    assert first is not None
    retry = r.on_response(prov.challenge(first, T0, status=407), T0)
    assert retry is not None
    assert retry.get("Authorization") is None
    assert prov.verify(retry, T0, "Proxy-Authorization")
    r.on_response(ok(retry), T0)
    assert state_of(r) is RegState.REGISTERED


def test_401_twice_is_no_authentication_then_retry_after_registertimeout() -> None:
    prov = Provider(password="other")
    r = make_reg()
    first = r.next_action(T0)
    assert first is not None
    retry = r.on_response(prov.challenge(first, T0), T0)
    assert retry is not None
    assert not prov.verify(retry, T0)
    assert r.on_response(prov.challenge(retry, T0), T0) is None
    assert state_of(r) is RegState.NO_AUTHENTICATION
    assert any("Failed to authenticate" in line for line in r.log)
    assert r.next_timer() == T0 + 20
    again = r.next_action(T0 + 20)
    assert again is not None
    assert r.attempts == 2


def test_stale_challenge_is_answered_again() -> None:
    prov = Provider()
    r = make_reg()
    first = r.next_action(T0)
    assert first is not None
    retry = r.on_response(prov.challenge(first, T0), T0)
    assert retry is not None
    retry2 = r.on_response(prov.challenge(retry, T0, stale=True), T0)
    assert retry2 is not None
    assert state_of(r) is RegState.AUTH_SENT


@pytest.mark.parametrize(
    ("status", "state", "log_part"),
    [
        (403, RegState.REJECTED, "Forbidden - wrong password"),
        (404, RegState.REJECTED, "Got 404"),
        (503, RegState.REJECTED, "Got 503"),
    ],
)
def test_failures_are_rejected_and_retried(status: int, state: RegState, log_part: str) -> None:
    r = make_reg(timeout=30)
    req = r.next_action(T0)
    assert req is not None
    assert r.on_response(build_response(req, status, to_tag="t"), T0 + 1) is None
    assert state_of(r) is state
    assert any(log_part in line for line in r.log)
    assert r.next_timer() == T0 + 31
    assert r.next_action(T0 + 30) is None
    assert r.next_action(T0 + 31) is not None
    assert state_of(r) is RegState.REQUEST_SENT


def test_423_retries_with_min_expires() -> None:
    r = make_reg(expiry=60)
    req = r.next_action(T0)
    assert req is not None
    resp = build_response(req, 423, to_tag="t", headers=[("Min-Expires", "600")])
    retry = r.on_response(resp, T0)
    assert retry is not None
    assert retry.get("Expires") == "600"
    r.on_response(ok(retry), T0)
    assert state_of(r) is RegState.REGISTERED
    assert r.refresh == 585


@pytest.mark.parametrize("minimum", ["7200", "", "abc", "\u00b2", "-5"])
def test_423_above_maxexpiry_or_garbled_is_rejected(minimum: str) -> None:
    r = make_reg(expiry=60)
    req = r.next_action(T0)
    assert req is not None
    resp = build_response(req, 423, to_tag="t", headers=[("Min-Expires", minimum)])
    assert r.on_response(resp, T0) is None
    assert state_of(r) is RegState.REJECTED
    assert r.expiry == 60


def test_timeouts_retry_every_registertimeout_until_attempts_run_out() -> None:
    r = make_reg(attempts=3, timeout=20)
    sent_at = []
    now = T0
    for _ in range(10):
        t = r.next_timer()
        if t is None:
            break
        now = t
        req = r.next_action(now)
        if req is not None:
            sent_at.append(now)
    assert sent_at == [T0, T0 + 20, T0 + 40]
    assert state_of(r) is RegState.FAILED
    assert r.next_timer() is None
    assert any("Giving up forever" in line for line in r.log)


def test_timeout_state_then_forever_with_zero_attempts() -> None:
    r = make_reg(attempts=0, timeout=20)
    req = r.next_action(T0)
    assert req is not None
    r.on_timeout(T0 + 5, cseq=req.cseq.number + 7)  # not ours: ignored
    assert state_of(r) is RegState.REQUEST_SENT
    r.on_timeout(T0 + 5, cseq=req.cseq.number)
    assert state_of(r) is RegState.TIMEOUT
    assert r.next_timer() == T0 + 5
    for i in range(50):
        r.next_action(r.next_timer() or 0)
        assert state_of(r) is RegState.REQUEST_SENT, i
        r.on_timeout(T0 + 100 + i)
    assert r.attempts == 51


def test_late_response_to_an_old_request_is_ignored() -> None:
    r = make_reg(timeout=20)
    old = r.next_action(T0)
    assert old is not None
    new = r.next_action(T0 + 20)  # deadline passed: timed out and sent again
    assert new is not None
    assert new.cseq.number == old.cseq.number + 1
    assert r.on_response(ok(old), T0 + 21) is None
    assert state_of(r) is RegState.REQUEST_SENT
    r.on_response(ok(new), T0 + 21)
    assert state_of(r) is RegState.REGISTERED


@pytest.mark.parametrize(
    ("granted", "refresh"),
    [(3600, 3585), (120, 105), (31, 16), (30, 24), (10, 8), (2, 1.5), (1, 0.5)],
)
def test_refresh_margin(granted: int, refresh: float) -> None:
    assert refresh_after(granted) == pytest.approx(refresh)


def test_contact_expires_wins_over_expires_header() -> None:
    r = make_reg(expiry=3600)
    req = r.next_action(T0)
    assert req is not None
    r.on_response(ok(req, expires=3600, contact_expires=600), T0)
    assert r.refresh == 585
    assert r.next_timer() == T0 + 585


def test_success_resets_attempts() -> None:
    r = make_reg(attempts=2)
    req = r.next_action(T0)
    assert req is not None
    r.on_timeout(T0 + 20)
    req = r.next_action(T0 + 20)
    assert req is not None
    r.on_response(ok(req), T0 + 21)
    assert r.attempts == 0
    assert state_of(r) is RegState.REGISTERED


def test_unregister_sends_expires_zero_and_stops() -> None:
    prov = Provider()
    r = make_reg()
    req = r.next_action(T0)
    assert req is not None
    r.on_response(ok(req), T0)
    bye = r.unregister(T0 + 10)
    assert bye is not None
    assert bye.get("Expires") == "0"
    assert bye.call_id == req.call_id
    assert state_of(r) is RegState.UNREGISTERED
    again = r.on_response(prov.challenge(bye, T0 + 10), T0 + 10)
    assert again is not None
    assert again.get("Expires") == "0"
    assert again.get("Authorization")
    assert r.on_response(ok(again), T0 + 10) is None
    assert r.next_timer() is None
    assert r.next_action(T0 + 10_000) is None


def test_unregister_before_anything_sends_nothing() -> None:
    r = make_reg()
    assert r.unregister(T0) is None
    assert r.next_timer() is None


def test_transition_table_refuses_illegal_moves() -> None:
    r = make_reg()
    with pytest.raises(IllegalTransition):
        r._set(RegState.REGISTERED)  # Unregistered → Registered without a request
    assert state_of(r) is RegState.UNREGISTERED
    assert set(TRANSITIONS) == set(RegState)


def test_transport_tcp_contact() -> None:
    from pypbx.config.sipconf import Transport

    r = make_reg(transport=Transport.TCP)
    req = r.next_action(T0)
    assert req is not None
    assert req.get("Contact") == "<sip:1234@192.168.1.5:5060;transport=tcp>"
    assert req.top_via.transport == "TCP"


@pytest.mark.parametrize(
    ("provider", "extern", "localnet", "expected"),
    [
        ("203.0.113.50", "198.51.100.1", ("192.168.0.0/16",), ("198.51.100.1", 5060)),
        ("192.168.7.7", "198.51.100.1", ("192.168.0.0/16",), LOCAL),
        ("203.0.113.50", None, ("192.168.0.0/16",), LOCAL),
        ("203.0.113.50", "198.51.100.1", (), LOCAL),
    ],
)
def test_contact_address_uses_externaddr_outside_localnet(
    provider: str, extern: str | None, localnet: tuple[str, ...], expected: tuple[str, int]
) -> None:
    general = replace(
        General(), externaddr=extern, localnet=tuple(parse_network(n) for n in localnet)
    )
    assert contact_address(general, provider, LOCAL) == expected


def test_sip_show_registry_format() -> None:
    r = make_reg(expiry=120)
    req = r.next_action(T0)
    assert req is not None
    r.on_response(ok(req), T0)
    rows = [r.row(), RegistryRow("other.test:5060", "N", "bob", 120, "Request Sent", None)]
    text = format_registry(rows, tz=UTC)
    lines = text.splitlines()
    assert lines[0] == (
        "Host                                    dnsmgr Username       Refresh State"
        "                Reg.Time"
    )
    assert lines[1] == (
        "sip.provider.test:5060                  N      acct               105 Registered"
        "           Fri, 15 Jan 2027 08:00:00"
    )
    assert lines[2].startswith("other.test:5060")
    assert lines[-1] == "2 SIP registrations."


def test_refresh_after_provider_restart_reanswers_a_fresh_challenge() -> None:
    prov = Provider()
    r = make_reg(expiry=120)
    first = r.next_action(T0)
    assert first is not None
    retry = r.on_response(prov.challenge(first, T0), T0)
    assert retry is not None
    r.on_response(ok(retry), T0)
    restarted = Provider()
    restarted.digest = DigestServer(b"new-key", "prov", nonce_lifetime=300)
    refresh = r.next_action(T0 + 105)
    assert refresh is not None
    assert not restarted.verify(refresh, T0 + 105)  # the cached nonce is unknown there
    again = r.on_response(restarted.challenge(refresh, T0 + 105), T0 + 105)
    assert again is not None
    assert restarted.verify(again, T0 + 105)
    r.on_response(ok(again), T0 + 105)
    assert state_of(r) is RegState.REGISTERED


def test_wrong_password_after_a_cached_challenge_still_ends_in_no_authentication() -> None:
    prov = Provider()
    r = make_reg(expiry=120)
    first = r.next_action(T0)
    assert first is not None
    retry = r.on_response(prov.challenge(first, T0), T0)
    assert retry is not None
    r.on_response(ok(retry), T0)
    prov.password = "changed"
    refresh = r.next_action(T0 + 105)
    assert refresh is not None
    again = r.on_response(prov.challenge(refresh, T0 + 105), T0 + 105)
    assert again is not None
    assert r.on_response(prov.challenge(again, T0 + 105), T0 + 105) is None
    assert state_of(r) is RegState.NO_AUTHENTICATION


def test_first_of_several_algorithms_is_answered() -> None:
    prov = Provider()
    prov.digest = DigestServer(b"k2", "prov", algorithms=("SHA-256", "MD5"))
    r = make_reg()
    req = r.next_action(T0)
    assert req is not None
    headers = [("WWW-Authenticate", v) for v in prov.digest.challenges(T0)]
    retry = r.on_response(build_response(req, 401, to_tag="t", headers=headers), T0)
    assert retry is not None
    assert "algorithm=SHA-256" in (retry.get("Authorization") or "")
    assert prov.verify(retry, T0)


_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"),
    max_size=80,
)
_RESP_HEADERS = ["WWW-Authenticate", "Proxy-Authenticate", "Min-Expires", "Contact", "Expires"]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([200, 401, 403, 407, 423, 480, 500]),
    st.lists(st.tuples(st.sampled_from(_RESP_HEADERS), _text), max_size=4),
)
def test_any_response_is_absorbed(status: int, headers: list[tuple[str, str]]) -> None:
    r = make_reg()
    req = r.next_action(T0)
    assert req is not None
    resp = build_response(req, status, to_tag="t")
    for name, value in headers:
        try:
            resp.headers.add(name, value)
        except ValueError:
            continue
    out = r.on_response(resp, T0 + 1)
    assert out is None or out.method == "REGISTER"
    assert state_of(r) in set(RegState)
    assert r.next_timer() is not None
