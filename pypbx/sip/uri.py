"""SIP/SIPS and tel URIs, name-addr values, and URI comparison.

RFC 3261 §19.1.1 (SIP URI components), §19.1.2 (escaping), §19.1.4 (URI comparison),
§20.10/§20.20/§20.39 name-addr / addr-spec forms, §25.1 ``absoluteURI``; RFC 3966 tel URIs;
RFC 5118 IPv6 references (kept in brackets, tolerant of the 3-colon ABNF bug).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from pypbx.sip.abnf import (
    Params,
    ParseError,
    ascii_uint,
    format_params,
    get_param,
    has_param,
    is_token,
    lower_param,
    parse_params,
    percent_decode,
    percent_encode,
    quote,
    unquote,
)

__all__ = [
    "AbsoluteUri",
    "NameAddr",
    "SipUri",
    "TelUri",
    "Uri",
    "parse_name_addr",
    "parse_uri",
    "uri_equal",
]

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_UNRESERVED = frozenset(_ALNUM + "-_.!~*'()")
# user = 1*( unreserved / escaped / user-unreserved ); user-unreserved = & = + $ , ; ? /
_USER_SAFE = _UNRESERVED | frozenset("&=+$,;?/")
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
_PASSWORD_SAFE = _UNRESERVED | frozenset("&=+$,")
# paramchar = param-unreserved / unreserved / escaped; param-unreserved = [ ] / : & + $
_PARAM_SAFE = _UNRESERVED | frozenset("[]/:&+$")
# hnv-unreserved = [ ] / ? : + $
_HEADER_SAFE = _UNRESERVED | frozenset("[]/?:+$")

# Character-class checks; "%" escapes are then checked by percent_decode.
_USER_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+")
_PASSWORD_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,%]*")
_PARAMCHARS_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|%[0-9A-Fa-f]{2})+")
_HEADERCHARS_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9.])?")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# Characters an opaque absoluteURI may contain (§25.1 uric plus "/" "?" "#" "[" "]").
_OPAQUE_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%;/?:@&=+$,\[\]#]*")


# The common SIP URI without escapes, password, IPv6 reference or URI headers, in one match:
# [user "@"] hostname [":" port] *(";" pname ["=" pvalue]). When it matches, the groups are
# exactly what the general path below would find (the user class has no "@", ";", "?" or
# ":", so the only "@" is the one rfind would pick).
_SIP_FAST_RE = re.compile(
    r"""(?:([A-Za-z0-9\-_.!~*'()&=+$,/]+)@)?
        ([A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9.])?)
        (?::([0-9]{1,5}))?
        ((?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+(?:=[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+)?)*)""",
    re.VERBOSE,
)


def _check_host(host: str) -> str:
    if _HOSTNAME_RE.fullmatch(host) is None and _IPV6_RE.fullmatch(host) is None:
        raise ParseError(f"bad host {host[:40]!r}")
    return host


def _parse_port(text: str) -> int:
    port = ascii_uint(text, 65535)
    if port is None:
        raise ParseError(f"bad port {text[:20]!r}")
    return port


def split_hostport(text: str) -> tuple[str, int | None]:
    """``host[:port]`` → (host, port). IPv6 references keep their brackets (RFC 5118)."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ParseError(f"unterminated IPv6 reference in {text!r}")
        host, rest = text[: close + 1], text[close + 1 :]
        if not rest:
            return _check_host(host), None
        if rest[0] != ":":
            raise ParseError(f"junk after IPv6 reference in {text!r}")
        return _check_host(host), _parse_port(rest[1:])
    host, colon, port = text.partition(":")
    if _HOSTNAME_RE.fullmatch(host) is None:
        raise ParseError(f"bad host {host[:40]!r}")
    return host, (_parse_port(port) if colon else None)


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (§19.1.1).

    ``user`` and ``password`` are stored unescaped (``%41`` → ``A``); ``host`` keeps the
    case it was written in and IPv6 brackets; ``params`` and ``headers`` keep wire order,
    with names and values stored unescaped.
    """

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a SIP/SIPS URI; raises ``ParseError(400)`` (``416`` for other schemes)."""
        uri = parse_uri(text)
        if not isinstance(uri, SipUri):
            raise ParseError(f"not a SIP URI: {text!r}", 416)
        return uri

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(percent_encode(self.user, _USER_SAFE))
            if self.password is not None:
                parts += (":", percent_encode(self.password, _PASSWORD_SAFE))
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts += (":", str(self.port))
        for name, value in self.params:
            parts += (";", percent_encode(name, _PARAM_SAFE))
            if value is not None:
                parts += ("=", percent_encode(value, _PARAM_SAFE))
        if self.headers:
            parts.append("?")
            parts.append(
                "&".join(
                    percent_encode(k, _HEADER_SAFE) + "=" + percent_encode(v, _HEADER_SAFE)
                    for k, v in self.headers
                )
            )
        return "".join(parts)

    def param(self, name: str) -> str | None:
        """Value of URI parameter ``name`` (case-insensitive)."""
        return get_param(self.params, name)

    def has_param(self, name: str) -> bool:
        """True if URI parameter ``name`` is present (``;lr`` has no value)."""
        return has_param(self.params, name)

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lowercased."""
        value = self.param("transport")
        return value.lower() if value is not None else None

    @property
    def lr(self) -> bool:
        """True for a loose-routing URI (``;lr``, §19.1.1)."""
        return self.has_param("lr")

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter."""
        return self.param("maddr")

    @property
    def secure(self) -> bool:
        """True for ``sips:``."""
        return self.scheme == "sips"

    def with_params(self, **changes: str | None) -> SipUri:
        """A copy with parameters set (``None`` value = flag); names use ``_`` for ``-``."""
        params = list(self.params)
        for key, value in changes.items():
            name = key.replace("_", "-")
            params = [p for p in params if p[0].lower() != name.lower()]
            params.append((name, value))
        return replace(self, params=tuple(params))

    def without_params(self, *names: str) -> SipUri:
        """A copy without the named parameters."""
        drop = {n.lower() for n in names}
        return replace(self, params=tuple(p for p in self.params if p[0].lower() not in drop))


@dataclass(frozen=True, slots=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): the number as written and its parameters."""

    number: str
    params: Params = ()

    scheme = "tel"

    @property
    def is_global(self) -> bool:
        """True for a global number (``+`` prefix)."""
        return self.number.startswith("+")

    @property
    def digits(self) -> str:
        """The number without visual separators (``-``, ``.``, ``(``, ``)``)."""
        return "".join(ch for ch in self.number if ch not in "-.()")

    def param(self, name: str) -> str | None:
        """Value of parameter ``name`` (case-insensitive)."""
        return get_param(self.params, name)

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other URI (``http:``, ``isbn:``, ``urn:``...): scheme plus opaque remainder."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | TelUri | AbsoluteUri


# Parsed values by their text. URIs and name-addrs are immutable and the same ones recur
# all the time (the PBX's own address in every Request-URI and To, each phone's Contact),
# so a bounded memo saves parsing them again. It is emptied when full: made-up values
# cannot grow it, they only make it miss.
_MEMO_MAX = 2048
_MEMO_TEXT_MAX = 256  # longer values are parsed every time: the memo stays small
_SIP_MEMO: dict[str, SipUri] = {}
_NAME_ADDR_MEMO: dict[str, NameAddr] = {}


def _sip_memo(rest: str) -> SipUri:
    """``_parse_sip("sip", rest)`` through the memo."""
    uri = _SIP_MEMO.get(rest)
    if uri is None:
        uri = _parse_sip("sip", rest)
        if len(rest) > _MEMO_TEXT_MAX:
            return uri
        if len(_SIP_MEMO) >= _MEMO_MAX:
            _SIP_MEMO.clear()
        _SIP_MEMO[rest] = uri
    return uri


def parse_uri(text: str) -> Uri:
    """Parse any URI; SIP/SIPS and tel get structure, other schemes stay opaque.

    Raises ``ParseError(400)`` on malformed input (whitespace, ``<>``, bad escapes, bad
    host or port; an IPv6 address must be in brackets, RFC 5118 §4.2).
    """
    if text.startswith("sip:"):
        return _sip_memo(text[4:])
    colon = text.find(":")
    if colon <= 0:
        raise ParseError(f"URI without scheme: {text[:40]!r}")
    scheme = text[:colon]
    if _SCHEME_RE.fullmatch(scheme) is None:
        raise ParseError(f"bad URI scheme {scheme[:20]!r}")
    scheme = scheme.lower()
    rest = text[colon + 1 :]
    if scheme == "sip" or scheme == "sips":
        return _parse_sip(scheme, rest)
    if scheme == "tel":
        return _parse_tel(rest)
    if not rest or _OPAQUE_RE.fullmatch(rest) is None:
        raise ParseError(f"bad {scheme}: URI")
    return AbsoluteUri(scheme, rest)


def _parse_sip(scheme: str, rest: str) -> SipUri:
    m = _SIP_FAST_RE.fullmatch(rest)
    if m is not None:
        user, host, port_text, ptext = m.groups()
        port = None if port_text is None else int(port_text)
        if port is None or port <= 65535:
            params: Params = ()
            if ptext:
                out: list[tuple[str, str | None]] = []
                for item in ptext[1:].split(";"):
                    name, eq, value = item.partition("=")
                    out.append((name, value if eq else None))
                params = tuple(out)
            return SipUri(host, user, None, port, params, (), scheme)
    return _parse_sip_general(scheme, rest)


def _parse_sip_general(scheme: str, rest: str) -> SipUri:
    at = rest.rfind("@")
    user: str | None = None
    password: str | None = None
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        u, colon, pw = userinfo.partition(":")
        if _USER_RE.fullmatch(u) is None:
            raise ParseError(f"bad user part {u[:40]!r}")
        user = percent_decode(u) if "%" in u else u
        if colon:
            if _PASSWORD_RE.fullmatch(pw) is None:
                raise ParseError("bad password in URI")
            password = percent_decode(pw) if "%" in pw else pw
    headers: tuple[tuple[str, str], ...] = ()
    qmark = rest.find("?")
    if qmark >= 0:
        headers = _parse_uri_headers(rest[qmark + 1 :])
        rest = rest[:qmark]
    semi = rest.find(";")
    params: Params = ()
    if semi >= 0:
        params = _parse_uri_params(rest[semi + 1 :])
        rest = rest[:semi]
    if rest[:1] == "[":
        host, port = split_hostport(rest)
    else:  # inline of split_hostport's common case
        host, colon, port_text = rest.partition(":")
        if _HOSTNAME_RE.fullmatch(host) is None:
            raise ParseError(f"bad host {host[:40]!r}")
        port = _parse_port(port_text) if colon else None
    return SipUri(host, user, password, port, params, headers, scheme)


def _parse_uri_params(text: str) -> Params:
    out: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if _PARAMCHARS_RE.fullmatch(name) is None:
            raise ParseError(f"bad URI parameter {item[:40]!r}")
        if eq:
            if _PARAMCHARS_RE.fullmatch(value) is None:
                raise ParseError(f"bad URI parameter value {item[:40]!r}")
            out.append((percent_decode(name), percent_decode(value)))
        else:
            out.append((percent_decode(name), None))
    return tuple(out)


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if not eq or not name or _HEADERCHARS_RE.fullmatch(name) is None:
            raise ParseError(f"bad URI header {item[:40]!r}")
        if _HEADERCHARS_RE.fullmatch(value) is None:
            raise ParseError(f"bad URI header value {item[:40]!r}")
        out.append((percent_decode(name), percent_decode(value)))
    return tuple(out)


def _parse_tel(rest: str) -> TelUri:
    number, semi, ptext = rest.partition(";")
    if not number or any(ch.isspace() for ch in rest) or _OPAQUE_RE.fullmatch(rest) is None:
        raise ParseError("bad tel: URI")
    params: Params = ()
    if semi:
        params = parse_params(";" + ptext)
    return TelUri(number, params)


# §19.1.4: these URI parameters must match if present in either URI.
_STRICT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def uri_equal(a: Uri, b: Uri) -> bool:
    """URI equivalence per RFC 3261 §19.1.4 (and RFC 3966 §4 for tel URIs).

    User and password compare case-sensitively after unescaping, host case-insensitively;
    an absent port differs from an explicit default; ``user``, ``ttl``, ``method``,
    ``maddr`` and ``transport`` must match when present in either, other parameters only
    when present in both; URI headers must all match.
    """
    if isinstance(a, SipUri) and isinstance(b, SipUri):
        if a.scheme != b.scheme or a.user != b.user or a.password != b.password:
            return False
        if a.host.lower() != b.host.lower() or a.port != b.port:
            return False
        pa = {k.lower(): v for k, v in a.params}
        pb = {k.lower(): v for k, v in b.params}
        for name in _STRICT_PARAMS:
            if (name in pa) != (name in pb):
                return False
        for name in pa.keys() & pb.keys():
            va, vb = pa[name], pb[name]
            if (va is None) != (vb is None):
                return False
            if va is not None and vb is not None and va.lower() != vb.lower():
                return False
        ha = sorted((k.lower(), v) for k, v in a.headers)
        hb = sorted((k.lower(), v) for k, v in b.headers)
        return ha == hb
    if isinstance(a, TelUri) and isinstance(b, TelUri):
        if a.digits.lower() != b.digits.lower():
            return False
        return {(k.lower(), (v or "").lower()) for k, v in a.params} == {
            (k.lower(), (v or "").lower()) for k, v in b.params
        }
    if isinstance(a, AbsoluteUri) and isinstance(b, AbsoluteUri):
        return a.scheme == b.scheme and a.opaque == b.opaque
    return False


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A name-addr or addr-spec with header parameters (From, To, Contact, Route ...).

    ``display`` is the unquoted display name (``None`` if absent); ``params`` are the
    header parameters after the URI (``tag``, ``expires``, ``q`` ...), stored as written.
    """

    uri: Uri
    display: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse one name-addr / addr-spec header value (see :func:`parse_name_addr`)."""
        return parse_name_addr(text)

    @property
    def tag(self) -> str | None:
        """The ``tag`` header parameter (§19.3)."""
        return lower_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        """Value of header parameter ``name`` (case-insensitive)."""
        return get_param(self.params, name)

    def with_tag(self, tag: str) -> NameAddr:
        """A copy with ``tag`` set (replacing any existing tag)."""
        return self.with_param("tag", tag)

    def with_param(self, name: str, value: str | None) -> NameAddr:
        """A copy with header parameter ``name`` set (``None`` = flag)."""
        params = tuple(p for p in self.params if p[0].lower() != name.lower())
        return replace(self, params=(*params, (name, value)))

    def __str__(self) -> str:
        if self.display is None:
            head = ""
        elif self.display and all(is_token(w) for w in self.display.split(" ")):
            head = self.display + " "
        else:
            head = quote(self.display) + " "
        return f"{head}<{self.uri}>{format_params(self.params)}"


_QUOTED_RE = re.compile(r'("(?:[^"\\]|\\.)*")[ \t]*', re.DOTALL)


# An unquoted display name is *(token LWS) (§25.1). Liberal reading: non-ASCII (UTF-8)
# letters are accepted too, as phones send them; separators such as "," or "@" are not
# (RFC 4475 §3.1.2.15).
_DISPLAY_WORD_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\u0080-\U0010ffff]+")


def _check_display_tokens(text: str) -> str | None:
    words = text.split()
    if not words:
        return None
    for word in words:
        if _DISPLAY_WORD_RE.fullmatch(word) is None:
            raise ParseError(f"bad display name {text[:40]!r}")
    return " ".join(words)


# The usual name-addr in one match: an optional quoted display name without escapes or an
# ASCII token display name, ``<sip:...>`` without whitespace, then header parameters
# without whitespace or quotes. Anything else takes the general path.
_NAME_ADDR_FAST_RE = re.compile(
    r"""(?:"([^"\\]*)"[ \t]*|([A-Za-z0-9\-.!%*_+`'~]+(?:\ [A-Za-z0-9\-.!%*_+`'~]+)*)\ +)?
        <sip:([^>\s]+)>
        ((?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[^\s;,"?<>]+)?)*)""",
    re.VERBOSE,
)


def parse_name_addr(text: str) -> NameAddr:
    """Parse ``( name-addr / addr-spec ) *( SEMI generic-param )``.

    In the addr-spec form (no ``<>``) everything after the first ``;`` is a header
    parameter, and the URI may not contain ``?`` or ``,`` (§20.10). Whitespace inside
    ``<...>`` and unterminated quotes are errors (RFC 4475 §3.1.2.6, §3.1.2.14).
    """
    addr = _NAME_ADDR_MEMO.get(text)
    if addr is None:
        addr = _parse_name_addr(text)
        if len(text) > _MEMO_TEXT_MAX:
            return addr
        if len(_NAME_ADDR_MEMO) >= _MEMO_MAX:
            _NAME_ADDR_MEMO.clear()
        _NAME_ADDR_MEMO[text] = addr
    return addr


def _parse_name_addr(text: str) -> NameAddr:
    text = text.strip(" \t")
    m = _NAME_ADDR_FAST_RE.fullmatch(text)
    if m is not None:
        quoted, words, rest, ptext = m.groups()
        params: Params = ()
        if ptext:
            if ptext.startswith(";tag=") and ptext.find(";", 5) < 0:
                params = (("tag", ptext[5:]),)  # the usual From/To
            else:
                out: list[tuple[str, str | None]] = []
                for item in ptext[1:].split(";"):
                    name, eq, value = item.partition("=")
                    out.append((name, value if eq else None))
                params = tuple(out)
        return NameAddr(_sip_memo(rest), quoted if words is None else words, params)
    display: str | None
    if text.startswith('"'):
        m = _QUOTED_RE.match(text)
        if m is None:
            raise ParseError("unterminated quoted-string")
        display = unquote(m.group(1))
        lt = m.end()
        if text[lt : lt + 1] != "<":
            raise ParseError("quoted display name not followed by <URI>")
    else:
        lt = text.find("<")
        if lt < 0:
            return _parse_addr_spec(text)
        display = _check_display_tokens(text[:lt]) if lt else None
    gt = text.find(">", lt)
    if gt < 0:
        raise ParseError("unterminated <URI>")
    inner = text[lt + 1 : gt]
    if not inner or inner[0].isspace() or inner[-1].isspace():
        raise ParseError("whitespace inside <URI>")
    params = parse_params(text, gt + 1) if gt + 1 < len(text) else ()
    return NameAddr(parse_uri(inner), display, params)


def _parse_addr_spec(text: str) -> NameAddr:
    semi = text.find(";")
    uri_text = (text if semi < 0 else text[:semi]).rstrip(" \t")
    if "?" in uri_text or "," in uri_text or '"' in uri_text:
        raise ParseError("URI with ? or , must be enclosed in <> (§20.10)")
    if any(ch.isspace() for ch in uri_text):
        raise ParseError("whitespace in addr-spec")
    params = parse_params(text, semi) if semi >= 0 else ()
    return NameAddr(parse_uri(uri_text), None, params)
