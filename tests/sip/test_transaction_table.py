"""The §17 state tables, timer values and the ACK/CANCEL builders, without a network."""

from __future__ import annotations

import pytest

from pypbx.sip.events import ClientTxnKey, ServerTxnKey
from pypbx.sip.message import Response, build_response
from pypbx.sip.parse import parse_message
from pypbx.sip.transaction import (
    TABLES,
    Action,
    IllegalTransition,
    Input,
    Kind,
    State,
    Timer,
    TimerConfig,
    Transaction,
    build_ack,
    build_cancel,
)
from tests.harness import BOB, make_req

S, In = State, Input
ICT, NICT, IST, NIST = (
    Kind.INVITE_CLIENT,
    Kind.NON_INVITE_CLIENT,
    Kind.INVITE_SERVER,
    Kind.NON_INVITE_SERVER,
)

# The arrows of the RFC 3261 figures 5-8 (with RFC 6026's Accepted), written out by hand.
RFC_ARROWS = [
    (ICT, S.CALLING, In.TIMER_A, S.CALLING),
    (ICT, S.CALLING, In.TIMER_B, S.TERMINATED),
    (ICT, S.CALLING, In.RESP_1XX, S.PROCEEDING),
    (ICT, S.CALLING, In.RESP_2XX, S.ACCEPTED),
    (ICT, S.CALLING, In.RESP_FINAL, S.COMPLETED),
    (ICT, S.CALLING, In.TRANSPORT_ERROR, S.TERMINATED),
    (ICT, S.PROCEEDING, In.RESP_1XX, S.PROCEEDING),
    (ICT, S.PROCEEDING, In.RESP_2XX, S.ACCEPTED),
    (ICT, S.PROCEEDING, In.RESP_FINAL, S.COMPLETED),
    (ICT, S.COMPLETED, In.RESP_FINAL, S.COMPLETED),
    (ICT, S.COMPLETED, In.TIMER_D, S.TERMINATED),
    (ICT, S.ACCEPTED, In.RESP_2XX, S.ACCEPTED),
    (ICT, S.ACCEPTED, In.TIMER_M, S.TERMINATED),
    (NICT, S.TRYING, In.TIMER_E, S.TRYING),
    (NICT, S.TRYING, In.TIMER_F, S.TERMINATED),
    (NICT, S.TRYING, In.RESP_1XX, S.PROCEEDING),
    (NICT, S.TRYING, In.RESP_FINAL, S.COMPLETED),
    (NICT, S.TRYING, In.TRANSPORT_ERROR, S.TERMINATED),
    (NICT, S.PROCEEDING, In.TIMER_E, S.PROCEEDING),
    (NICT, S.PROCEEDING, In.TIMER_F, S.TERMINATED),
    (NICT, S.PROCEEDING, In.RESP_1XX, S.PROCEEDING),
    (NICT, S.PROCEEDING, In.RESP_FINAL, S.COMPLETED),
    (NICT, S.COMPLETED, In.RESP_FINAL, S.COMPLETED),
    (NICT, S.COMPLETED, In.TIMER_K, S.TERMINATED),
    (IST, S.PROCEEDING, In.REQUEST, S.PROCEEDING),
    (IST, S.PROCEEDING, In.TU_1XX, S.PROCEEDING),
    (IST, S.PROCEEDING, In.TU_2XX, S.ACCEPTED),
    (IST, S.PROCEEDING, In.TU_FINAL, S.COMPLETED),
    (IST, S.PROCEEDING, In.TRANSPORT_ERROR, S.TERMINATED),
    (IST, S.COMPLETED, In.REQUEST, S.COMPLETED),
    (IST, S.COMPLETED, In.TIMER_G, S.COMPLETED),
    (IST, S.COMPLETED, In.TIMER_H, S.TERMINATED),
    (IST, S.COMPLETED, In.ACK, S.CONFIRMED),
    (IST, S.COMPLETED, In.TRANSPORT_ERROR, S.TERMINATED),
    (IST, S.CONFIRMED, In.ACK, S.CONFIRMED),
    (IST, S.CONFIRMED, In.TIMER_I, S.TERMINATED),
    (IST, S.ACCEPTED, In.REQUEST, S.ACCEPTED),
    (IST, S.ACCEPTED, In.ACK, S.ACCEPTED),
    (IST, S.ACCEPTED, In.TU_2XX, S.ACCEPTED),
    (IST, S.ACCEPTED, In.TIMER_L, S.TERMINATED),
    (NIST, S.TRYING, In.REQUEST, S.TRYING),
    (NIST, S.TRYING, In.TU_1XX, S.PROCEEDING),
    (NIST, S.TRYING, In.TU_FINAL, S.COMPLETED),
    (NIST, S.PROCEEDING, In.REQUEST, S.PROCEEDING),
    (NIST, S.PROCEEDING, In.TU_1XX, S.PROCEEDING),
    (NIST, S.PROCEEDING, In.TU_FINAL, S.COMPLETED),
    (NIST, S.PROCEEDING, In.TRANSPORT_ERROR, S.TERMINATED),
    (NIST, S.COMPLETED, In.REQUEST, S.COMPLETED),
    (NIST, S.COMPLETED, In.TIMER_J, S.TERMINATED),
    (NIST, S.COMPLETED, In.TRANSPORT_ERROR, S.TERMINATED),
]


