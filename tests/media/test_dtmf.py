"""RFC 4733 telephone-events: payload, sender train, receiver dedup."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.media import dtmf
from pypbx.media.dtmf import DtmfBegan, DtmfEnded, DtmfError, DtmfReceiver, TelephoneEvent


# RFC 4733 §2.3 layout: event | E R volume | duration.
@pytest.mark.parametrize(
    ("wire", "event"),
    [
        ("050a00a0", TelephoneEvent(5, False, 10, 160)),
        ("058a0320", TelephoneEvent(5, True, 10, 800)),
        ("0b3fffff", TelephoneEvent(11, False, 63, 65535)),
        ("00800000", TelephoneEvent(0, True, 0, 0)),
        ("10070190", TelephoneEvent(16, False, 7, 400)),
    ],
)
def test_payload_round_trip(wire: str, event: TelephoneEvent) -> None:
    assert dtmf.parse_event(bytes.fromhex(wire)) == event
    assert event.to_bytes() == bytes.fromhex(wire)


def test_reserved_bit_ignored_and_short_payload_rejected() -> None:
    assert dtmf.parse_event(bytes.fromhex("01ca0000")) == TelephoneEvent(1, True, 10, 0)
    with pytest.raises(DtmfError):
        dtmf.parse_event(b"\x01\x02\x03")
    with pytest.raises(DtmfError):
        TelephoneEvent(1, volume=64).to_bytes()


@pytest.mark.parametrize(
    ("digit", "code"),
    [("0", 0), ("9", 9), ("*", 10), ("#", 11), ("A", 12), ("d", 15), ("!", 16)],
)
def test_event_codes(digit: str, code: int) -> None:
    assert dtmf.event_of(digit) == code
    assert dtmf.digit_of(code) == digit.upper()


@pytest.mark.parametrize("bad", ["", "E", "12", "x"])
def test_bad_digit(bad: str) -> None:
    with pytest.raises(DtmfError):
        dtmf.event_of(bad)
    assert dtmf.digit_of(17) is None


def test_packet_train_for_a_100ms_digit() -> None:
    train = dtmf.digit_packets("7", timestamp=4000, duration=0.1)
    decoded = [(p.offset, p.marker, dtmf.parse_event(p.payload)) for p in train]
    assert decoded == [
        (0.0, True, TelephoneEvent(7, False, 10, 400)),
        (0.05, False, TelephoneEvent(7, False, 10, 800)),
        (0.1, False, TelephoneEvent(7, True, 10, 800)),
        (0.1, False, TelephoneEvent(7, True, 10, 800)),
        (0.1, False, TelephoneEvent(7, True, 10, 800)),
    ]
    assert {p.timestamp for p in train} == {4000}


def test_packet_train_odd_duration_and_options() -> None:
    train = dtmf.digit_packets("#", timestamp=1, duration=0.12, volume=20, end_repeats=2)
    durations = [dtmf.parse_event(p.payload).duration for p in train]
    assert durations == [400, 800, 960, 960, 960]
    assert [p.marker for p in train] == [True, False, False, False, False]
    assert dtmf.parse_event(train[0].payload).volume == 20


def _feed(rx: DtmfReceiver, train: list[dtmf.PlannedPacket]) -> list[object]:
    out: list[object] = []
    for p in train:
        out += rx.receive(p.payload, p.timestamp)
    return out


def test_receiver_turns_train_into_one_digit() -> None:
    rx = DtmfReceiver()
    events = _feed(rx, dtmf.digit_packets("5", timestamp=800))
    assert events == [DtmfBegan("5", 800), DtmfEnded("5", 800, 800)]


def test_receiver_lost_start_and_retransmissions() -> None:
    rx = DtmfReceiver()
    train = dtmf.digit_packets("1", timestamp=10)
    events = _feed(rx, train[2:])  # only the end packets arrived
    assert events == [DtmfBegan("1", 10), DtmfEnded("1", 10, 800)]
    assert _feed(rx, train) == []  # late copies of a finished event


def test_receiver_lost_end_is_closed_by_the_next_event() -> None:
    rx = DtmfReceiver()
    first = dtmf.digit_packets("2", timestamp=100)[:2]
    second = dtmf.digit_packets("3", timestamp=2000)
    events = _feed(rx, first + second)
    assert events == [
        DtmfBegan("2", 100),
        DtmfEnded("2", 100, 0),
        DtmfBegan("3", 2000),
        DtmfEnded("3", 2000, 800),
    ]


def test_same_digit_twice_is_two_events() -> None:
    rx = DtmfReceiver()
    a = dtmf.digit_packets("9", timestamp=0)
    b = dtmf.digit_packets("9", timestamp=1600)
    digits = [e.digit for e in _feed(rx, a + b) if isinstance(e, DtmfBegan)]
    assert digits == ["9", "9"]


def test_receiver_ignores_non_dtmf_events() -> None:
    rx = DtmfReceiver()
    assert rx.receive(TelephoneEvent(70).to_bytes(), 5) == []


@given(st.lists(st.tuples(st.binary(min_size=4, max_size=6), st.integers(0, 5)), max_size=30))
def test_receiver_fuzz_pairs_begin_and_end(packets: list[tuple[bytes, int]]) -> None:
    rx = DtmfReceiver()
    events = [e for payload, ts in packets for e in rx.receive(payload, ts)]
    open_ts: int | None = None
    for e in events:  # a digit ends before the next begins, and ends only what began
        if isinstance(e, DtmfBegan):
            assert open_ts is None
            open_ts = e.timestamp
        else:
            assert e.timestamp == open_ts
            open_ts = None
