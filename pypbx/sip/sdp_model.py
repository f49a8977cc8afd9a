"""SDP: the RFC 4566 §5 model with parse/serialize (offer/answer lives in ``sdp_offer``).

Parsing keeps every line: known fields become typed values, the rest (``i=``, ``u=``, ``k=``,
``z=``, unknown types) are kept in their order and written back in their RFC 4566 slot.
Serialization always uses CRLF. Codec names follow Asterisk's ``allow=`` vocabulary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from pypbx.errors import PbxError

__all__ = [
    "Attribute",
    "Bandwidth",
    "Connection",
    "Line",
    "Media",
    "NotAcceptable",
    "Origin",
    "SdpError",
    "SessionDescription",
    "Timing",
    "connection_for",
    "parse_sdp",
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


def small_int(text: str) -> int | None:
    """ASCII digits (at most 20 of them) as an int, else None."""
    if 0 < len(text) <= 20 and text.isascii() and text.isdigit():
        return int(text)
    return None


def _int(text: str, what: str, limit: int | None = None) -> int:
    value = small_int(text)
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
