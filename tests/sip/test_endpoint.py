"""The endpoint: Via handling, matching (§17.1.3, §17.2.3, RFC 2543), CANCEL (§9),
merged requests (§8.2.2.2), 2xx ACKs, OPTIONS, malformed input, limits, transport errors."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.sip.endpoint import UnknownTransaction, response_destination, server_key
from pypbx.sip.events import (
    AckReceived,
    CancelReceived,
    ClientTxnKey,
    MessageRejected,
    RequestReceived,
    ResponseDropped,
    ResponseReceived,
    TransactionTerminated,
    TransportError,
)
from pypbx.sip.headers import Via
from pypbx.sip.ids import IdFactory
from pypbx.sip.message import Request, Response, build_response
from pypbx.sip.parse import parse_message
from pypbx.sip.transaction import IllegalTransition, State
from tests.harness import ALICE, BOB, Network, make_endpoint, make_req, pair

NAT = ("203.0.113.9", 40000)  # where alice's packets appear to come from


def _only(events: list[object], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def _bob() -> tuple[Network, object]:
    net = Network()
    bob = net.add(BOB, make_endpoint(BOB, 2))
    return net, bob


def _parse(data: bytes) -> Request | Response:
    return parse_message(data)


# ---------------------------------------------------------------- ids


def test_id_factory_is_deterministic_and_branches_carry_the_cookie() -> None:
    a = IdFactory(random.Random(7))
    b = IdFactory(random.Random(7))
    ids = [a.branch(), a.tag(), a.call_id("h")]
    assert ids == [b.branch(), b.tag(), b.call_id("h")]
    assert ids[0].startswith("z9hG4bK")
    assert ids[2].endswith("@h")
    assert len({a.tag() for _ in range(100)}) == 100


def test_id_factory_refuses_weak_ids() -> None:
    with pytest.raises(ValueError, match="32"):
        IdFactory(random.Random(1), bits=16)


# ---------------------------------------------------------------- Via (§18.2.1, RFC 3581)


def test_outgoing_request_gets_a_via_with_cookie_branch_and_rport() -> None:
    net, alice, _ = pair()
    key = alice.send_request(make_req("OPTIONS"), BOB, now=0)
    (pkt,) = net.collect()
    via = _parse(pkt.data).top_via
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.1", 5060)
    assert via.has_rport
    assert via.branch == key.branch
    assert key.branch.startswith("z9hG4bK")
    assert key.method == "OPTIONS"


def test_via_without_branch_gets_one_and_existing_branch_is_kept() -> None:
    _, alice, _ = pair()
    k1 = alice.send_request(make_req("OPTIONS", via="SIP/2.0/UDP 192.0.2.1"), BOB, now=0)
    assert k1.branch.startswith("z9hG4bK")
    k2 = alice.send_request(
        make_req("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKmine"), BOB, now=0
    )
    assert k2 == ClientTxnKey("z9hG4bKmine", "OPTIONS")
    with pytest.raises(ValueError, match="already running"):
        alice.send_request(
            make_req("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKmine"), BOB, now=0
        )


@pytest.mark.parametrize(
    ("via", "source", "received", "rport", "dest"),
    [
        # sent-by matches the source, no rport: untouched, answer to sent-by
        ("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1", ("192.0.2.1", 5070), None, None,
         ("192.0.2.1", 5070)),
        # behind NAT without rport: received added, answer to received + sent-by port
        ("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1", NAT, "203.0.113.9", None,
         ("203.0.113.9", 5060)),
        # RFC 3581: rport filled and received added even when the host matches
        ("SIP/2.0/UDP 203.0.113.9:5060;rport;branch=z9hG4bK1", NAT, "203.0.113.9", 40000,
         ("203.0.113.9", 40000)),
        ("SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1;rport", NAT, "203.0.113.9", 40000,
         ("203.0.113.9", 40000)),
        # a hostname that is not the source address
        ("SIP/2.0/UDP pc.example.com;branch=z9hG4bK1", ("192.0.2.7", 5060), "192.0.2.7", None,
         ("192.0.2.7", 5060)),
    ],
)  # fmt: skip
def test_received_and_rport_and_response_routing(
    via: str, source: tuple[str, int], received: str | None, rport: int | None, dest: object
) -> None:
    net, bob = _bob()
    bob.receive(make_req("OPTIONS", via=via, to_tag="t").serialize(), source, now=0)
    (ev,) = net.take_events(BOB)
    assert isinstance(ev, RequestReceived)
    top = ev.request.top_via
    assert top.received == received
    assert top.rport == rport
    bob.send_response(ev.key, build_response(ev.request, 200), now=0)
    (pkt,) = net.collect()
    assert pkt.dst == dest
    # the response carries the stamped Via back
    assert _parse(pkt.data).top_via.received == received


def test_response_routing_maddr_and_reliable() -> None:
    via = Via("UDP", "10.0.0.5", 5062, (("maddr", "239.1.1.1"),))
    assert response_destination(via, NAT, reliable=False) == ("239.1.1.1", 5062)
    plain = Via("TCP", "10.0.0.5", None)
    assert response_destination(plain, NAT, reliable=True) == NAT
    assert response_destination(plain, NAT, reliable=False) == ("10.0.0.5", 5060)


# ---------------------------------------------------------------- matching


def test_response_with_unknown_branch_is_dropped_as_stray() -> None:
    net, alice, _ = pair()
    alice.send_request(make_req("OPTIONS"), BOB, now=0)
    stray = build_response(make_req("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKno"), 200)
    alice.receive(stray.serialize(), BOB, now=0)
    (ev,) = net.take_events(ALICE)
    assert isinstance(ev, ResponseDropped)
    assert ev.response.status == 200


def test_response_matches_on_branch_and_cseq_method() -> None:
    net, alice, _ = pair()
    key = alice.send_request(make_req("INVITE"), BOB, now=0)
    (pkt,) = net.collect()
    invite = _parse(pkt.data)
    assert isinstance(invite, Request)
    # same branch, but CSeq method CANCEL: not the INVITE's response
    resp = build_response(invite, 200, to_tag="x")
    resp.headers.set("CSeq", f"{invite.cseq.number} CANCEL")
    alice.receive(resp.serialize(), BOB, now=0)
    assert _only(net.take_events(ALICE), ResponseDropped)
    alice.receive(build_response(invite, 180, to_tag="x").serialize(), BOB, now=0)
    (ev,) = net.take_events(ALICE)
    assert ev == ResponseReceived(ev.response, key)


def test_same_branch_from_different_sent_by_are_different_transactions() -> None:
    net, bob = _bob()
    r1 = make_req("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKsame", to_tag="t")
    r2 = make_req("OPTIONS", via="SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKsame", to_tag="t")
    bob.receive(r1.serialize(), ALICE, now=0)
    bob.receive(r2.serialize(), ("192.0.2.5", 5060), now=0)
    assert len(_only(net.take_events(BOB), RequestReceived)) == 2
    assert len(bob) == 2


@pytest.mark.parametrize("branch", [None, "1234abcd"])
def test_rfc2543_invite_retransmission_and_ack_match_without_cookie(branch: str | None) -> None:
    net, bob = _bob()
    via = "SIP/2.0/UDP 192.0.2.1:5060" + (f";branch={branch}" if branch else "")
    invite = make_req("INVITE", via=via)
    bob.receive(invite.serialize(), ALICE, now=0)
    (ev,) = _only(net.take_events(BOB), RequestReceived)
    assert ev.key.branch == ""
    assert ev.key.legacy
    bob.receive(invite.serialize(), ALICE, now=0.5)  # retransmission: absorbed
    assert _only(net.take_events(BOB), RequestReceived) == []
    assert len(net.sent(BOB, "100")) == 2
    resp = build_response(ev.request, 404, to_tag="b")
    bob.send_response(ev.key, resp, now=0.6)
    ack = Request("ACK", invite.uri_text, invite.headers.copy())
    ack.headers.set("CSeq", "1 ACK")
    ack.headers.set("To", resp.headers.get("to") or "")
    bob.receive(ack.serialize(), ALICE, now=0.7)
    assert bob.server_state(ev.key) is State.CONFIRMED
    assert _only(net.take_events(BOB), AckReceived) == []
    # a different CSeq is a different RFC 2543 transaction
    other = make_req("INVITE", via=via, cseq=2)
    bob.receive(other.serialize(), ALICE, now=1)
    assert len(_only(net.take_events(BOB), RequestReceived)) == 1


def test_server_key_maps_ack_and_override_to_invite() -> None:
    via = "SIP/2.0/UDP h;branch=z9hG4bKk"
    assert server_key(make_req("ACK", via=via)).method == "INVITE"
    assert server_key(make_req("CANCEL", via=via), "INVITE") == server_key(
        make_req("INVITE", via=via)
    )


# ---------------------------------------------------------------- merged requests


def test_merged_request_gets_482_and_is_not_passed_up() -> None:
    net, bob = _bob()
    first = make_req("INVITE", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKpath1")
    second = make_req("INVITE", via="SIP/2.0/UDP 192.0.2.3;branch=z9hG4bKpath2")
    bob.receive(first.serialize(), ALICE, now=0)
    bob.receive(second.serialize(), ("192.0.2.3", 5060), now=0)
    events = net.take_events(BOB)
    assert len(_only(events, RequestReceived)) == 1
    assert _only(events, MessageRejected)[0].status == 482
    assert [p.dst for p in net.sent(BOB, "482")] == [("192.0.2.3", 5060)]
    # the 482 went through an INVITE server transaction: retransmissions get it again
    bob.receive(second.serialize(), ("192.0.2.3", 5060), now=0.2)
    assert len(net.sent(BOB, "482")) == 2


def test_same_ids_with_to_tag_or_after_the_first_ended_are_not_merged() -> None:
    net, bob = _bob()
    a = make_req("BYE", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", to_tag="t")
    b = make_req("BYE", via="SIP/2.0/UDP 192.0.2.3;branch=z9hG4bK2", to_tag="t")
    bob.receive(a.serialize(), ALICE, now=0)
    bob.receive(b.serialize(), ("192.0.2.3", 5060), now=0)
    assert len(_only(net.take_events(BOB), RequestReceived)) == 2
    c = make_req("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK3")
    d = make_req("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK4")
    bob.receive(c.serialize(), ALICE, now=0)  # auto-answered, Completed until J
    bob.handle_timer(now=40)
    bob.receive(d.serialize(), ALICE, now=40)
    assert net.sent(BOB, "482") == []


# ---------------------------------------------------------------- CANCEL (§9)


def _ringing(**config: object) -> tuple[Network, object, object, ClientTxnKey, RequestReceived]:
    net, alice, bob = pair(**config)
    key = alice.send_request(make_req("INVITE"), BOB, now=0)
    net.deliver()
    (ev,) = _only(net.take_events(BOB), RequestReceived)
    bob.send_response(ev.key, build_response(ev.request, 180, to_tag="bobtag"), now=0)
    net.settle()
    net.take_events(ALICE)
    return net, alice, bob, key, ev


def test_cancel_after_provisional_is_matched_answered_and_tu_sends_487() -> None:
    net, alice, bob, key, ev = _ringing()
    ckey = alice.cancel(key, now=1)
    assert ckey == ClientTxnKey(key.branch, "CANCEL")
    net.deliver()
    events = net.take_events(BOB)
    (cancel,) = _only(events, CancelReceived)
    assert cancel.invite_key == ev.key
    assert cancel.request.method == "CANCEL"
    assert net.sent(BOB, "200")[0].first_line == "SIP/2.0 200 OK"
    ok = _parse(net.sent(BOB, "200")[0].data)
    assert ok.cseq.method == "CANCEL"
    assert ok.to.tag == "bobtag"  # same tag as the INVITE's responses (§9.2)
    bob.send_response(ev.key, build_response(ev.request, 487, to_tag="bobtag"), now=1)
    net.settle()
    statuses = [
        (e.key.method, e.response.status) for e in _only(net.take_events(ALICE), ResponseReceived)
    ]
    assert statuses == [("CANCEL", 200), ("INVITE", 487)]
    assert net.sent(ALICE, "ACK")
    assert bob.server_state(ev.key) is State.CONFIRMED
    assert alice.cancel(key, now=2) is None  # nothing left to cancel


def test_cancel_before_any_provisional_waits_for_one() -> None:
    net, alice, bob = pair(auto_trying=False)
    key = alice.send_request(make_req("INVITE"), BOB, now=0)
    assert alice.cancel(key, now=0) == ClientTxnKey(key.branch, "CANCEL")
    net.deliver()
    assert net.sent(ALICE, "CANCEL") == []
    (ev,) = _only(net.take_events(BOB), RequestReceived)
    bob.send_response(ev.key, build_response(ev.request, 183, to_tag="b"), now=0.2)
    net.deliver()
    assert len(net.sent(ALICE, "CANCEL")) == 1
    net.settle()
    assert _only(net.take_events(BOB), CancelReceived)


def test_pending_cancel_is_forgotten_when_a_final_arrives_first() -> None:
    net, alice, bob = pair(auto_trying=False)
    key = alice.send_request(make_req("INVITE"), BOB, now=0)
    alice.cancel(key, now=0)
    net.deliver()
    (ev,) = _only(net.take_events(BOB), RequestReceived)
    bob.send_response(ev.key, build_response(ev.request, 486, to_tag="b"), now=0.1)
    net.settle()
    assert net.sent(ALICE, "CANCEL") == []


def test_auto_487() -> None:
    net, alice, bob, key, ev = _ringing(auto_487=True)
    alice.cancel(key, now=1)
    net.settle()
    assert _only(net.take_events(BOB), CancelReceived)
    assert [p.method_or_status for p in net.wire if p.src == BOB][-2:] == ["200", "487"]
    assert bob.server_state(ev.key) is State.CONFIRMED


def test_cancel_without_invite_gets_481() -> None:
    net, bob = _bob()
    cancel = make_req("CANCEL", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKnone")
    bob.receive(cancel.serialize(), ALICE, now=0)
    assert net.sent(BOB, "481")
    assert _only(net.take_events(BOB), CancelReceived) == []


def test_cancel_after_final_is_answered_200_without_event() -> None:
    net, _alice, bob, _key, ev = _ringing()
    bob.send_response(ev.key, build_response(ev.request, 200, to_tag="bobtag"), now=1)
    # alice's TU sends CANCEL itself, racing the 200
    (pkt,) = [p for p in net.wire if p.method_or_status == "INVITE"]
    invite = _parse(pkt.data)
    assert isinstance(invite, Request)
    from pypbx.sip.transaction import build_cancel

    bob.receive(build_cancel(invite).serialize(), ALICE, now=1)
    assert _only(net.take_events(BOB), CancelReceived) == []
    assert _parse(net.sent(BOB, "200")[-1].data).cseq.method == "CANCEL"


def test_cancel_retransmission_absorbed_by_its_own_transaction() -> None:
    net, alice, _bob, key, _ev = _ringing()
    net.now = 1
    alice.cancel(key, now=1)
    net.drop(1)  # CANCEL lost
    net.advance(1.5)
    net.settle()
    assert len(_only(net.take_events(BOB), CancelReceived)) == 1
    assert net.times(ALICE, "CANCEL") == [1, 1.5]


# ---------------------------------------------------------------- ACK for 2xx


def test_ack_for_2xx_reaches_the_tu_outside_the_transaction() -> None:
    net, alice, bob = pair()
    key = alice.send_request(make_req("INVITE"), BOB, now=0)
    net.deliver()
    (ev,) = _only(net.take_events(BOB), RequestReceived)
    bob.send_response(ev.key, build_response(ev.request, 200, to_tag="b"), now=0)
    net.settle()
    (ok,) = [e for e in net.take_events(ALICE) if isinstance(e, ResponseReceived)][-1:]
    assert ok.key == key
    ack = make_req("ACK", to_tag="b")
    alice.send_stateless(ack, BOB)
    net.settle()
    (got,) = _only(net.take_events(BOB), AckReceived)
    assert got.key is None
    assert got.request.top_via.branch != key.branch  # a new branch: its own "transaction"
    assert got.source == ALICE
    with pytest.raises(ValueError, match="ACK"):
        alice.send_request(make_req("ACK"), BOB, now=0)


def test_ack_matching_accepted_server_transaction_is_passed_with_its_key() -> None:
    net, bob = _bob()
    via = "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKsamebranch"
    invite = make_req("INVITE", via=via)
    bob.receive(invite.serialize(), ALICE, now=0)
    (ev,) = _only(net.take_events(BOB), RequestReceived)
    bob.send_response(ev.key, build_response(ev.request, 200, to_tag="b"), now=0)
    ack = make_req("ACK", via=via, to_tag="b")
    bob.receive(ack.serialize(), ALICE, now=0.1)
    (got,) = _only(net.take_events(BOB), AckReceived)
    assert got.key == ev.key


def test_stateless_response_goes_to_its_via() -> None:
    net, bob = _bob()
    req = make_req("INVITE", via="SIP/2.0/UDP 192.0.2.1:5077;branch=z9hG4bKq")
    bob.send_stateless(build_response(req, 200))
    (pkt,) = net.collect()
    assert pkt.dst == ("192.0.2.1", 5077)
    with pytest.raises(ValueError, match="destination"):
        bob.send_stateless(make_req("ACK"))


# ---------------------------------------------------------------- OPTIONS


def test_out_of_dialog_options_is_answered_200_by_the_endpoint() -> None:
    net, bob = _bob()
    bob.receive(make_req("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKo").serialize(),
                ALICE, now=0)  # fmt: skip
    assert _only(net.take_events(BOB), RequestReceived) == []
    (pkt,) = net.from_(BOB)
    resp = _parse(pkt.data)
    assert isinstance(resp, Response)
    assert resp.status == 200
    assert "INVITE" in resp.get_all("Allow")
    assert "OPTIONS" in resp.get_all("Allow")
    assert resp.get("Accept") == "application/sdp"
    assert "Supported" in resp.headers
    assert resp.get("Server") == "pypbx"
    assert resp.to.tag


def test_in_dialog_options_and_disabled_auto_options_go_to_the_tu() -> None:
    net, bob = _bob()
    bob.receive(make_req("OPTIONS", to_tag="d",
                         via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa").serialize(),
                ALICE, now=0)  # fmt: skip
    assert _only(net.take_events(BOB), RequestReceived)
    net2 = Network()
    quiet = net2.add(BOB, make_endpoint(BOB, 3, auto_options=False))
    quiet.receive(make_req("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKb").serialize(),
                  ALICE, now=0)  # fmt: skip
    assert _only(net2.take_events(BOB), RequestReceived)
    assert net2.from_(BOB) == []


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"hello world\r\n\r\n", None),
        (b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n", None),
        # CSeq method disagrees with the request line: 400, headers copied
        (b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm\r\n"
         b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n", 400),
        (b"INVITE sip:b@h SIP/3.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm\r\n"
         b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n", 505),
        # no Call-ID: cannot be answered
        (b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm\r\n"
         b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCSeq: 1 INVITE\r\n\r\n", None),
        # malformed From in a syntactically framed message: 400
        (b"OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm\r\n"
         b"From: <sip:a@h;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n", 400),
    ],
)  # fmt: skip
def test_malformed_input_is_rejected_and_answered_when_possible(
    data: bytes, status: int | None
) -> None:
    net, bob = _bob()
    bob.receive(data, ALICE, now=0)
    (ev,) = net.take_events(BOB)
    assert isinstance(ev, MessageRejected)
    assert ev.status == status
    assert ev.source == ALICE
    sent = net.from_(BOB)
    if status is None:
        assert sent == []
    else:
        (pkt,) = sent
        resp = _parse(pkt.data)
        assert isinstance(resp, Response)
        assert resp.status == status
        assert resp.call_id == "c"
        assert pkt.dst == ALICE


def test_keepalive_crlf_is_ignored() -> None:
    net, bob = _bob()
    bob.receive(b"\r\n\r\n", ALICE, now=0)
    assert net.take_events(BOB) == []
    assert net.from_(BOB) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_receive_never_raises(data: bytes) -> None:
    net, bob = _bob()
    bob.receive(data, ALICE, now=0)
    bob.receive(b"INVITE sip:x@y SIP/2.0\r\n" + data, ALICE, now=0)
    for ev in net.take_events(BOB):
        assert not isinstance(ev, RequestReceived) or ev.request.method == "INVITE"


# ---------------------------------------------------------------- limits and errors


def test_transaction_limit_answers_503() -> None:
    net = Network()
    bob = net.add(BOB, make_endpoint(BOB, 2, max_transactions=1))
    bob.receive(make_req("BYE", to_tag="t", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1")
                .serialize(), ALICE, now=0)  # fmt: skip
    bob.receive(make_req("BYE", to_tag="t", cseq=2, via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2")
                .serialize(), ALICE, now=0)  # fmt: skip
    events = net.take_events(BOB)
    assert len(_only(events, RequestReceived)) == 1
    assert _only(events, MessageRejected)[0].status == 503
    (pkt,) = net.sent(BOB, "503")
    assert _parse(pkt.data).get("Retry-After") == "5"
    assert len(bob) == 1


def test_transport_error_on_key_and_on_address() -> None:
    net, alice, _ = pair()
    k1 = alice.send_request(make_req("OPTIONS"), BOB, now=0)
    k2 = alice.send_request(make_req("INVITE"), ("192.0.2.99", 5060), now=0)
    alice.transport_error(k1, now=0.1)
    assert net.take_events(ALICE) == [TransportError(k1, BOB), TransactionTerminated(k1)]
    alice.transport_error(("192.0.2.99", 5060), now=0.2)
    assert net.take_events(ALICE) == [
        TransportError(k2, ("192.0.2.99", 5060)),
        TransactionTerminated(k2),
    ]
    alice.transport_error(k1, now=0.3)  # already gone: nothing
    assert net.take_events(ALICE) == []


def test_send_response_on_unknown_or_finished_transaction() -> None:
    net, bob = _bob()
    req = make_req("BYE", to_tag="t", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKz")
    bob.receive(req.serialize(), ALICE, now=0)
    (ev,) = _only(net.take_events(BOB), RequestReceived)
    bob.send_response(ev.key, build_response(ev.request, 200), now=0)
    with pytest.raises(IllegalTransition):
        bob.send_response(ev.key, build_response(ev.request, 500), now=0)
    assert bob.server_state(ev.key) is State.COMPLETED
    bob.handle_timer(now=32)
    with pytest.raises(UnknownTransaction):
        bob.send_response(ev.key, build_response(ev.request, 200), now=33)


def test_transport_error_to_an_address_skips_transactions_that_sent_nothing() -> None:
    net, bob = _bob()
    req = make_req("BYE", to_tag="t", via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKq")
    bob.receive(req.serialize(), ALICE, now=0)
    (ev,) = _only(net.take_events(BOB), RequestReceived)
    bob.transport_error(ALICE, now=0.1)  # the BYE's transaction is still in Trying
    assert bob.server_state(ev.key) is State.TRYING
    assert net.take_events(BOB) == []
    bob.send_response(ev.key, build_response(ev.request, 200), now=0.2)
    bob.transport_error(ALICE, now=0.3)
    assert net.take_events(BOB) == [TransportError(ev.key, ALICE), TransactionTerminated(ev.key)]


def test_non_invite_server_in_proceeding_answers_retransmissions_with_the_1xx() -> None:
    net, bob = _bob()
    req = make_req("BYE", to_tag="t", via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKp")
    bob.receive(req.serialize(), ALICE, now=0)
    (ev,) = _only(net.take_events(BOB), RequestReceived)
    bob.send_response(ev.key, build_response(ev.request, 100), now=0.1)
    assert bob.server_state(ev.key) is State.PROCEEDING
    bob.receive(req.serialize(), ALICE, now=0.6)
    assert [p.method_or_status for p in net.from_(BOB)] == ["100", "100"]
    assert _only(net.take_events(BOB), RequestReceived) == []


def test_cancel_overtaking_its_invite_gets_481_and_the_invite_proceeds() -> None:
    net, alice, bob = pair(auto_trying=False)
    key = alice.send_request(make_req("INVITE"), BOB, now=0)
    alice.cancel(key, now=0)  # held: no provisional yet
    (pkt,) = net.drop(1)  # the INVITE is late ...
    invite = _parse(pkt.data)
    from pypbx.sip.transaction import build_cancel

    bob.receive(build_cancel(invite).serialize(), ALICE, now=0.1)  # ... behind a CANCEL
    bob.receive(pkt.data, ALICE, now=0.2)
    events = net.take_events(BOB)
    assert _only(events, MessageRejected)[0].status == 481
    assert len(_only(events, RequestReceived)) == 1
