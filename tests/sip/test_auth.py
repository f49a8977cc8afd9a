"""Digest auth: RFC 2617 §3.5 and RFC 7616 §3.9.1 vectors, parsing, server and client."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from pypbx.errors import PbxError
from pypbx.sip.auth import (
    ALGORITHMS,
    AuthError,
    AuthParseError,
    Challenge,
    ClientAuthState,
    Credentials,
    DigestServer,
    Verdict,
    answer_challenge,
    challenge_header,
    compute_ha1,
    compute_response,
    credentials_header,
    parse_challenge,
    parse_credentials,
    uri_matches,
)

# --- published vectors ------------------------------------------------------------------------

RFC2617_CHALLENGE = """Digest
    realm="testrealm@host.com",
    qop="auth,auth-int",
    nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
    opaque="5ccc069c403ebaf9f0171e9517f40e41\""""

RFC2617_CREDENTIALS = """Digest username="Mufasa",
    realm="testrealm@host.com",
    nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
    uri="/dir/index.html",
    qop=auth,
    nc=00000001,
    cnonce="0a4f113b",
    response="6629fae49393a05397450978507c4ef1",
    opaque="5ccc069c403ebaf9f0171e9517f40e41\""""

RFC7616_CHALLENGE = """Digest
    realm="http-auth@example.org",
    qop="auth, auth-int",
    algorithm={algo},
    nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""""

RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def test_rfc2617_example_response() -> None:
    reply = answer_challenge(
        RFC2617_CHALLENGE,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
        nc=1,
    )
    got = parse_credentials(reply)
    want = parse_credentials(RFC2617_CREDENTIALS)
    assert got.response == "6629fae49393a05397450978507c4ef1"
    assert (got.username, got.realm, got.nonce, got.uri) == (
        want.username,
        want.realm,
        want.nonce,
        want.uri,
    )
    assert (got.qop, got.nc, got.cnonce, got.opaque) == ("auth", 1, "0a4f113b", want.opaque)


@pytest.mark.parametrize(
    ("algo", "response"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algo: str, response: str) -> None:
    reply = answer_challenge(
        RFC7616_CHALLENGE.format(algo=algo),
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616_CNONCE,
        nc=1,
    )
    creds = parse_credentials(reply)
    assert creds.response == response
    assert creds.algorithm == algo
    assert creds.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def test_compute_response_rfc2069_and_md5secret() -> None:
    ha1 = compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    assert ha1 == hashlib.md5(b"Mufasa:testrealm@host.com:Circle Of Life").hexdigest()
    ha2 = hashlib.md5(b"GET:/dir/index.html").hexdigest()
    want = hashlib.md5(f"{ha1}:abc:{ha2}".encode()).hexdigest()
    got = compute_response(
        algorithm="MD5", ha1=ha1, nonce="abc", method="GET", uri="/dir/index.html"
    )
    assert got == want


def test_sess_and_auth_int_follow_rfc7616_formulas() -> None:
    def h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    ha1 = h("u:r:p")
    sess = h(f"{ha1}:N:C")
    ha2 = h(f"INVITE:sip:a@b:{hashlib.sha256(b'body').hexdigest()}")
    want = h(f"{sess}:N:0000000a:C:auth-int:{ha2}")
    got = compute_response(
        algorithm="sha-256-SESS",
        ha1=ha1,
        nonce="N",
        method="INVITE",
        uri="sip:a@b",
        qop="auth-int",
        nc=10,
        cnonce="C",
        body=b"body",
    )
    assert got == want


def test_algorithm_registry_names() -> None:
    assert {a.name for a in ALGORITHMS.values()} >= {"MD5", "MD5-sess", "SHA-256", "SHA-256-sess"}
    assert ALGORITHMS["SHA-512-256"].hexdigest(b"") == hashlib.new("sha512_256", b"").hexdigest()


# --- parsing ----------------------------------------------------------------------------------


def test_parse_rfc2617_challenge() -> None:
    ch = parse_challenge(RFC2617_CHALLENGE)
    assert ch == Challenge(
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        algorithm="MD5",
        qop=("auth", "auth-int"),
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
    )


@pytest.mark.parametrize(
    ("value", "field", "expected"),
    [
        ('digest REALM="a", NONCE="n"', "realm", "a"),
        ('DIGEST realm="a,b", nonce="n"', "realm", "a,b"),
        (r'Digest realm="say \"hi\"", nonce="n"', "realm", 'say "hi"'),
        (r'Digest realm="back\\slash", nonce="n"', "realm", "back\\slash"),
        ("Digest realm=asterisk, nonce=4f7d", "realm", "asterisk"),
        ('Digest realm="a" , nonce = "n" ,stale=TRUE', "stale", True),
        ('Digest realm="a", nonce="n", stale=false', "stale", False),
        ('Digest realm="a", nonce="n",, ,algorithm=sha-256', "algorithm", "sha-256"),
        ('Digest\trealm="a",nonce="n=="', "nonce", "n=="),
        ('Digest realm="", nonce=""', "nonce", ""),
        ('Digest realm="a", nonce="n", qop="auth-int , AUTH"', "qop", ("auth-int", "auth")),
        ('Digest realm="a", nonce="n", domain="sip:a sip:b"', "domain", "sip:a sip:b"),
        (
            'Digest realm="a", nonce="n", charset=UTF-8, X="y,z"',
            "extra",
            (("charset", "UTF-8"), ("x", "y,z")),
        ),
    ],
)
def test_parse_challenge_table(value: str, field: str, expected: object) -> None:
    assert getattr(parse_challenge(value), field) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        'Basic realm="a"',
        'Digestrealm="a", nonce="n"',
        'Digest nonce="n"',
        'Digest realm="a"',
        'Digest realm="a, nonce="n"',
        'Digest realm="a" nonce="n"',
        'Digest realm="a", nonce="n", realm="b"',
        'Digest realm="a", nonce="n", =x',
        'Digest realm="a", nonce="n", foo',
        'Digest realm="a", nonce="n", foo=',
        'Digest realm="a\x00", nonce="n"',
        'Digest realm="a", nonce="n\\',
        'Digest realm="a", nonce="n", qop="auth,"',
        'Digest realm="a", nonce=n"x"',
    ],
)
def test_parse_challenge_rejects(value: str) -> None:
    with pytest.raises(AuthParseError) as info:
        parse_challenge(value)
    assert isinstance(info.value, PbxError)
    assert info.value.status == 400


