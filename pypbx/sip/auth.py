"""HTTP Digest authentication for SIP: RFC 2617 §3, RFC 7616 §3, RFC 8760 §2, RFC 3261 §22.

Pure code on header *values* (the text after ``WWW-Authenticate:`` and friends): a parser for
challenges and credentials, a stateless-nonce server and a client that answers challenges.
Time and randomness come from the caller (``now``, ``cnonce``, an optional ``rng``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

from pypbx.errors import PbxError

__all__ = [
    "ALGORITHMS",
    "AuthError",
    "AuthParseError",
    "Challenge",
    "ClientAuthState",
    "Credentials",
    "DigestAlgorithm",
    "DigestServer",
    "Verdict",
    "answer_challenge",
    "challenge_header",
    "compute_ha1",
    "compute_response",
    "credentials_header",
    "parse_challenge",
    "parse_credentials",
    "uri_matches",
]


class AuthError(PbxError):
    """A digest operation that cannot be done (unknown algorithm, unquotable value...)."""


class AuthParseError(AuthError):
    """A challenge or credentials value that does not parse; answered with 400."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- algorithms (RFC 7616 §3.2, RFC 8760 §2) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestAlgorithm:
    """A digest algorithm: its token, the hash to hex, and whether it is a ``-sess`` variant."""

    name: str
    hexdigest: Callable[[bytes], str]
    session: bool = False


ALGORITHMS: dict[str, DigestAlgorithm] = {}


def _register(name: str, hash_name: str) -> None:
    # the named constructor (hashlib.md5) is a direct C call; hashlib.new looks the name up
    ctor = getattr(hashlib, hash_name, None)

    def hexdigest(data: bytes) -> str:
        if ctor is not None:
            return str(ctor(data).hexdigest())
        return hashlib.new(hash_name, data).hexdigest()

    for algo in (
        DigestAlgorithm(name, hexdigest),
        DigestAlgorithm(f"{name}-sess", hexdigest, True),
    ):
        ALGORITHMS[algo.name.upper()] = algo


_register("MD5", "md5")
_register("SHA-256", "sha256")
_register("SHA-512-256", "sha512_256")


def _algorithm(name: str) -> DigestAlgorithm:
    try:
        return ALGORITHMS[name.upper()]
    except KeyError:
        raise AuthError(f"unsupported digest algorithm {name!r}") from None


# --- the auth-param dialect (RFC 7235 §2.1, RFC 7616 §3.3-3.4) -----------------------------------

_TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LWS = " \t\r\n"


_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_CHAR_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# One auth-param after the scheme: separators, name, "=", a quoted string or a token-ish
# value, then LWS up to a comma or the end. Only used when it gives what the scanner in
# _parse_params would; anything unusual goes to that scanner (and its error messages).
_AUTH_PARAM_RE = re.compile(
    r"""[ \t\r\n,]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t\r\n]*=[ \t\r\n]*
        (?:"((?:[^"\\]|\\.)*)"|([^ \t\r\n,"]+))[ \t\r\n]*(?=,|\Z)""",
    re.VERBOSE | re.DOTALL,
)
_TRAILER_RE = re.compile(r"[ \t\r\n,]*\Z")
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)


def _is_token(text: str) -> bool:
    return _TOKEN_RE.fullmatch(text) is not None


def _bad_char(c: str) -> bool:
    return (ord(c) < 0x20 and c != "\t") or c == "\x7f"


_TCHARS_TEXT = "".join(sorted(_TCHARS))
_NOT_PLAIN = frozenset(' \t\r\n"')


def _split_params(rest: str) -> dict[str, str] | None:
    """The auth-params of ``rest`` by plain splitting on commas, or None unless every item
    is ``token = "text without quote or backslash"`` or ``token = plain`` (what phones send).
    Anything else (a comma or escape inside quotes, a duplicate, a bad name) is left to
    :func:`_scan_params`; ``tests/sip/test_fast_paths.py`` checks the two agree."""
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, val = part.partition("=")
        name = name.strip(_LWS)
        if not eq:
            if name:
                return None
            continue  # an empty item between commas, as the grammar's #rule allows
        if not name or name.strip(_TCHARS_TEXT):
            return None  # empty, or not all token characters
        val = val.strip(_LWS)
        if val[:1] == '"':
            if len(val) < 2 or val[-1] != '"':
                return None
            val = val[1:-1]
            if '"' in val or "\\" in val:
                return None
        elif not val or not _NOT_PLAIN.isdisjoint(val):
            return None
        name = name.lower()
        if name in params:
            return None
        params[name] = val
    return params


