"""SDP model, parse/serialize round trips, codec helpers, hold, rewriting and RFC 3264 answers."""

from __future__ import annotations

import dataclasses

import pytest

from pypbx.errors import PbxError
from pypbx.sip.sdp import (
    Attribute,
    Bandwidth,
    Codec,
    Connection,
    Direction,
    Line,
    Media,
    NotAcceptable,
    Origin,
    SdpError,
    SessionDescription,
    Timing,
    build_answer,
    build_offer,
    codec_for,
    codecs,
    direction,
    is_hold,
    negotiate,
    parse_sdp,
    rewrite_connection,
    telephone_event,
)


def crlf(text: str) -> str:
    return "".join(line + "\r\n" for line in text.strip("\n").split("\n"))


# Samples written in the shape these user agents send (not captures).
BARESIP = crlf("""\
v=0
o=- 1907471322 3284562108 IN IP4 192.168.1.20
s=-
c=IN IP4 192.168.1.20
t=0 0
m=audio 10300 RTP/AVP 96 9 0 8 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp:10301
a=sendrecv
a=label:1
a=rtcp-rsize
a=ssrc:2894323321 cname:b2f1c1a0-3f4b
m=video 10302 RTP/AVP 100
a=rtpmap:100 H264/90000
a=fmtp:100 packetization-mode=1
a=sendrecv
""")

SIPP = crlf("""\
v=0
o=user1 53655765 2353687637 IN IP4 127.0.1.1
s=-
c=IN IP4 127.0.1.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
""")

ASTERISK = crlf("""\
v=0
o=root 1821331396 1821331396 IN IP4 10.0.0.5
s=Asterisk PBX 13.38.3
c=IN IP4 10.0.0.5
t=0 0
m=audio 17530 RTP/AVP 8 0 3 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:3 GSM/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
""")

IPV6_FULL = crlf("""\
v=0
o=alice 2890844526 2890844527 IN IP6 2001:db8::10
s=Call
i=A session
u=http://example.com/seminar
e=alice@example.com
p=+1 555 0100
c=IN IP6 2001:db8::10
b=AS:256
t=2873397496 2873404696
r=7d 1h 0 25h
z=2882844526 -1h
k=prompt
a=recvonly
a=tool:handwritten
m=audio 49170 RTP/AVP 0 8 97
i=voice
c=IN IP6 2001:db8::11
b=TIAS:64000
k=prompt
a=rtpmap:97 iLBC/8000
a=fmtp:97 mode=30
a=x-empty:
m=video 0 RTP/AVP 31
m=application 5000/2 udp wb
""")

SAMPLES = {"baresip": BARESIP, "sipp": SIPP, "asterisk": ASTERISK, "ipv6": IPV6_FULL}


# --- parsing and serialization ------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_round_trip_byte_for_byte(name: str) -> None:
    text = SAMPLES[name]
    sd = parse_sdp(text.encode())
    assert str(sd) == text
    assert sd.to_bytes() == text.encode()
    assert parse_sdp(text.replace("\r\n", "\n")) == sd


def test_parse_sipp_into_model() -> None:
    assert parse_sdp(SIPP) == SessionDescription(
        origin=Origin("user1", "53655765", 2353687637, "IN", "IP4", "127.0.1.1"),
        name="-",
        connection=Connection("IN", "IP4", "127.0.1.1"),
        timing=(Timing(0, 0),),
        media=(
            Media(
                "audio",
                6000,
                "RTP/AVP",
                ("0",),
                attributes=(Attribute("rtpmap", "0 PCMU/8000"),),
            ),
        ),
    )


def test_parse_ipv6_sample_fields() -> None:
    sd = parse_sdp(IPV6_FULL)
    assert sd.connection == Connection("IN", "IP6", "2001:db8::10")
    assert sd.bandwidths == (Bandwidth("AS", 256),)
    assert sd.timing == (Timing(2873397496, 2873404696, ("7d 1h 0 25h",)),)
    assert [o.type for o in sd.other] == ["i", "u", "e", "p", "z", "k"]
    audio, video, app = sd.media
    assert audio.connection is not None
    assert audio.connection.host == "2001:db8::11"
    assert audio.bandwidths == (Bandwidth("TIAS", 64000),)
    assert audio.other == (Line("i", "voice"), Line("k", "prompt"))
    assert audio.attributes[-1] == Attribute("x-empty", "")
    assert (video.port, video.formats) == (0, ("31",))
    assert (app.port, app.port_count, app.proto, app.formats) == (5000, 2, "udp", ("wb",))
    assert sd.values("TOOL") == ["handwritten"]


