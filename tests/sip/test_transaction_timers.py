"""Transactions end to end over the in-memory network: retransmission counts and
intervals, timers B/D/F/H/I/J/K/L/M, loss and reordering, UDP and TCP (RFC 3261 §17)."""

from __future__ import annotations

import itertools

import pytest

from pypbx.sip.events import (
    AckReceived,
    RequestReceived,
    ResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
)
from pypbx.sip.message import build_response
from pypbx.sip.transaction import State, TimerConfig
from tests.harness import ALICE, BOB, Network, make_endpoint, make_req, pair


def _only(events: list[object], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def _received(net: Network) -> RequestReceived:
    (ev,) = _only(net.take_events(BOB), RequestReceived)
    return ev


def test_invite_unanswered_retransmits_on_timer_a_then_times_out_on_b() -> None:
    net = Network()
    alice = net.add(ALICE, make_endpoint(ALICE, 1))  # nobody at BOB
    key = alice.send_request(make_req("INVITE"), BOB, now=0.0)
    net.advance(100.0)
    assert net.times(ALICE, "INVITE") == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    events = net.take_events(ALICE)
    assert events == [TransactionTimedOut(key), TransactionTerminated(key)]
    assert alice.client_state(key) is None
    assert alice.next_timer() is None


def test_non_invite_unanswered_retransmits_capped_at_t2_then_times_out_on_f() -> None:
    net = Network()
    alice = net.add(ALICE, make_endpoint(ALICE, 1))
    key = alice.send_request(make_req("OPTIONS"), BOB, now=0.0)
    net.advance(100.0)
    times = net.times(ALICE, "OPTIONS")
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    intervals = [b - a for a, b in itertools.pairwise(times)]
    assert max(intervals) == 4.0
    assert net.take_events(ALICE) == [TransactionTimedOut(key), TransactionTerminated(key)]


def test_configured_t1_t2_scale_every_interval() -> None:
    net = Network()
    alice = net.add(ALICE, make_endpoint(ALICE, 1, timers=TimerConfig(t1=0.1, t2=0.4, t4=1.0)))
    alice.send_request(make_req("OPTIONS"), BOB, now=0.0)
    net.advance(10.0)
    times = net.times(ALICE, "OPTIONS")
    assert times[:5] == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.1])
    assert times[-1] < 6.4


def test_non_invite_in_proceeding_retransmits_every_t2() -> None:
    net, alice, bob = pair()
    key = alice.send_request(make_req("OPTIONS", to_tag="dlg"), BOB, now=0.0)
    net.deliver()
    ev = _received(net)
    net.now = 0.1
    bob.send_response(ev.key, build_response(ev.request, 183, to_tag="x"), now=0.1)
    net.deliver()
    assert alice.client_state(key) is State.PROCEEDING
    net.advance(9.0)
    # 0.5 was armed in Trying; then T2 (4 s) each time from Proceeding
    assert net.times(ALICE, "OPTIONS") == [0.0, 0.5, 4.5, 8.5]


def test_non_invite_completed_absorbs_final_retransmits_and_ends_on_k() -> None:
    net, alice, bob = pair()
    key = alice.send_request(make_req("OPTIONS", to_tag="dlg"), BOB, now=0.0)
    net.deliver()
    ev = _received(net)
    bob.send_response(ev.key, build_response(ev.request, 200, to_tag="x"), now=0.0)
    net.deliver()
    assert alice.client_state(key) is State.COMPLETED
    # bob's server transaction answers a retransmitted request with its last response
    net.advance(0.6)
    assert net.times(ALICE, "OPTIONS") == [0.0]  # no retransmission once Completed
    events = net.take_events(ALICE)
    assert len(_only(events, ResponseReceived)) == 1
    net.advance(4.99)
    assert alice.client_state(key) is State.COMPLETED
    net.advance(5.0)
    assert alice.client_state(key) is None
    assert net.take_events(ALICE) == [TransactionTerminated(key)]


def test_non_invite_server_answers_retransmissions_with_last_response_until_j() -> None:
    net, alice, bob = pair()
    alice.send_request(make_req("OPTIONS", to_tag="dlg"), BOB, now=0.0)
    net.deliver()
    ev = _received(net)
    # the request is retransmitted while bob has not answered: absorbed, not passed up
    net.advance(0.5)
    net.deliver()
    assert _only(net.take_events(BOB), RequestReceived) == []
    assert net.sent(BOB, "200") == []
    net.now = 1.0
    bob.send_response(ev.key, build_response(ev.request, 200, to_tag="x"), now=1.0)
    net.drop(1)  # the 200 is lost
    net.advance(1.5)  # alice retransmits (timer E at 1.5); bob answers again
    net.settle()
    assert net.times(BOB, "200") == [1.0, 1.5]
    assert _only(net.take_events(ALICE), ResponseReceived)[0].response.status == 200
    assert bob.server_state(ev.key) is State.COMPLETED
    net.advance(32.999)
    assert bob.server_state(ev.key) is State.COMPLETED
    net.advance(33.0)
    assert bob.server_state(ev.key) is None


