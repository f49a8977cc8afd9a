"""Header multimap, registry and typed header values (RFC 3261 §7.3, §20)."""

from __future__ import annotations

import pytest

from pypbx.sip.abnf import ParseError, split_commas
from pypbx.sip.headers import (
    KEYS,
    STAR,
    CSeq,
    Headers,
    HeaderSpec,
    Star,
    Via,
    canonical_name,
    header_spec,
    parse_contact_list,
    parse_cseq,
    parse_uint,
    parse_via,
    parse_via_list,
    register_header,
)
from pypbx.sip.parse import parse_message


@pytest.mark.parametrize(
    ("compact", "canonical"),
    [
        ("v", "Via"),
        ("f", "From"),
        ("t", "To"),
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("e", "Content-Encoding"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("x", "Session-Expires"),
        ("u", "Allow-Events"),
        ("y", "Identity"),
        ("CALL-ID", "Call-ID"),
        ("cseq", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("X-Unknown", "X-Unknown"),
    ],
)
def test_canonical_names(compact, canonical):
    assert canonical_name(compact) == canonical
    if header_spec(compact) is not None:
        assert canonical_name(compact.upper()) == canonical
    else:
        assert canonical_name(compact.upper()) == compact.upper()  # unknown: unchanged


def test_header_spec_multi_flag():
    assert header_spec("via").multi
    assert header_spec("m").multi
    assert not header_spec("From").multi
    assert not header_spec("WWW-Authenticate").multi
    assert header_spec("X-Nope") is None


def test_headers_multimap_operations():
    h = Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("v", "SIP/2.0/UDP b, SIP/2.0/UDP c")])
    h.add("To", "<sip:b@c>")
    assert h.get("VIA") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert h.get_all("v") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    assert "via" in h
    assert "t" in h
    assert "From" not in h
    assert h.count("Via") == 2
    h.insert_first("Via", "SIP/2.0/TCP top")
    assert h.get("Via") == "SIP/2.0/TCP top"
    assert [name for name, _ in h] == ["Via", "Via", "Via", "To"]
    assert h.remove_first("Via") == "SIP/2.0/TCP top"
    assert h.remove_first("Via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    # a comma-joined line keeps its remaining values
    assert h.remove_first("Via") == "SIP/2.0/UDP b"
    assert h.get_all("Via") == ["SIP/2.0/UDP c"]
    h.set("to", "<sip:x@y>")
    assert h.get_all("To") == ["<sip:x@y>"]
    assert h.remove("Via") == 1
    assert h.remove("Via") == 0
    assert h.get("Via") is None
    assert h.get("Via", "dflt") == "dflt"
    h.set("Max-Forwards", "70")
    assert list(h) == [("To", "<sip:x@y>"), ("Max-Forwards", "70")]
    assert h.remove_first("Route") is None


def test_set_replaces_all_at_first_position():
    h = Headers([("X-A", "1"), ("X-B", "2"), ("X-A", "3")])
    h.set("x-a", "9")
    assert list(h) == [("x-a", "9"), ("X-B", "2")]
    # compact names are canonicalised: "x" is Session-Expires (RFC 4028)
    h.set("x", "1800")
    assert h.get("Session-Expires") == "1800"


def test_get_all_splits_only_list_headers():
    h = Headers(
        [
            ("Contact", '"Doe, John" <sip:a@b;x=1,2>, <sip:c@d>'),
            ("WWW-Authenticate", 'Digest realm="a", nonce="b"'),
            ("Allow", "INVITE,ACK , BYE,,"),
            ("X-Thing", "a, b"),
        ]
    )
    assert h.get_all("m") == ['"Doe, John" <sip:a@b;x=1,2>', "<sip:c@d>"]
    assert h.get_all("www-authenticate") == ['Digest realm="a", nonce="b"']
    assert h.get_all("Allow") == ["INVITE", "ACK", "BYE"]
    assert h.get_all("X-Thing") == ["a, b"]


def test_parsed_cache_is_invalidated_on_change():
    h = Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1")])
    first = h.parsed("via", parse_via_list)
    assert first[0].host == "a"
    assert h.parsed("v", parse_via_list) is first
    h.insert_first("Via", "SIP/2.0/UDP top;branch=z9hG4bK2")
    assert [v.host for v in h.parsed("via", parse_via_list)] == ["top", "a"]
    copy = h.copy()
    copy.remove("Via")
    assert h.count("Via") == 2


def test_lines_recompute_content_length():
    h = Headers([("Content-Length", "99"), ("X-Y", "y")])
    assert h.lines(3) == ["Content-Length: 3", "X-Y: y"]
    assert Headers([("X-Y", "y")]).lines(0) == ["X-Y: y", "Content-Length: 0"]
    assert h.lines(None) == ["Content-Length: 99", "X-Y: y"]


@pytest.mark.parametrize(
    ("text", "transport", "host", "port", "branch", "received", "has_rport", "rport"),
    [
        (
            "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
            "UDP",
            "pc33.atlanta.com",
            None,
            "z9hG4bK776asdhds",
            None,
            False,
            None,
        ),
        (
            "SIP/2.0/tcp 192.0.2.1:5061;branch=z9hG4bKx;rport",
            "TCP",
            "192.0.2.1",
            5061,
            "z9hG4bKx",
            None,
            True,
            None,
        ),
        (
            "SIP/2.0/UDP 10.0.0.1;rport=5070;received=192.0.2.9;branch=z9hG4bKy",
            "UDP",
            "10.0.0.1",
            None,
            "z9hG4bKy",
            "192.0.2.9",
            True,
            5070,
        ),
        (
            "SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw",
            "UDP",
            "192.0.2.2",
            None,
            "390skdjuw",
            None,
            False,
            None,
        ),
        (
            "SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8",
            "TCP",
            "spindle.example.com",
            None,
            "z9hG4bK9ikj8",
            None,
            False,
            None,
        ),
        (
            "SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3",
            "UDP",
            "[2001:db8::9:1]",
            6050,
            "z9hG4bKas3",
            None,
            False,
            None,
        ),
        (
            "SIP/2.0/TCP [2001:db8::9:255];branch=b;received=[2001:db8::9:255]",
            "TCP",
            "[2001:db8::9:255]",
            None,
            "b",
            "[2001:db8::9:255]",
            False,
            None,
        ),
        (
            "SIP/2.0/UNKNOWN t4.example.com",
            "UNKNOWN",
            "t4.example.com",
            None,
            None,
            None,
            False,
            None,
        ),
        ("SIP/2.0/UDP host : 5080", "UDP", "host", 5080, None, None, False, None),
    ],
)
def test_parse_via(text, transport, host, port, branch, received, has_rport, rport):
    via = parse_via(text)
    assert (via.transport, via.host, via.port) == (transport, host, port)
    assert via.branch == branch
    assert via.received == received
    assert via.has_rport is has_rport
    assert via.rport == rport
    # formatting and parsing again gives the same value
    assert parse_via(str(via)) == via


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0 UDP host",
        "SIP/3.0/UDP host",
        "SIP/2.0/UDP 192.0.2.15;;",
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP host;ttl=300",
        "SIP/2.0/UDP host;rport=abc",
        "SIP/2.0/UDP host junk",
    ],
)
def test_parse_via_rejects(text):
    with pytest.raises(ParseError):
        parse_via(text)


