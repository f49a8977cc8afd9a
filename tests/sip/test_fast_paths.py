"""Fast paths agree with the careful code they shortcut (hypothesis equivalence tests).

Every shortcut taken for registration throughput keeps behaviour: for any input, the fast
path either declines (None) or gives exactly what the general path gives.
"""

from __future__ import annotations

import hmac

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypbx.sip import auth, uri
from pypbx.sip.abnf import percent_decode, percent_encode
from pypbx.sip.auth import AuthParseError, Challenge, DigestServer, Verdict, answer_challenge

EQUIV = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN = st.text("abcXYZ019-._!%*+`'~", min_size=1, max_size=8)
QUOTED_TEXT = st.text(st.sampled_from(list('ab ,=;:@"\\\t\u00e9')), max_size=10)
PLAIN = st.text(st.sampled_from(list("abAB09-._/=:@\\\u00e9")), min_size=1, max_size=8)
SEP = st.sampled_from(["", " ", "\t", "  ", "\r\n "])


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def auth_param_text(draw: st.DrawFn) -> str:
    """Parameter lists as phones write them, and with the awkward bits mixed in:
    escapes, commas in quotes, empty items, duplicates, spaces around '='."""
    items: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(TOKEN)
        if draw(st.booleans()):
            value = _quote(draw(QUOTED_TEXT))
        else:
            value = draw(PLAIN)
        items.append(f"{draw(SEP)}{name}{draw(SEP)}={draw(SEP)}{value}{draw(SEP)}")
        if draw(st.integers(0, 9)) == 0:
            items.append(draw(SEP))  # an empty item
    return " " + ",".join(items) + draw(st.sampled_from(["", ",", " ", ", "]))


def _careful(rest: str) -> dict[str, str] | None:
    try:
        return auth._careful_params(rest, "x")
    except AuthParseError:
        return None


@EQUIV
@given(auth_param_text())
def test_split_params_agrees_with_the_regex_and_the_scanner(rest: str) -> None:
    fast = auth._split_params(rest)
    if fast is not None:
        assert fast == _careful(rest)
        scanned = auth._scan_params(rest)  # declines CR/LF, which the caller screens first
        assert scanned is None or scanned == fast


@EQUIV
@given(st.text(st.sampled_from(list('ab =,"\\\t\r\n\x01\x7f\u00e9\udcff')), max_size=40))
def test_parse_params_on_any_text_is_the_careful_scanner(rest: str) -> None:
    """The screen in front of the fast paths (control characters, non-UTF-8 text) included."""
    assert _parse_or_none(" " + rest) == _careful(" " + rest)


def _parse_or_none(rest: str) -> dict[str, str] | None:
    try:
        return auth._parse_params("Digest" + rest, "x")
    except AuthParseError:
        return None


def test_split_params_declines_what_it_cannot_do_simply() -> None:
    assert auth._split_params(' realm="a,b", nonce="n"') is None  # comma inside quotes
    assert auth._split_params(' realm="a\\"b"') is None  # escape
    assert auth._split_params(" realm=a, realm=b") is None  # duplicate
    assert auth._split_params(" re alm=a") is None  # not a token
    assert auth._split_params(' username="x" y') is None  # junk after the quotes
    assert auth._split_params(' username="u" , , nc=01 ,') == {"username": "u", "nc": "01"}


@EQUIV
@given(auth_param_text())
def test_parse_params_is_the_careful_scanner_where_that_succeeds(rest: str) -> None:
    try:
        careful: dict[str, str] | None = auth._careful_params(rest, "credentials")
    except AuthParseError:
        careful = None
    try:
        got: dict[str, str] | None = auth._parse_params("Digest" + rest, "credentials")
    except AuthParseError:
        got = None
    assert got == careful


@EQUIV
@given(
    realm=st.text(st.sampled_from(list('ab. "\\@')), min_size=1, max_size=12),
    opaque=st.none() | st.text("abc012", max_size=6),
    stale=st.booleans(),
    algorithm=st.sampled_from(["MD5", "SHA-256"]),
    now=st.floats(0, 1e9),
)
def test_challenge_template_is_the_formatted_challenge(
    realm: str, opaque: str | None, stale: bool, algorithm: str, now: float
) -> None:
    server = DigestServer(b"k", realm, opaque=opaque, algorithms=("MD5", "SHA-256"))
    for _ in range(2):  # the second time comes from the template
        nonce = server.make_nonce(now)
        expected = Challenge(
            realm=realm,
            nonce=nonce,
            algorithm=algorithm,
            qop=("auth",),
            opaque=opaque,
            stale=stale,
        )
        assert server._challenge(nonce, stale, algorithm) == str(expected)


