"""RTP and RTCP on the wire: RFC 3550 §5.1 (RTP fixed header), §5.3.1 (header extension),
§6.4-§6.7 (RTCP packet types) and RFC 5761 §4 (telling RTP from RTCP by the second byte).

Two levels: :class:`RtpPacket` parses and serializes a whole header (for tests, the player and
anything that builds packets), and the ``*_of`` helpers read one field straight from the bytes
without building an object, for the relay's per-packet path. :class:`StreamRewriter` keeps one
outgoing SSRC with continuous sequence numbers and timestamps when the incoming stream changes
SSRC (a re-INVITE to another media server, a transfer), as a B2BUA must (RFC 3550 §8.2, §5.1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from pypbx.errors import PbxError

__all__ = [
    "HEADER_SIZE",
    "RTP_VERSION",
    "RtcpType",
    "RtpError",
    "RtpExtension",
    "RtpPacket",
    "StreamRewriter",
    "header_length",
    "is_rtcp",
    "marker_of",
    "parse_rtp",
    "payload_of",
    "payload_type_of",
    "rtcp_types",
    "sequence_of",
    "ssrc_of",
    "timestamp_of",
    "with_payload_type",
]

RTP_VERSION = 2
HEADER_SIZE = 12
SEQ_MOD = 1 << 16
TS_MOD = 1 << 32

_FIXED = struct.Struct("!BBHII")
_EXT = struct.Struct("!HH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


class RtpError(PbxError):
    """Bytes that are not a well-formed RTP packet."""


class RtcpType(IntEnum):
    """RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1, RFC 3611 §2)."""

    SR = 200
    RR = 201
    SDES = 202
    BYE = 203
    APP = 204
    RTPFB = 205
    PSFB = 206
    XR = 207


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """The RFC 3550 §5.3.1 header extension: a 16-bit profile value and 32-bit-word data."""

    profile: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1); ``padding`` counts padding octets, the count included."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0

    def to_bytes(self) -> bytes:
        """Serialize; raises :class:`RtpError` for out-of-range fields."""
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"payload type {self.payload_type} out of range")
        if len(self.csrc) > 15:
            raise RtpError("more than 15 CSRC identifiers")
        if not 0 <= self.padding <= 255:
            raise RtpError("padding must be 0-255 octets")
        if self.extension is not None and len(self.extension.data) % 4:
            raise RtpError("extension data must be a whole number of 32-bit words")
        byte0 = (RTP_VERSION << 6) | len(self.csrc)
        if self.padding:
            byte0 |= 0x20
        if self.extension is not None:
            byte0 |= 0x10
        byte1 = self.payload_type | (0x80 if self.marker else 0)
        parts = [
            _FIXED.pack(byte0, byte1, self.sequence % SEQ_MOD, self.timestamp % TS_MOD, self.ssrc)
        ]
        parts.extend(_U32.pack(c) for c in self.csrc)
        if self.extension is not None:
            ext = self.extension
            parts.append(_EXT.pack(ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet; raises :class:`RtpError` if it is not one (RFC 3550 §5.1, A.1)."""
    if len(data) < HEADER_SIZE:
        raise RtpError(f"{len(data)} octets is shorter than the RTP header")
    byte0, byte1, seq, ts, ssrc = _FIXED.unpack_from(data)
    if byte0 >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {byte0 >> 6}, expected 2")
    if is_rtcp(data):
        raise RtpError(f"payload type {byte1 & 0x7F} is RTCP (RFC 5761 §4)")
    offset = HEADER_SIZE
    count = byte0 & 0x0F
    if len(data) < offset + 4 * count:
        raise RtpError("CSRC list runs past the end")
    csrc = struct.unpack_from(f"!{count}I", data, offset)
    offset += 4 * count
    extension = None
    if byte0 & 0x10:
        if len(data) < offset + 4:
            raise RtpError("header extension runs past the end")
        profile, words = _EXT.unpack_from(data, offset)
        offset += 4
        if len(data) < offset + 4 * words:
            raise RtpError("header extension runs past the end")
        extension = RtpExtension(profile, bytes(data[offset : offset + 4 * words]))
        offset += 4 * words
    end = len(data)
    padding = 0
    if byte0 & 0x20:
        padding = data[-1]
        if padding == 0 or end - padding < offset:
            raise RtpError(f"bad padding count {padding}")
        end -= padding
    return RtpPacket(
        payload_type=byte1 & 0x7F,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(byte1 & 0x80),
        csrc=tuple(csrc),
        extension=extension,
        padding=padding,
    )