def test_via_list_and_empty_elements():
    vias = parse_via_list(["SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b;branch=2", "SIP/2.0/TLS c"])
    assert [(v.transport, v.host) for v in vias] == [("UDP", "a"), ("TCP", "b"), ("TLS", "c")]
    with pytest.raises(ParseError):
        parse_via_list(["SIP/2.0/UDP 192.0.2.15;;,;,,"])
    with pytest.raises(ParseError):
        parse_via_list(["SIP/2.0/UDP a,"])


def test_via_with_param_keeps_position():
    via = parse_via("SIP/2.0/UDP h;rport;branch=z9hG4bKq")
    filled = via.with_param("rport", "5060").with_param("received", "192.0.2.1")
    assert str(filled) == "SIP/2.0/UDP h;rport=5060;branch=z9hG4bKq;received=192.0.2.1"
    assert filled.rport == 5060
    assert Via("UDP", "h", 5060).sent_by == ("h", 5060)


@pytest.mark.parametrize(
    ("text", "number", "method"),
    [
        ("1 INVITE", 1, "INVITE"),
        ("0009   INVITE", 9, "INVITE"),
        ("2147483647 BYE", 2**31 - 1, "BYE"),
    ],
)
def test_parse_cseq(text, number, method):
    assert parse_cseq(text) == CSeq(number, method)
    assert str(CSeq(number, method)) == f"{number} {method}"


