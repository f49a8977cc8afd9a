"""RTP/RTCP wire format (RFC 3550 §5.1, §6; RFC 5761 §4)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.media import rtp
from pypbx.media.rtp import RtcpType, RtpError, RtpExtension, RtpPacket, StreamRewriter

# A PCMU packet: V=2, M=1, PT=0, seq=0x1234, ts=0x01020304, ssrc=0xdeadbeef, 4 payload octets.
PCMU = bytes.fromhex("8080123401020304deadbeef") + b"\xff\xfe\xfd\xfc"


def test_parse_known_packet() -> None:
    p = rtp.parse_rtp(PCMU)
    assert p == RtpPacket(0, 0x1234, 0x01020304, 0xDEADBEEF, b"\xff\xfe\xfd\xfc", marker=True)
    assert p.to_bytes() == PCMU


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(8, 0, 0, 1),
        RtpPacket(101, 65535, 2**32 - 1, 2**32 - 1, b"\x01\x02\x03\x04", marker=True),
        RtpPacket(0, 7, 160, 5, b"x" * 160, csrc=(1, 2, 3)),
        RtpPacket(0, 7, 160, 5, b"abc", extension=RtpExtension(0xBEDE, b"\x10\xaa\x00\x00")),
        RtpPacket(0, 7, 160, 5, b"abc", padding=4),
        RtpPacket(
            96, 1, 2, 3, b"p", csrc=(9,), extension=RtpExtension(1, b""), padding=1, marker=True
        ),
    ],
)
def test_round_trip(packet: RtpPacket) -> None:
    data = packet.to_bytes()
    assert rtp.parse_rtp(data) == packet
    assert rtp.payload_type_of(data) == packet.payload_type
    assert rtp.marker_of(data) is packet.marker
    assert rtp.sequence_of(data) == packet.sequence
    assert rtp.timestamp_of(data) == packet.timestamp
    assert rtp.ssrc_of(data) == packet.ssrc
    assert rtp.payload_of(data) == packet.payload


def test_header_bits_on_the_wire() -> None:
    data = RtpPacket(0, 1, 2, 3, b"", csrc=(7, 8), extension=RtpExtension(1), padding=2).to_bytes()
    assert data[0] == 0x80 | 0x20 | 0x10 | 2
    assert rtp.header_length(data) == 12 + 8 + 4
    assert data[-1] == 2


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x00\x00", "shorter"),
        (bytes.fromhex("40000001000000000000000a"), "version"),
        (bytes.fromhex("82000001000000000000000a") + b"\0\0\0\0", "CSRC"),
        (bytes.fromhex("90000001000000000000000a") + b"\0\0", "extension"),
        (bytes.fromhex("90000001000000000000000a") + b"\0\0\0\x02" + b"\0" * 4, "extension"),
        (bytes.fromhex("a0000001000000000000000a") + b"\x00", "padding"),
        (bytes.fromhex("a0000001000000000000000a") + b"\x05", "padding"),
        (bytes.fromhex("80c80006000000010000000a"), "RTCP"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason):
        rtp.parse_rtp(data)


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(128, 0, 0, 0),
        RtpPacket(0, 0, 0, 0, csrc=tuple(range(16))),
        RtpPacket(0, 0, 0, 0, extension=RtpExtension(1, b"abc")),
        RtpPacket(0, 0, 0, 0, padding=256),
    ],
)
def test_serialize_rejects_out_of_range(packet: RtpPacket) -> None:
    with pytest.raises(RtpError):
        packet.to_bytes()


def test_with_payload_type_keeps_marker_and_rest() -> None:
    out = rtp.with_payload_type(PCMU, 8)
    assert rtp.payload_type_of(out) == 8
    assert rtp.marker_of(out)
    assert out[2:] == PCMU[2:]


def _rtcp(ptype: int, words: int) -> bytes:
    return struct.pack("!BBH", 0x80, ptype, words) + b"\0" * (4 * words)


@pytest.mark.parametrize(
    ("data", "expected", "looks_rtcp"),
    [
        (_rtcp(200, 6) + _rtcp(202, 2), [RtcpType.SR, RtcpType.SDES], True),
        (_rtcp(201, 1) + _rtcp(203, 1), [RtcpType.RR, RtcpType.BYE], True),
        (_rtcp(206, 2), [RtcpType.PSFB], True),
        (_rtcp(200, 6)[:-4], [], True),  # length runs past the end: octet 1 still says RTCP
        (PCMU, [], False),
        (b"", [], False),
    ],
)
def test_rtcp_types(data: bytes, expected: list[int], looks_rtcp: bool) -> None:
    assert rtp.rtcp_types(data) == expected
    assert rtp.is_rtcp(data) is looks_rtcp


@pytest.mark.parametrize(("pt", "rtcp"), [(0, False), (101, False), (127, False)])
def test_rtp_is_not_rtcp(pt: int, rtcp: bool) -> None:
    for marker in (False, True):
        data = RtpPacket(pt, 1, 1, 1, marker=marker).to_bytes()
        assert rtp.is_rtcp(data) is (rtcp or (marker and 64 <= pt <= 95))


@given(st.binary(max_size=64))
def test_parse_never_raises_anything_else(data: bytes) -> None:
    try:
        packet = rtp.parse_rtp(data)
    except RtpError:
        return
    assert packet.to_bytes() == data or packet.padding  # padding octets need not be zeros


@given(
    st.integers(0, 127).filter(lambda pt: not 64 <= pt <= 95),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=40),
    st.booleans(),
)
def test_round_trip_property(pt: int, seq: int, ts: int, ssrc: int, body: bytes, m: bool) -> None:
    packet = RtpPacket(pt, seq, ts, ssrc, body, marker=m and pt < 64)
    assert rtp.parse_rtp(packet.to_bytes()) == packet


def _stream(ssrc: int, seq: int, ts: int, n: int) -> list[bytes]:
    return [RtpPacket(0, seq + i, ts + 160 * i, ssrc, b"a").to_bytes() for i in range(n)]


def test_rewriter_passes_first_stream_and_joins_second() -> None:
    w = StreamRewriter()
    first = _stream(111, 65534, 2**32 - 160, 3)  # wraps seq and timestamp
    assert [w.rewrite(p) for p in first] == first
    second = [rtp.parse_rtp(w.rewrite(p)) for p in _stream(222, 500, 90000, 2)]
    assert [(p.ssrc, p.sequence, p.timestamp) for p in second] == [(111, 1, 320), (111, 2, 480)]
    assert second[0].payload == b"a"


def test_rewriter_forced_ssrc_and_reordering() -> None:
    w = StreamRewriter(ssrc=7)
    packets = _stream(1, 100, 1000, 3)
    out = [rtp.parse_rtp(w.rewrite(p)) for p in (packets[0], packets[2], packets[1])]
    assert [(p.ssrc, p.sequence) for p in out] == [(7, 100), (7, 102), (7, 101)]
    nxt = rtp.parse_rtp(w.rewrite(_stream(2, 9, 9, 1)[0]))
    assert (nxt.sequence, nxt.timestamp) == (103, 1000 + 2 * 160 + 160)
