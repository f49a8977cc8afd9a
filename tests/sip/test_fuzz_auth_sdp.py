"""Hypothesis: the digest and SDP parsers give a value or their one error, and round-trip."""

from __future__ import annotations

import dataclasses
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypbx.sip.auth import (
    AuthParseError,
    Challenge,
    Credentials,
    DigestServer,
    Verdict,
    answer_challenge,
    parse_challenge,
    parse_credentials,
)
from pypbx.sip.sdp import (
    Attribute,
    Bandwidth,
    Connection,
    Line,
    Media,
    Origin,
    SdpError,
    SessionDescription,
    Timing,
    build_answer,
    codecs,
    is_hold,
    parse_sdp,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- digest -----------------------------------------------------------------------------------

AUTH_PIECES = st.sampled_from(
    [
        "Digest ",
        "digest ",
        "realm",
        "nonce",
        "username",
        "uri",
        "response",
        "qop",
        "nc",
        "cnonce",
        "=",
        '"',
        "\\",
        ",",
        " ",
        "\t",
        "auth",
        "MD5",
        "00000001",
        "username*",
        "UTF-8''",
        "%C3",
        "stale=true",
        "\x00",
        "\r\n",
        "é",
        "\udc80",
    ]
)
auth_text = st.one_of(st.text(), st.lists(AUTH_PIECES | st.text(max_size=3)).map("".join))


@FUZZ
@given(auth_text)
def test_any_text_parses_as_challenge_or_raises_auth_parse_error(text: str) -> None:
    try:
        ch = parse_challenge(text)
    except AuthParseError:
        return
    assert isinstance(ch, Challenge)


@FUZZ
@given(auth_text)
def test_any_text_parses_as_credentials_or_raises_auth_parse_error(text: str) -> None:
    try:
        creds = parse_credentials(text)
    except AuthParseError:
        return
    assert isinstance(creds, Credentials)


SERVER = DigestServer(b"fuzz-secret", "asterisk", algorithms=("MD5", "SHA-256"))


@FUZZ
@given(auth_text)
def test_verify_answers_a_verdict_for_any_text(text: str) -> None:
    assert isinstance(SERVER.verify(text, "INVITE", password="pw", now=1.0), Verdict)
    assert isinstance(SERVER.verify("Digest " + text, "INVITE", ha1="00", now=1.0), Verdict)


# printable text without control characters: what a quoted-string can carry
quotable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)
token = st.text(string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1, max_size=12)
qop_token = st.sampled_from(["auth", "auth-int", "x-custom"])
extra_name = token.map(str.lower).filter(
    lambda n: (
        n
        not in {
            "realm",
            "nonce",
            "algorithm",
            "qop",
            "opaque",
            "stale",
            "domain",
            "username",
            "uri",
            "response",
            "cnonce",
            "nc",
        }
    )
)


@FUZZ
@given(
    realm=quotable,
    nonce=quotable,
    algorithm=token,
    qop=st.lists(qop_token, max_size=3).map(tuple),
    opaque=st.none() | quotable,
    stale=st.booleans(),
    domain=st.none() | quotable,
    extra=st.dictionaries(extra_name, quotable, max_size=2).map(lambda d: tuple(d.items())),
)
def test_challenge_round_trip(
    realm: str,
    nonce: str,
    algorithm: str,
    qop: tuple[str, ...],
    opaque: str | None,
    stale: bool,
    domain: str | None,
    extra: tuple[tuple[str, str], ...],
) -> None:
    extra = tuple((n, v) for n, v in extra if v)  # an empty unquoted value is not a value
    ch = Challenge(realm, nonce, algorithm, qop, opaque, stale, domain, extra)
    assert parse_challenge(str(ch)) == ch


@FUZZ
@given(
    username=quotable,
    uri=quotable,
    response=quotable,
    qop=st.none() | qop_token,
    nc=st.integers(0, 0xFFFFFFFF),
    cnonce=quotable,
)
def test_credentials_round_trip(
    username: str, uri: str, response: str, qop: str | None, nc: int, cnonce: str
) -> None:
    creds = Credentials(
        username,
        "r",
        "n",
        uri,
        response,
        cnonce=cnonce if qop else None,
        qop=qop,
        nc=nc if qop else None,
    )
    assert parse_credentials(str(creds)) == creds


@FUZZ
@given(
    username=quotable,
    password=st.text(max_size=20),
    method=token,
    uri=quotable,
    cnonce=token,
    nc=st.integers(1, 0xFFFFFFFF),
    algorithm=st.sampled_from(["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"]),
    now=st.floats(0, 1e9),
)
def test_client_answer_is_accepted_by_server(
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int,
    algorithm: str,
    now: float,
) -> None:
    server = DigestServer(b"k", "realm", algorithms=(algorithm,))
    challenge = server.challenge(now, algorithm=algorithm)
    reply = answer_challenge(
        challenge,
        method=method,
        uri=uri,
        username=username,
        password=password,
        cnonce=cnonce,
        nc=nc,
    )
    assert server.verify(reply, method, password=password, now=now + 1) is Verdict.OK
    assert server.verify(reply, method, password=password, now=now + 1) is Verdict.REPLAY
    assert server.verify(reply, method, password=password + "x", now=now + 1) is (
        Verdict.BAD_CREDENTIALS
    )