@pytest.mark.parametrize(("kind", "state", "event", "expected"), RFC_ARROWS)
def test_rfc_arrow(kind: Kind, state: State, event: Input, expected: State) -> None:
    assert TABLES[kind][(state, event)].next is expected


# Inputs that are not legal: the TU answering twice, a timer of another machine ...
ILLEGAL = [
    (IST, S.COMPLETED, In.TU_FINAL),
    (IST, S.COMPLETED, In.TU_2XX),
    (IST, S.CONFIRMED, In.TU_1XX),
    (IST, S.ACCEPTED, In.TU_FINAL),
    (IST, S.ACCEPTED, In.TU_1XX),
    (NIST, S.COMPLETED, In.TU_FINAL),
    (NIST, S.COMPLETED, In.TU_1XX),
    (ICT, S.CALLING, In.TIMER_E),
    (ICT, S.PROCEEDING, In.TIMER_A),
    (NICT, S.TRYING, In.RESP_2XX),
    (NICT, S.COMPLETED, In.TIMER_E),
    (IST, S.PROCEEDING, In.TIMER_G),
]


@pytest.mark.parametrize(("kind", "state", "event"), ILLEGAL)
def test_illegal_input_raises_and_state_stays(kind: Kind, state: State, event: Input) -> None:
    txn = _txn(kind)
    txn.state = state
    with pytest.raises(IllegalTransition):
        txn.step(event, now=1.0, response=_resp(200))
    assert txn.state is state


def test_terminated_accepts_nothing() -> None:
    for kind, table in TABLES.items():
        assert not any(st is State.TERMINATED for st, _ in table), kind


def test_every_row_reaches_a_named_state() -> None:
    for table in TABLES.values():
        for (state, _), row in table.items():
            assert state is not State.TERMINATED
            assert isinstance(row.next, State)


def _resp(status: int) -> Response:
    return build_response(make_req("INVITE", via="SIP/2.0/UDP h;branch=z9hG4bKx"), status)


