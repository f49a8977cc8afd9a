"""RFC 3261 §25 grammar fragments shared by the SIP parsers, plus ``ParseError``.

Covers the basic rules of §25.1 (token, quoted-string, escaped, LWS/SWS around separators),
the generic-param list used by §20 header fields and §19.1.1 URI parameters, and the
comma-splitting rule of §7.3.1 (``a, b`` is the same as two header lines) which must respect
quoted strings and ``<...>``.
"""

from __future__ import annotations

import re

from pypbx.errors import PbxError

__all__ = [
    "Params",
    "ParseError",
    "ascii_uint",
    "format_params",
    "get_param",
    "has_param",
    "is_token",
    "lower_param",
    "parse_params",
    "percent_decode",
    "percent_encode",
    "quote",
    "scan_quoted",
    "split_commas",
    "unquote",
]


class ParseError(PbxError):
    """A SIP message (or part of one) is malformed.

    ``status`` is the response a UAS should send (400, 413, 414, 416, 420, 505, 513 ...);
    ``reason`` is a short human text, suitable for the reason phrase or a log line.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


#: A parameter list: (name, value) pairs in wire order; ``None`` value for a bare flag.
#: Values are kept as written (a quoted-string keeps its quotes) so formatting round-trips.
Params = tuple[tuple[str, str | None], ...]

# §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")

# One header/URI parameter: SEMI pname [EQUAL pvalue], with SWS around ";" and "=" (§25.1).
# pvalue is token / host (incl. an IPv6 reference) / quoted-string.
_PARAM_RE = re.compile(
    r"""[ \t]*;[ \t]*
        ([A-Za-z0-9\-.!%*_+`'~]+)
        (?:[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^\s;,"?<>]+))?
        [ \t]*""",
    re.VERBOSE | re.DOTALL,
)
# The common case of a whole parameter list: no whitespace, no quoted values. When this
# matches, splitting on ";" and "=" yields exactly what _PARAM_RE would.
_PARAMS_FAST_RE = re.compile(r"""(?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[^\s;,"?<>]+)?)+""")
_HEX = "0123456789abcdefABCDEF"


def ascii_uint(text: str | bytes, limit: int) -> int | None:
    """``text`` as a non-negative decimal integer if it is 1+ ASCII digits and the value is
    at most ``limit`` (< 10**18); else ``None``. Safe on huge inputs (leading zeros are
    allowed, other long digit strings are refused before any int() conversion)."""
    if not text.isdigit() or not text.isascii():
        return None
    if len(text) > 18:
        text = text.lstrip(b"0" if isinstance(text, bytes) else "0")  # type: ignore[arg-type]
        if len(text) > 18:
            return None
        if not text:
            return 0
    value = int(text)
    return value if value <= limit else None


def is_token(text: str) -> bool:
    """True if ``text`` is a non-empty §25.1 token."""
    return _TOKEN_RE.fullmatch(text) is not None


def parse_params(text: str, pos: int = 0) -> Params:
    """Parse ``*(SEMI generic-param)`` from ``text[pos:]`` to the end of the string.

    Raises ``ParseError(400)`` on empty parameters (``;;``), bad names or trailing junk.
    """
    out: list[tuple[str, str | None]] = []
    if _PARAMS_FAST_RE.fullmatch(text, pos) is not None:
        for item in text[pos + 1 :].split(";"):
            name, eq, value = item.partition("=")
            out.append((name, value if eq else None))
        return tuple(out)
    end = len(text)
    while pos < end:
        m = _PARAM_RE.match(text, pos)
        if m is None:
            if text[pos:].strip(" \t") == "":
                break
            raise ParseError(f"malformed parameter near {text[pos : pos + 20]!r}")
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    return tuple(out)


def get_param(params: Params, name: str) -> str | None:
    """Value of parameter ``name`` (case-insensitive); ``None`` if absent or valueless."""
    lname = name.lower()
    for key, value in params:
        if key == lname or key.lower() == lname:
            return value
    return None


def lower_param(params: Params, lname: str) -> str | None:
    """:func:`get_param` for a name the caller already wrote in lowercase (``"branch"``)."""
    for key, value in params:
        if key == lname or key.lower() == lname:
            return value
    return None


def has_param(params: Params, name: str) -> bool:
    """True if parameter ``name`` (case-insensitive) is present, with or without a value."""
    lname = name.lower()
    for key, _ in params:  # noqa: SIM110  (a loop: no generator frame on the hot path)
        if key == lname or key.lower() == lname:
            return True
    return False


def format_params(params: Params) -> str:
    """``;name=value;flag`` for a parameter list (values are emitted as stored)."""
    return "".join([f";{k}" if v is None else f";{k}={v}" for k, v in params])


def quote(text: str) -> str:
    """A §25.1 quoted-string for ``text`` (backslash-escapes ``"`` and ``\\``)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(text: str) -> str:
    """Inverse of :func:`quote`; text that is not quoted is returned unchanged."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if "\\" not in inner:
            return inner
        out: list[str] = []
        it = iter(inner)
        for ch in it:
            out.append(next(it, "") if ch == "\\" else ch)
        return "".join(out)
    return text


def scan_quoted(text: str, pos: int) -> int:
    """Index just past the quoted-string that starts at ``text[pos] == '"'``.

    Raises ``ParseError(400)`` if the string is not terminated.
    """
    i = pos + 1
    end = len(text)
    while i < end:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise ParseError("unterminated quoted-string")


def split_commas(text: str) -> list[str]:
    """Split a header value on top-level commas (§7.3.1), ignoring commas inside quoted
    strings and ``<...>``. Elements are stripped; empty elements are kept (as "")."""
    if "," not in text:
        return [text.strip(" \t")]
    if '"' not in text and "<" not in text:
        return [part.strip(" \t") for part in text.split(",")]
    out: list[str] = []
    start = 0
    i = 0
    end = len(text)
    while i < end:
        ch = text[i]
        if ch == '"':
            i = scan_quoted(text, i)
            continue
        if ch == "<":
            close = text.find(">", i)
            if close < 0:
                raise ParseError("unterminated <...> in header value")
            i = close + 1
            continue
        if ch == ",":
            out.append(text[start:i].strip(" \t"))
            start = i + 1
        i += 1
    out.append(text[start:].strip(" \t"))
    return out


def percent_decode(text: str) -> str:
    """Undo §19.1.2 ``%HH`` escaping. Raises ``ParseError(400)`` on a malformed escape.

    Escaped octets are UTF-8 decoded; invalid UTF-8 is kept via surrogateescape so that
    :func:`percent_encode` restores the same octets.
    """
    if "%" not in text:
        return text
    raw = bytearray()
    i = 0
    end = len(text)
    while i < end:
        ch = text[i]
        if ch == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise ParseError(f"bad %-escape in {text!r}")
            raw.append(int(pair, 16))
            i += 3
        else:
            raw += ch.encode("utf-8", "surrogateescape")
            i += 1
    return raw.decode("utf-8", "surrogateescape")


def percent_encode(text: str, safe: frozenset[str]) -> str:
    """Escape every character of ``text`` not in ``safe`` as ``%HH`` (UTF-8 octets)."""
    if safe.issuperset(text):  # the usual case, decided in C
        return text
    out: list[str] = []
    for ch in text:
        if ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)