def test_multicast_connection_host() -> None:
    sd = parse_sdp("v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 224.2.36.42/127\nt=0 0\n")
    assert sd.connection is not None
    assert (sd.connection.address, sd.connection.host) == ("224.2.36.42/127", "224.2.36.42")


def test_lenient_inputs() -> None:
    body = "v=0\n\no=- 1 1 IN IP4 h\nt=0 0\nm=audio 0 RTP/AVP\n\n"
    sd = parse_sdp(body)
    assert sd.name == "-"
    assert sd.media[0].formats == ()
    no_timing = parse_sdp("v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\n")
    assert no_timing.timing == ()
    assert str(no_timing) == "v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\n"


def test_undecodable_bytes_survive_round_trip() -> None:
    body = b"v=0\r\no=- 1 1 IN IP4 h\r\ns=caf\xe9\r\nt=0 0\r\n"
    assert parse_sdp(body).to_bytes() == body


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\r\n",
        "o=- 1 1 IN IP4 h\ns=-\n",
        "v=1\no=- 1 1 IN IP4 h\n",
        "v=x\no=- 1 1 IN IP4 h\n",
        "v=0\ns=-\n",
        "v=0\no=- 1 1 IN IP4\n",
        "v=0\no=- 1 x IN IP4 h\n",
        "v=0\no=- 1 1 IN IP4 h\no=- 1 1 IN IP4 h\n",
        "v=0\nv=0\no=- 1 1 IN IP4 h\n",
        "v=0\no=- 1 1 IN IP4 h\ns=-\ns=-\n",
        "v=0\no=- 1 1 IN IP4 h\nc=IN IP4\n",
        "v=0\no=- 1 1 IN IP4 h\nc=IN IP4 a\nc=IN IP4 b\n",
        "v=0\no=- 1 1 IN IP4 h\nb=AS\n",
        "v=0\no=- 1 1 IN IP4 h\nb=AS:x\n",
        "v=0\no=- 1 1 IN IP4 h\nt=0\n",
        "v=0\no=- 1 1 IN IP4 h\nr=7d 1h 0\n",
        "v=0\no=- 1 1 IN IP4 h\na=\n",
        "v=0\no=- 1 1 IN IP4 h\na=:x\n",
        "v=0\no=- 1 1 IN IP4 h\nm=audio 5000\n",
        "v=0\no=- 1 1 IN IP4 h\nm=audio 65536 RTP/AVP 0\n",
        "v=0\no=- 1 1 IN IP4 h\nm=audio -1 RTP/AVP 0\n",
        "v=0\no=- 1 1 IN IP4 h\nm=audio +5 RTP/AVP 0\n",
        "v=0\no=- 1 1 IN IP4 h\nm=audio 5000/0 RTP/AVP 0\n",
        "v=0\no=- 1 1 IN IP4 h\nm=audio 5000 RTP/AVP 0\nt=0 0\n",
        "v=0\no=- 1 1 IN IP4 h\nm=audio 5000 RTP/AVP 0\nc=IN IP4 a\nc=IN IP4 b\n",
        "v=0\no=- 1 1 IN IP4 h\nxyz\n",
        "v=0\no=- 1 1 IN IP4 h\n1=2\n",
        "v=0\no=- 1 1 IN IP4 h\ns=a\rb\n",
        "v=0\no=- 1 1 IN IP4 h\ns=a\x00b\n",
        "v=0\no=- 1 ٣ IN IP4 h\n",
    ],
)
def test_malformed_sdp_raises_sdp_error(body: str) -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(body)
    assert isinstance(info.value, PbxError)
    assert info.value.status == 400


# --- codecs -----------------------------------------------------------------------------------