def _scan_params(rest: str) -> dict[str, str] | None:
    """The auth-params of ``rest`` by regex, or None if they need the careful scanner
    (malformed, duplicated, control characters, text that is not UTF-8)."""
    if not _encodable(rest) or _BAD_CHAR_RE.search(rest) is not None:
        return None
    params: dict[str, str] = {}
    pos, end = 0, len(rest)
    match = _AUTH_PARAM_RE.match
    while True:
        m = match(rest, pos)
        if m is None:
            return params if _TRAILER_RE.match(rest, pos) is not None else None
        name = m.group(1).lower()
        quoted, plain = m.group(2), m.group(3)
        if quoted is None:
            val = plain
        elif "\\" in quoted:
            val = _ESCAPE_RE.sub(r"\1", quoted)
        else:
            val = quoted
        if name in params:
            return None
        params[name] = val
        pos = m.end()
        if pos >= end:
            return params


def _parse_params(value: str, what: str) -> dict[str, str]:
    """Split ``Digest a=b, c="d"`` into a dict of lower-cased names to unquoted values."""
    text = value.strip(_LWS)
    if text[6:7] in _LWS and text[6:7] and text[:6].lower() == "digest":
        rest = text[6:]  # the usual "Digest " without a scan
    else:
        i = 0
        while i < len(text) and text[i] in _TCHARS:
            i += 1
        scheme, rest = text[:i], text[i:]
        if scheme.lower() != "digest" or (rest and rest[0] not in _LWS):
            raise AuthParseError(f"{what}: scheme is not Digest")
    # printable ASCII holds no control character and encodes: skip both checks
    if not (rest.isascii() and rest.isprintable()) and (
        not _encodable(rest) or _BAD_CHAR_RE.search(rest) is not None
    ):
        return _careful_params(rest, what)
    fast = _split_params(rest)
    if fast is None:
        fast = _scan_params(rest)
    if fast is not None:
        return fast
    return _careful_params(rest, what)


def _careful_params(rest: str, what: str) -> dict[str, str]:
    """The character-by-character scanner: every malformation gets its own reason."""
    params: dict[str, str] = {}
    pos, end = 0, len(rest)
    while True:
        while pos < end and (rest[pos] in _LWS or rest[pos] == ","):
            pos += 1
        if pos >= end:
            break
        start = pos
        while pos < end and rest[pos] in _TCHARS:
            pos += 1
        name = rest[start:pos].lower()
        while pos < end and rest[pos] in _LWS:
            pos += 1
        if not name or pos >= end or rest[pos] != "=":
            raise AuthParseError(f"{what}: expected name=value at offset {start}")
        pos += 1
        while pos < end and rest[pos] in _LWS:
            pos += 1
        if pos < end and rest[pos] == '"':
            pos, val = _quoted(rest, pos + 1, what)
        else:
            start = pos
            while pos < end and rest[pos] not in _LWS and rest[pos] not in ',"':
                pos += 1
            val = rest[start:pos]
            if not val or any(_bad_char(c) for c in val):
                raise AuthParseError(f"{what}: bad value for {name}")
        if name in params:
            raise AuthParseError(f"{what}: duplicate parameter {name}")
        if not _encodable(val):
            raise AuthParseError(f"{what}: {name} is not text")
        params[name] = val
        while pos < end and rest[pos] in _LWS:
            pos += 1
        if pos < end and rest[pos] != ",":
            raise AuthParseError(f"{what}: expected ',' at offset {pos}")
    return params


def _quoted(text: str, pos: int, what: str) -> tuple[int, str]:
    out: list[str] = []
    while pos < len(text):
        c = text[pos]
        if c == '"':
            return pos + 1, "".join(out)
        if c == "\\":
            pos += 1
            if pos >= len(text):
                break
            c = text[pos]
        if _bad_char(c):
            raise AuthParseError(f"{what}: control character in quoted string")
        out.append(c)
        pos += 1
    raise AuthParseError(f"{what}: unterminated quoted string")