def test_invite_lost_then_retransmitted_reaches_the_tu_once() -> None:
    net, alice, _bob = pair()
    alice.send_request(make_req("INVITE"), BOB, now=0.0)
    net.drop(1)
    net.advance(0.5)
    net.settle()
    assert len(_only(net.take_events(BOB), RequestReceived)) == 1
    # the 100 Trying stopped timer A: no more INVITEs
    net.advance(10.0, deliver=True)
    assert net.times(ALICE, "INVITE") == [0.0, 0.5]
    assert _only(net.take_events(BOB), RequestReceived) == []


def test_invite_server_answers_retransmitted_invite_with_last_provisional() -> None:
    net, alice, bob = pair()
    alice.send_request(make_req("INVITE"), BOB, now=0.0)
    net.deliver()
    ev = _received(net)
    bob.send_response(ev.key, build_response(ev.request, 180, to_tag="b"), now=0.0)
    net.drop(2)  # 100 and 180 lost
    net.advance(0.5)
    net.deliver()
    assert net.times(BOB, "180") == [0.0, 0.5]
    net.deliver()
    statuses = [e.response.status for e in _only(net.take_events(ALICE), ResponseReceived)]
    assert statuses == [180]


def test_invite_rejected_ack_confirms_and_i_ends_server() -> None:
    net, alice, bob = pair()
    key = alice.send_request(make_req("INVITE"), BOB, now=0.0)
    net.deliver()
    ev = _received(net)
    bob.send_response(ev.key, build_response(ev.request, 486, to_tag="b"), now=0.0)
    net.settle()
    assert net.sent(ALICE, "ACK")
    ack = net.sent(ALICE, "ACK")[0]
    assert b"branch=" + key.branch.encode() in ack.data
    assert alice.client_state(key) is State.COMPLETED
    assert bob.server_state(ev.key) is State.CONFIRMED
    assert _only(net.take_events(BOB), AckReceived) == []  # absorbed by the transaction
    net.advance(4.99)
    assert bob.server_state(ev.key) is State.CONFIRMED
    net.advance(5.0)
    assert bob.server_state(ev.key) is None
    net.advance(31.99)
    assert alice.client_state(key) is State.COMPLETED
    net.advance(32.0)
    assert alice.client_state(key) is None


def test_lost_ack_makes_server_retransmit_final_on_g_and_client_re_acks() -> None:
    net, alice, bob = pair()
    alice.send_request(make_req("INVITE"), BOB, now=0.0)
    net.deliver()
    ev = _received(net)
    bob.send_response(ev.key, build_response(ev.request, 603, to_tag="b"), now=0.0)
    net.deliver()  # the 603 reaches alice, who ACKs
    net.drop(1, lambda p: p.method_or_status == "ACK")
    net.advance(0.5)  # G fires: 603 again
    net.settle()  # alice answers with a new ACK from the Completed state
    assert net.times(BOB, "603") == [0.0, 0.5]
    assert net.times(ALICE, "ACK") == [0.0, 0.5]
    assert bob.server_state(ev.key) is State.CONFIRMED
    statuses = [e.response.status for e in _only(net.take_events(ALICE), ResponseReceived)]
    assert statuses.count(603) == 1  # retransmitted finals are not passed up again