def test_parse_rfc2617_credentials() -> None:
    creds = parse_credentials(RFC2617_CREDENTIALS)
    assert creds == Credentials(
        username="Mufasa",
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="/dir/index.html",
        response="6629fae49393a05397450978507c4ef1",
        cnonce="0a4f113b",
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
        qop="auth",
        nc=1,
    )


def test_parse_credentials_extended_username_and_unknown_params() -> None:
    value = (
        'Digest username*=UTF-8\'\'J%C3%A4s%C3%B8n%20Doe, realm="r", nonce="n", '
        'uri="sip:x", response="00", userhash=false, Foo="bar"'
    )
    creds = parse_credentials(value)
    assert creds.username == "Jäsøn Doe"
    assert creds.extra == (("userhash", "false"), ("foo", "bar"))
    assert creds.qop is None
    assert creds.nc is None


@pytest.mark.parametrize(
    "value",
    [
        'Digest realm="r", nonce="n", uri="u", response="x"',
        'Digest username="a", realm="r", nonce="n", response="x"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, nc=1',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, cnonce="c"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, cnonce="c", '
        "nc=0000000g",
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, cnonce="c", '
        "nc=123456789",
        'Digest username*=latin1\'\'x, realm="r", nonce="n", uri="u", response="x"',
        'Digest username*=UTF-8\'\'%FF, realm="r", nonce="n", uri="u", response="x"',
    ],
)
def test_parse_credentials_rejects(value: str) -> None:
    with pytest.raises(AuthParseError):
        parse_credentials(value)


@pytest.mark.parametrize("value", [RFC2617_CHALLENGE, RFC7616_CHALLENGE.format(algo="SHA-256")])
def test_challenge_format_round_trip(value: str) -> None:
    ch = parse_challenge(value)
    assert parse_challenge(str(ch)) == ch


