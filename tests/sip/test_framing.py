"""Stream framing for TCP (RFC 3261 §18.3) and CRLF keep-alives (RFC 5626 §3.5.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.sip.abnf import ParseError
from pypbx.sip.framing import (
    PONG,
    KeepAlivePing,
    KeepAlivePong,
    MessageFramed,
    StreamFramer,
)
from pypbx.sip.parse import parse_message

BODY = b"v=0\r\ns=-\r\n"
MSG1 = (
    b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
    b"To: <sip:b@h>\r\nCall-ID: one\r\nCSeq: 1 INVITE\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)
MSG2 = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
    b"To: <sip:b@h>;tag=2\r\nCall-ID: two\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n"
)


def drain(framer: StreamFramer) -> list[object]:
    out = []
    while (event := framer.next_event()) is not None:
        out.append(event)
    return out


def test_two_messages_in_one_chunk():
    framer = StreamFramer()
    framer.feed(MSG1 + MSG2)
    assert drain(framer) == [MessageFramed(MSG1), MessageFramed(MSG2)]
    assert framer.buffered == 0


@given(st.lists(st.integers(1, 50), min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_any_chunking_gives_the_same_messages(cuts):
    stream = MSG1 + b"\r\n\r\n" + MSG2 + MSG1
    framer = StreamFramer()
    events: list[object] = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        framer.feed(stream[pos : pos + cut])
        pos += cut
        events += drain(framer)
    assert events == [
        MessageFramed(MSG1),
        KeepAlivePing(),
        MessageFramed(MSG2),
        MessageFramed(MSG1),
    ]
    assert parse_message(events[0].data).call_id == "one"


@pytest.mark.parametrize(
    ("stream", "events"),
    [
        (b"\r\n\r\n", [KeepAlivePing()]),
        (b"\r\n\r\n\r\n\r\n", [KeepAlivePing(), KeepAlivePing()]),
        (b"\r\n" + MSG2, [KeepAlivePong(), MessageFramed(MSG2)]),
        (b"\r\n\r\n\r\n" + MSG2, [KeepAlivePing(), KeepAlivePong(), MessageFramed(MSG2)]),
        (b"\r\n", []),  # could be the start of a ping: wait for more
        (b"\r\n\r", []),
        (b"\n" + MSG2, [MessageFramed(MSG2)]),
        (MSG2[:-1], []),
    ],
)
def test_keepalives(stream, events):
    framer = StreamFramer()
    framer.feed(stream)
    assert drain(framer) == events
    assert PONG == b"\r\n"


def test_lone_crlf_resolves_when_more_data_arrives():
    framer = StreamFramer()
    framer.feed(b"\r\n")
    assert framer.next_event() is None
    framer.feed(MSG2)
    assert drain(framer) == [KeepAlivePong(), MessageFramed(MSG2)]


@pytest.mark.parametrize(
    ("stream", "status", "limits"),
    [
        (MSG2.replace(b"l: 0\r\n", b""), 400, {}),
        (MSG2.replace(b"l: 0", b"l: x"), 400, {}),
        (MSG2.replace(b"l: 0", b"l: 0\r\nContent-Length: 5"), 400, {}),
        (MSG2.replace(b"l: 0", b"l: 99999999999999999999"), 400, {}),
        (MSG2.replace(b"l: 0", b"l: 70000"), 413, {}),
        (MSG1, 413, {"max_message_size": len(MSG1) - 1}),
        (MSG1, 513, {"max_header_size": 40}),
        (b"X" * 200, 513, {"max_header_size": 100}),
    ],
)
def test_limits_and_errors(stream, status, limits):
    framer = StreamFramer(**limits)
    framer.feed(stream)
    with pytest.raises(ParseError) as exc:
        drain(framer)
    assert exc.value.status == status
    # the framer stays broken: the stream cannot be resynchronised
    with pytest.raises(ParseError):
        framer.feed(MSG2)
    with pytest.raises(ParseError):
        framer.next_event()


def test_exact_size_limits_accept():
    framer = StreamFramer(max_message_size=len(MSG1))
    framer.feed(MSG1)
    assert drain(framer) == [MessageFramed(MSG1)]
    # an incomplete header section below the limit just waits
    framer2 = StreamFramer(max_header_size=100)
    framer2.feed(b"X" * 100)
    assert framer2.next_event() is None
    assert framer2.buffered == 100
