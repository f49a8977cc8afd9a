"""Payload-type routes between legs (PT rewrite, PCMU↔PCMA)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.media import audio
from pypbx.media.codecs import IDENTITY, leg_formats, route_between
from pypbx.media.relay import _route_function
from pypbx.sip.sdp import Codec, SessionDescription, parse_sdp

PCMU, PCMA, G729 = Codec(0, "PCMU", 8000), Codec(8, "PCMA", 8000), Codec(18, "G729", 8000)


def ev(pt: int) -> Codec:
    return Codec(pt, "telephone-event", 8000, fmtp="0-16")


def test_same_numbers_give_identity() -> None:
    route = route_between([PCMU, ev(101)], [PCMU, PCMA, ev(101)])
    assert route.identity
    assert route.octet1 == IDENTITY


def test_telephone_event_renumbered_marker_kept() -> None:
    route = route_between([PCMU, ev(101)], [PCMU, ev(96)])
    assert not route.identity
    assert route.octet1[101] == 96
    assert route.octet1[101 | 0x80] == 96 | 0x80
    assert route.octet1[0] == 0
    assert route.outgoing_type(101) == 96
    assert route.payload == {}


def test_pcmu_to_pcma_transcodes() -> None:
    route = route_between([PCMU, ev(101)], [PCMA, ev(101)])
    assert route.outgoing_type(0) == 8
    assert route.payload == {0: audio.ULAW_TO_ALAW}
    back = route_between([PCMA], [PCMU])
    assert back.payload == {8: audio.ALAW_TO_ULAW}
    assert back.outgoing_type(8) == 0


def test_shared_codec_preferred_over_transcoding() -> None:
    route = route_between([PCMU, PCMA], [PCMA, PCMU])
    assert route.identity


def test_unknown_codec_passes_unchanged() -> None:
    route = route_between([G729, Codec(97, "opus", 48000, 2)], [PCMU])
    assert route.identity


def test_dynamic_codec_renumbered_by_name_and_rate() -> None:
    route = route_between([Codec(97, "opus", 48000, 2)], [Codec(111, "OPUS", 48000, 2)])
    assert route.outgoing_type(97) == 111


def sdp(port: int, *lines: str, formats: str) -> SessionDescription:
    head = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"]
    body = "\r\n".join([*head, f"m=audio {port} RTP/AVP {formats}", *lines, ""])
    return parse_sdp(body)


CALLER_OFFER = sdp(
    4000,
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:96 telephone-event/8000",
    "a=fmtp:96 0-16",
    formats="0 8 96",
)
PYPBX_ANSWER = sdp(
    10000, "a=rtpmap:0 PCMU/8000", "a=rtpmap:96 telephone-event/8000", formats="0 96"
)
PYPBX_OFFER = sdp(
    10002,
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    formats="8 0 101",
)
CALLEE_ANSWER = sdp(
    5000, "a=rtpmap:8 PCMA/8000", "a=rtpmap:100 telephone-event/8000", formats="8 100"
)


def test_leg_formats_answerer_side_keeps_only_what_was_agreed() -> None:
    f = leg_formats(PYPBX_ANSWER, CALLER_OFFER)
    assert [(c.payload_type, c.name) for c in f.receive] == [(0, "PCMU"), (96, "telephone-event")]
    # PCMA was offered but not answered: pypbx must not send it to the caller
    assert [(c.payload_type, c.name) for c in f.send] == [(0, "PCMU"), (96, "telephone-event")]


def test_leg_formats_offerer_side_receives_in_its_numbers_sends_in_theirs() -> None:
    f = leg_formats(PYPBX_OFFER, CALLEE_ANSWER)
    assert [(c.payload_type, c.name) for c in f.receive] == [(8, "PCMA"), (101, "telephone-event")]
    assert [(c.payload_type, c.name) for c in f.send] == [(8, "PCMA"), (100, "telephone-event")]


def test_leg_formats_without_audio_are_empty() -> None:
    video = sdp(0, "a=rtpmap:0 PCMU/8000", formats="0")
    f = leg_formats(video, CALLER_OFFER)
    assert f.receive == []
    assert f.send == []


def test_routes_between_two_negotiated_legs_transcode_and_renumber_events() -> None:
    """Caller: PCMU + events 96; callee: PCMA + events 100 (pypbx offered them as 101)."""
    caller = leg_formats(PYPBX_ANSWER, CALLER_OFFER)
    callee = leg_formats(PYPBX_OFFER, CALLEE_ANSWER)
    forward = route_between(caller.receive, callee.send)
    assert forward.outgoing_type(0) == 8
    assert forward.payload == {0: audio.ULAW_TO_ALAW}
    assert forward.outgoing_type(96) == 100
    assert forward.octet1[96 | 0x80] == 100 | 0x80  # the marker of an event's start stays
    back = route_between(callee.receive, caller.send)
    assert back.outgoing_type(8) == 0
    assert back.payload == {8: audio.ALAW_TO_ULAW}
    assert back.outgoing_type(101) == 96  # events arrive in pypbx's numbers (its offer)
    assert back.outgoing_type(100) == 100  # an unagreed number is not invented


@pytest.mark.parametrize(
    ("source", "target", "pt_in", "pt_out"),
    [
        ([PCMU, ev(101)], [PCMU, ev(96)], 101, 96),
        ([PCMA, ev(97)], [PCMU, ev(101)], 97, 101),
        ([PCMU, ev(101)], [PCMU], 101, 101),  # the far side takes no events: unchanged
        ([PCMU, Codec(101, "telephone-event", 48000)], [PCMU, ev(96)], 101, 101),  # other rate
    ],
)
def test_telephone_event_mapping_table(
    source: list[Codec], target: list[Codec], pt_in: int, pt_out: int
) -> None:
    assert route_between(source, target).outgoing_type(pt_in) == pt_out


@given(st.binary(min_size=12, max_size=400), st.booleans())
def test_transcoding_route_keeps_length_and_header(data: bytes, pcma: bool) -> None:
    """Any packet through a G.711 route keeps its length, sequence, timestamp and SSRC."""
    route = route_between([PCMA if pcma else PCMU], [PCMU if pcma else PCMA])
    packet = bytes([0x80, 8 if pcma else 0]) + data[2:]
    leg_fn = _route_function(route)
    out = bytes(leg_fn(packet))
    assert len(out) == len(packet)
    assert out[2:12] == packet[2:12]
    assert out[1] == (0 if pcma else 8)
    table = audio.ALAW_TO_ULAW if pcma else audio.ULAW_TO_ALAW
    assert out[12:] == packet[12:].translate(table)


def test_leg_formats_do_not_depend_on_who_offered() -> None:
    """A re-INVITE turns the roles: the far end's offer lists PCMU and PCMA, pypbx answered
    PCMA only; pypbx must not send PCMU to it, whichever side offered first."""
    reoffer = sdp(
        5000, "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:97 telephone-event/8000",
        formats="0 8 97",
    )  # fmt: skip
    answer = sdp(10002, "a=rtpmap:8 PCMA/8000", "a=rtpmap:97 telephone-event/8000", formats="8 97")
    f = leg_formats(answer, reoffer)
    assert [c.name for c in f.send] == ["PCMA", "telephone-event"]
    assert [c.payload_type for c in f.receive] == [8, 97]
    assert leg_formats(reoffer, answer) == type(f)(f.send, f.receive)  # symmetric