def test_codecs_from_rtpmap_fmtp_and_static_table() -> None:
    audio = parse_sdp(BARESIP).media[0]
    assert codecs(audio) == [
        Codec(96, "opus", 48000, 2, "stereo=1;sprop-stereo=1"),
        Codec(9, "G722", 8000),
        Codec(0, "PCMU", 8000),
        Codec(8, "PCMA", 8000),
        Codec(101, "telephone-event", 8000, None, "0-15"),
    ]
    assert telephone_event(audio) == Codec(101, "telephone-event", 8000, None, "0-15")
    assert codecs(parse_sdp(BARESIP).media[1])[0].rtpmap == "H264/90000"


@pytest.mark.parametrize(
    ("pt", "name", "rate"),
    [
        (0, "PCMU", 8000),
        (3, "GSM", 8000),
        (4, "G723", 8000),
        (8, "PCMA", 8000),
        (9, "G722", 8000),
        (18, "G729", 8000),
    ],
)
def test_static_payload_types_without_rtpmap(pt: int, name: str, rate: int) -> None:
    media = Media("audio", 4000, "RTP/AVP", (str(pt),))
    codec = codec_for(media, pt)
    assert codec is not None
    assert (codec.name, codec.clock_rate) == (name, rate)


def test_unknown_dynamic_and_broken_rtpmap() -> None:
    media = Media(
        "audio",
        4000,
        "RTP/AVP",
        ("96", "0", "97", "x", "300"),
        attributes=(Attribute("rtpmap", "0 broken"), Attribute("rtpmap", "97 AMR/x")),
    )
    assert [c.payload_type for c in codecs(media)] == [0]
    assert codec_for(media, 0) == Codec(0, "PCMU", 8000)
    assert telephone_event(media) is None


OFFERED = codecs(parse_sdp(BARESIP).media[0])


@pytest.mark.parametrize(
    ("allowed", "dtmf", "expected_pts"),
    [
        (["ulaw", "alaw"], True, [0, 8, 101]),
        (["alaw", "ulaw"], True, [8, 0, 101]),
        (["ALAW", "ulaw"], False, [8, 0]),
        (["g729", "opus", "g722"], True, [96, 9, 101]),
        (["g729", "gsm"], True, []),
        (["nonsense", "ulaw", "ulaw"], True, [0, 101]),
        ([], True, []),
    ],
)
def test_negotiate_follows_allow_order(
    allowed: list[str], dtmf: bool, expected_pts: list[int]
) -> None:
    assert [c.payload_type for c in negotiate(OFFERED, allowed, dtmf=dtmf)] == expected_pts


def test_negotiate_picks_event_at_codec_rate() -> None:
    offer = [
        Codec(9, "G722", 8000),
        Codec(96, "opus", 48000, 2),
        Codec(100, "telephone-event", 48000),
        Codec(101, "telephone-event", 8000),
    ]
    assert [c.payload_type for c in negotiate(offer, ["opus"])] == [96, 100]
    assert [c.payload_type for c in negotiate(offer, ["g722"])] == [9, 101]
    assert [c.payload_type for c in negotiate(offer[:3], ["g722"])] == [9, 100]


# --- direction and hold -------------------------------------------------------------------------


def _with(
    body: str, *extra_session: str, media_attr: str | None = None, conn: str = "10.0.0.5"
) -> SessionDescription:
    sd = parse_sdp(body.replace("c=IN IP4 10.0.0.5", f"c=IN IP4 {conn}"))
    attrs = tuple(a for a in sd.media[0].attributes if a.name != "sendrecv")
    if media_attr is not None:
        attrs += (Attribute(media_attr),)
    media = (dataclasses.replace(sd.media[0], attributes=attrs),)
    return SessionDescription(
        origin=sd.origin,
        connection=sd.connection,
        attributes=tuple(Attribute(a) for a in extra_session),
        media=media,
    )


