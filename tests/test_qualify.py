"""Qualify timing and statuses (chan_sip poke semantics), pure with explicit ``now``."""

from __future__ import annotations

import pytest

from pypbx.qualify import Qualifier, QualifyStatus

T0 = 1000.0


def make(maxms: int = 2000, freq: float = 60.0) -> Qualifier:
    q = Qualifier()
    q.add("1000", maxms=maxms, freq=freq, now=T0)
    return q


def test_first_poke_is_due_at_once_and_status_unknown() -> None:
    q = make()
    assert q.status_text("1000") == "UNKNOWN"
    assert q.next_timer() == T0
    assert q.due(T0) == ["1000"]
    q.sent("1000", T0)
    assert q.due(T0) == []  # one poke in flight at a time
    assert q.next_timer() == T0 + 4.0  # twice the 2000 ms limit


@pytest.mark.parametrize(
    ("rtt", "status", "text", "next_in"),
    [
        (0.012, QualifyStatus.OK, "OK (12 ms)", 60.0),
        (0.0001, QualifyStatus.OK, "OK (1 ms)", 60.0),  # never 0 ms
        (2.0, QualifyStatus.OK, "OK (2000 ms)", 60.0),
        (2.5, QualifyStatus.LAGGED, "LAGGED (2500 ms)", 10.0),
    ],
)
def test_answers(rtt: float, status: QualifyStatus, text: str, next_in: float) -> None:
    q = make()
    q.sent("1000", T0)
    change = q.answered("1000", T0 + rtt)
    assert change is not None
    assert change.new is status
    assert q.status_text("1000") == text
    assert q.next_timer() == pytest.approx(T0 + rtt + next_in)
    assert q.due(T0 + rtt + next_in - 0.01) == []
    assert q.due(T0 + rtt + next_in) == ["1000"]


def test_no_answer_within_twice_maxms_is_unreachable_then_polled_every_10s() -> None:
    q = make(maxms=500)
    q.sent("1000", T0)
    assert q.handle_timer(T0 + 0.99) == []
    changes = q.handle_timer(T0 + 1.0)
    assert [c.new for c in changes] == [QualifyStatus.UNREACHABLE]
    assert "UNREACHABLE" in changes[0].log
    assert q.status_text("1000") == "UNREACHABLE"
    assert q.lastms("1000") == -1
    assert q.next_timer() == T0 + 11.0
    q.sent("1000", T0 + 11)
    assert q.timed_out("1000", T0 + 12) is None  # still unreachable: no new change
    assert q.next_timer() == T0 + 22.0
    q.sent("1000", T0 + 22)
    back = q.answered("1000", T0 + 22.030)
    assert back is not None
    assert back.new is QualifyStatus.OK
    assert back.log == "Peer '1000' is now Reachable. (30ms / 500ms)"


def test_late_answer_after_timeout_is_ignored() -> None:
    q = make()
    q.sent("1000", T0)
    q.timed_out("1000", T0 + 4)
    assert q.answered("1000", T0 + 5) is None
    assert q.status("1000") is QualifyStatus.UNREACHABLE


def test_registration_pokes_at_once() -> None:
    q = make()
    q.sent("1000", T0)
    q.answered("1000", T0 + 0.01)
    assert q.due(T0 + 5) == []
    q.registered("1000", T0 + 5)
    assert q.due(T0 + 5) == ["1000"]


def test_unmonitored_and_removed() -> None:
    q = make()
    assert q.status_text("other") == "Unmonitored"
    assert q.lastms("other") is None
    q.remove("1000")
    assert q.next_timer() is None
    assert q.status_text("1000") == "Unmonitored"


def test_many_peers_due_in_order() -> None:
    q = Qualifier()
    for i in range(5):
        q.add(f"p{i}", maxms=2000, freq=60, now=T0 + 4 - i)
    assert q.due(T0 + 10) == ["p4", "p3", "p2", "p1", "p0"]


@pytest.mark.parametrize(("maxms", "freq"), [(0, 60.0), (2000, 0.0)])
def test_bad_settings(maxms: int, freq: float) -> None:
    with pytest.raises(ValueError, match="qualify"):
        Qualifier().add("x", maxms=maxms, freq=freq, now=T0)