def test_credentials_format_round_trip_with_escapes() -> None:
    creds = Credentials(
        username='a "quoted" \\ user',
        realm="r",
        nonce="n",
        uri="sip:1000@pbx;transport=tcp",
        response="ab",
        qop="auth",
        nc=0xFFFFFFFF,
        cnonce="c",
        extra=(("x", "needs quoting"),),
    )
    text = str(creds)
    assert "nc=ffffffff" in text
    assert parse_credentials(text) == creds


def test_format_refuses_control_characters() -> None:
    with pytest.raises(AuthError):
        str(Challenge(realm="a\r\nVia: x", nonce="n"))


# --- the server -------------------------------------------------------------------------------

SECRET = b"0123456789abcdef"
REALM = "asterisk"
URI = "sip:1000@pbx.example.com"


def _server(**kw: object) -> DigestServer:
    return DigestServer(SECRET, REALM, **kw)  # type: ignore[arg-type]


def _answer(challenge: str, *, password: str = "pw", nc: int = 1, method: str = "REGISTER") -> str:
    return answer_challenge(
        challenge, method=method, uri=URI, username="1000", password=password, cnonce="cn", nc=nc
    )


def test_server_challenge_shape() -> None:
    ch = parse_challenge(_server(opaque="op").challenge(10.0))
    assert (ch.realm, ch.algorithm, ch.qop, ch.opaque, ch.stale) == (
        REALM,
        "MD5",
        ("auth",),
        "op",
        False,
    )
    assert parse_challenge(_server().challenge(10.0, stale=True)).stale is True


def test_nonces_are_unique_and_carry_time() -> None:
    server = _server()
    nonces = {parse_challenge(server.challenge(5.0)).nonce for _ in range(50)}
    assert len(nonces) == 50
    assert all(server.nonce_issued(n) == 5.0 for n in nonces)
    assert _server(rng=lambda n: b"\x07" * n).make_nonce(1.0) == _server(
        rng=lambda n: b"\x07" * n
    ).make_nonce(1.0)


def test_nonce_of_another_secret_or_realm_is_not_ours() -> None:
    nonce = _server().make_nonce(1.0)
    assert DigestServer(b"other", REALM).nonce_issued(nonce) is None
    assert DigestServer(SECRET, "other").nonce_issued(nonce) is None


