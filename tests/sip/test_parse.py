"""parse_message / validate_message / serialize / build_response (RFC 3261 §7, §8, §18.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.sip.abnf import ParseError
from pypbx.sip.headers import STAR, CSeq, Headers, Via
from pypbx.sip.message import Request, Response, build_response, make_request
from pypbx.sip.parse import parse_message, validate_message
from pypbx.sip.status import StatusCode, reason_phrase, status_class
from pypbx.sip.uri import NameAddr, SipUri

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def wire(start: str, *headers: str, body: bytes = b"", length: int | None = None) -> bytes:
    cl = [] if length == -1 else [f"Content-Length: {len(body) if length is None else length}"]
    lines = [start, *headers, *cl, "", ""]
    return "\r\n".join(lines).encode() + body


BASE = (
    "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;rport",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@biloxi.com>",
    "From: Alice <sip:alice@atlanta.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:alice@pc33.atlanta.com>",
)
INVITE = wire("INVITE sip:bob@biloxi.com SIP/2.0", *BASE, "Content-Type: application/sdp", body=SDP)


def test_parse_invite_fields():
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert msg.uri == SipUri("biloxi.com", user="bob")
    assert msg.uri_text == "sip:bob@biloxi.com"
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.com"
    assert msg.cseq == CSeq(314159, "INVITE")
    assert msg.max_forwards == 70
    assert msg.from_.tag == "1928301774"
    assert msg.from_.display == "Alice"
    assert msg.to.tag is None
    assert str(msg.to.uri) == "sip:bob@biloxi.com"
    assert msg.top_via.branch == "z9hG4bK776asdhds"
    assert msg.top_via.has_rport
    assert [str(c) for c in msg.contact] == ["<sip:alice@pc33.atlanta.com>"]
    assert msg.content_type == "application/sdp"
    assert msg.body == SDP
    assert msg.expires is None
    assert msg.route == []
    validate_message(msg)


def test_parse_response_fields():
    data = wire("SIP/2.0 180 Ringing", *BASE[:1], *BASE[2:6])
    msg = parse_message(data)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (180, "Ringing")
    assert msg.is_provisional
    assert not msg.is_final
    assert msg.max_forwards is None
    assert msg.body == b""


def test_roundtrip_is_byte_exact():
    msg = parse_message(INVITE)
    assert msg.serialize() == INVITE
    assert bytes(msg) == INVITE


def test_unknown_and_odd_headers_kept_byte_exact():
    data = wire(
        "OPTIONS sip:x@y SIP/2.0",
        *BASE[:5],
        "CSeq: 1 OPTIONS",
        "X-Weird   :   value ;;,, with  spaces",
        "NewFangled: first part",
        " continued\tpart",
        "v: SIP/2.0/TCP second;branch=z9hG4bKb",
    )
    msg = parse_message(data)
    assert msg.serialize() == data
    assert msg.get("x-weird") == "value ;;,, with  spaces"
    assert msg.get("NewFangled") == "first part continued\tpart"
    assert [v.host for v in msg.via] == ["pc33.atlanta.com", "second"]


def test_folding_and_compact_forms():
    data = (
        b"INVITE sip:vivekg@chair.example.com SIP/2.0\r\n"
        b"TO :\r\n sip:vivekg@chair.example.com ;   tag    = 1918181833n\r\n"
        b'f   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n'
        b"i: wsinv.ndaksdj@192.0.2.1\r\n"
        b"cseq: 0009\r\n  INVITE\r\n"
        b"v  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n"
        b"l: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert msg.to.tag == "1918181833n"
    assert msg.from_.tag == "98asjd8"
    assert msg.from_.display == 'J Rosenberg \\"'
    assert msg.cseq == CSeq(9, "INVITE")
    assert msg.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert msg.top_via.host == "192.0.2.2"
    assert msg.serialize() == data
    validate_message(msg)


def test_trailing_datagram_bytes_dropped_and_missing_length():
    extra = INVITE + b"garbage after the body"
    msg = parse_message(extra)
    assert msg.body == SDP
    no_cl = wire("INVITE sip:bob@biloxi.com SIP/2.0", *BASE, body=SDP, length=-1)
    msg2 = parse_message(no_cl)
    assert msg2.body == SDP
    # serialize adds the missing Content-Length
    assert f"Content-Length: {len(SDP)}".encode() in msg2.serialize()


def test_leading_crlf_and_lf_only_tolerated():
    assert parse_message(b"\r\n\r\n" + INVITE).method == "INVITE"
    lf = INVITE.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n") + b"\n\n" + SDP
    msg = parse_message(lf)
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.com"
    assert msg.body == SDP
    # no empty line after the headers: the header section ends with the datagram
    head = INVITE.split(b"\r\n\r\n", 1)[0].replace(f"Content-Length: {len(SDP)}".encode(), b"l: 0")
    assert parse_message(head).body == b""


def sample(start="OPTIONS sip:x@y SIP/2.0", drop=(), add=(), cseq="CSeq: 5 OPTIONS", body=b""):
    headers = [h for h in BASE if not h.startswith(tuple(drop)) and not h.startswith("CSeq")]
    return wire(start, *headers, cseq, *add, body=body)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (b"\r\n\r\n", 400),
        (b"garbage", 400),
        (sample(start="OPTIONS sip:x@y SIP/3.0"), 505),
        (sample(start="OPTIONS sip:x@y sip/2.1"), 505),
        (sample(start="SIP/1.0 200 OK"), 505),
        (sample(start="OPTIONS sip:x@y HTTP/1.1"), 400),
        (sample(start="OPTIONS  sip:x@y SIP/2.0"), 400),
        (sample(start="OPTIONS sip:x@y SIP/2.0 "), 400),
        (sample(start="OPTIONS <sip:x@y> SIP/2.0"), 400),
        (sample(start="OPTIONS sip:x@y?Route=z SIP/2.0"), 400),
        (sample(start="OPTIONS noscheme SIP/2.0"), 400),
        (sample(start="OPT<IONS sip:x@y SIP/2.0", cseq="CSeq: 5 OPT<IONS"), 400),
        (sample(start="OPTIONS sip:" + "a" * 5000 + "@y SIP/2.0"), 414),
        (sample(start="SIP/2.0 99 Low"), 400),
        (sample(start="SIP/2.0 700 High"), 400),
        (sample(start="SIP/2.0 4294967301 Big"), 400),
        (sample(start="SIP/2.0"), 400),
        (sample(drop=["Via"]), 400),
        (sample(drop=["From"]), 400),
        (sample(drop=["To"]), 400),
        (sample(drop=["Call-ID"]), 400),
        (sample(cseq="X-No-CSeq: 1"), 400),
        (sample(add=["Call-ID: again"]), 400),
        (sample(add=["t: <sip:other@h>"]), 400),
        (sample(add=["Content-Length: 0"]), 400),
        (sample(cseq="CSeq: 5 INVITE"), 400),
        (sample(cseq="CSeq: 2147483648 OPTIONS"), 400),
        (sample(cseq="CSeq: OPTIONS"), 400),
        (sample(add=["Max-Forwards: 256"]), 400),
        (sample(drop=["Max-Forwards"], add=["Max-Forwards: many"]), 400),
        (sample(drop=["Call-ID"], add=["Call-ID: "]), 400),
        (sample(add=["Bad Name: x"]), 400),
        (sample(add=["NoColonHere"]), 400),
        (sample(add=[": novalue"]), 400),
        (b" folded\r\n" + sample(), 400),
        (sample().replace(b"Content-Length: 0", b"Content-Length: 10"), 400),
        (sample().replace(b"Content-Length: 0", b"Content-Length: -1"), 400),
        (sample().replace(b"Content-Length: 0", b"Content-Length: 1" + b"0" * 5000), 400),
    ],
)
def test_parse_errors(data, status):
    with pytest.raises(ParseError) as exc:
        parse_message(data)
    assert exc.value.status == status
    assert exc.value.reason


def test_max_forwards_is_optional_and_zero_is_legal():
    msg = parse_message(sample(drop=["Max-Forwards"]))
    assert msg.max_forwards is None
    assert parse_message(sample(drop=["Max-Forwards"], add=["Max-Forwards: 0"])).max_forwards == 0


@pytest.mark.parametrize(
    "extra",
    [
        "Contact: <sip:a@b>;;",
        "Date: Fri, 01 Jan 2010 16:00:00 EST",
        "Expires: 4294967296",
        "Route: <sip:a@b>,",
        "Record-Route: sip:a@b?x=y",
        "Content-Type: nonsense",
        "Require: a b",
        "Retry-After: soon",
        'Warning: 1812 overture "In Progress"',
        "Allow: INVITE, B<YE",
    ],
)
def test_validate_rejects(extra):
    headers = [h for h in BASE if not h.startswith(("Contact", "CSeq"))]
    msg = parse_message(wire("OPTIONS sip:x@y SIP/2.0", *headers, "CSeq: 5 OPTIONS", extra))
    with pytest.raises(ParseError) as exc:
        validate_message(msg)
    assert exc.value.status == 400


def test_validate_accepts_good_optional_headers():
    msg = parse_message(
        sample(
            add=[
                "Date: Sat, 13 Nov 2010 23:29:00 GMT",
                "Expires: 3600",
                "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
                "Record-Route: <sip:rr.example.com;lr>",
                "Retry-After: 18000;duration=3600",
                "Require: 100rel",
                'Warning: 301 isi.edu "Incompatible"',
            ]
        )
    )
    validate_message(msg)
    assert msg.expires == 3600
    assert [str(r.uri) for r in msg.route] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert msg.record_route[0].uri == SipUri("rr.example.com", params=(("lr", None),))
    assert msg.option_tags("Require") == ["100rel"]


def test_missing_typed_headers_raise_parse_error():
    req = Request("OPTIONS", "sip:x@y")
    for attr in ("call_id", "cseq", "from_", "to", "top_via"):
        with pytest.raises(ParseError):
            getattr(req, attr)
    assert req.via == []
    assert req.contact == []


def test_wildcard_contact():
    msg = parse_message(
        sample(
            start="REGISTER sip:example.com SIP/2.0",
            cseq="CSeq: 2 REGISTER",
            drop=["Contact"],
            add=["Contact: *", "Expires: 0"],
        )
    )
    assert msg.contact == [STAR]
    assert msg.expires == 0


def test_build_response_copies_per_8_2_6():
    data = wire(
        "INVITE sip:bob@biloxi.com SIP/2.0",
        "Via: SIP/2.0/UDP p1;branch=z9hG4bKa, SIP/2.0/UDP p2;branch=z9hG4bKb",
        "Via: SIP/2.0/TCP uac;branch=z9hG4bKc;received=192.0.2.1",
        *BASE[1:],
        "Timestamp: 54",
        body=SDP,
    )
    req = parse_message(data)
    assert isinstance(req, Request)
    trying = build_response(req, 100)
    assert trying.reason == "Trying"
    assert [v.branch for v in trying.via] == ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc"]
    assert trying.get("Timestamp") == "54"
    assert trying.to.tag is None
    assert trying.get("Contact") is None
    ok = build_response(req, 200, to_tag="as8f", headers=[("Contact", "<sip:bob@192.0.2.4>")])
    assert ok.to.tag == "as8f"
    assert ok.from_ == req.from_
    assert ok.call_id == req.call_id
    assert ok.cseq == req.cseq
    assert ok.get("Timestamp") is None
    again = parse_message(ok.serialize())
    assert isinstance(again, Response)
    assert (again.status, again.reason) == (200, "OK")
    assert again.to.tag == "as8f"
    assert str(again.contact[0]) == "<sip:bob@192.0.2.4>"
    custom = build_response(req, 486, "Gone Fishing", to_tag="x")
    assert custom.serialize().startswith(b"SIP/2.0 486 Gone Fishing\r\n")


def test_build_response_keeps_existing_to_tag():
    data = sample(drop=["To"], add=["To: <sip:b@h>;tag=already"])
    req = parse_message(data)
    assert isinstance(req, Request)
    assert build_response(req, 200, to_tag="new").to.tag == "already"


def test_make_request_round_trips():
    req = make_request(
        "INVITE",
        SipUri("biloxi.com", user="bob"),
        from_=NameAddr(SipUri("atlanta.com", user="alice"), "Alice").with_tag("ft"),
        to=NameAddr(SipUri("biloxi.com", user="bob"), "Bob"),
        call_id="cid@host",
        cseq=1,
        via=Via("UDP", "192.0.2.1", 5060, (("branch", "z9hG4bKnew"), ("rport", None))),
        contact="<sip:alice@192.0.2.1:5060>",
        route=["<sip:proxy;lr>"],
        headers=[("User-Agent", "pypbx")],
        body=SDP,
        content_type="application/sdp",
    )
    data = req.serialize()
    assert data.startswith(b"INVITE sip:bob@biloxi.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;")
    again = parse_message(data)
    validate_message(again)
    assert isinstance(again, Request)
    assert again.cseq == CSeq(1, "INVITE")
    assert again.max_forwards == 70
    assert again.from_.tag == "ft"
    assert again.top_via.branch == "z9hG4bKnew"
    assert again.route[0].uri == SipUri("proxy", params=(("lr", None),))
    assert again.body == SDP
    assert again.content_type == "application/sdp"


def test_message_mutation_and_copy():
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    clone = req.copy()
    clone.headers.insert_first("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp")
    clone.uri = SipUri("192.0.2.4", user="bob")
    clone.body = b""
    assert clone.top_via.host == "proxy.example.com"
    assert req.top_via.host == "pc33.atlanta.com"
    out = parse_message(clone.serialize())
    assert isinstance(out, Request)
    assert out.uri_text == "sip:bob@192.0.2.4"
    assert len(out.via) == 2
    assert out.body == b""
    assert out.get("Content-Length") == "0"


def test_request_and_response_constructors():
    req = Request("OPTIONS", "sip:x@y", [("Call-ID", "c")])
    assert req.call_id == "c"
    assert isinstance(req.headers, Headers)
    assert "OPTIONS" in repr(req)
    resp = Response(404)
    assert resp.reason == "Not Found"
    assert "404" in repr(resp)
    assert resp.copy().status == 404
    with pytest.raises(ValueError):
        Response(42)


def test_message_level_header_methods():
    msg = parse_message(INVITE)
    msg.insert_first("v", "SIP/2.0/UDP edge;branch=z9hG4bKe")
    msg.add("X-Trace", "1")
    msg.set("Max-Forwards", "69")
    assert msg.remove("Contact") == 1
    assert msg.top_via.host == "edge"
    assert msg.max_forwards == 69
    out = parse_message(msg.serialize())
    assert [v.host for v in out.via] == ["edge", "pc33.atlanta.com"]
    assert out.get("X-Trace") == "1"
    assert out.contact == []
    assert out.max_forwards == 69


_token = st.text(alphabet="abcXYZ019-.!%*_+`'~", min_size=1, max_size=10)
_display = st.none() | st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x24F, exclude_characters="\x7f"),
    max_size=20,
)
_user = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x17F), min_size=1, max_size=12
)


@settings(max_examples=200, deadline=None)
@given(
    method=_token,
    from_user=_user,
    from_display=_display,
    to_display=_display,
    tag=_token,
    call_id=st.text(alphabet="abcdef0123456789@.-_", min_size=1, max_size=30),
    cseq=st.integers(0, 2**31 - 1),
    branch=_token,
    port=st.none() | st.integers(1, 65535),
    body=st.binary(max_size=64),
)
def test_built_requests_round_trip(
    method, from_user, from_display, to_display, tag, call_id, cseq, branch, port, body
):
    req = make_request(
        method,
        SipUri("example.com", user="bob"),
        from_=NameAddr(SipUri("a.example", user=from_user), from_display).with_tag(tag),
        to=NameAddr(SipUri("example.com", user="bob"), to_display),
        call_id=call_id,
        cseq=cseq,
        via=Via("UDP", "192.0.2.1", port, (("branch", "z9hG4bK" + branch),)),
        body=body,
    )
    out = parse_message(req.serialize())
    validate_message(out)
    assert isinstance(out, Request)
    assert out.method == method
    assert out.from_ == req.from_
    assert out.from_.uri.user == from_user
    assert out.from_.tag == tag
    assert out.to.display == to_display  # quoted whenever not plain tokens
    assert out.call_id == call_id
    assert out.cseq == CSeq(cseq, method)
    assert out.top_via == req.top_via
    assert out.body == body


@pytest.mark.parametrize(
    "inject",
    [b"X-A: one\nVia: SIP/2.0/UDP forged", b"X-A: one\rVia: SIP/2.0/UDP forged", b"X-A: a\rb"],
)
def test_bare_cr_or_lf_in_headers_rejected(inject):
    data = INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 70\r\n" + inject)
    with pytest.raises(ParseError) as exc:
        parse_message(data)
    assert exc.value.status == 400


def test_lf_message_with_stray_crlf_lines_is_normalised():
    data = b"OPTIONS sip:x@y SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:x@y>\n"
    data += b"From: <sip:a@b>;tag=1\nCall-ID: c1\r\nCSeq: 1 OPTIONS\n\n"
    msg = parse_message(data)
    assert msg.call_id == "c1"
    assert msg.top_via.branch == "z9hG4bK1"
    with pytest.raises(ParseError):
        parse_message(data.replace(b"Call-ID: c1", b"Call-ID: c\r1"))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Request("IN VITE", "sip:x@y"),
        lambda: Request("", "sip:x@y"),
        lambda: Request("INVITE", "sip:x@y SIP/2.0\r\nVia: forged"),
        lambda: Request("INVITE", ""),
        lambda: Response(200, "OK\r\nVia: forged"),
    ],
)
def test_constructors_refuse_forged_start_lines(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(
    ("code", "phrase", "klass"),
    [
        (100, "Trying", 1),
        (183, "Session Progress", 1),
        (200, "OK", 2),
        (302, "Moved Temporarily", 3),
        (401, "Unauthorized", 4),
        (481, "Call/Transaction Does Not Exist", 4),
        (499, "Request Failure", 4),
        (503, "Service Unavailable", 5),
        (580, "Server Failure", 5),
        (603, "Decline", 6),
    ],
)
def test_status_codes(code, phrase, klass):
    assert reason_phrase(code) == phrase
    assert status_class(code) == klass
    assert Response(code).reason == phrase
    if code in StatusCode.__members__.values():
        assert StatusCode(code).phrase == phrase
        assert StatusCode(code) == code
