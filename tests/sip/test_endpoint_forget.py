"""Server transactions that hold less: stateless answers (``forget``, RFC 3261 §8.2.7) and
Completed non-INVITE servers that keep only the response's bytes (§17.2.2)."""

from __future__ import annotations

import pytest

from pypbx.sip.endpoint import UnknownTransaction
from pypbx.sip.events import AckReceived, RequestReceived, ServerTxnKey, TransactionTerminated
from pypbx.sip.message import Response, build_response
from pypbx.sip.transaction import Action, IllegalTransition, Input, Kind, State, Timer, Transaction
from tests.harness import ALICE, BOB, Network, make_req, pair


def _requests(net: Network) -> list[RequestReceived]:
    return [e for e in net.take_events(BOB) if isinstance(e, RequestReceived)]


def _challenge(ev: RequestReceived, tag: str = "t1") -> Response:
    return build_response(
        ev.request, 401, to_tag=tag, headers=[("WWW-Authenticate", 'Digest realm="r"')]
    )


def test_forgotten_challenge_ends_the_transaction_at_once() -> None:
    net, alice, bob = pair()
    alice.send_request(make_req("REGISTER"), BOB, now=0.0)
    net.deliver()
    (ev,) = _requests(net)
    bob.send_response(ev.key, _challenge(ev), now=0.0, forget=True)
    assert bob.server_state(ev.key) is None
    assert len(bob) == 0
    assert bob.next_timer() is None
    net.settle()
    assert [p.sent_at for p in net.sent(BOB, "401")] == [0.0]
    assert [e for e in net.take_events(BOB) if isinstance(e, TransactionTerminated)] == [
        TransactionTerminated(ev.key)
    ]


def test_forgotten_challenge_retransmission_is_a_new_request_for_the_tu() -> None:
    net, alice, bob = pair()
    alice.send_request(make_req("REGISTER"), BOB, now=0.0)
    net.deliver()
    (ev,) = _requests(net)
    bob.send_response(ev.key, _challenge(ev), now=0.0, forget=True)
    net.drop(1)  # the 401 is lost: alice retransmits at 0.5 s (timer E)
    net.advance(0.5)
    net.deliver()
    (again,) = _requests(net)
    assert again.key == ev.key  # same branch: the same request, seen afresh
    bob.send_response(again.key, _challenge(again, "t2"), now=0.5, forget=True)
    net.settle()
    assert bob.server_state(ev.key) is None
    assert len(net.sent(BOB, "401")) == 2


def test_without_forget_the_challenge_absorbs_retransmissions_until_j() -> None:
    net, alice, bob = pair()
    alice.send_request(make_req("REGISTER"), BOB, now=0.0)
    net.deliver()
    (ev,) = _requests(net)
    bob.send_response(ev.key, _challenge(ev), now=0.0)
    net.drop(1)
    net.advance(0.5)
    net.settle()
    assert _requests(net) == []  # absorbed: the transaction resent its 401
    first, second = net.sent(BOB, "401")
    assert first.data == second.data
    assert bob.server_state(ev.key) is State.COMPLETED
    net.advance(32.5)
    assert bob.server_state(ev.key) is None


@pytest.mark.parametrize("status", [100, 180])
def test_forget_on_a_provisional_keeps_the_transaction(status: int) -> None:
    net, alice, bob = pair()
    alice.send_request(make_req("REGISTER"), BOB, now=0.0)
    net.deliver()
    (ev,) = _requests(net)
    bob.send_response(ev.key, build_response(ev.request, status), now=0.0, forget=True)
    assert bob.server_state(ev.key) is State.PROCEEDING
    bob.send_response(ev.key, build_response(ev.request, 200, to_tag="x"), now=0.1)
    assert bob.server_state(ev.key) is State.COMPLETED


def test_forget_does_not_end_an_invite_transaction() -> None:
    net, alice, bob = pair()
    alice.send_request(make_req("INVITE"), BOB, now=0.0)
    net.deliver()
    (ev,) = _requests(net)
    response = build_response(ev.request, 407, to_tag="x")
    bob.send_response(ev.key, response, now=0.0, forget=True)
    assert bob.server_state(ev.key) is State.COMPLETED  # waits for the ACK (timer H)
    net.settle()  # alice's transaction ACKs the 407
    assert bob.server_state(ev.key) is State.CONFIRMED
    assert [e for e in net.take_events(BOB) if isinstance(e, AckReceived)] == []


def test_completed_non_invite_server_keeps_only_the_wire_bytes() -> None:
    net, alice, bob = pair()
    alice.send_request(make_req("OPTIONS", to_tag="dlg"), BOB, now=0.0)
    net.deliver()
    (ev,) = _requests(net)
    assert bob.server_request(ev.key) is ev.request
    bob.send_response(ev.key, build_response(ev.request, 200, to_tag="x"), now=0.0)
    with pytest.raises(UnknownTransaction):
        bob.server_request(ev.key)  # the request was let go
    net.drop(1)
    net.advance(0.5)
    net.settle()
    first, second = net.sent(BOB, "200")
    assert second.data == first.data  # the retransmission is the same bytes
    assert second.dst == ALICE


# -- the Transaction methods behind it ---------------------------------------------------


def _nist() -> Transaction:
    key = ServerTxnKey("z9hG4bKx", "192.0.2.1", 5060, "REGISTER")
    return Transaction(Kind.NON_INVITE_SERVER, key, make_req("REGISTER"), ALICE, now=0.0)


def _completed(now: float = 0.0) -> Transaction:
    txn = _nist()
    response = build_response(txn.request, 401, to_tag="t")
    txn.step(Input.TU_FINAL, now=now, response=response)
    txn.wire = response.serialize()
    return txn


def test_release_drops_request_and_response_keeps_wire_and_timer() -> None:
    txn = _completed()
    wire = txn.wire
    txn.release()
    assert txn.released
    assert txn.last_response is None
    assert txn.wire is wire
    with pytest.raises(LookupError):
        _ = txn.request
    assert txn.deadlines == {Timer.J: 32.0}
    assert txn.intervals == {}
    assert txn.step(Input.REQUEST, now=1.0) == (Action.RESEND_RESPONSE,)


def test_release_refuses_other_states_kinds_and_missing_wire() -> None:
    with pytest.raises(IllegalTransition):
        _nist().release()  # still Trying
    txn = _completed()
    txn.wire = None
    with pytest.raises(ValueError, match="wire"):
        txn.release()
    assert not txn.released
    invite = Transaction(
        Kind.INVITE_SERVER,
        ServerTxnKey("z9hG4bKi", "192.0.2.1", 5060, "INVITE"),
        make_req("INVITE"),
        ALICE,
        now=0.0,
    )
    with pytest.raises(IllegalTransition):
        invite.release()


def test_end_wait_makes_timer_j_due_now() -> None:
    txn = _completed(now=3.0)
    assert txn.due_timer(3.0) is None
    txn.end_wait(3.0)
    assert txn.due_timer(3.0) is Timer.J
    with pytest.raises(IllegalTransition):
        _nist().end_wait(0.0)