@pytest.mark.parametrize("algo", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256"])
def test_round_trip_every_algorithm(algo: str) -> None:
    server = _server(algorithms=(algo,))
    challenge = server.challenge(100.0, algorithm=algo)
    assert server.verify(_answer(challenge), "REGISTER", password="pw", now=100.5) is Verdict.OK


def test_round_trip_with_md5secret_ha1() -> None:
    server = _server()
    reply = _answer(server.challenge(0.0))
    ha1 = compute_ha1("1000", REALM, "pw").upper()
    assert server.verify(reply, "REGISTER", ha1=ha1, now=1.0) is Verdict.OK
    other = compute_ha1("1000", REALM, "nope")
    assert server.verify(reply, "REGISTER", ha1=other, now=1.0) is Verdict.BAD_CREDENTIALS


def test_md5secret_cannot_verify_sha256_credentials() -> None:
    server = _server(algorithms=("SHA-256", "MD5"))
    reply = _answer(server.challenge(0.0))
    assert parse_credentials(reply).algorithm == "SHA-256"
    ha1 = compute_ha1("1000", REALM, "pw")
    assert server.verify(reply, "REGISTER", ha1=ha1, now=1.0) is Verdict.BAD_ALGORITHM
    md5 = _answer(server.challenge(0.0, algorithm="md5"))
    assert server.verify(md5, "REGISTER", ha1=ha1, now=1.0) is Verdict.OK


def test_challenge_only_for_configured_algorithms() -> None:
    with pytest.raises(ValueError, match="not one of"):
        _server().challenge(0.0, algorithm="SHA-256")
    assert parse_challenge(_server(algorithms=("SHA-256",)).challenge(0.0)).algorithm == "SHA-256"


def test_challenges_one_per_algorithm_with_shared_nonce() -> None:
    server = _server(algorithms=("SHA-256", "MD5"))
    values = [parse_challenge(v) for v in server.challenges(3.0)]
    assert [v.algorithm for v in values] == ["SHA-256", "MD5"]
    assert values[0].nonce == values[1].nonce


@pytest.mark.parametrize(
    ("mutate", "verdict"),
    [
        (lambda r: r.replace('realm="asterisk"', 'realm="other"'), Verdict.WRONG_REALM),
        (lambda r: r.replace("algorithm=MD5", "algorithm=SHA-256"), Verdict.BAD_ALGORITHM),
        (lambda r: r.replace("algorithm=MD5", "algorithm=ROT13"), Verdict.BAD_ALGORITHM),
        (lambda r: r.replace("qop=auth", "qop=auth-conf"), Verdict.MALFORMED),
        (lambda r: r.replace('uri="', 'uri="x'), Verdict.BAD_CREDENTIALS),
        (lambda r: r.replace('cnonce="', 'cnonce="x'), Verdict.BAD_CREDENTIALS),
        (lambda r: r.replace("Digest", "Basic"), Verdict.MALFORMED),
        (lambda r: r.replace('uri="', "uri="), Verdict.MALFORMED),
    ],
)
def test_verify_rejections(mutate: Callable[[str], str], verdict: Verdict) -> None:
    server = _server()
    reply = _answer(server.challenge(0.0))
    assert server.verify(mutate(reply), "REGISTER", password="pw", now=1.0) is verdict


def test_wrong_password_and_wrong_method() -> None:
    server = _server()
    challenge = server.challenge(0.0)
    assert server.verify(_answer(challenge, password="x"), "REGISTER", password="pw", now=1.0) is (
        Verdict.BAD_CREDENTIALS
    )
    assert server.verify(_answer(challenge), "INVITE", password="pw", now=1.0) is (
        Verdict.BAD_CREDENTIALS
    )


def test_forged_and_tampered_nonces() -> None:
    server = _server()
    real = server.make_nonce(0.0)
    forged = real[:-4] + ("AAAA" if real[-4:] != "AAAA" else "BBBB")
    for nonce in [forged, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "", "é" * 43, real + "A"]:
        ch = Challenge(realm=REALM, nonce=nonce, qop=("auth",))
        assert server.verify(_answer(str(ch)), "REGISTER", password="pw", now=1.0) is (
            Verdict.BAD_NONCE
        ), nonce


def test_nonce_from_the_future_is_rejected() -> None:
    server = _server()
    reply = _answer(server.challenge(100.0))
    assert server.verify(reply, "REGISTER", password="pw", now=50.0) is Verdict.BAD_NONCE


def test_opaque_must_be_echoed() -> None:
    server = _server(opaque="secret-opaque")
    challenge = server.challenge(0.0)
    assert server.verify(_answer(challenge), "REGISTER", password="pw", now=1.0) is Verdict.OK
    stripped = challenge.replace(', opaque="secret-opaque"', "")
    assert server.verify(_answer(stripped), "REGISTER", password="pw", now=1.0) is Verdict.BAD_NONCE


def test_stale_only_when_response_is_right() -> None:
    server = _server(nonce_lifetime=30.0)
    challenge = server.challenge(0.0)
    assert server.verify(_answer(challenge), "REGISTER", password="pw", now=30.0) is Verdict.STALE
    wrong = _answer(challenge, password="x")
    assert server.verify(wrong, "REGISTER", password="pw", now=30.0) is Verdict.BAD_CREDENTIALS
    fresh = server.challenge(30.0, stale=True)
    assert server.verify(_answer(fresh), "REGISTER", password="pw", now=31.0) is Verdict.OK


def test_nonce_count_replay() -> None:
    server = _server()
    challenge = server.challenge(0.0)

    def verify(nc: int) -> Verdict:
        return server.verify(_answer(challenge, nc=nc), "REGISTER", password="pw", now=1.0)

    assert verify(1) is Verdict.OK
    assert verify(1) is Verdict.REPLAY
    assert verify(3) is Verdict.OK
    assert verify(2) is Verdict.REPLAY
    assert verify(3) is Verdict.REPLAY
    assert verify(4) is Verdict.OK


def test_failed_attempts_do_not_poison_the_replay_table() -> None:
    server = _server()
    challenge = server.challenge(0.0)
    bad = _answer(challenge, nc=9, password="x")
    assert server.verify(bad, "REGISTER", password="pw", now=1.0) is Verdict.BAD_CREDENTIALS
    assert server.tracked_nonces == 0
    assert server.verify(_answer(challenge, nc=1), "REGISTER", password="pw", now=1.0) is Verdict.OK


def test_rfc2069_no_qop() -> None:
    server = _server()
    nonce = server.make_nonce(0.0)
    old_style = f'Digest realm="{REALM}", nonce="{nonce}"'
    reply = _answer(old_style)
    creds = parse_credentials(reply)
    assert (creds.qop, creds.nc, creds.cnonce) == (None, None, None)
    assert server.verify(reply, "REGISTER", password="pw", now=1.0) is Verdict.OK
    assert server.verify(reply, "REGISTER", password="pw", now=2.0) is Verdict.OK
    strict = _server(allow_rfc2069=False)
    assert strict.verify(reply, "REGISTER", password="pw", now=1.0) is Verdict.MALFORMED


def test_replay_table_is_bounded_and_evicted_nonces_go_stale() -> None:
    server = _server(max_nonces=3, nonce_lifetime=100.0)
    challenges = [server.challenge(float(t)) for t in range(5)]
    for ch in challenges:
        assert server.verify(_answer(ch), "REGISTER", password="pw", now=5.0) is Verdict.OK
    assert server.tracked_nonces == 3
    # the two evicted nonces may not restart at nc=1; live ones keep counting
    assert server.verify(_answer(challenges[0]), "REGISTER", password="pw", now=6.0) is (
        Verdict.STALE
    )
    assert server.verify(_answer(challenges[4], nc=2), "REGISTER", password="pw", now=6.0) is (
        Verdict.OK
    )
    assert server.verify(_answer(challenges[4], nc=2), "REGISTER", password="pw", now=6.0) is (
        Verdict.REPLAY
    )


def test_replay_table_drops_expired_entries() -> None:
    server = _server(nonce_lifetime=10.0)
    first = server.challenge(0.0)
    assert server.verify(_answer(first), "REGISTER", password="pw", now=1.0) is Verdict.OK
    later = server.challenge(20.0)
    assert server.verify(_answer(later), "REGISTER", password="pw", now=21.0) is Verdict.OK
    assert server.tracked_nonces == 1
    server.purge(now=100.0)
    assert server.tracked_nonces == 0


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"password": "a", "ha1": "b"}],
)
def test_verify_needs_one_secret(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        _server().verify("Digest x=y", "REGISTER", now=0.0, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"secret": b""}, {"algorithms": ()}, {"max_nonces": 0}, {"algorithms": ("CRC32",)}],
)
def test_server_rejects_bad_configuration(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"secret": SECRET, "realm": REALM, **kwargs}
    with pytest.raises((ValueError, AuthError)):
        DigestServer(**args)  # type: ignore[arg-type]