# --- zero-copy field readers for the relay --------------------------------------------------
# They assume a packet of at least HEADER_SIZE octets (the relay checks the length once).


def payload_type_of(data: bytes) -> int:
    """The payload type (7 bits of octet 1)."""
    return data[1] & 0x7F


def marker_of(data: bytes) -> bool:
    """The marker bit."""
    return bool(data[1] & 0x80)


def sequence_of(data: bytes) -> int:
    """The 16-bit sequence number."""
    return (data[2] << 8) | data[3]


def timestamp_of(data: bytes) -> int:
    """The 32-bit timestamp."""
    value: int = _U32.unpack_from(data, 4)[0]
    return value


def ssrc_of(data: bytes) -> int:
    """The 32-bit SSRC."""
    value: int = _U32.unpack_from(data, 8)[0]
    return value


def header_length(data: bytes) -> int:
    """Octets before the payload: fixed header, CSRCs and extension (no validation)."""
    length = HEADER_SIZE + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= length + 4:
        length += 4 + 4 * _U16.unpack_from(data, length + 2)[0]
    return length


def payload_of(data: bytes) -> bytes:
    """The payload octets, padding excluded (empty for a malformed packet)."""
    start = header_length(data)
    end = len(data) - (data[-1] if data[0] & 0x20 and len(data) > start else 0)
    return bytes(data[start:end]) if end > start else b""


def with_payload_type(data: bytes, payload_type: int) -> bytes:
    """The same packet with another payload type; the marker bit is kept."""
    return b"".join((data[:1], bytes(((data[1] & 0x80) | payload_type,)), data[2:]))


# --- RTCP (RFC 3550 §6.4-§6.7, RFC 5761 §4) -------------------------------------------------


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: octet 1 in 192-223 means RTCP (RTP payload types 64-95 are not used)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def rtcp_types(data: bytes) -> list[int]:
    """The packet types inside a compound RTCP packet, in order (RFC 3550 §6.1).

    Walking stops at the first sub-packet that is not version 2 or runs past the end; an
    empty list means the datagram is not RTCP at all.
    """
    out: list[int] = []
    offset = 0
    while offset + 4 <= len(data):
        byte0, ptype, words = struct.unpack_from("!BBH", data, offset)
        if byte0 >> 6 != RTP_VERSION or not 192 <= ptype <= 223:
            break
        out.append(ptype)
        offset += 4 * (words + 1)
        if offset > len(data):
            out.pop()
            break
    return out


# --- SSRC change handling (RFC 3550 §8.2) ----------------------------------------------------


class StreamRewriter:
    """Rewrite SSRC, sequence number and timestamp so one outgoing stream stays continuous.

    The first incoming SSRC passes with its own numbers (offsets zero) unless ``ssrc`` forces
    another SSRC. When the incoming SSRC changes, the new stream is shifted so its first packet
    follows the last one sent: sequence + 1 and timestamp + ``samples`` (one packet's worth).
    """

    __slots__ = ("_in_ssrc", "_last_seq", "_last_ts", "_seq_delta", "_ts_delta", "samples", "ssrc")

    def __init__(self, ssrc: int | None = None, *, samples: int = 160) -> None:
        self.ssrc = ssrc
        self.samples = samples
        self._in_ssrc: int | None = None
        self._seq_delta = 0
        self._ts_delta = 0
        self._last_seq = 0
        self._last_ts = 0

    def rewrite(self, data: bytes) -> bytes:
        """The packet as it should leave: same payload, continuous numbering."""
        _, _, seq, ts, in_ssrc = _FIXED.unpack_from(data)
        if in_ssrc != self._in_ssrc:
            if self._in_ssrc is None:
                if self.ssrc is None:
                    self.ssrc = in_ssrc
                self._last_seq, self._last_ts = (seq - 1) % SEQ_MOD, ts
            else:
                self._seq_delta = (self._last_seq + 1 - seq) % SEQ_MOD
                self._ts_delta = (self._last_ts + self.samples - ts) % TS_MOD
            self._in_ssrc = in_ssrc
        out_seq = (seq + self._seq_delta) % SEQ_MOD
        out_ts = (ts + self._ts_delta) % TS_MOD
        if (out_seq - self._last_seq) % SEQ_MOD < SEQ_MOD // 2:
            self._last_seq, self._last_ts = out_seq, out_ts
        if out_seq == seq and out_ts == ts and in_ssrc == self.ssrc:
            return data
        buf = bytearray(data)
        struct.pack_into("!HII", buf, 2, out_seq, out_ts, self.ssrc)
        return bytes(buf)
