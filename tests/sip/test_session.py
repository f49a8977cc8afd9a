"""INVITE sessions (§13-§15) between two UserAgents on the in-memory network."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.sip.events import (
    DialogResponseReceived,
    InDialogRequestReceived,
    MessageRejected,
    ReinviteAnswered,
    ReinviteCancelled,
    ReinviteReceived,
    RequestReceived,
    SessionAnswered,
    SessionCancelled,
    SessionConfirmed,
    SessionOffered,
    SessionProgressed,
    SessionRejected,
    SessionTerminated,
)
from pypbx.sip.message import Request, build_response
from pypbx.sip.parse import parse_message
from pypbx.sip.session import TABLE, Role, SessionInput, SessionState
from pypbx.sip.transaction import IllegalTransition
from pypbx.sip.useragent import UserAgent
from tests.harness import ALICE, BOB, Network, make_endpoint, make_req, ua_pair

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def _kinds(events: list[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def _call(net: Network, alice: UserAgent, **kw: object):
    session = alice.invite(
        "sip:bob@192.0.2.2",
        to="<sip:bob@example.com>",
        from_="Alice <sip:alice@example.com>",
        dest=BOB,
        body=SDP,
        content_type="application/sdp",
        now=net.now,
        **kw,
    )
    net.settle()
    offered = [e for e in net.take_events(BOB) if isinstance(e, SessionOffered)]
    return session, (offered[0].session if offered else None)


def _connected(**config: object):
    net, alice, bob = ua_pair(**config)
    uac, uas = _call(net, alice)
    uas.ring(now=0)
    uas.answer(body=SDP, content_type="application/sdp", now=0)
    net.settle()
    net.take_events(ALICE)
    net.take_events(BOB)
    return net, alice, bob, uac, uas


def test_basic_call_ring_answer_ack_bye() -> None:
    net, alice, _bob = ua_pair()
    uac, uas = _call(net, alice)
    assert uas.role is Role.UAS
    assert uas.invite.body == SDP
    assert uac.state is SessionState.INITIAL
    uas.ring(now=0)
    net.settle()
    (progress,) = [e for e in net.take_events(ALICE) if isinstance(e, SessionProgressed)][-1:]
    assert progress.response.status == 180
    assert uac.state is SessionState.EARLY
    assert uas.state is SessionState.EARLY
    uas.answer(body=SDP, content_type="application/sdp", now=0)
    net.settle()
    answered = [e for e in net.take_events(ALICE) if isinstance(e, SessionAnswered)]
    assert answered[0].response.body == SDP
    assert uac.state is SessionState.CONFIRMED
    (ack,) = net.sent(ALICE, "ACK")
    parsed = parse_message(ack.data)
    assert isinstance(parsed, Request)
    assert (parsed.cseq.number, parsed.cseq.method) == (1, "ACK")
    assert parsed.to.tag == uas.local_tag
    assert parsed.uri_text == "sip:bob@192.0.2.2:5060"  # the Contact of the 200
    confirmed = [e for e in net.take_events(BOB) if isinstance(e, SessionConfirmed)]
    assert len(confirmed) == 1
    assert uac.dialog.id.remote_tag == uas.dialog.id.local_tag
    assert uac.dialog.id.local_tag == uas.dialog.id.remote_tag
    uac.bye(now=1)
    net.settle()
    assert uac.state is SessionState.TERMINATED
    assert uas.state is SessionState.TERMINATED
    (ended,) = [e for e in net.take_events(BOB) if isinstance(e, SessionTerminated)]
    assert ended.remote
    (mine,) = [e for e in net.take_events(ALICE) if isinstance(e, SessionTerminated)]
    assert not mine.remote
    assert len(net.sent(BOB, "200")) == 2  # the INVITE's and the BYE's


def test_uas_retransmits_2xx_until_ack_then_gives_up_with_bye() -> None:
    net, alice, _bob = ua_pair()
    uac, uas = _call(net, alice)
    net.blackhole = lambda p: p.method_or_status == "ACK"
    uas.answer(now=0)
    net.advance(40.0, deliver=True)
    oks = [p.sent_at for p in net.sent(BOB, "200") if b"CSeq: 1 INVITE" in p.data]
    assert oks == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    # alice ACKed every copy (the retransmissions reach her as ResponseReceived)
    assert len(net.sent(ALICE, "ACK")) == len(oks)
    (bye,) = net.sent(BOB, "BYE")
    assert bye.sent_at == 32.0
    ended = [e for e in net.take_events(BOB) if isinstance(e, SessionTerminated)]
    assert ended[0].reason == "no ACK for the 2xx"
    assert uas.state is SessionState.TERMINATED
    assert uac.state is SessionState.TERMINATED  # bob's BYE reached alice
    assert uas.next_timer() is None


def test_ack_stops_2xx_retransmission() -> None:
    net, alice, _bob = ua_pair()
    _uac, uas = _call(net, alice)
    uas.answer(now=0)
    net.drop(1, lambda p: p.method_or_status == "200")
    net.advance(40.0, deliver=True)
    assert net.times(BOB, "200") == [0.0, 0.5]
    assert net.sent(BOB, "BYE") == []
    assert uas.state is SessionState.CONFIRMED
    assert [e for e in net.take_events(BOB) if isinstance(e, SessionConfirmed)]


def test_uac_re_acks_a_retransmitted_2xx_with_the_same_ack() -> None:
    net, alice, _bob = ua_pair()
    uac, uas = _call(net, alice)
    uas.answer(now=0)
    net.deliver()  # 200 to alice
    net.drop(1, lambda p: p.method_or_status == "ACK")
    net.advance(1.0, deliver=True)
    acks = net.sent(ALICE, "ACK")
    assert len(acks) == 2
    assert acks[0].data == acks[1].data
    answered = [e for e in net.take_events(ALICE) if isinstance(e, SessionAnswered)]
    assert len(answered) == 1
    assert uac.state is SessionState.CONFIRMED


def test_reliable_transport_does_not_retransmit_2xx_but_still_times_out() -> None:
    net, alice, _bob = ua_pair(transport="TCP")
    _uac, uas = _call(net, alice)
    net.blackhole = lambda p: p.method_or_status == "ACK"
    uas.answer(now=0)
    net.advance(40.0, deliver=True)
    assert net.times(BOB, "200")[:1] == [0.0]
    assert len([p for p in net.sent(BOB, "200") if b"INVITE" in p.data]) == 1
    assert net.times(BOB, "BYE") == [32.0]


def test_cancel_ends_both_sides_with_487() -> None:
    net, alice, _bob = ua_pair()
    uac, uas = _call(net, alice)
    uas.ring(now=0)
    net.settle()
    uac.cancel(now=1)
    net.settle()
    (cancelled,) = [e for e in net.take_events(BOB) if isinstance(e, SessionCancelled)]
    assert cancelled.request.method == "CANCEL"
    assert uas.state is SessionState.TERMINATED
    (rejected,) = [e for e in net.take_events(ALICE) if isinstance(e, SessionRejected)]
    assert rejected.status == 487
    assert uac.state is SessionState.TERMINATED
    assert net.sent(ALICE, "ACK")  # the transaction ACKs the 487
    with pytest.raises(IllegalTransition):
        uac.cancel(now=2)


def test_cancel_racing_the_2xx_ends_with_bye() -> None:
    net, alice, _bob = ua_pair()
    uac, uas = _call(net, alice)
    uas.ring(now=0)
    net.settle()
    uas.answer(now=1)  # the 200 is in flight ...
    uac.cancel(now=1)  # ... when alice cancels
    net.settle()
    kinds = _kinds(net.take_events(ALICE))
    assert kinds.index("SessionAnswered") < kinds.index("SessionTerminated")
    assert net.sent(ALICE, "BYE")
    assert uac.state is SessionState.TERMINATED
    assert uas.state is SessionState.TERMINATED


def test_reject_and_timeout() -> None:
    net, alice, _bob = ua_pair()
    uac, uas = _call(net, alice)
    uas.reject(486, now=0)
    net.settle()
    (rej,) = [e for e in net.take_events(ALICE) if isinstance(e, SessionRejected)]
    assert (rej.status, rej.response.status) == (486, 486)
    assert uac.state is SessionState.TERMINATED
    with pytest.raises(IllegalTransition):
        uas.answer(now=0)
    assert uas.state is SessionState.TERMINATED
    lonely = Network()
    ua = lonely.add(ALICE, UserAgent(make_endpoint(ALICE, 5), contact="<sip:a@192.0.2.1>"))
    s = ua.invite("sip:x@192.0.2.99", to="<sip:x@e>", from_="<sip:a@e>", dest=BOB, now=0)
    lonely.advance(40)
    (timeout,) = [e for e in lonely.take_events(ALICE) if isinstance(e, SessionRejected)]
    assert timeout.status == 408
    assert timeout.response is None
    assert s.state is SessionState.TERMINATED


def test_bye_from_the_callee() -> None:
    net, _alice, _bob, uac, uas = _connected()
    uas.bye(now=5)
    net.settle()
    assert uac.state is SessionState.TERMINATED
    (ended,) = [e for e in net.take_events(ALICE) if isinstance(e, SessionTerminated)]
    assert ended.remote
    bye = parse_message(net.sent(BOB, "BYE")[0].data)
    assert bye.uri_text == "sip:alice@192.0.2.1:5060"
    assert bye.cseq.number == 1  # the UAS's first request in the dialog


def test_early_bye_from_caller_gets_487_on_the_invite() -> None:
    net, _alice, _bob = ua_pair()
    uac, uas = _call(net, _alice)
    uas.ring(now=0)
    net.settle()
    early = next(iter(uac.early.values()))
    bye = early.create_request("BYE")
    _alice.endpoint.send_request(bye, BOB, now=1)
    net.settle()
    assert uas.state is SessionState.TERMINATED
    assert net.sent(BOB, "487")
    assert [e for e in net.take_events(BOB) if isinstance(e, SessionTerminated)]


def test_reinvite_both_ways_with_ack() -> None:
    net, _alice, _bob, uac, uas = _connected()
    key = uac.reinvite(body=SDP + b"a=sendonly\r\n", content_type="application/sdp", now=1)
    assert key.method == "INVITE"
    net.settle()
    (re,) = [e for e in net.take_events(BOB) if isinstance(e, ReinviteReceived)]
    assert re.request.cseq.number == 2
    assert b"sendonly" in re.request.body
    uas.answer_reinvite(body=SDP, content_type="application/sdp", now=1)
    net.settle()
    (ans,) = [e for e in net.take_events(ALICE) if isinstance(e, ReinviteAnswered)]
    assert ans.response.status == 200
    acks = [parse_message(p.data) for p in net.sent(ALICE, "ACK")]
    assert [a.cseq.number for a in acks] == [1, 2]
    # the ACK arrived: no 2xx retransmission for the re-INVITE
    net.advance(10, deliver=True)
    assert len([p for p in net.sent(BOB, "200") if b"CSeq: 2 INVITE" in p.data]) == 1
    # the other way round
    uas.reinvite(now=11)
    net.settle()
    (re2,) = [e for e in net.take_events(ALICE) if isinstance(e, ReinviteReceived)]
    uac.answer_reinvite(488, now=11)
    net.settle()
    (ans2,) = [e for e in net.take_events(BOB) if isinstance(e, ReinviteAnswered)]
    assert ans2.response.status == 488
    assert re2.request.cseq.number == 1  # bob's first request in the dialog
    assert uac.state is uas.state is SessionState.CONFIRMED


def test_reinvite_glare_gets_491_on_both_sides() -> None:
    net, _alice, _bob, uac, uas = _connected()
    uac.reinvite(now=1)
    uas.reinvite(now=1)
    net.settle()
    got_a = [e.response.status for e in net.take_events(ALICE) if isinstance(e, ReinviteAnswered)]
    got_b = [e.response.status for e in net.take_events(BOB) if isinstance(e, ReinviteAnswered)]
    assert got_a == [491]
    assert got_b == [491]
    # after the glare a new re-INVITE may go
    uac.reinvite(now=3)
    net.settle()
    assert [e for e in net.take_events(BOB) if isinstance(e, ReinviteReceived)]


def test_second_reinvite_while_first_unanswered_gets_500() -> None:
    net, alice, _bob, uac, uas = _connected()
    uac.reinvite(now=1)
    net.settle()
    net.take_events(BOB)
    # alice's TU cannot send a second one itself ...
    with pytest.raises(IllegalTransition):
        uac.reinvite(now=1)
    # ... but a misbehaving peer can: build it by hand
    req = uac.dialog.create_request("INVITE")
    alice.endpoint.send_request(req, BOB, now=1)
    net.settle()
    (resp,) = [p for p in net.sent(BOB, "500")]
    assert parse_message(resp.data).get("Retry-After") == "1"
    assert uas.state is SessionState.CONFIRMED


def test_in_dialog_info_and_its_response() -> None:
    net, _alice, _bob, uac, uas = _connected()
    uac.request("INFO", body=b"Signal=5\r\n", content_type="application/dtmf-relay", now=1)
    net.settle()
    (info,) = [e for e in net.take_events(BOB) if isinstance(e, InDialogRequestReceived)]
    assert info.request.body == b"Signal=5\r\n"
    uas.respond(info.key, info.request, 200, now=1)
    net.settle()
    (resp,) = [e for e in net.take_events(ALICE) if isinstance(e, DialogResponseReceived)]
    assert resp.response.status == 200
    with pytest.raises(ValueError, match="BYE"):
        uac.request("BYE", now=1)


def test_uac_sends_info_in_the_early_dialog_of_a_183() -> None:
    net, alice, _bob = ua_pair()
    uac, uas = _call(net, alice)
    assert uas is not None
    with pytest.raises(ValueError, match="INFO"):  # no To tag yet: no early dialog
        uac.request("INFO", now=0)
    uas.ring(body=SDP, content_type="application/sdp", now=0)
    net.settle()
    assert uac.state is SessionState.EARLY
    uac.request("INFO", body=b"Signal=1\r\n", content_type="application/dtmf-relay", now=1)
    net.settle()
    (info,) = [e for e in net.take_events(BOB) if isinstance(e, InDialogRequestReceived)]
    assert info.request.body == b"Signal=1\r\n"
    assert info.request.to.tag == uas.local_tag  # in the early dialog the 183 made
    uas.respond(info.key, info.request, 200, now=1)
    net.settle()
    (resp,) = [e for e in net.take_events(ALICE) if isinstance(e, DialogResponseReceived)]
    assert resp.response.status == 200
    assert uac.state is SessionState.EARLY  # the INVITE is still unanswered


def test_out_of_order_cseq_gets_500() -> None:
    net, alice, _bob, uac, _uas = _connected()
    uac.request("INFO", now=1)  # CSeq 2
    net.settle()
    stale = uac.dialog.create_request("INFO", cseq=1)
    alice.endpoint.send_request(stale, BOB, now=1)
    net.settle()
    (p,) = net.sent(BOB, "500")
    assert parse_message(p.data).cseq.number == 1


def test_request_for_unknown_dialog_gets_481() -> None:
    net, _alice, bob = ua_pair()
    bye = make_req("BYE", to_tag="nosuch", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKu")
    bob.receive(bye.serialize(), ALICE, now=0)
    assert net.sent(BOB, "481")
    assert [e for e in net.take_events(BOB) if isinstance(e, MessageRejected)]


def test_out_of_dialog_requests_pass_through_the_user_agent() -> None:
    net, _alice, bob = ua_pair()
    reg = make_req("REGISTER", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKr")
    bob.receive(reg.serialize(), ALICE, now=0)
    (ev,) = net.take_events(BOB)
    assert isinstance(ev, RequestReceived)
    assert ev.request.method == "REGISTER"


def test_forked_invite_early_dialogs_and_extra_2xx_is_acked_and_hung_up() -> None:
    net = Network()
    alice = net.add(ALICE, UserAgent(make_endpoint(ALICE, 1), contact="<sip:a@192.0.2.1>"))
    proxy = net.add(BOB, make_endpoint(BOB, 2))  # a forking proxy, played by hand
    uac = alice.invite("sip:bob@192.0.2.2", to="<sip:bob@e>", from_="<sip:a@e>", dest=BOB, now=0)
    net.settle()
    (ev,) = [e for e in net.take_events(BOB) if isinstance(e, RequestReceived)]

    def answer(status: int, tag: str) -> None:
        resp = build_response(ev.request, status, to_tag=tag)
        resp.headers.add("Contact", f"<sip:{tag}@192.0.2.2>")
        proxy.send_response(ev.key, resp, now=net.now)
        net.settle()

    answer(180, "fork1")
    answer(183, "fork2")
    assert set(uac.early) == {"fork1", "fork2"}
    assert uac.state is SessionState.EARLY
    answer(200, "fork1")
    assert uac.dialog.id.remote_tag == "fork1"
    assert uac.early == {}
    answer(200, "fork2")
    acks = [parse_message(p.data) for p in net.sent(ALICE, "ACK")]
    assert [a.to.tag for a in acks] == ["fork1", "fork2"]
    (bye,) = [parse_message(p.data) for p in net.sent(ALICE, "BYE")]
    assert bye.to.tag == "fork2"
    assert bye.uri_text == "sip:fork2@192.0.2.2"
    assert uac.state is SessionState.CONFIRMED
    answered = [e for e in net.take_events(ALICE) if isinstance(e, SessionAnswered)]
    assert len(answered) == 1


def test_symmetric_ua_sends_in_dialog_requests_to_the_source() -> None:
    net = Network()
    nat = ("203.0.113.9", 40000)
    bob = net.add(BOB, UserAgent(make_endpoint(BOB, 2), contact="<sip:b@192.0.2.2>",
                                 symmetric=True))  # fmt: skip
    invite = make_req("INVITE", via="SIP/2.0/UDP 10.0.0.5;rport;branch=z9hG4bKn")
    bob.receive(invite.serialize(), nat, now=0)
    (offer,) = [e for e in net.take_events(BOB) if isinstance(e, SessionOffered)]
    offer.session.answer(now=0)
    ack = make_req("ACK", to_tag=offer.session.local_tag,
                   via="SIP/2.0/UDP 10.0.0.5;rport;branch=z9hG4bKa")  # fmt: skip
    bob.receive(ack.serialize(), nat, now=0.1)
    offer.session.bye(now=1)
    assert [p.dst for p in net.sent(BOB, "BYE")] == [nat]
    assert next(p.dst for p in net.sent(BOB, "200")) == nat


def test_hangup_picks_cancel_reject_or_bye() -> None:
    net, alice, _bob = ua_pair()
    uac, uas = _call(net, alice)
    uas.ring(now=0)
    net.settle()
    uac.hangup(now=1)
    net.settle()
    assert net.sent(ALICE, "CANCEL")
    assert uac.state is uas.state is SessionState.TERMINATED
    uac.hangup(now=2)  # no-op once terminated
    uac2, uas2 = _call(net, alice)
    uas2.hangup(status=603, now=3)
    net.settle()
    assert net.sent(BOB, "603")
    net2, _a, _b, uac3, _uas3 = _connected()
    uac3.hangup(now=4)
    assert net2.sent(ALICE, "BYE")
    assert uac2.state is SessionState.TERMINATED


def test_session_table_has_no_exit_from_terminated_and_bye_only_when_up() -> None:
    assert not any(state is SessionState.TERMINATED for _, state, _ in TABLE)
    assert (Role.UAC, SessionState.EARLY, SessionInput.BYE) not in TABLE
    assert TABLE[(Role.UAS, SessionState.CONFIRMED, SessionInput.ACK_TIMEOUT)] is (
        SessionState.TERMINATED
    )


def test_illegal_session_actions_raise_and_keep_state() -> None:
    net, alice, _bob = ua_pair()
    uac, uas = _call(net, alice)
    with pytest.raises(IllegalTransition):
        uac.bye(now=0)
    with pytest.raises(IllegalTransition):
        uas.answer_reinvite(now=0)
    with pytest.raises(ValueError, match="UAS"):
        uac.answer(now=0)
    with pytest.raises(ValueError, match="UAS"):
        uas.ring(status=200, now=0)
    assert uac.state is uas.state is SessionState.INITIAL


def test_invite_without_contact_is_refused_400() -> None:
    net, _alice, bob = ua_pair()
    invite = make_req("INVITE", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKc")
    invite.headers.remove("Contact")
    bob.receive(invite.serialize(), ALICE, now=0)
    assert [e for e in net.take_events(BOB) if isinstance(e, SessionOffered)] == []
    (p,) = net.sent(BOB, "400")
    assert parse_message(p.data).reason == "Missing Contact"


def test_ended_dialog_is_forgotten_and_later_requests_get_481() -> None:
    net, alice, bob, uac, uas = _connected()
    did = uas.dialog.id
    assert bob.session_for(did) is uas
    stale = uac.dialog.create_request("INFO")
    uac.bye(now=1)
    net.settle()
    assert bob.session_for(did) is None
    assert alice.session_for(uac.dialog.id) is None
    alice.endpoint.send_request(stale, BOB, now=2)
    net.settle()
    assert net.sent(BOB, "481")


def test_2xx_with_unroutable_contact_is_acked_at_the_origin() -> None:
    net = Network()
    alice = net.add(ALICE, UserAgent(make_endpoint(ALICE, 1), contact="<sip:a@192.0.2.1>"))
    peer = net.add(BOB, make_endpoint(BOB, 2))
    uac = alice.invite("sip:bob@192.0.2.2", to="<sip:bob@e>", from_="<sip:a@e>", dest=BOB, now=0)
    net.settle()
    (ev,) = [e for e in net.take_events(BOB) if isinstance(e, RequestReceived)]
    ok = build_response(ev.request, 200, to_tag="t")
    ok.headers.add("Contact", "<tel:+15551234>")
    peer.send_response(ev.key, ok, now=0)
    net.settle()
    assert uac.state is SessionState.CONFIRMED
    assert [p.dst for p in net.sent(ALICE, "ACK")] == [BOB]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 25), max_size=3, unique=True))
def test_a_call_survives_any_three_lost_datagrams(lost: list[int]) -> None:
    net, alice, _bob = ua_pair()
    counter = iter(range(10_000))
    net.blackhole = lambda _p: next(counter) in lost
    uac = alice.invite("sip:bob@192.0.2.2", to="<sip:bob@e>", from_="<sip:a@e>", dest=BOB, now=0)
    uas = None
    t = 0.0
    while t < 100:
        net.advance(t, deliver=True)
        for ev in net.take_events(BOB):
            if isinstance(ev, SessionOffered):
                uas = ev.session
                uas.answer(now=net.now)
        if t == 40 and uac.state is SessionState.CONFIRMED:
            uac.bye(now=net.now)
        t += 0.25
    assert uas is not None
    answered = [e for e in net.take_events(ALICE) if isinstance(e, SessionAnswered)]
    assert len(answered) == 1
    assert uac.state is SessionState.TERMINATED
    assert uas.state is SessionState.TERMINATED
    assert net.sent(BOB, "BYE") == []  # bob always got an ACK in time
    for pkt in net.wire:
        parse_message(pkt.data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_user_agent_receive_never_raises(data: bytes) -> None:
    net, _alice, bob = ua_pair()
    bob.receive(data, ALICE, now=0)
    head = b"INVITE sip:b@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKf\r\n"
    bob.receive(head + data, ALICE, now=0)
    net.advance(40)


def test_uas_transport_error_ends_the_session_and_later_actions_keep_state() -> None:
    net, alice, bob = ua_pair()
    _uac, uas = _call(net, alice)
    bob.transport_error(uas.invite_key, now=1)
    (ended,) = [e for e in net.take_events(BOB) if isinstance(e, SessionTerminated)]
    assert ended.reason == "INVITE transaction failed (503)"
    assert uas.state is SessionState.TERMINATED
    with pytest.raises(IllegalTransition):
        uas.ring(now=2)
    assert uas.state is SessionState.TERMINATED


def test_failed_send_leaves_the_session_state_alone() -> None:
    net, alice, bob = ua_pair()
    _uac, uas = _call(net, alice)
    # the transaction vanishes behind the session's back (no event delivered yet)
    bob.endpoint._servers.clear()
    from pypbx.sip.endpoint import UnknownTransaction

    with pytest.raises(UnknownTransaction):
        uas.answer(now=1)
    assert uas.state is SessionState.INITIAL
    assert uas.next_timer() is None


def test_reinvite_cancelled_by_its_sender() -> None:
    net, _alice, _bob, uac, uas = _connected()
    uac.reinvite(now=1)
    net.settle()
    assert [e for e in net.take_events(BOB) if isinstance(e, ReinviteReceived)]
    # bob's endpoint sent 100 Trying, so alice's CANCEL goes out at once
    uac.cancel_reinvite(now=2)
    net.settle()
    (cancelled,) = [e for e in net.take_events(BOB) if isinstance(e, ReinviteCancelled)]
    assert cancelled.request.method == "CANCEL"
    (ans,) = [e for e in net.take_events(ALICE) if isinstance(e, ReinviteAnswered)]
    assert ans.response.status == 487
    assert uac.state is uas.state is SessionState.CONFIRMED
    with pytest.raises(IllegalTransition):
        uas.answer_reinvite(now=3)
    uas.reinvite(now=3)  # nothing is stuck: a new re-INVITE may go
    with pytest.raises(IllegalTransition):
        uac.cancel_reinvite(now=3)


@pytest.mark.parametrize(("password", "answered"), [("secret", True), ("wrong", False)])
def test_invite_answers_a_digest_challenge_once(password: str, answered: bool) -> None:
    from pypbx.sip.auth import ClientAuthState, DigestServer, Verdict

    server = DigestServer(b"k" * 16, "pbx.example")
    net = Network()
    alice = net.add(ALICE, UserAgent(make_endpoint(ALICE, 1), contact="<sip:a@192.0.2.1>"))
    bob = net.add(BOB, make_endpoint(BOB, 2))
    uac = alice.invite(
        "sip:bob@192.0.2.2",
        to="<sip:bob@e>",
        from_="<sip:a@e>",
        dest=BOB,
        auth=ClientAuthState("alice", password),
        now=0,
    )
    for _ in range(3):
        net.settle()
        for ev in net.take_events(BOB):
            if not isinstance(ev, RequestReceived):
                continue
            creds = ev.request.get("Authorization")
            ok = creds is not None and (
                server.verify(creds, "INVITE", password="secret", now=net.now) is Verdict.OK
            )
            if ok:
                resp = build_response(ev.request, 200, to_tag="b")
                resp.headers.add("Contact", "<sip:bob@192.0.2.2>")
            else:
                resp = build_response(
                    ev.request,
                    401,
                    to_tag="b",
                    headers=(("WWW-Authenticate", server.challenge(net.now)),),
                )
            bob.send_response(ev.key, resp, now=net.now)
    invites = [parse_message(p.data) for p in net.sent(ALICE, "INVITE")]
    assert [i.cseq.number for i in invites] == [1, 2]
    assert invites[0].call_id == invites[1].call_id
    assert invites[0].from_.tag == invites[1].from_.tag
    assert invites[0].top_via.branch != invites[1].top_via.branch
    assert invites[1].get("Authorization", "").startswith("Digest ")
    assert len(net.sent(ALICE, "ACK")) == 2  # the 401 (transaction) and the 2xx or 2nd 401
    events = net.take_events(ALICE)
    if answered:
        assert uac.state is SessionState.CONFIRMED
        assert [e for e in events if isinstance(e, SessionRejected)] == []
    else:
        (rej,) = [e for e in events if isinstance(e, SessionRejected)]
        assert rej.status == 401
        assert uac.state is SessionState.TERMINATED