def _txn(kind: Kind, *, reliable: bool = False, now: float = 0.0, **timers: float) -> Transaction:
    method = "INVITE" if kind in (ICT, IST) else "OPTIONS"
    req = make_req(method, via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKabc")
    key: ClientTxnKey | ServerTxnKey
    if kind.is_client:
        key = ClientTxnKey("z9hG4bKabc", method)
    else:
        key = ServerTxnKey("z9hG4bKabc", "192.0.2.1", None, method)
    cfg = TimerConfig(**timers)
    return Transaction(kind, key, req, BOB, now=now, config=cfg, reliable=reliable)


@pytest.mark.parametrize(
    ("timer", "unreliable", "reliable"),
    [
        (Timer.A, 0.5, None),
        (Timer.B, 32.0, 32.0),
        (Timer.D, 32.0, 0.0),
        (Timer.E, 0.5, None),
        (Timer.F, 32.0, 32.0),
        (Timer.G, 0.5, None),
        (Timer.H, 32.0, 32.0),
        (Timer.I, 5.0, 0.0),
        (Timer.J, 32.0, 0.0),
        (Timer.K, 5.0, 0.0),
        (Timer.L, 32.0, 32.0),
        (Timer.M, 32.0, 32.0),
    ],
)
def test_timer_initial_values(timer: Timer, unreliable: float, reliable: float | None) -> None:
    cfg = TimerConfig()
    assert cfg.initial(timer, reliable=False) == unreliable
    assert cfg.initial(timer, reliable=True) == reliable


def test_timer_values_follow_configured_t1_t4() -> None:
    cfg = TimerConfig(t1=0.1, t2=1.0, t4=2.0)
    assert cfg.initial(Timer.A, reliable=False) == pytest.approx(0.1)
    assert cfg.initial(Timer.B, reliable=False) == pytest.approx(6.4)
    assert cfg.initial(Timer.J, reliable=False) == pytest.approx(6.4)
    assert cfg.initial(Timer.K, reliable=False) == 2.0
    assert cfg.initial(Timer.D, reliable=False) == 32.0  # at least 32 s (§17.1.1.2)


def test_ict_starts_calling_with_a_and_b_as_deadlines() -> None:
    txn = _txn(ICT, now=100.0)
    assert txn.state is State.CALLING
    assert txn.deadlines == {Timer.A: 100.5, Timer.B: 132.0}
    assert txn.next_deadline() == 100.5


def test_reliable_ict_has_no_timer_a() -> None:
    txn = _txn(ICT, reliable=True)
    assert txn.deadlines == {Timer.B: 32.0}


def _fire_all(txn: Transaction, until: float) -> list[tuple[float, Timer]]:
    fired: list[tuple[float, Timer]] = []
    while (d := txn.next_deadline()) is not None and d <= until:
        timer = txn.due_timer(d)
        assert timer is not None
        fired.append((d, timer))
        txn.step(Input(f"timer {timer.value}"), now=d)
    return fired


def test_timer_a_doubles_without_cap_until_b() -> None:
    txn = _txn(ICT)
    fired = _fire_all(txn, 100)
    assert [t for t, tm in fired if tm is Timer.A] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert fired[-1] == (32.0, Timer.B)
    assert txn.state is State.TERMINATED
    assert txn.deadlines == {}


def test_timer_e_doubles_up_to_t2() -> None:
    txn = _txn(NICT)
    fired = _fire_all(txn, 100)
    e_times = [t for t, tm in fired if tm is Timer.E]
    assert e_times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert fired[-1] == (32.0, Timer.F)


def test_timer_e_in_proceeding_is_t2() -> None:
    txn = _txn(NICT)
    txn.step(Input.RESP_1XX, now=0.2)
    assert txn.state is State.PROCEEDING
    assert txn.due_timer(0.5) is Timer.E
    txn.step(Input.TIMER_E, now=0.5)
    assert txn.deadlines[Timer.E] == 4.5


def test_timer_g_doubles_up_to_t2_until_h() -> None:
    txn = _txn(IST)
    txn.step(Input.TU_FINAL, now=10.0, response=_resp(486))
    fired = _fire_all(txn, 100)
    g_times = [t - 10 for t, tm in fired if tm is Timer.G]
    assert g_times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert fired[-1] == (42.0, Timer.H)


def test_step_returns_actions_and_stores_last_response() -> None:
    txn = _txn(IST)
    resp = _resp(180)
    assert txn.step(Input.TU_1XX, now=0, response=resp) == (Action.SEND_RESPONSE,)
    assert txn.last_response is resp
    assert txn.step(Input.REQUEST, now=0) == (Action.RESEND_RESPONSE,)


def test_send_response_needs_a_response() -> None:
    txn = _txn(NIST)
    with pytest.raises(ValueError, match="needs the response"):
        txn.step(Input.TU_FINAL, now=0)
    assert txn.state is State.TRYING


def test_ict_final_sends_ack_and_arms_d() -> None:
    txn = _txn(ICT)
    assert txn.step(Input.RESP_FINAL, now=2.0) == (Action.PASS_RESPONSE, Action.SEND_ACK)
    assert txn.deadlines == {Timer.D: 34.0}
    assert txn.step(Input.RESP_FINAL, now=3.0) == (Action.SEND_ACK,)


INVITE_WIRE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n"
    b"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKold\r\n"
    b"Max-Forwards: 70\r\n"
    b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_build_ack_for_non_2xx() -> None:
    invite = parse_message(INVITE_WIRE)
    assert not isinstance(invite, Response)
    resp = build_response(invite, 486, to_tag="bobtag")
    ack = build_ack(invite, resp)
    assert ack.method == "ACK"
    assert ack.uri_text == "sip:bob@biloxi.example.com"
    assert [str(v) for v in ack.via] == [
        "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8"
    ]
    assert ack.to.tag == "bobtag"
    assert ack.from_.tag == "1928301774"
    assert ack.call_id == "a84b4c76e66710"
    assert (ack.cseq.number, ack.cseq.method) == (314159, "ACK")
    assert [str(r.uri) for r in ack.route] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert ack.get("Contact") is None
    again = parse_message(ack.serialize())
    assert again.cseq.method == "ACK"


def test_build_cancel() -> None:
    invite = parse_message(INVITE_WIRE)
    assert not isinstance(invite, Response)
    cancel = build_cancel(invite)
    assert cancel.method == "CANCEL"
    assert cancel.uri_text == invite.uri_text
    assert len(cancel.via) == 1
    assert cancel.top_via.branch == "z9hG4bKnashds8"
    assert cancel.to.tag is None
    assert (cancel.cseq.number, cancel.cseq.method) == (314159, "CANCEL")
    assert len(cancel.route) == 2
    assert cancel.max_forwards == 70
