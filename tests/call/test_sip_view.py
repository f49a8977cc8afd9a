"""The pieces of a ``sip show channels`` row: codec names as Asterisk prints them, and when
the far end's SDP holds the call."""

from __future__ import annotations

import pytest

from pypbx.call.sip_view import asterisk_codec, holds
from pypbx.sip.sdp import Direction, build_offer, parse_sdp


@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        ("PCMU", "ulaw"),
        ("PCMA", "alaw"),
        ("G729", "g729"),
        ("g722", "g722"),
        ("X-Weird", "x-weird"),
    ],
)
def test_codec_names_are_asterisks(encoding: str, name: str) -> None:
    assert asterisk_codec(encoding) == name


@pytest.mark.parametrize(
    ("way", "host", "held"),
    [
        (Direction.SENDRECV, "192.0.2.5", False),
        (Direction.RECVONLY, "192.0.2.5", False),
        (Direction.SENDONLY, "192.0.2.5", True),
        (Direction.INACTIVE, "192.0.2.5", True),
        (Direction.SENDRECV, "0.0.0.0", True),  # RFC 2543 hold
    ],
)
def test_hold_is_read_from_the_far_ends_sdp(way: Direction, host: str, held: bool) -> None:
    sd = build_offer(host, 4000, ("ulaw",), session_id=1, version=1, way=way)
    assert holds(parse_sdp(sd.to_bytes())) is held
    assert holds(None) is False