# --- URI check --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("sip:1000@pbx", "sip:1000@pbx", True),
        ("SIP:1000@PBX.example.com", "sip:1000@pbx.example.com", True),
        ("sip:1000@pbx;transport=tcp;lr", "sip:1000@pbx;lr;Transport=tcp", True),
        ("sip:1000@pbx", "sip:1001@pbx", False),
        ("sip:Alice@pbx", "sip:alice@pbx", False),
        ("sip:1000@pbx:5060", "sip:1000@pbx", False),
        ("sip:1000@pbx;transport=tcp", "sip:1000@pbx", False),
        ("sip:1000@pbx?subject=x", "sip:1000@pbx", False),
        ("sips:1000@pbx", "sip:1000@pbx", False),
    ],
)
def test_uri_matches(a: str, b: str, same: bool) -> None:
    assert uri_matches(a, b) is same
    assert uri_matches(b, a) is same


# --- the client -------------------------------------------------------------------------------


def test_answer_prefers_auth_and_falls_back_to_auth_int() -> None:
    ch = Challenge(realm="r", nonce="n", qop=("auth-int",))
    creds = parse_credentials(
        answer_challenge(
            ch,
            method="INVITE",
            uri="sip:x",
            username="u",
            password="p",
            cnonce="c",
            nc=2,
            body=b"v=0",
        )
    )
    assert creds.qop == "auth-int"
    want = compute_response(
        algorithm="MD5",
        ha1=compute_ha1("u", "r", "p"),
        nonce="n",
        method="INVITE",
        uri="sip:x",
        qop="auth-int",
        nc=2,
        cnonce="c",
        body=b"v=0",
    )
    assert creds.response == want
    both = Challenge(realm="r", nonce="n", qop=("auth-int", "auth"))
    text = answer_challenge(both, method="A", uri="u", username="u", password="p", cnonce="c", nc=1)
    assert parse_credentials(text).qop == "auth"