@pytest.mark.parametrize(
    "text", ["", "1", "INVITE", "x INVITE", "2147483648 INVITE", "1 INVITE extra", "-1 BYE"]
)
def test_parse_cseq_rejects(text):
    with pytest.raises(ParseError):
        parse_cseq(text)


def test_parse_uint_limits():
    assert parse_uint(" 0068 ", "Max-Forwards", 255) == 68
    for bad in ("256", "", "-1", "1.5", "²", "9" * 5000):
        with pytest.raises(ParseError):
            parse_uint(bad, "Max-Forwards", 255)
    assert parse_uint("0" * 5000 + "7", "Expires") == 7


def test_contact_list():
    contacts = parse_contact_list(
        ['"A, B" <sip:a@h>;expires=60;q=0.5, sip:b@h;q=1', '<sip:c@h;lr>;+sip.instance="<x>"']
    )
    assert [str(c.uri) for c in contacts if not isinstance(c, Star)] == [
        "sip:a@h",
        "sip:b@h",
        "sip:c@h;lr",
    ]
    assert contacts[0].param("expires") == "60"
    assert parse_contact_list(["*"]) == (STAR,)
    assert str(STAR) == "*"
    for bad in (["*, <sip:a@h>"], ["<sip:a@h>;expires=99999999999"], ["<sip:a@h>;q=2"], [""]):
        with pytest.raises(ParseError):
            parse_contact_list(bad)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a, b ,c", ["a", "b", "c"]),
        ('"x,y" <sip:a,b@h>, z', ['"x,y" <sip:a,b@h>', "z"]),
        ('"esc \\", still", w', ['"esc \\", still"', "w"]),
        ("a,,b", ["a", "", "b"]),
        ("single", ["single"]),
    ],
)
def test_split_commas(text, parts):
    assert split_commas(text) == parts


def test_split_commas_unterminated():
    for bad in ('"open, x', "<sip:a, b"):
        with pytest.raises(ParseError):
            split_commas(bad)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Evil", "a\r\nVia: forged"),
        ("X-Evil", "a\nb"),
        ("Bad Name", "v"),
        ("", "v"),
        ("A:B", "v"),
    ],
)
def test_code_set_fields_cannot_forge_lines(name, value):
    h = Headers()
    for op in (h.set, h.add, h.insert_first):
        with pytest.raises(ValueError):
            op(name, value)
    with pytest.raises(ValueError):
        Headers([(name, value)])
    assert len(h) == 0


def test_registered_header_is_used_by_the_parser():
    register_header(HeaderSpec("X-Pypbx-Test-List", "ξ", multi=True))
    assert KEYS["ξ"] == "x-pypbx-test-list"
    data = (
        "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>;tag=1\r\n"
        "To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
        "x-pypbx-test-list: a, b\r\nξ: c\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert msg.get_all("X-PYPBX-TEST-LIST") == ["a", "b", "c"]
    assert canonical_name("ξ") == "X-Pypbx-Test-List"


def test_via_accessors():
    via = parse_via("SIP/2.0/UDP 224.2.0.1;ttl=16;maddr=224.2.0.1;branch=z9hG4bKx;X=y")
    assert via.ttl == 16
    assert via.maddr == "224.2.0.1"
    assert via.param("x") == "y"
    assert via.sent_by == ("224.2.0.1", None)
    assert repr(Headers([("To", "<sip:a@b>")])) == "Headers([('To', '<sip:a@b>')])"
