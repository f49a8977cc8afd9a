"""URIs and name-addr values: parse, format, compare (RFC 3261 §19.1, §20.10, RFC 5118)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.sip.abnf import ParseError
from pypbx.sip.uri import (
    AbsoluteUri,
    NameAddr,
    SipUri,
    TelUri,
    parse_name_addr,
    parse_uri,
    uri_equal,
)


@pytest.mark.parametrize(
    ("text", "scheme", "user", "password", "host", "port", "params", "headers"),
    [
        ("sip:alice@atlanta.com", "sip", "alice", None, "atlanta.com", None, (), ()),
        (
            "sip:alice:secretword@atlanta.com;transport=tcp",
            "sip",
            "alice",
            "secretword",
            "atlanta.com",
            None,
            (("transport", "tcp"),),
            (),
        ),
        (
            "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sips",
            "alice",
            None,
            "atlanta.com",
            None,
            (),
            (("subject", "project x"), ("priority", "urgent")),
        ),
        (
            "sip:+1-212-555-1212:1234@gateway.com;user=phone",
            "sip",
            "+1-212-555-1212",
            "1234",
            "gateway.com",
            None,
            (("user", "phone"),),
            (),
        ),
        ("sips:1212@gateway.com", "sips", "1212", None, "gateway.com", None, (), ()),
        ("sip:alice@192.0.2.4", "sip", "alice", None, "192.0.2.4", None, (), ()),
        (
            "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
            "sip",
            None,
            None,
            "atlanta.com",
            None,
            (("method", "REGISTER"),),
            (("to", "alice@atlanta.com"),),
        ),
        (
            "sip:alice;day=tuesday@atlanta.com",
            "sip",
            "alice;day=tuesday",
            None,
            "atlanta.com",
            None,
            (),
            (),
        ),
        ("SIP:Bob@Biloxi.COM:5070", "sip", "Bob", None, "Biloxi.COM", 5070, (), ()),
        ("sip:[2001:db8::10]:5070", "sip", None, None, "[2001:db8::10]", 5070, (), ()),
        ("sip:[2001:db8::10:5070]", "sip", None, None, "[2001:db8::10:5070]", None, (), ()),
        (
            "sip:user@[2001:db8:::192.0.2.1]",
            "sip",
            "user",
            None,
            "[2001:db8:::192.0.2.1]",
            None,
            (),
            (),
        ),
        ("sip:%75se%72@example.com", "sip", "user", None, "example.com", None, (), ()),
        (
            "sip:null-%00-null@example.com",
            "sip",
            "null-\x00-null",
            None,
            "example.com",
            None,
            (),
            (),
        ),
        ("sip:host;lr", "sip", None, None, "host", None, (("lr", None),), ()),
        (
            "sip:h;%6C%72;n%61me=v%61lue%25%34%31",
            "sip",
            None,
            None,
            "h",
            None,
            (("lr", None), ("name", "value%41")),
            (),
        ),
    ],
)
def test_parse_sip_uri(text, scheme, user, password, host, port, params, headers):
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        scheme,
        user,
        password,
        host,
        port,
    )
    assert uri.params == params
    assert uri.headers == headers
    # formatting then parsing gives an equal URI
    assert parse_uri(str(uri)) == uri


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@atlanta.com",
        "sip:alice:pw@atlanta.com:5060;transport=tcp;lr",
        "sips:[2001:db8::1]:5061",
        "sip:bob@host?Route=%3Csip:x%3E",
        "sip:+12125551212@gw;user=phone",
    ],
)
def test_format_is_identity_for_canonical_text(text):
    assert str(parse_uri(text)) == text


def test_user_with_reserved_chars_is_escaped_on_output():
    uri = SipUri("example.com", user="I have spaces@x")
    assert str(uri) == "sip:I%20have%20spaces%40x@example.com"
    assert parse_uri(str(uri)) == uri


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice@atlanta.com",
        ":foo",
        "1sip:x",
        "sip:",
        "sip:user@",
        "sip:user@host:port",
        "sip:user@host:70000",
        "sip:2001:db8::10",
        "sip:user@[2001:db8::10",
        "sip:user@[2001:db8::10]x",
        "sip:us er@host",
        "sip:user@host;",
        "sip:user@host;a=b c",
        "sip:user@host?novalue",
        "sip:%zz@host",
        "sip:user@ho$t",
        "tel:",
        "tel:12 34",
        "http:",
        "http:with space",
    ],
)
def test_parse_uri_rejects(text):
    with pytest.raises(ParseError) as exc:
        parse_uri(text)
    assert exc.value.status == 400


def test_tel_and_absolute_uris():
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert isinstance(tel, TelUri)
    assert tel.number == "+1-201-555-0123"
    assert tel.digits == "+12015550123"
    assert tel.is_global
    assert tel.param("phone-context") == "example.com"
    assert str(tel) == "tel:+1-201-555-0123;phone-context=example.com"
    other = parse_uri("isbn:2983792873")
    assert other == AbsoluteUri("isbn", "2983792873")
    assert str(other) == "isbn:2983792873"
    assert parse_uri("soap.beep://192.0.2.103:3002") == AbsoluteUri(
        "soap.beep", "//192.0.2.103:3002"
    )


def test_sip_uri_helpers():
    uri = SipUri.parse("sip:proxy.example.com;lr;transport=TCP;maddr=10.0.0.1")
    assert uri.lr
    assert uri.transport == "tcp"
    assert uri.maddr == "10.0.0.1"
    assert not uri.secure
    uri2 = uri.with_params(transport="udp").without_params("maddr", "lr")
    assert str(uri2) == "sip:proxy.example.com;transport=udp"
    with pytest.raises(ParseError) as exc:
        SipUri.parse("tel:+123")
    assert exc.value.status == 416


# RFC 3261 §19.1.4: pairs that are equivalent, and pairs that are not.
EQUAL = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
    ("tel:+1-201-555-0123", "tel:+12015550123"),
    ("isbn:123", "isbn:123"),
]
NOT_EQUAL = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:alice:a@atlanta.com", "sip:alice:b@atlanta.com"),
    ("sip:a@h;lr", "sip:a@h;lr=1"),
    ("sip:a@h", "tel:+1"),
    ("tel:+1;a=b", "tel:+1"),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_uri_equal(a, b):
    ua, ub = parse_uri(a), parse_uri(b)
    assert uri_equal(ua, ub)
    assert uri_equal(ub, ua)


@pytest.mark.parametrize(("a", "b"), NOT_EQUAL)
def test_uri_not_equal(a, b):
    ua, ub = parse_uri(a), parse_uri(b)
    assert not uri_equal(ua, ub)
    assert not uri_equal(ub, ua)


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        ("<sip:a@b>", None, "sip:a@b", ()),
        (
            "Bob <sip:bob@biloxi.com>;tag=a6c85cf",
            "Bob",
            "sip:bob@biloxi.com",
            (("tag", "a6c85cf"),),
        ),
        (
            '"J Rosenberg \\\\\\""  <sip:jdrosen@example.com> ; tag = 98asjd8',
            'J Rosenberg \\"',
            "sip:jdrosen@example.com",
            (("tag", "98asjd8"),),
        ),
        (
            "caller<sip:caller@example.com>;tag=323",
            "caller",
            "sip:caller@example.com",
            (("tag", "323"),),
        ),
        (
            "sip:+1972@gw1.example.net;unknownparam",
            None,
            "sip:+1972@gw1.example.net",
            (("unknownparam", None),),
        ),
        (
            "<sip:+1972@gw1.example.net;unknownparam>",
            None,
            "sip:+1972@gw1.example.net;unknownparam",
            (),
        ),
        (
            "sip:vivekg@chair.example.com ;   tag    = 1918181833n",
            None,
            "sip:vivekg@chair.example.com",
            (("tag", "1918181833n"),),
        ),
        (
            "A. Bell <sip:a.g.bell@example.com>;tag=q",
            "A. Bell",
            "sip:a.g.bell@example.com",
            (("tag", "q"),),
        ),
        ('"" <sip:x@y>', "", "sip:x@y", ()),
        ("isbn:2983792873", None, "isbn:2983792873", ()),
        ("<http://www.example.com>;tag=3", None, "http://www.example.com", (("tag", "3"),)),
        ('<sip:a@b>;p="quoted ; value"', None, "sip:a@b", (("p", '"quoted ; value"'),)),
    ],
)
def test_parse_name_addr(text, display, uri, params):
    na = parse_name_addr(text)
    assert na.display == display
    assert str(na.uri) == uri
    assert na.params == params
    # formatting round-trips to an equal value
    assert parse_name_addr(str(na)) == na


@pytest.mark.parametrize(
    "text",
    [
        '"Mr. J. User <sip:j.user@example.com>',
        "< sip:t.watson@example.org >",
        "Bell, Alexander <sip:a.g.bell@example.com>",
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        "<sip:a@b",
        '"name" sip:a@b',
        "<sip:a@b>;;",
        "<sip:a@b>;tag=",
        "<sip:a@b> junk",
        "",
    ],
)
def test_parse_name_addr_rejects(text):
    with pytest.raises(ParseError):
        parse_name_addr(text)


def test_unquoted_utf8_display_name_is_tolerated():
    na = parse_name_addr("Jürgen Müller <sip:jm@example.de>;tag=1")
    assert na.display == "Jürgen Müller"
    # formatting quotes it, as the grammar requires
    assert str(na) == '"Jürgen Müller" <sip:jm@example.de>;tag=1'


def test_name_addr_tag_and_format():
    na = NameAddr(SipUri("example.com", user="alice"), "Alice Smith")
    assert na.tag is None
    tagged = na.with_tag("abc")
    assert tagged.tag == "abc"
    assert str(tagged) == "Alice Smith <sip:alice@example.com>;tag=abc"
    assert str(tagged.with_tag("xyz")) == "Alice Smith <sip:alice@example.com>;tag=xyz"
    quoted = NameAddr(SipUri("h"), 'Say "hi", ok')
    assert str(quoted) == '"Say \\"hi\\", ok" <sip:h>'
    assert parse_name_addr(str(quoted)).display == 'Say "hi", ok'


_user = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"),
    min_size=1,
    max_size=12,
)
_label = st.from_regex(r"[a-z]([a-z0-9\-]{0,8}[a-z0-9])?", fullmatch=True)
_host = st.lists(_label, min_size=1, max_size=3).map(".".join) | st.builds(
    "{}.{}.{}.{}".format, *[st.integers(0, 255)] * 4
)
_pname = st.from_regex(r"[a-z][a-z0-9\-]{0,6}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    user=st.none() | _user,
    password=st.none() | _user,
    host=_host,
    port=st.none() | st.integers(0, 65535),
    params=st.lists(st.tuples(_pname, st.none() | _user), max_size=3),
    scheme=st.sampled_from(["sip", "sips"]),
)
def test_sip_uri_format_parse_roundtrip(user, password, host, port, params, scheme):
    if user is None:
        password = None
    uri = SipUri(host, user, password, port, tuple(params), (), scheme)
    again = parse_uri(str(uri))
    assert again == uri
    assert uri_equal(again, uri)