@pytest.mark.parametrize(
    "challenge",
    [
        Challenge(realm="r", nonce="n", algorithm="ROT13"),
        Challenge(realm="r", nonce="n", qop=("auth-conf",)),
    ],
)
def test_answer_refuses_what_it_cannot_do(challenge: Challenge) -> None:
    with pytest.raises(AuthError):
        answer_challenge(
            challenge, method="A", uri="u", username="u", password="p", cnonce="c", nc=1
        )


def test_client_state_reuses_challenge_with_increasing_nc() -> None:
    server = _server()
    client = ClientAuthState("1000", "pw")
    assert client.learn(server.challenge(0.0)) is True
    assert client.realms == (REALM,)
    for nc in (1, 2, 3):
        value = client.authorization(REALM, method="REGISTER", uri=URI, cnonce=f"c{nc}")
        assert parse_credentials(value).nc == nc
        assert server.verify(value, "REGISTER", password="pw", now=1.0) is Verdict.OK


def test_client_state_learn_tells_when_retrying_is_pointless() -> None:
    server = _server()
    client = ClientAuthState("1000", "wrong")
    assert client.learn(server.challenge(0.0)) is True
    value = client.authorization(REALM, method="REGISTER", uri=URI, cnonce="c")
    assert server.verify(value, "REGISTER", password="pw", now=1.0) is Verdict.BAD_CREDENTIALS
    # the request carried our answer and the server challenged again: refused
    assert client.learn(server.challenge(1.0), sent=[value]) is False
    # a stale challenge, or credentials for another realm / unparsable ones, are worth a retry
    assert client.learn(server.challenge(2.0, stale=True), sent=[value]) is True
    other = value.replace(f'realm="{REALM}"', 'realm="elsewhere"')
    assert client.learn(server.challenge(3.0), sent=[other, "Basic xyz"]) is True
    # a later refresh without credentials gets a fresh challenge: retry, nc restarts
    assert client.learn(server.challenge(4.0)) is True
    value = client.authorization(REALM, method="REGISTER", uri=URI, cnonce="c")
    assert parse_credentials(value).nc == 1


def test_client_state_same_nonce_keeps_counting() -> None:
    client = ClientAuthState("u", "p")
    client.learn('Digest realm="a", nonce="n", qop="auth"')
    client.authorization("a", method="A", uri="u", cnonce="c")
    client.learn('Digest realm="a", nonce="n", qop="auth", stale=true')
    value = client.authorization("a", method="A", uri="u", cnonce="c")
    assert parse_credentials(value).nc == 2
    client.learn('Digest realm="b", nonce="m"')
    assert client.realms == ("a", "b")


def test_client_state_unknown_realm_and_forget() -> None:
    client = ClientAuthState("u", "p")
    client.learn('Digest realm="a", nonce="n"')
    client.forget("a")
    client.forget("never")
    with pytest.raises(AuthError):
        client.authorization("a", method="A", uri="u", cnonce="c")


@pytest.mark.parametrize(
    ("status", "challenge", "credentials"),
    [
        (401, "WWW-Authenticate", "Authorization"),
        (407, "Proxy-Authenticate", "Proxy-Authorization"),
    ],
)
def test_header_names(status: int, challenge: str, credentials: str) -> None:
    assert challenge_header(status) == challenge
    assert credentials_header(status) == credentials


def test_rng_must_give_eight_bytes() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        _server(rng=lambda n: b"short").make_nonce(0.0)


def test_bytes_decoded_with_surrogateescape_hash_as_sent() -> None:
    # a Latin-1 user name that the message parser decoded with surrogateescape
    assert compute_ha1("J\udce4n", "r", "p") == hashlib.md5(b"J\xe4n:r:p").hexdigest()
    with pytest.raises(AuthParseError, match="not text"):
        parse_challenge('Digest realm="\ud800", nonce="n"')
