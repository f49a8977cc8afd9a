"""Payload-type routes between legs (PT rewrite, PCMU↔PCMA)."""

from __future__ import annotations

from pypbx.media import audio
from pypbx.media.codecs import IDENTITY, route_between
from pypbx.sip.sdp import Codec

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