@EQUIV
@given(
    username=st.text("abu01", min_size=1, max_size=5),
    password=st.text("pw01!", max_size=5),
    right=st.booleans(),
)
def test_remembered_ha1_verifies_as_a_fresh_one(username: str, password: str, right: bool) -> None:
    server = DigestServer(b"k", "r")
    given_pw = password if right else password + "x"
    for nc in (1, 2):  # the second check uses the remembered HA1
        value = answer_challenge(
            server.challenge(0.0),
            method="REGISTER",
            uri="sip:r",
            username=username,
            password=given_pw,
            cnonce="c",
            nc=nc,
        )
        verdict = server.verify(value, "REGISTER", password=password, now=1.0)
        assert verdict is (Verdict.OK if right else Verdict.BAD_CREDENTIALS)


def test_ha1_table_is_bounded() -> None:
    server = DigestServer(b"k", "r")
    for i in range(auth._HA1_MAX + 10):
        server._password_ha1(f"u{i}", "r", "p", "MD5")
    assert len(server._ha1) <= auth._HA1_MAX
    assert server._password_ha1("u1", "r", "p", "MD5") == auth.compute_ha1("u1", "r", "p")


@EQUIV
@given(
    secret=st.binary(min_size=1, max_size=40),
    realm=st.text(max_size=10),
    heads=st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=3),
)
def test_nonce_mac_from_the_keyed_copy_is_the_one_shot_hmac(
    secret: bytes, realm: str, heads: list[bytes]
) -> None:
    server = DigestServer(secret, realm)
    prefix = b"pypbx-digest-nonce\0" + realm.encode("utf-8", "surrogateescape") + b"\0"
    for head in heads:
        assert server._mac(head) == hmac.digest(secret, prefix + head, "sha256")[:16]


def test_cached_texts_follow_a_changed_realm_and_opaque() -> None:
    server = DigestServer(b"k", "one")
    first = server.challenge(5.0)
    assert 'realm="one"' in first
    server.realm, server.opaque = "two", "op"
    second = server.challenge(5.0)
    assert second.startswith('Digest realm="two"')
    assert 'opaque="op"' in second
    nonce = auth.parse_challenge(second).nonce
    assert server.nonce_issued(nonce) == 5.0
    assert DigestServer(b"k", "one").nonce_issued(nonce) is None  # the MAC covers the realm


# -- Headers: the index of first fields survives an in-place top-Via rewrite ---------------

_EXTRA = st.sampled_from(
    [
        "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKx2",
        "Via: SIP/2.0/UDP a.example, SIP/2.0/TCP b.example;branch=z9hG4bKy",
        "Contact: <sip:a@10.0.0.1>",
        "Contact: <sip:b@10.0.0.2>;expires=60, <sip:c@10.0.0.3>",
        "Expires: 300",
        "User-Agent: Phone 1.0",
        "Route: <sip:p1.example;lr>",
        "X-Custom: 1",
        "X-Custom: 2",
        "Supported: path, outbound",
    ]
)
_NAMES = ("via", "contact", "expires", "user-agent", "route", "x-custom", "supported", "call-id")


@EQUIV
@given(
    before=st.lists(_EXTRA, max_size=4),
    after=st.lists(_EXTRA, max_size=4),
    top=st.sampled_from(
        [
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtop;rport",
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKtop, SIP/2.0/UDP 10.1.1.1;branch=z9hG4bK2",
        ]
    ),
)
def test_lookups_after_replace_first_match_a_fresh_scan(
    before: list[str], after: list[str], top: str
) -> None:
    from pypbx.sip.headers import parse_via_list
    from pypbx.sip.parse import parse_message

    lines = [
        "REGISTER sip:192.0.2.10 SIP/2.0",
        *before,
        f"Via: {top}",
        *after,
        "From: <sip:a@x>;tag=1",
        "To: <sip:a@x>",
        "Call-ID: c1",
        "CSeq: 1 REGISTER",
        "Content-Length: 0",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    headers = message.headers
    headers.replace_first("via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtop;rport=7")
    scanned = headers.copy()  # the same fields, looked up without the index
    for name in _NAMES:
        assert headers.get(name) == scanned.get(name)
        assert headers.get_all(name) == scanned.get_all(name)
    assert headers.parsed("via", parse_via_list) == scanned.parsed("via", parse_via_list)
    assert headers.parsed("via", parse_via_list)[0].rport == 7


@EQUIV
@given(
    st.text(st.sampled_from(list("azAZ09-_.!~*'()%;=&+$,?/:@ \u00e9\u20ac")), max_size=12),
    st.sampled_from([uri._USER_SAFE, uri._PASSWORD_SAFE, uri._PARAM_SAFE, uri._HEADER_SAFE]),
)
def test_percent_encode_escapes_exactly_the_unsafe_characters(
    text: str, safe: frozenset[str]
) -> None:
    """The all-safe shortcut gives the text unchanged only when nothing needs escaping, and
    the result always decodes back to the text."""
    encoded = percent_encode(text, safe)
    careful = "".join(
        ch if ch in safe else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in text
    )
    assert encoded == careful
    assert percent_decode(encoded) == text