def _b(text: str) -> bytes:
    """UTF-8, giving back the original bytes of text decoded with surrogateescape."""
    return text.encode("utf-8", "surrogateescape")


def _encodable(text: str) -> bool:
    try:
        _b(text)
    except UnicodeEncodeError:
        return False
    return True


def _quote(value: str) -> str:
    if _BAD_CHAR_RE.search(value) is not None:
        raise AuthError(f"cannot quote a value with control characters: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format(params: Iterable[tuple[str, str, bool]]) -> str:
    parts = []
    for name, val, quoted in params:
        parts.append(f"{name}={_quote(val) if quoted or not _is_token(val) else val}")
    return "Digest " + ", ".join(parts)


def _require(params: dict[str, str], names: tuple[str, ...], what: str) -> None:
    for name in names:
        if name not in params:
            raise AuthParseError(f"{what}: missing {name}")


# --- values -----------------------------------------------------------------------------------

_CHALLENGE_KNOWN = ("realm", "nonce", "algorithm", "qop", "opaque", "stale", "domain")
_CREDS_REQUIRED = ("username", "realm", "nonce", "uri", "response")
_CREDS_KNOWN = (*_CREDS_REQUIRED, "algorithm", "cnonce", "opaque", "qop", "nc")


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed ``WWW-Authenticate``/``Proxy-Authenticate`` Digest value (RFC 7616 §3.3)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        params = [("realm", self.realm, True), ("nonce", self.nonce, True)]
        if self.opaque is not None:
            params.append(("opaque", self.opaque, True))
        if self.domain is not None:
            params.append(("domain", self.domain, True))
        params.append(("algorithm", self.algorithm, False))
        if self.qop:
            params.append(("qop", ",".join(self.qop), True))
        if self.stale:
            params.append(("stale", "true", False))
        params.extend((n, v, False) for n, v in self.extra)
        return _format(params)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A parsed ``Authorization``/``Proxy-Authorization`` Digest value (RFC 7616 §3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: int | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        params = [
            ("username", self.username, True),
            ("realm", self.realm, True),
            ("nonce", self.nonce, True),
            ("uri", self.uri, True),
            ("response", self.response, True),
            ("algorithm", self.algorithm, False),
        ]
        if self.cnonce is not None:
            params.append(("cnonce", self.cnonce, True))
        if self.opaque is not None:
            params.append(("opaque", self.opaque, True))
        if self.qop is not None:
            params.append(("qop", self.qop, False))
        if self.nc is not None:
            params.append(("nc", f"{self.nc:08x}", False))
        params.extend((n, v, False) for n, v in self.extra)
        return _format(params)


def parse_challenge(value: str) -> Challenge:
    """Parse a Digest challenge; raise ``AuthParseError`` if it is not one."""
    p = _parse_params(value, "challenge")
    _require(p, ("realm", "nonce"), "challenge")
    qop = tuple(q.strip(_LWS).lower() for q in p["qop"].split(",")) if "qop" in p else ()
    if any(not _is_token(q) for q in qop):
        raise AuthParseError("challenge: bad qop list")
    return Challenge(
        realm=p["realm"],
        nonce=p["nonce"],
        algorithm=p.get("algorithm", "MD5"),
        qop=qop,
        opaque=p.get("opaque"),
        stale=p.get("stale", "").lower() == "true",
        domain=p.get("domain"),
        extra=tuple((n, v) for n, v in p.items() if n not in _CHALLENGE_KNOWN),
    )


def parse_credentials(value: str) -> Credentials:
    """Parse Digest credentials; raise ``AuthParseError`` if they are malformed."""
    p = _parse_params(value, "credentials")
    if "username" not in p and "username*" in p:
        charset, _, rest = p.pop("username*").partition("'")
        _, _, encoded = rest.partition("'")
        if charset.lower() != "utf-8":
            raise AuthParseError("credentials: username* charset is not UTF-8")
        try:
            p["username"] = unquote(encoded, errors="strict")
        except UnicodeDecodeError:
            raise AuthParseError("credentials: username* is not UTF-8") from None
    _require(p, _CREDS_REQUIRED, "credentials")
    nc: int | None = None
    qop = p.get("qop")
    if qop is not None:
        qop = qop.lower()
        _require(p, ("cnonce", "nc"), "credentials")
        raw = p["nc"]
        if not 0 < len(raw) <= 8 or any(c not in "0123456789abcdefABCDEF" for c in raw):
            raise AuthParseError("credentials: nc is not 8 hex digits")
        nc = int(raw, 16)
    return Credentials(
        username=p["username"],
        realm=p["realm"],
        nonce=p["nonce"],
        uri=p["uri"],
        response=p["response"],
        algorithm=p.get("algorithm", "MD5"),
        cnonce=p.get("cnonce"),
        opaque=p.get("opaque"),
        qop=qop,
        nc=nc,
        extra=tuple((n, v) for n, v in p.items() if n not in _CREDS_KNOWN),
    )


# --- the digest computation (RFC 7616 §3.4.1-3.4.3) -------------------------------------------


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """``H(username:realm:password)``; with MD5 this is Asterisk's ``md5secret``."""
    return _algorithm(algorithm).hexdigest(_b(f"{username}:{realm}:{password}"))


def compute_response(
    *,
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: int | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value from a (non-session) HA1; ``-sess`` is applied here."""
    algo = _algorithm(algorithm)
    h = algo.hexdigest
    if algo.session:
        ha1 = h(_b(f"{ha1}:{nonce}:{cnonce or ''}"))
    if qop == "auth-int":
        ha2 = h(_b(f"{method}:{uri}:{h(body)}"))
    else:
        ha2 = h(_b(f"{method}:{uri}"))
    if qop is None:
        return h(_b(f"{ha1}:{nonce}:{ha2}"))
    return h(_b(f"{ha1}:{nonce}:{nc or 0:08x}:{cnonce or ''}:{qop}:{ha2}"))


def uri_matches(creds_uri: str, request_uri: str) -> bool:
    """Whether the credentials' ``uri`` names the Request-URI (RFC 3261 §22.4 item 5).

    Equal strings match; otherwise scheme and host compare case-insensitively, URI
    parameters compare as a set with case-insensitive names, and the user part, port and
    headers must be identical.
    """
    if creds_uri == request_uri:
        return True
    return _uri_key(creds_uri) == _uri_key(request_uri)


def _uri_key(uri: str) -> tuple[str, str, str, frozenset[str], str]:
    scheme, _, rest = uri.strip(_LWS).partition(":")
    rest, _, headers = rest.partition("?")
    rest, *params = rest.split(";")
    user, at, hostport = rest.rpartition("@")
    norm = frozenset(_lower_name(p) for p in params)
    return scheme.lower(), user + at, hostport.lower(), norm, headers


def _lower_name(param: str) -> str:
    name, eq, val = param.partition("=")
    return name.lower() + eq + val


# --- server side ------------------------------------------------------------------------------


class Verdict(StrEnum):
    """The outcome of checking credentials, and what the caller should answer."""

    OK = "ok"  # authenticated
    STALE = "stale"  # right password, expired nonce: re-challenge with stale=true
    BAD_CREDENTIALS = "bad-credentials"  # wrong response (password): 401/403
    BAD_NONCE = "bad-nonce"  # nonce or opaque not ours (forged, garbled): re-challenge
    REPLAY = "replay"  # nonce-count did not increase: re-challenge
    WRONG_REALM = "wrong-realm"  # credentials for another realm: re-challenge
    BAD_ALGORITHM = "bad-algorithm"  # algorithm not offered by this server: re-challenge
    MALFORMED = "malformed"  # unparsable or inconsistent credentials: 400


_NONCE_LEN = 32  # 8 bytes ms timestamp, 8 bytes salt, 16 bytes HMAC-SHA-256
_HA1_MAX = 4096


@dataclass(slots=True)
class _Seen:
    nc: int
    issued: float
    expires: float


class DigestServer:
    """Issues stateless nonces and checks credentials (RFC 7616 §3.3, §3.4, §5.4).

    A nonce is ``base64url(ms timestamp | salt | HMAC(secret, realm, timestamp, salt))``, so
    checking it needs no per-challenge state. The nonce-count replay table is bounded:
    ``max_nonces`` entries in LRU order, dropped when their nonce expires; a nonce evicted
    while still alive comes back as STALE rather than being accepted again from nc=1.
    Salt comes from ``rng(8)`` when given, else from a per-server counter.
    """

    def __init__(
        self,
        secret: bytes,
        realm: str,
        *,
        nonce_lifetime: float = 32.0,
        algorithms: tuple[str, ...] = ("MD5",),
        opaque: str | None = None,
        allow_rfc2069: bool = True,
        max_nonces: int = 4096,
        rng: Callable[[int], bytes] | None = None,
    ) -> None:
        if not secret:
            raise ValueError("DigestServer needs a non-empty secret")
        if not algorithms or max_nonces < 1 or nonce_lifetime <= 0:
            raise ValueError("DigestServer needs algorithms, max_nonces >= 1, lifetime > 0")
        self.realm = realm
        self.nonce_lifetime = nonce_lifetime
        self.algorithms = tuple(_algorithm(a).name for a in algorithms)
        self.opaque = opaque
        self.allow_rfc2069 = allow_rfc2069
        self.max_nonces = max_nonces
        self._secret = secret
        self._rng = rng
        self._counter = 0
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._floor = float("-inf")
        # (realm, opaque, algorithm, stale) -> the challenge text before and after the nonce
        self._templates: dict[tuple[str, str | None, str, bool], tuple[str, str]] = {}
        self._hmac: tuple[str, hmac.HMAC] | None = None  # (realm, keyed HMAC)
        # (username, realm, password, algorithm) -> HA1; bounded by _HA1_MAX, then cleared
        self._ha1: dict[tuple[str, str, str, str], str] = {}

    # nonces

    def make_nonce(self, now: float) -> str:
        """A fresh nonce carrying ``now`` and an HMAC over it."""
        if self._rng is not None:
            salt = self._rng(8)
            if len(salt) != 8:
                raise ValueError("rng(8) must return 8 bytes")
        else:
            self._counter += 1
            salt = struct.pack(">Q", self._counter & 0xFFFFFFFFFFFFFFFF)
        head = struct.pack(">q", round(now * 1000)) + salt
        raw = head + self._mac(head)
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def _mac(self, head: bytes) -> bytes:
        keyed = self._hmac
        if keyed is None or keyed[0] != self.realm:
            # keyed once, with the constant prefix: each nonce copies it
            base = hmac.new(self._secret, digestmod=hashlib.sha256)
            base.update(b"pypbx-digest-nonce\0" + _b(self.realm) + b"\0")
            keyed = self._hmac = (self.realm, base)
        mac = keyed[1].copy()
        mac.update(head)
        return mac.digest()[:16]

    def nonce_issued(self, nonce: str) -> float | None:
        """The time a nonce of ours was issued, or None if it is not ours."""
        if len(nonce) != 43:
            return None
        try:
            raw = base64.b64decode(nonce + "=", altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            return None
        head, mac = raw[:16], raw[16:]
        if len(raw) != _NONCE_LEN or not hmac.compare_digest(mac, self._mac(head)):
            return None
        (ms,) = struct.unpack(">q", head[:8])
        return float(ms / 1000)

    # challenges

    def challenge(self, now: float, *, stale: bool = False, algorithm: str | None = None) -> str:
        """A ``WWW-Authenticate`` value with a fresh nonce and ``qop="auth"``.

        ``algorithm`` defaults to the preferred (first) configured one and must be configured.
        """
        name = self.algorithms[0] if algorithm is None else _algorithm(algorithm).name
        if name not in self.algorithms:
            raise ValueError(f"{name} is not one of this server's algorithms {self.algorithms}")
        return self._challenge(self.make_nonce(now), stale, name)

    def challenges(self, now: float, *, stale: bool = False) -> list[str]:
        """One value per configured algorithm, preferred first, sharing a nonce (RFC 8760 §2.4)."""
        nonce = self.make_nonce(now)
        return [self._challenge(nonce, stale, a) for a in self.algorithms]

    def _challenge(self, nonce: str, stale: bool, algorithm: str) -> str:
        """``str(Challenge(...))`` for our realm, without formatting it every time: the
        text around the nonce is worked out once per (algorithm, stale). Our nonces are
        base64url, so they go between the quotes as they are."""
        key = (self.realm, self.opaque, algorithm, stale)
        template = self._templates.get(key)
        if template is None:
            marker = "n"
            text = str(
                Challenge(
                    realm=self.realm,
                    nonce=marker,
                    algorithm=algorithm,
                    qop=("auth",),
                    opaque=self.opaque,
                    stale=stale,
                )
            )
            head = _format([("realm", self.realm, True)]) + ', nonce="'
            if not text.startswith(head + marker + '"'):
                raise AssertionError(f"unexpected challenge layout {text!r}")  # pragma: no cover
            template = (head, text[len(head) + len(marker) :])
            if len(self._templates) >= 64:
                self._templates.clear()
            self._templates[key] = template
        return template[0] + nonce + template[1]

    # verification

    def verify(
        self,
        creds: Credentials | str,
        method: str,
        *,
        password: str | None = None,
        ha1: str | None = None,
        now: float,
        body: bytes = b"",
    ) -> Verdict:
        """Check credentials against the password (or a precomputed non-session HA1).

        ``ha1`` must be computed with the credentials' hash: an Asterisk ``md5secret`` only
        verifies MD5 credentials (others give BAD_ALGORITHM), so challenge such peers with
        MD5. The caller checks ``creds.uri`` against the Request-URI with ``uri_matches``.
        """
        if (password is None) == (ha1 is None):
            raise ValueError("verify needs exactly one of password= or ha1=")
        if isinstance(creds, str):
            try:
                creds = parse_credentials(creds)
            except AuthParseError:
                return Verdict.MALFORMED
        if creds.realm != self.realm:
            return Verdict.WRONG_REALM
        algo = ALGORITHMS.get(creds.algorithm.upper())
        if algo is None or algo.name not in self.algorithms:
            return Verdict.BAD_ALGORITHM
        if creds.qop not in ("auth", "auth-int", None):
            return Verdict.MALFORMED
        if creds.qop is None and not self.allow_rfc2069:
            return Verdict.MALFORMED
        issued = self.nonce_issued(creds.nonce)
        if issued is None or issued > now + 1.0:
            return Verdict.BAD_NONCE
        if self.opaque is not None and not hmac.compare_digest(
            _b(creds.opaque or ""), _b(self.opaque)
        ):
            return Verdict.BAD_NONCE
        if ha1 is None:
            ha1 = self._password_ha1(creds.username, creds.realm, password or "", algo.name)
        elif len(ha1) != len(algo.hexdigest(b"")):
            return Verdict.BAD_ALGORITHM  # e.g. an MD5 md5secret against SHA-256 credentials
        expected = compute_response(
            algorithm=algo.name,
            ha1=ha1.lower(),
            nonce=creds.nonce,
            method=method,
            uri=creds.uri,
            qop=creds.qop,
            nc=creds.nc,
            cnonce=creds.cnonce,
            body=body,
        )
        if not hmac.compare_digest(_b(expected), _b(creds.response.lower())):
            return Verdict.BAD_CREDENTIALS
        expires = issued + self.nonce_lifetime
        if now >= expires:
            return Verdict.STALE
        if creds.nc is None:
            return Verdict.OK
        return self._count(creds.nonce, creds.nc, issued, expires, now)

    def _password_ha1(self, username: str, realm: str, password: str, algorithm: str) -> str:
        """``compute_ha1`` remembered per account: a phone re-registers with the same name
        and password. Bounded: the table is emptied when it holds ``_HA1_MAX`` entries."""
        key = (username, realm, password, algorithm)
        ha1 = self._ha1.get(key)
        if ha1 is None:
            ha1 = compute_ha1(username, realm, password, algorithm)
            if len(self._ha1) >= _HA1_MAX:
                self._ha1.clear()
            self._ha1[key] = ha1
        return ha1

    def _count(self, nonce: str, nc: int, issued: float, expires: float, now: float) -> Verdict:
        seen = self._seen.get(nonce)
        if seen is None:
            if issued <= self._floor:
                return Verdict.STALE
            self._seen[nonce] = _Seen(nc, issued, expires)
            self._trim(now)
            return Verdict.OK
        self._seen.move_to_end(nonce)
        if nc <= seen.nc:
            return Verdict.REPLAY
        seen.nc = nc
        return Verdict.OK

    def _trim(self, now: float) -> None:
        while self._seen:
            nonce, oldest = next(iter(self._seen.items()))
            if oldest.expires <= now:
                del self._seen[nonce]
            elif len(self._seen) > self.max_nonces:
                del self._seen[nonce]
                self._floor = max(self._floor, oldest.issued)
            else:
                break

    def purge(self, now: float) -> None:
        """Drop every replay entry whose nonce has expired."""
        for nonce in [n for n, s in self._seen.items() if s.expires <= now]:
            del self._seen[nonce]

    @property
    def tracked_nonces(self) -> int:
        """How many nonces the replay table holds."""
        return len(self._seen)


# --- client side ------------------------------------------------------------------------------


def answer_challenge(
    challenge: str | Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int,
    body: bytes = b"",
) -> str:
    """The ``Authorization`` value answering ``challenge`` (qop=auth if offered, else RFC 2069)."""
    ch = parse_challenge(challenge) if isinstance(challenge, str) else challenge
    algo = _algorithm(ch.algorithm)
    if not ch.qop:
        qop = None
    elif "auth" in ch.qop:
        qop = "auth"
    elif "auth-int" in ch.qop:
        qop = "auth-int"
    else:
        raise AuthError(f"no supported qop in {ch.qop!r}")
    response = compute_response(
        algorithm=algo.name,
        ha1=compute_ha1(username, ch.realm, password, algo.name),
        nonce=ch.nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc if qop else None,
        cnonce=cnonce if qop or algo.session else None,
        body=body,
    )
    creds = Credentials(
        username=username,
        realm=ch.realm,
        nonce=ch.nonce,
        uri=uri,
        response=response,
        algorithm=ch.algorithm,
        cnonce=cnonce if qop or algo.session else None,
        opaque=ch.opaque,
        qop=qop,
        nc=nc if qop else None,
    )
    return str(creds)


@dataclass(slots=True)
class _Cached:
    challenge: Challenge
    nc: int = 0


def _realm_of(credentials: str) -> str | None:
    try:
        return parse_credentials(credentials).realm
    except AuthParseError:
        return None


class ClientAuthState:
    """Remembers the last challenge per realm so later requests reuse it with nc+1."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._cache: dict[str, _Cached] = {}

    def learn(self, challenge: str | Challenge, *, sent: Iterable[str] = ()) -> bool:
        """Store a challenge and say whether answering it is worth a retry.

        ``sent`` holds the (Proxy-)Authorization values of the request that drew the
        challenge. A challenge that is not stale, for a realm those credentials already
        answered, means they were refused (wrong password): False, so the caller stops.
        """
        ch = parse_challenge(challenge) if isinstance(challenge, str) else challenge
        _algorithm(ch.algorithm)
        old = self._cache.get(ch.realm)
        if old is not None and old.challenge.nonce == ch.nonce:
            self._cache[ch.realm] = _Cached(ch, old.nc)
        else:
            self._cache[ch.realm] = _Cached(ch)
        return ch.stale or not any(_realm_of(v) == ch.realm for v in sent)

    @property
    def realms(self) -> tuple[str, ...]:
        """Realms with a stored challenge, in the order learnt."""
        return tuple(self._cache)

    def authorization(
        self, realm: str, *, method: str, uri: str, cnonce: str, body: bytes = b""
    ) -> str:
        """Answer the stored challenge for ``realm`` with the next nonce-count."""
        cached = self._cache.get(realm)
        if cached is None:
            raise AuthError(f"no challenge stored for realm {realm!r}")
        cached.nc += 1
        return answer_challenge(
            cached.challenge,
            method=method,
            uri=uri,
            username=self.username,
            password=self.password,
            cnonce=cnonce,
            nc=cached.nc,
            body=body,
        )

    def forget(self, realm: str) -> None:
        """Drop the stored challenge for ``realm``."""
        self._cache.pop(realm, None)


def challenge_header(status: int) -> str:
    """The header carrying the challenge in a 401 or 407 (RFC 3261 §22.2, §22.3)."""
    return {401: "WWW-Authenticate", 407: "Proxy-Authenticate"}[status]


def credentials_header(status: int) -> str:
    """The header the retried request puts its credentials in, for a 401 or 407."""
    return {401: "Authorization", 407: "Proxy-Authorization"}[status]