@pytest.mark.parametrize(
    ("session_attrs", "media_attr", "conn", "way", "hold"),
    [
        ((), None, "10.0.0.5", Direction.SENDRECV, False),
        ((), "sendrecv", "10.0.0.5", Direction.SENDRECV, False),
        ((), "sendonly", "10.0.0.5", Direction.SENDONLY, True),
        ((), "inactive", "10.0.0.5", Direction.INACTIVE, True),
        ((), "recvonly", "10.0.0.5", Direction.RECVONLY, False),
        (("sendonly",), None, "10.0.0.5", Direction.SENDONLY, True),
        (("sendonly",), "sendrecv", "10.0.0.5", Direction.SENDRECV, False),
        (("inactive",), "recvonly", "10.0.0.5", Direction.RECVONLY, False),
        ((), None, "0.0.0.0", Direction.SENDRECV, True),
    ],
)
def test_direction_and_hold(
    session_attrs: tuple[str, ...], media_attr: str | None, conn: str, way: Direction, hold: bool
) -> None:
    sd = _with(ASTERISK, *session_attrs, media_attr=media_attr, conn=conn)
    assert direction(sd, 0) is way
    assert is_hold(sd, 0) is hold
    assert is_hold(sd) is hold


def test_session_hold_needs_every_live_stream_held() -> None:
    sd = parse_sdp(BARESIP.replace("a=sendrecv\r\na=label", "a=sendonly\r\na=label"))
    assert is_hold(sd, 0) is True
    assert is_hold(sd, 1) is False
    assert is_hold(sd) is False
    video_off = parse_sdp(str(sd).replace("m=video 10302", "m=video 0"))
    assert is_hold(video_off) is True
    assert is_hold(parse_sdp("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\n")) is False


@pytest.mark.parametrize(
    ("way", "mirror"),
    [
        (Direction.SENDRECV, Direction.SENDRECV),
        (Direction.SENDONLY, Direction.RECVONLY),
        (Direction.RECVONLY, Direction.SENDONLY),
        (Direction.INACTIVE, Direction.INACTIVE),
    ],
)
def test_direction_mirror(way: Direction, mirror: Direction) -> None:
    assert way.mirror is mirror


# --- rewriting --------------------------------------------------------------------------------


def test_rewrite_connection_ports_rtcp_and_version() -> None:
    sd = parse_sdp(BARESIP)
    out = rewrite_connection(sd, "203.0.113.7", {0: 20000}, bump_version=True)
    assert out.connection == Connection("IN", "IP4", "203.0.113.7")
    assert [m.port for m in out.media] == [20000, 10302]
    assert out.media[0].values("rtcp") == ["20001"]
    assert out.origin.sess_version == sd.origin.sess_version + 1
    assert out.origin.address == sd.origin.address
    assert sd.media[0].port == 10300  # the input is untouched
    same = rewrite_connection(sd, "203.0.113.7", {})
    assert same.origin == sd.origin
    assert [m.port for m in same.media] == [10300, 10302]


def test_rewrite_connection_media_level_ipv6_and_rtcp_address() -> None:
    sd = parse_sdp(IPV6_FULL)
    sd = SessionDescription(
        origin=sd.origin,
        connection=sd.connection,
        media=(
            dataclasses.replace(
                sd.media[0], attributes=(Attribute("rtcp", "49171 IN IP6 2001:db8::11"),)
            ),
            sd.media[1],
        ),
    )
    out = rewrite_connection(sd, "2001:db8::99", {0: 30000, 1: 0})
    assert out.connection == Connection("IN", "IP6", "2001:db8::99")
    assert out.media[0].connection == Connection("IN", "IP6", "2001:db8::99")
    assert out.media[1].connection is None
    assert out.media[0].values("rtcp") == ["30001 IN IP6 2001:db8::99"]
    assert [m.port for m in out.media] == [30000, 0]
    assert "c=IN IP6 2001:db8::99\r\n" in str(out)


# --- offer/answer (RFC 3264 §6) -------------------------------------------------------------------


def test_answer_to_baresip_offer() -> None:
    offer = parse_sdp(BARESIP)
    answer = build_answer(offer, "10.0.0.1", 16000, ["alaw", "ulaw"], session_id=77, version=3)
    assert str(answer) == crlf("""\
v=0
o=pypbx 77 3 IN IP4 10.0.0.1
s=pypbx
c=IN IP4 10.0.0.1
t=0 0
m=audio 16000 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
m=video 0 RTP/AVP 100
""")


