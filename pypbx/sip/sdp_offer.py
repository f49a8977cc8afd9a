"""SDP offer/answer (RFC 3264 §5-§6): codecs and payload types as Asterisk's ``allow=`` names
them, negotiation, direction and hold, address rewriting, and building offers and answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pypbx.sip.sdp_model import (
    Attribute,
    Connection,
    Media,
    NotAcceptable,
    Origin,
    SessionDescription,
    Timing,
    connection_for,
    small_int,
)

__all__ = [
    "ASTERISK_CODECS",
    "STATIC_PAYLOAD_TYPES",
    "TELEPHONE_EVENT",
    "Codec",
    "Direction",
    "build_answer",
    "build_offer",
    "codec_for",
    "codecs",
    "direction",
    "is_hold",
    "negotiate",
    "rewrite_connection",
    "telephone_event",
]


# --- codecs and payload types (RFC 3551 §6, RFC 4566 §6) ---------------------------------------


@dataclass(frozen=True, slots=True)
class Codec:
    """A payload type as an SDP names it: ``a=rtpmap:<pt> <name>/<rate>[/<channels>]``."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None

    @property
    def rtpmap(self) -> str:
        """The rtpmap value without the payload type: ``PCMU/8000``, ``opus/48000/2``."""
        chans = "" if self.channels is None else f"/{self.channels}"
        return f"{self.name}/{self.clock_rate}{chans}"

    def same_codec(self, name: str, clock_rate: int) -> bool:
        """Whether this is ``name`` (case-insensitive) at ``clock_rate``."""
        return self.name.lower() == name.lower() and self.clock_rate == clock_rate


STATIC_PAYLOAD_TYPES: dict[int, Codec] = {
    c.payload_type: c
    for c in (
        Codec(0, "PCMU", 8000),
        Codec(3, "GSM", 8000),
        Codec(4, "G723", 8000),
        Codec(5, "DVI4", 8000),
        Codec(6, "DVI4", 16000),
        Codec(7, "LPC", 8000),
        Codec(8, "PCMA", 8000),
        Codec(9, "G722", 8000),
        Codec(10, "L16", 44100, 2),
        Codec(11, "L16", 44100),
        Codec(12, "QCELP", 8000),
        Codec(13, "CN", 8000),
        Codec(14, "MPA", 90000),
        Codec(15, "G728", 8000),
        Codec(16, "DVI4", 11025),
        Codec(17, "DVI4", 22050),
        Codec(18, "G729", 8000),
        Codec(25, "CelB", 90000),
        Codec(26, "JPEG", 90000),
        Codec(28, "nv", 90000),
        Codec(31, "H261", 90000),
        Codec(32, "MPV", 90000),
        Codec(33, "MP2T", 90000),
        Codec(34, "H263", 90000),
    )
}

# Asterisk ``allow=`` names → (encoding name, clock rate, channels in rtpmap).
ASTERISK_CODECS: dict[str, tuple[str, int, int | None]] = {
    "ulaw": ("PCMU", 8000, None),
    "alaw": ("PCMA", 8000, None),
    "gsm": ("GSM", 8000, None),
    "g722": ("G722", 8000, None),
    "g723": ("G723", 8000, None),
    "g726": ("G726-32", 8000, None),
    "g726aal2": ("AAL2-G726-32", 8000, None),
    "g729": ("G729", 8000, None),
    "ilbc": ("iLBC", 8000, None),
    "speex": ("speex", 8000, None),
    "speex16": ("speex", 16000, None),
    "speex32": ("speex", 32000, None),
    "opus": ("opus", 48000, 2),
    "slin": ("L16", 8000, None),
    "slin16": ("L16", 16000, None),
    "lpc10": ("LPC", 8000, None),
    "adpcm": ("DVI4", 8000, None),
    "h261": ("H261", 90000, None),
    "h263": ("H263", 90000, None),
    "h264": ("H264", 90000, None),
    "vp8": ("VP8", 90000, None),
}

TELEPHONE_EVENT = "telephone-event"


def _pt_value(values: list[str], pt: int) -> str | None:
    for value in values:
        head, _, rest = value.partition(" ")
        if small_int(head) == pt:
            return rest.strip()
    return None


def codec_for(media: Media, payload_type: int) -> Codec | None:
    """The codec a payload type stands for: its rtpmap/fmtp, else the RFC 3551 static table."""
    fmtp = _pt_value(media.values("fmtp"), payload_type)
    mapping = _pt_value(media.values("rtpmap"), payload_type)
    if mapping is not None:
        name, _, rest = mapping.partition("/")
        rate_text, _, chans_text = rest.partition("/")
        rate, chans = small_int(rate_text), small_int(chans_text)
        if name and rate is not None and (chans is not None or not chans_text):
            return Codec(payload_type, name, rate, chans, fmtp)
    static = STATIC_PAYLOAD_TYPES.get(payload_type)
    return None if static is None else dataclasses.replace(static, fmtp=fmtp)


