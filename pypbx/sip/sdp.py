"""SDP: the RFC 4566 §5 model with parse/serialize, and RFC 3264 §5-§6 offer/answer helpers.

Parsing keeps every line: known fields become typed values, the rest (``i=``, ``u=``, ``k=``,
``z=``, unknown types) are kept in their order and written back in their RFC 4566 slot.
Serialization always uses CRLF. Codec names follow Asterisk's ``allow=`` vocabulary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pypbx.errors import PbxError

__all__ = [
    "ASTERISK_CODECS",
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Bandwidth",
    "Codec",
    "Connection",
    "Direction",
    "Line",
    "Media",
    "NotAcceptable",
    "Origin",
    "SdpError",
    "SessionDescription",
    "Timing",
    "build_answer",
    "build_offer",
    "codec_for",
    "codecs",
    "connection_for",
    "direction",
    "is_hold",
    "negotiate",
    "parse_sdp",
    "rewrite_connection",
    "telephone_event",
]


class SdpError(PbxError):
    """A body that is not a usable session description (answered with 400)."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAcceptable(SdpError):
    """An offer with no stream we can accept (answered with 488, RFC 3261 §13.3.1.1)."""

    status = 488


# --- the model (RFC 4566 §5) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>``."""

    username: str
    sess_id: str
    sess_version: int
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (address may carry ``/ttl``)."""

    nettype: str
    addrtype: str
    address: str

    @property
    def host(self) -> str:
        """The address without a multicast ``/ttl/count`` suffix."""
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


def connection_for(address: str) -> Connection:
    """An ``IN IP4``/``IN IP6`` connection for a unicast address."""
    return Connection("IN", "IP6" if ":" in address else "IP4", address)


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """``b=<bwtype>:<bandwidth>``."""

    bwtype: str
    bandwidth: int

    def __str__(self) -> str:
        return f"{self.bwtype}:{self.bandwidth}"


@dataclass(frozen=True, slots=True)
class Timing:
    """``t=<start-time> <stop-time>`` with its ``r=`` repeat lines (kept as text)."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Attribute:
    """``a=<name>`` or ``a=<name>:<value>``; an empty value is kept apart from no value."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class Line:
    """Any other line (``i=``, ``u=``, ``e=``, ``p=``, ``z=``, ``k=``, unknown types)."""

    type: str
    value: str


@dataclass(frozen=True, slots=True)
class Media:
    """A media description: ``m=<media> <port>[/<count>] <proto> <fmt> ...`` and its lines."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    other: tuple[Line, ...] = ()

    def values(self, name: str) -> list[str]:
        """Values of the attributes called ``name`` (case-insensitive), in order."""
        return _values(self.attributes, name)


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body (RFC 4566 §5); ``str()`` gives the CRLF wire form."""

    origin: Origin
    name: str = "-"
    version: int = 0
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    timing: tuple[Timing, ...] = (Timing(),)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[Media, ...] = ()
    other: tuple[Line, ...] = field(default=())

    def values(self, name: str) -> list[str]:
        """Values of the session-level attributes called ``name`` (case-insensitive)."""
        return _values(self.attributes, name)

    def __str__(self) -> str:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.name}"]
        out += [f"{o.type}={o.value}" for o in self.other if o.type in _EARLY]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={b}" for b in self.bandwidths]
        for t in self.timing:
            out.append(f"t={t.start} {t.stop}")
            out += [f"r={r}" for r in t.repeats]
        out += [f"{o.type}={o.value}" for o in self.other if o.type not in _EARLY]
        out += [f"a={a}" for a in self.attributes]
        for m in self.media:
            count = "" if m.port_count is None else f"/{m.port_count}"
            out.append(" ".join([f"m={m.kind} {m.port}{count} {m.proto}", *m.formats]))
            out += [f"i={o.value}" for o in m.other if o.type == "i"]
            if m.connection is not None:
                out.append(f"c={m.connection}")
            out += [f"b={b}" for b in m.bandwidths]
            out += [f"{o.type}={o.value}" for o in m.other if o.type != "i"]
            out += [f"a={a}" for a in m.attributes]
        return "\r\n".join(out) + "\r\n"

    def to_bytes(self) -> bytes:
        """The wire form, UTF-8 (bytes that arrived undecodable go back unchanged)."""
        return str(self).encode("utf-8", "surrogateescape")


_EARLY = frozenset("iuep")  # session lines that come before c= (RFC 4566 §5 order)


def _values(attributes: Iterable[Attribute], name: str) -> list[str]:
    name = name.lower()
    return [a.value or "" for a in attributes if a.name.lower() == name]


# --- parsing ----------------------------------------------------------------------------------


def _number(text: str) -> int | None:
    """ASCII digits (at most 20 of them) as an int, else None."""
    if 0 < len(text) <= 20 and text.isascii() and text.isdigit():
        return int(text)
    return None


def _int(text: str, what: str, limit: int | None = None) -> int:
    value = _number(text)
    if value is None:
        raise SdpError(f"{what} is not a number: {text[:40]!r}")
    if limit is not None and value > limit:
        raise SdpError(f"{what} out of range: {value}")
    return value


def _fields(value: str, n: int, what: str) -> list[str]:
    parts = value.split()
    if len(parts) != n:
        raise SdpError(f"{what}: expected {n} fields, got {len(parts)}")
    return parts


def _connection(value: str) -> Connection:
    return Connection(*_fields(value, 3, "c="))


def _bandwidth(value: str) -> Bandwidth:
    bwtype, sep, amount = value.partition(":")
    if not sep or not bwtype:
        raise SdpError(f"b=: expected <type>:<bandwidth>, got {value!r}")
    return Bandwidth(bwtype, _int(amount, "b= bandwidth"))


def _attribute(value: str) -> Attribute:
    name, sep, rest = value.partition(":")
    if not name:
        raise SdpError("a=: empty attribute name")
    return Attribute(name, rest if sep else None)


def _media(value: str) -> Media:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"m=: expected <media> <port> <proto> <fmt>..., got {value!r}")
    port_text, slash, count_text = parts[1].partition("/")
    count = _int(count_text, "m= port count") if slash else None
    if count == 0:
        raise SdpError("m= port count is zero")
    port = _int(port_text, "m= port", 65535)
    return Media(
        kind=parts[0], port=port, proto=parts[2], formats=tuple(parts[3:]), port_count=count
    )


@dataclass(slots=True)
class _Section:
    """Lines common to the session and media levels, gathered while parsing."""

    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    other: list[Line] = field(default_factory=list)

    def add(self, kind: str, value: str) -> None:
        if kind == "c":
            if self.connection is not None:
                raise SdpError("duplicate c= line")
            self.connection = _connection(value)
        elif kind == "b":
            self.bandwidths.append(_bandwidth(value))
        elif kind == "a":
            self.attributes.append(_attribute(value))
        else:
            self.other.append(Line(kind, value))

    def media(self, head: Media) -> Media:
        return dataclasses.replace(
            head,
            connection=self.connection,
            bandwidths=tuple(self.bandwidths),
            attributes=tuple(self.attributes),
            other=tuple(self.other),
        )


def _lines(text: str) -> list[tuple[str, str]]:
    lines = []
    for raw in text.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip():
            continue
        if len(line) < 2 or line[1] != "=" or not line[0].isascii() or not line[0].isalpha():
            raise SdpError(f"not a <type>=<value> line: {line[:40]!r}")
        if "\r" in line or "\x00" in line:
            raise SdpError("CR or NUL inside an SDP line")
        lines.append((line[0], line[2:]))
    return lines


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body (CRLF or LF); raise ``SdpError`` if it is not one."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    lines = _lines(text)
    if not lines or lines[0][0] != "v":
        raise SdpError("SDP must start with v=")
    version = _int(lines[0][1], "v=")
    if version != 0:
        raise SdpError(f"unsupported SDP version {version}")
    origin: Origin | None = None
    name: str | None = None
    timing: list[tuple[int, int, list[str]]] = []
    session = _Section()
    media: list[tuple[Media, _Section]] = []
    for kind, value in lines[1:]:
        if kind == "m":
            media.append((_media(value), _Section()))
        elif media:
            if kind in "vostrzuep":
                raise SdpError(f"{kind}= is not allowed in a media section")
            media[-1][1].add(kind, value)
        elif kind == "v" or (kind == "o" and origin) or (kind == "s" and name is not None):
            raise SdpError(f"duplicate {kind}= line")
        elif kind == "o":
            username, sess_id, ver, nettype, addrtype, address = _fields(value, 6, "o=")
            sess_version = _int(ver, "o= sess-version")
            origin = Origin(username, sess_id, sess_version, nettype, addrtype, address)
        elif kind == "s":
            name = value
        elif kind == "t":
            start, stop = _fields(value, 2, "t=")
            timing.append((_int(start, "t= start"), _int(stop, "t= stop"), []))
        elif kind == "r":
            if not timing:
                raise SdpError("r= before any t=")
            timing[-1][2].append(value)
        else:
            session.add(kind, value)
    if origin is None:
        raise SdpError("SDP has no o= line")
    return SessionDescription(
        origin=origin,
        name="-" if name is None else name,
        version=version,
        connection=session.connection,
        bandwidths=tuple(session.bandwidths),
        timing=tuple(Timing(start, stop, tuple(r)) for start, stop, r in timing),
        attributes=tuple(session.attributes),
        media=tuple(section.media(head) for head, section in media),
        other=tuple(session.other),
    )


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
        if _number(head) == pt:
            return rest.strip()
    return None


def codec_for(media: Media, payload_type: int) -> Codec | None:
    """The codec a payload type stands for: its rtpmap/fmtp, else the RFC 3551 static table."""
    fmtp = _pt_value(media.values("fmtp"), payload_type)
    mapping = _pt_value(media.values("rtpmap"), payload_type)
    if mapping is not None:
        name, _, rest = mapping.partition("/")
        rate_text, _, chans_text = rest.partition("/")
        rate, chans = _number(rate_text), _number(chans_text)
        if name and rate is not None and (chans is not None or not chans_text):
            return Codec(payload_type, name, rate, chans, fmtp)
    static = STATIC_PAYLOAD_TYPES.get(payload_type)
    return None if static is None else dataclasses.replace(static, fmtp=fmtp)


def codecs(media: Media) -> list[Codec]:
    """The codecs of an RTP media description in offer order (unknown dynamic ones skipped)."""
    out = []
    for fmt in media.formats:
        pt = _number(fmt)
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