def test_server_without_ack_retransmits_on_g_capped_and_times_out_on_h() -> None:
    net = Network()
    bob = net.add(BOB, make_endpoint(BOB, 2))
    invite = make_req("INVITE", via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKlonely")
    bob.receive(invite.serialize(), ALICE, now=0.0)
    ev = _received(net)
    bob.send_response(ev.key, build_response(ev.request, 480, to_tag="b"), now=0.0)
    net.advance(100.0)
    assert net.times(BOB, "480") == [
        0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5
    ]  # fmt: skip
    events = net.take_events(BOB)
    assert TransactionTimedOut(ev.key) in events
    assert events[-1] == TransactionTerminated(ev.key)


def test_2xx_ends_client_in_accepted_passes_retransmissions_and_m_ends_it() -> None:
    net, alice, bob = pair()
    key = alice.send_request(make_req("INVITE"), BOB, now=0.0)
    net.deliver()
    ev = _received(net)
    ok = build_response(ev.request, 200, to_tag="b")
    bob.send_response(ev.key, ok, now=0.0)
    net.deliver()
    assert alice.client_state(key) is State.ACCEPTED
    assert bob.server_state(ev.key) is State.ACCEPTED
    bob.send_response(ev.key, ok, now=0.5)  # the UAS core retransmits its 2xx
    net.deliver()
    oks = [e for e in _only(net.take_events(ALICE), ResponseReceived) if e.response.status == 200]
    assert len(oks) == 2  # both passed up, so the TU can ACK each
    assert net.sent(ALICE, "ACK") == []  # the transaction never ACKs a 2xx
    net.advance(31.9)
    assert alice.client_state(key) is State.ACCEPTED
    net.advance(32.0)
    assert alice.client_state(key) is None
    assert bob.server_state(ev.key) is None  # timer L, also 64*T1


def test_accepted_server_absorbs_invite_retransmission() -> None:
    net, alice, bob = pair()
    alice.send_request(make_req("INVITE"), BOB, now=0.0)
    net.deliver()
    ev = _received(net)
    net.drop(1)  # the 100 Trying is lost, so alice will retransmit
    net.now = 0.1
    bob.send_response(ev.key, build_response(ev.request, 200, to_tag="b"), now=0.1)
    net.drop(1)  # the 200 is lost as well
    net.advance(0.5)
    net.deliver()
    assert net.times(ALICE, "INVITE") == [0.0, 0.5]
    assert net.times(BOB, "200") == [0.1]  # only the TU retransmits 2xx
    assert _only(net.take_events(BOB), RequestReceived) == []


def test_reordered_final_before_provisional() -> None:
    net, alice, bob = pair()
    key = alice.send_request(make_req("INVITE"), BOB, now=0.0)
    net.deliver()
    net.drop(1)  # forget the 100
    ev = _received(net)
    bob.send_response(ev.key, build_response(ev.request, 180, to_tag="b"), now=0.0)
    bob.send_response(ev.key, build_response(ev.request, 404, to_tag="b"), now=0.0)
    net.reorder()
    net.deliver(1)  # the 404 first
    assert alice.client_state(key) is State.COMPLETED
    net.deliver()
    statuses = [e.response.status for e in _only(net.take_events(ALICE), ResponseReceived)]
    assert statuses == [404]  # the late 180 is absorbed


@pytest.mark.parametrize("transport", ["TCP", "TLS"])
def test_reliable_transport_never_retransmits_and_zero_timers_end_at_once(
    transport: str,
) -> None:
    net, alice, bob = pair(transport=transport)
    key = alice.send_request(make_req("OPTIONS", to_tag="t"), BOB, now=0.0)
    net.advance(31.0)
    assert net.times(ALICE, "OPTIONS") == [0.0]
    net.deliver()
    ev = _received(net)
    bob.send_response(ev.key, build_response(ev.request, 200, to_tag="x"), now=31.0)
    assert bob.server_state(ev.key) is None  # J = 0
    net.deliver()
    assert alice.client_state(key) is None  # K = 0
    inv = alice.send_request(make_req("INVITE", call_id="c2"), BOB, now=31.0)
    net.deliver()
    ev2 = _received(net)
    bob.send_response(ev2.key, build_response(ev2.request, 486, to_tag="y"), now=31.0)
    assert bob.server_state(ev2.key) is State.COMPLETED  # waits for the ACK (H), no G
    net.advance(40.0)
    assert net.times(BOB, "486") == [31.0]
    net.settle()
    assert alice.client_state(inv) is None  # D = 0
    assert bob.server_state(ev2.key) is None  # I = 0 after the ACK
    assert TransactionTimedOut(ev2.key) not in net.take_events(BOB)


def test_reliable_invite_times_out_on_b() -> None:
    net = Network()
    alice = net.add(ALICE, make_endpoint(ALICE, 1, transport="TCP"))
    key = alice.send_request(make_req("INVITE"), BOB, now=0.0)
    net.advance(31.9)
    assert alice.client_state(key) is State.CALLING
    net.advance(32.0)
    assert net.take_events(ALICE) == [TransactionTimedOut(key), TransactionTerminated(key)]


def test_reordered_non_invite_final_before_provisional() -> None:
    net, alice, bob = pair()
    key = alice.send_request(make_req("OPTIONS", to_tag="t"), BOB, now=0.0)
    net.deliver()
    ev = _received(net)
    bob.send_response(ev.key, build_response(ev.request, 100), now=0.0)
    bob.send_response(ev.key, build_response(ev.request, 200, to_tag="x"), now=0.0)
    net.reorder()
    net.deliver()
    statuses = [e.response.status for e in _only(net.take_events(ALICE), ResponseReceived)]
    assert statuses == [200]
    assert alice.client_state(key) is State.COMPLETED


def test_ack_reordered_before_final_retransmission_still_confirms() -> None:
    net, alice, bob = pair()
    alice.send_request(make_req("INVITE"), BOB, now=0.0)
    net.deliver()
    ev = _received(net)
    bob.send_response(ev.key, build_response(ev.request, 404, to_tag="b"), now=0.0)
    net.drop(1, lambda p: p.method_or_status == "100")
    net.deliver()  # alice ACKs
    net.advance(0.5)  # G: bob retransmits the 404 while the ACK is still in flight
    net.reorder()  # the 404 copy now travels first, then the ACK
    net.settle()
    assert bob.server_state(ev.key) is State.CONFIRMED
    assert len(net.sent(ALICE, "ACK")) == 2  # one more for the retransmitted 404
    net.advance(1.5, deliver=True)
    assert net.times(BOB, "404") == [0.0, 0.5]  # no more after the ACK