def test_answer_keeps_offer_ptime_and_fmtp() -> None:
    answer = build_answer(
        parse_sdp(ASTERISK), "::1", 4000, ["gsm"], dtmf=False, session_id="9", version=1
    )
    audio = answer.media[0]
    assert audio.formats == ("3",)
    assert audio.values("ptime") == ["20"]
    assert answer.origin.addrtype == "IP6"
    assert answer.connection == Connection("IN", "IP6", "::1")
    opus = build_answer(parse_sdp(BARESIP), "h", 4000, ["opus"], session_id=1, version=1)
    assert opus.media[0].values("fmtp") == ["96 stereo=1;sprop-stereo=1", "101 0-15"]


@pytest.mark.parametrize(
    ("offer_attr", "conn", "answer_way"),
    [
        ("sendrecv", "10.0.0.5", Direction.SENDRECV),
        ("sendonly", "10.0.0.5", Direction.RECVONLY),
        ("recvonly", "10.0.0.5", Direction.SENDONLY),
        ("inactive", "10.0.0.5", Direction.INACTIVE),
        ("sendrecv", "0.0.0.0", Direction.RECVONLY),
        ("sendonly", "0.0.0.0", Direction.RECVONLY),
        ("recvonly", "0.0.0.0", Direction.INACTIVE),
    ],
)
def test_answer_mirrors_direction(offer_attr: str, conn: str, answer_way: Direction) -> None:
    offer = _with(ASTERISK, media_attr=offer_attr, conn=conn)
    answer = build_answer(offer, "10.0.0.1", 4000, ["ulaw"], session_id=1, version=1)
    assert direction(answer, 0) is answer_way


def test_answer_accepts_first_usable_audio_and_rejects_the_rest() -> None:
    offer = parse_sdp(
        crlf("""\
v=0
o=- 1 1 IN IP4 10.0.0.9
s=-
c=IN IP4 10.0.0.9
t=0 0
m=audio 0 RTP/AVP 0
m=audio 5000 RTP/SAVP 0
m=audio 5002 RTP/AVP 18
m=audio 5004 RTP/AVP 0 8
m=audio 5006 RTP/AVP 0
m=image 5008 udptl t38
""")
    )
    answer = build_answer(offer, "10.0.0.1", 4000, ["alaw", "ulaw"], session_id=1, version=1)
    assert [(m.kind, m.port, m.proto, m.formats) for m in answer.media] == [
        ("audio", 0, "RTP/AVP", ("0",)),
        ("audio", 0, "RTP/SAVP", ("0",)),
        ("audio", 0, "RTP/AVP", ("18",)),
        ("audio", 4000, "RTP/AVP", ("8", "0")),
        ("audio", 0, "RTP/AVP", ("0",)),
        ("image", 0, "udptl", ("t38",)),
    ]
    assert len(answer.media) == len(offer.media)


def test_answer_without_common_codec_is_488() -> None:
    with pytest.raises(NotAcceptable) as info:
        build_answer(parse_sdp(SIPP), "10.0.0.1", 4000, ["alaw", "g729"], session_id=1, version=1)
    assert info.value.status == 488
    only_events = parse_sdp(
        SIPP.replace("RTP/AVP 0", "RTP/AVP 101") + "a=rtpmap:101 telephone-event/8000\r\n"
    )
    with pytest.raises(NotAcceptable):
        build_answer(only_events, "10.0.0.1", 4000, ["ulaw"], session_id=1, version=1)


def test_offer_and_answer_round_trip() -> None:
    offer = build_offer(
        "192.0.2.1", 10000, ["g722", "opus", "alaw", "ulaw", "h264"], session_id=5, version=1
    )
    assert parse_sdp(offer.to_bytes()) == offer
    audio = offer.media[0]
    assert audio.formats == ("9", "96", "8", "0", "101")
    assert telephone_event(audio) == Codec(101, "telephone-event", 8000, None, "0-16")
    assert audio.values("ptime") == ["20"]
    answer = build_answer(offer, "192.0.2.2", 20000, ["ulaw", "opus"], session_id=6, version=1)
    assert [c.name for c in codecs(answer.media[0])] == ["PCMU", "opus", "telephone-event"]
    hold = build_offer(
        "192.0.2.1", 10000, ["ulaw"], session_id=5, version=2, way=Direction.SENDONLY, dtmf=False
    )
    assert is_hold(hold) is True
    assert hold.media[0].formats == ("0",)
    with pytest.raises(NotAcceptable):
        build_offer("192.0.2.1", 10000, ["h264"], session_id=5, version=1)
