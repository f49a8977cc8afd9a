"""Payload-type mapping between two call legs, with G.711 transcoding (RFC 3551 §6, RFC 3264 §6.1).

Each leg negotiates its own payload type numbers (sdp.py's ``negotiate``): telephone-event may
be 101 on one leg and 96 on the other, a dynamic codec may carry different numbers. A
:class:`Route` is what the relay needs for one direction, reduced to tables: a 256-entry
translation of RTP octet 1 (marker bit + payload type) and, per incoming payload type, a
256-entry payload translation for PCMU↔PCMA. The relay applies them with ``bytes.translate``
or one index, never by building objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pypbx.media.audio import ALAW_TO_ULAW, ULAW_TO_ALAW
from pypbx.sip.sdp import Codec, SessionDescription, codecs

__all__ = ["IDENTITY", "LegFormats", "Route", "leg_formats", "route_between"]

IDENTITY = bytes(range(256))

# (source codec name, target codec name) → payload table; names upper-cased, 8 kHz only.
_TRANSCODERS: dict[tuple[str, str], bytes] = {
    ("PCMU", "PCMA"): ULAW_TO_ALAW,
    ("PCMA", "PCMU"): ALAW_TO_ULAW,
}


@dataclass(frozen=True, slots=True)
class Route:
    """How packets received on one leg are changed before they leave through the other.

    ``octet1`` maps RTP octet 1 (marker | payload type) to its outgoing value; ``payload`` maps
    an incoming payload type to the table that translates its payload octets (transcoding).
    """

    octet1: bytes = IDENTITY
    payload: Mapping[int, bytes] = field(default_factory=dict)

    @property
    def identity(self) -> bool:
        """True when packets pass unchanged (the relay then skips the route entirely)."""
        return self.octet1 == IDENTITY and not self.payload

    def outgoing_type(self, payload_type: int) -> int:
        """The payload type a packet of ``payload_type`` leaves with."""
        return self.octet1[payload_type] & 0x7F


def _key(codec: Codec) -> tuple[str, int]:
    return codec.name.upper(), codec.clock_rate


def route_between(source: Sequence[Codec], target: Sequence[Codec]) -> Route:
    """The route for packets negotiated as ``source`` on the receiving leg and ``target`` on the
    sending leg.

    A codec on both legs keeps its audio and takes the target's payload type. A G.711 codec only
    on the source side is transcoded to the target's other G.711 law when the target has it.
    Anything else passes with its number unchanged (the far end will ignore what it does not
    know, as Asterisk's native bridge does).
    """
    by_key = {_key(c): c for c in reversed(target)}
    octet1 = bytearray(IDENTITY)
    payload: dict[int, bytes] = {}
    for codec in source:
        out = by_key.get(_key(codec))
        if out is None and codec.clock_rate == 8000:
            for (src, dst), table in _TRANSCODERS.items():
                candidate = by_key.get((dst, 8000))
                if src == codec.name.upper() and candidate is not None:
                    out = candidate
                    payload[codec.payload_type] = table
                    break
        if out is not None:
            pt = codec.payload_type
            octet1[pt] = out.payload_type
            octet1[pt | 0x80] = out.payload_type | 0x80
    return Route(bytes(octet1), payload)


@dataclass(frozen=True, slots=True)
class LegFormats:
    """The payload types of one leg after offer/answer (RFC 3264 §5.1, §6.1).

    A payload type number in an SDP says how its *author* wants to receive: ``receive`` lists
    the agreed codecs with the numbers of pypbx's own SDP (what the far end sends us),
    ``send`` the same codecs with the numbers of the far end's SDP (what we must send it).
    telephone-event is kept in both, so RFC 4733 events are renumbered between legs.
    """

    receive: list[Codec]
    send: list[Codec]


def _audio(sd: SessionDescription) -> list[Codec]:
    m = next((m for m in sd.media if m.kind == "audio" and m.port != 0), None)
    return [] if m is None else codecs(m)


def leg_formats(local: SessionDescription, remote: SessionDescription) -> LegFormats:
    """The agreed codecs of a leg whose last SDPs are ``local`` (ours) and ``remote`` (theirs).

    An answer lists a subset of its offer (RFC 3264 §6), so the codecs in both are the agreed
    ones whichever side offered (a re-INVITE may turn the roles). Codecs are matched by name
    and clock rate, so the numbers may differ per side.
    """
    mine, theirs = _audio(local), _audio(remote)
    agreed = {_key(c) for c in mine} & {_key(c) for c in theirs}
    return LegFormats(
        [c for c in mine if _key(c) in agreed],
        [c for c in theirs if _key(c) in agreed],
    )