def codecs(media: Media) -> list[Codec]:
    """The codecs of an RTP media description in offer order (unknown dynamic ones skipped)."""
    out = []
    for fmt in media.formats:
        pt = small_int(fmt)
        if pt is not None and pt <= 127:
            codec = codec_for(media, pt)
            if codec is not None:
                out.append(codec)
    return out


def telephone_event(media: Media) -> Codec | None:
    """The RFC 4733 ``telephone-event`` payload offered in ``media``, if any."""
    return next((c for c in codecs(media) if c.name.lower() == TELEPHONE_EVENT), None)


def negotiate(
    offer_formats: Sequence[Codec], allowed: Sequence[str], *, dtmf: bool = True
) -> list[Codec]:
    """Offered codecs that ``allowed`` (Asterisk names) permits, in ``allowed`` order.

    The offer's payload types and fmtp are kept; telephone-event is appended (at the rate
    of the first chosen codec when offered, else any) when ``dtmf`` and a codec was chosen.
    """
    chosen: list[Codec] = []
    for name in allowed:
        spec = ASTERISK_CODECS.get(name.strip().lower())
        if spec is None:
            continue
        match = next((c for c in offer_formats if c.same_codec(spec[0], spec[1])), None)
        if match is not None and match not in chosen:
            chosen.append(match)
    if dtmf and chosen:
        events = [c for c in offer_formats if c.name.lower() == TELEPHONE_EVENT]
        same_rate = [c for c in events if c.clock_rate == chosen[0].clock_rate]
        if same_rate or events:
            chosen.append((same_rate or events)[0])
    return chosen


# --- direction and hold (RFC 3264 §5.1, §8.4) ---------------------------------------------------