# --- SDP --------------------------------------------------------------------------------------

SDP_PIECES = st.sampled_from(
    [
        "v=0\r\n",
        "o=- 1 1 IN IP4 h\r\n",
        "s=-\n",
        "c=IN IP4 1.2.3.4\r\n",
        "c=IN IP6 ::1\n",
        "t=0 0\r\n",
        "r=1 2 3\n",
        "b=AS:64\r\n",
        "m=audio 4000 RTP/AVP 0 8 101\r\n",
        "m=video 0 RTP/AVP 31\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=sendonly\n",
        "a=rtpmap:0 PCMU/8000/1\n",
        "a=fmtp:101 0-16\n",
        "a=rtcp:4001\n",
        "k=x\n",
        "z=0 0\n",
        "a=",
        "=",
        " ",
        "\r",
        "\n",
        ":",
        "/",
        "99999999999999999999999",
        "²",
        "\x00",
    ]
)
sdp_text = st.one_of(st.text(), st.lists(SDP_PIECES | st.text(max_size=4)).map("".join))


def _check_parsed(sd: SessionDescription) -> None:
    # a parsed body serializes to a fixpoint and the helpers do not crash on it
    text = str(sd)
    again = parse_sdp(text)
    assert str(again) == text
    for m in sd.media:
        codecs(m)
    is_hold(sd)


@FUZZ
@given(sdp_text)
def test_any_text_parses_as_sdp_or_raises_sdp_error(text: str) -> None:
    try:
        sd = parse_sdp(text)
    except SdpError:
        return
    _check_parsed(sd)


@FUZZ
@given(st.binary())
def test_any_bytes_parse_as_sdp_or_raise_sdp_error(data: bytes) -> None:
    try:
        sd = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\n" + data)
    except SdpError:
        return
    _check_parsed(sd)
    assert parse_sdp(sd.to_bytes()) == parse_sdp(str(sd))


word = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=8
)
value = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=16)
attr_name = word.filter(lambda w: ":" not in w)
attributes = st.lists(st.builds(Attribute, attr_name, st.none() | value), max_size=4).map(tuple)
bandwidths = st.lists(st.builds(Bandwidth, attr_name, st.integers(0, 10**9)), max_size=2).map(tuple)
connection = st.builds(Connection, word, word, word)
other_line = st.builds(Line, st.sampled_from("iuepzkxy"), value)
media_line = st.builds(Line, st.sampled_from("ikxy"), value)
media = st.builds(
    Media,
    kind=word,
    port=st.integers(0, 65535),
    proto=word,
    formats=st.lists(word, max_size=5).map(tuple),
    port_count=st.none() | st.integers(1, 100),
    connection=st.none() | connection,
    bandwidths=bandwidths,
    attributes=attributes,
    other=st.lists(media_line, max_size=2).map(tuple),
)
session = st.builds(
    SessionDescription,
    origin=st.builds(Origin, word, word, st.integers(0, 2**63), word, word, word),
    name=value,
    connection=st.none() | connection,
    bandwidths=bandwidths,
    timing=st.lists(
        st.builds(
            Timing,
            st.integers(0, 2**40),
            st.integers(0, 2**40),
            st.lists(word, max_size=2).map(tuple),
        ),
        max_size=2,
    ).map(tuple),
    attributes=attributes,
    media=st.lists(media, max_size=3).map(tuple),
    other=st.lists(other_line, max_size=3).map(tuple),
)


def _rfc_order(sd: SessionDescription) -> SessionDescription:
    # lines the serializer writes in their RFC 4566 slot come back in that order
    def slotted(lines: tuple[Line, ...], first: str) -> tuple[Line, ...]:
        return tuple(o for o in lines if o.type in first) + tuple(
            o for o in lines if o.type not in first
        )

    media = tuple(dataclasses.replace(m, other=slotted(m.other, "i")) for m in sd.media)
    return dataclasses.replace(sd, media=media, other=slotted(sd.other, "iuep"))


@FUZZ
@given(session)
def test_model_round_trips_through_the_wire(sd: SessionDescription) -> None:
    sd = _rfc_order(sd)
    assert parse_sdp(sd.to_bytes()) == sd


@FUZZ
@given(session, st.lists(st.sampled_from(["ulaw", "alaw", "g722", "opus", "gsm"]), max_size=4))
def test_build_answer_keeps_one_m_line_per_offer_m_line(
    offer: SessionDescription, allowed: list[str]
) -> None:
    try:
        answer = build_answer(offer, "10.0.0.1", 4000, allowed, session_id=1, version=1)
    except SdpError as exc:
        assert exc.status == 488
        return
    assert len(answer.media) == len(offer.media)
    assert sum(m.port != 0 for m in answer.media) == 1
    assert parse_sdp(str(answer)) == answer