class Direction(StrEnum):
    """The media direction attribute; ``mirror`` is what an answer says back (RFC 3264 §6.1)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def mirror(self) -> Direction:
        """sendonly ↔ recvonly; sendrecv and inactive stay."""
        return _MIRROR[self]


_MIRROR = {
    Direction.SENDRECV: Direction.SENDRECV,
    Direction.SENDONLY: Direction.RECVONLY,
    Direction.RECVONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}
_DIRECTIONS = {d.value: d for d in Direction}


def _direction_of(attributes: Iterable[Attribute]) -> Direction | None:
    found = None
    for a in attributes:
        if a.value is None and a.name.lower() in _DIRECTIONS:
            found = _DIRECTIONS[a.name.lower()]
    return found


def direction(sd: SessionDescription, index: int) -> Direction:
    """Media ``index``'s direction: its own attribute, else the session's, else sendrecv."""
    return (
        _direction_of(sd.media[index].attributes)
        or _direction_of(sd.attributes)
        or Direction.SENDRECV
    )


def _effective_connection(sd: SessionDescription, index: int) -> Connection | None:
    return sd.media[index].connection or sd.connection


def is_hold(sd: SessionDescription, index: int | None = None) -> bool:
    """Whether a stream (or, with no index, every live stream) is put on hold.

    Hold is sendonly or inactive (RFC 3264 §8.4) or the RFC 2543 ``c=0.0.0.0``.
    """
    if index is not None:
        conn = _effective_connection(sd, index)
        if conn is not None and conn.host == "0.0.0.0":
            return True
        return direction(sd, index) in (Direction.SENDONLY, Direction.INACTIVE)
    live = [i for i, m in enumerate(sd.media) if m.port != 0]
    return bool(live) and all(is_hold(sd, i) for i in live)


# --- rewriting and answering -----------------------------------------------------------------


def rewrite_connection(
    sd: SessionDescription,
    address: str,
    port_for_media_index: Mapping[int, int],
    *,
    bump_version: bool = False,
) -> SessionDescription:
    """A copy with every ``c=`` set to ``address`` and m= ports changed per index.

    Streams not in the mapping keep their port. An ``a=rtcp:`` of a re-ported stream is
    moved to the new port + 1 (and to ``address`` if it named one).
    """
    conn = connection_for(address)
    media = []
    for i, m in enumerate(sd.media):
        port = port_for_media_index.get(i, m.port)
        attrs = m.attributes
        if i in port_for_media_index:
            attrs = tuple(_rewrite_rtcp(a, conn, port) for a in attrs)
        media.append(
            dataclasses.replace(
                m,
                port=port,
                connection=conn if m.connection is not None else None,
                attributes=attrs,
            )
        )
    origin = sd.origin
    if bump_version:
        origin = dataclasses.replace(origin, sess_version=origin.sess_version + 1)
    return dataclasses.replace(sd, origin=origin, connection=conn, media=tuple(media))


def _rewrite_rtcp(a: Attribute, conn: Connection, port: int) -> Attribute:
    if a.name.lower() != "rtcp" or a.value is None:
        return a
    has_addr = len(a.value.split()) > 1
    return Attribute(a.name, f"{port + 1} {conn}" if has_addr else str(port + 1))


def _audio_attributes(
    chosen: Sequence[Codec], ptime: str | None, way: Direction
) -> list[Attribute]:
    attrs = [Attribute("rtpmap", f"{c.payload_type} {c.rtpmap}") for c in chosen]
    attrs += [Attribute("fmtp", f"{c.payload_type} {c.fmtp}") for c in chosen if c.fmtp]
    if ptime is not None:
        attrs.append(Attribute("ptime", ptime))
    attrs.append(Attribute(way.value))
    return attrs


_RTP_PROTOS = ("RTP/AVP", "RTP/AVPF")
_CANNOT_RECEIVE = {  # the offerer's direction once c=0.0.0.0 says it will not receive
    Direction.SENDRECV: Direction.SENDONLY,
    Direction.SENDONLY: Direction.SENDONLY,
    Direction.RECVONLY: Direction.INACTIVE,
    Direction.INACTIVE: Direction.INACTIVE,
}


def build_answer(
    offer: SessionDescription,
    local_addr: str,
    local_port: int,
    allowed: Sequence[str],
    *,
    dtmf: bool = True,
    session_id: int | str,
    version: int,
    username: str = "pypbx",
    session_name: str = "pypbx",
) -> SessionDescription:
    """The RFC 3264 §6 answer: one m= per offered m=, the first usable audio stream accepted.

    Other streams are rejected with port 0. The answer mirrors the offered direction (an
    RFC 2543 ``c=0.0.0.0`` hold counts as sendonly). Raises ``NotAcceptable`` (488) when no
    stream can be accepted.
    """
    conn = connection_for(local_addr)
    media: list[Media] = []
    accepted = False
    for i, m in enumerate(offer.media):
        chosen: list[Codec] = []
        if not accepted and m.kind == "audio" and m.port != 0 and m.proto.upper() in _RTP_PROTOS:
            chosen = negotiate(codecs(m), allowed, dtmf=dtmf)
        if not any(c.name.lower() != TELEPHONE_EVENT for c in chosen):
            media.append(Media(m.kind, 0, m.proto, m.formats or ("0",)))
            continue
        accepted = True
        way = direction(offer, i)
        conn_in = _effective_connection(offer, i)
        if conn_in is not None and conn_in.host == "0.0.0.0":
            way = _CANNOT_RECEIVE[way]
        ptime = m.values("ptime")
        attrs = _audio_attributes(chosen, ptime[0] if ptime else None, way.mirror)
        formats = tuple(str(c.payload_type) for c in chosen)
        media.append(Media("audio", local_port, m.proto, formats, attributes=tuple(attrs)))
    if not accepted:
        raise NotAcceptable("no acceptable media stream in the offer")
    origin = Origin(username, str(session_id), version, "IN", conn.addrtype, local_addr)
    timing = offer.timing[:1] or (Timing(),)
    return SessionDescription(
        origin=origin, name=session_name, connection=conn, timing=timing, media=tuple(media)
    )


def build_offer(
    local_addr: str,
    local_port: int,
    allowed: Sequence[str],
    *,
    dtmf: bool = True,
    session_id: int | str,
    version: int,
    ptime: int | None = 20,
    way: Direction = Direction.SENDRECV,
    username: str = "pypbx",
    session_name: str = "pypbx",
) -> SessionDescription:
    """An RTP/AVP audio offer of ``allowed`` (static payload types where defined, else 96+).

    telephone-event is offered as payload type 101 with events 0-16.
    """
    chosen: list[Codec] = []
    dynamic = (pt for pt in range(96, 128) if pt != 101)
    for name in allowed:
        spec = ASTERISK_CODECS.get(name.strip().lower())
        if spec is None or spec[1] == 90000 or any(c.same_codec(spec[0], spec[1]) for c in chosen):
            continue
        static = next(
            (c for c in STATIC_PAYLOAD_TYPES.values() if c.same_codec(spec[0], spec[1])), None
        )
        chosen.append(static or Codec(next(dynamic), spec[0], spec[1], spec[2]))
    if not chosen:
        raise NotAcceptable("no audio codec allowed")
    if dtmf:
        chosen.append(Codec(101, TELEPHONE_EVENT, 8000, fmtp="0-16"))
    conn = connection_for(local_addr)
    attrs = _audio_attributes(chosen, None if ptime is None else str(ptime), way)
    formats = tuple(str(c.payload_type) for c in chosen)
    return SessionDescription(
        origin=Origin(username, str(session_id), version, "IN", conn.addrtype, local_addr),
        name=session_name,
        connection=conn,
        media=(Media("audio", local_port, "RTP/AVP", formats, attributes=tuple(attrs)),),
    )
