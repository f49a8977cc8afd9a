"""Bytes → SIP message, in two stages: framing/structure, then optional deep validation.

RFC 3261 §7 (message structure, §7.3.1 line folding, §7.5 leading CRLFs), §18.3 (framing:
Content-Length, trailing datagram octets), §8.2.2 (SIP version → 505), §8.1.1 (the
mandatory header fields) and the robustness advice of RFC 4475 / RFC 5118.

``parse_message`` is the fuzzed surface: for any input it returns a ``Request`` or a
``Response``, or raises ``ParseError`` — nothing else. It checks what every layer needs
(start line, header syntax, Via/From/To/Call-ID/CSeq present and not duplicated, CSeq,
Max-Forwards, Content-Length) and leaves the rest to lazily parsed typed views.
``validate_message`` forces every typed view a UAS relies on, so that a request can be
answered with 400 before any processing starts; ``check_request`` adds the §8.2.2 UAS
checks (416 Unsupported URI Scheme, 420 Bad Extension).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

from pypbx.sip.abnf import ParseError, ascii_uint, is_token
from pypbx.sip.headers import (
    KEYS,
    SPELLED,
    UNIQUE_KEYS,
    Field,
    Headers,
    parse_cseq,
    parse_uint,
)
from pypbx.sip.message import Message, Request, Response

__all__ = [
    "DEFAULT_SCHEMES",
    "ParseError",
    "check_request",
    "parse_message",
    "unsupported_options",
    "validate_message",
]

_REQUIRED = ("via", "from", "to", "call-id", "cseq")
_SINGLE = UNIQUE_KEYS
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:")
_URI_BAD = frozenset('<>"\x7f') | frozenset(chr(c) for c in range(33))
MAX_URI_LENGTH = 4096


_USUAL_METHODS = (
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
)
_METHODS = {sys.intern(m): sys.intern(m) for m in _USUAL_METHODS}
# Request-URIs that passed _check_request_uri (the same few recur: the PBX's own address);
# emptied when full.
_GOOD_URIS: set[str] = set()
_GOOD_URIS_MAX = 2048
_MEMO_TEXT_MAX = 256  # longer ones are checked every time: the set stays small


def _check_request_uri(text: str) -> None:
    if len(text) > MAX_URI_LENGTH:
        raise ParseError("Request-URI too long", 414)
    m = _SCHEME_RE.match(text)
    if m is None:
        raise ParseError(f"bad Request-URI {text[:40]!r}")
    if not _URI_BAD.isdisjoint(text):
        raise ParseError("illegal character in Request-URI")
    scheme = m.group()[:-1].lower()
    if (scheme == "sip" or scheme == "sips") and "?" in text[text.rfind("@") + 1 :]:
        # RFC 4475 §3.1.2.11: URI headers make no sense in a Request-URI.
        raise ParseError("headers in SIP Request-URI")


def _unfold(lines: list[str]) -> dict[int, str]:
    """Join continuation lines (§7.3.1) in place; return the original wire text of each
    folded header, keyed by header index (line index - 1)."""
    raws: dict[int, str] = {}
    out = [lines[0]]
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and line:
            last = len(out) - 1
            if last == 0:
                raise ParseError("continuation line before the first header")
            raws[last - 1] = raws.get(last - 1, out[last]) + "\r\n" + line
            out[last] = out[last] + " " + line.strip(" \t")
        else:
            out.append(line)
    lines[:] = out
    return raws


def parse_message(data: bytes) -> Message:
    """Parse one message from a datagram (or one framed stream message).

    Octets after ``Content-Length`` are ignored (§18.3); without Content-Length the body is
    the rest of the datagram. LF-only line ends and a missing empty line after the headers
    are tolerated. Raises ``ParseError`` with the status a UAS should answer.
    """
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")  # §7.5: ignore CRLFs before the start line
    nl = data.find(b"\n")
    if nl <= 0:
        raise ParseError("no start line")
    sep = "\r\n" if data[nl - 1] == 13 else "\n"
    bsep = b"\r\n\r\n" if len(sep) == 2 else b"\n\n"
    end = data.find(bsep)
    if end < 0:
        head = data.rstrip(b"\r\n")
        body_start = len(data)
    else:
        head = data[:end]
        body_start = end + len(bsep)
    text = head.decode("utf-8", "surrogateescape")
    if len(sep) == 1:  # LF-only message (e.g. the RFC 5118 archive copies)
        text = text.replace("\r\n", "\n")
        bare_cr = "\r" in text
    lines = text.split(sep)
    breaks = len(lines) - 1
    if len(sep) == 2:
        bare_cr = text.count("\r") != breaks
    if bare_cr or text.count("\n") != breaks:
        # a lone CR/LF would end the line for some other parser: refuse to smuggle it
        raise ParseError("bare CR or LF in the header section")
    raws = _unfold(lines) if "\n " in text or "\n\t" in text else None

    fields: list[Field] = []
    append = fields.append
    first: dict[str, int] = {}
    dup: str | None = None
    keys = KEYS
    spelled = SPELLED
    for index, line in enumerate(lines[1:]):
        name, colon, value = line.partition(":")
        if not name or not colon:
            raise ParseError(f"header line without a colon: {line[:40]!r}")
        key = spelled.get(name)
        if key is None:
            key = keys.get(name.lower())
            if key is None:
                name = name.rstrip(" \t")
                lname = name.lower()
                key = keys.get(lname)
                if key is None:
                    if not is_token(name):
                        raise ParseError(f"bad header name {name[:40]!r}")
                    key = lname
        if key not in first:
            first[key] = index
        elif key in _SINGLE:
            dup = key
        append((key, name, value.strip(" \t"), line))

    if raws:
        for i, raw in raws.items():
            k, n, v, _ = fields[i]
            fields[i] = (k, n, v, raw)
    if dup is not None:
        raise ParseError(f"more than one {dup} header")
    for key in _REQUIRED:
        if key not in first:
            raise ParseError(f"missing {key} header")
    if not fields[first["call-id"]][2]:
        raise ParseError("empty Call-ID")
    cseq = parse_cseq(fields[first["cseq"]][2])
    views: dict[str, object] = {"cseq": cseq}
    pos = first.get("max-forwards")
    if pos is not None:
        views["max-forwards"] = parse_uint(fields[pos][2], "Max-Forwards", 255)
    headers = Headers.from_wire(fields, views, first)

    pos = first.get("content-length")
    rest = len(data) - body_start
    if pos is None:
        body = data[body_start:]
    else:
        text = fields[pos][2]
        length = ascii_uint(text, 2**31)
        if length is None:
            raise ParseError("malformed Content-Length")
        if length > rest:
            raise ParseError("body shorter than Content-Length")
        body = data[body_start : body_start + length]

    start = lines[0]
    if start.startswith("SIP/"):
        parts = start.split(" ", 2)
        if parts[0].upper() != "SIP/2.0":
            raise ParseError(f"unsupported version {parts[0][:20]!r}", 505)
        if len(parts) < 2:
            raise ParseError("malformed Status-Line")
        code = parts[1]
        if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] not in "123456":
            raise ParseError(f"bad status code {code[:20]!r}")
        return Response.from_wire(int(code), parts[2] if len(parts) == 3 else "", headers, body)

    parts = start.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise ParseError("malformed Request-Line")
    method, uri, version = parts
    if version != "SIP/2.0" and version.upper() != "SIP/2.0":
        if version[:4].upper() == "SIP/":
            raise ParseError(f"unsupported version {version[:20]!r}", 505)
        raise ParseError("malformed Request-Line")
    known = _METHODS.get(method)
    if known is not None:
        method = known  # the one interned string for each usual method
    elif not is_token(method):
        raise ParseError("bad method")
    if uri not in _GOOD_URIS:
        _check_request_uri(uri)
        if len(uri) <= _MEMO_TEXT_MAX:
            if len(_GOOD_URIS) >= _GOOD_URIS_MAX:
                _GOOD_URIS.clear()
            _GOOD_URIS.add(uri)
    if cseq.method != method:
        raise ParseError("CSeq method does not match the Request-Line")
    return Request.from_wire(method, uri, headers, body)


_DATE_RE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)
_MEDIA_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\s*/\s*[A-Za-z0-9\-.!%*_+`'~]+\s*(?:;.*)?", re.S)
_OPTION_HEADERS = ("require", "proxy-require", "supported", "unsupported")


def validate_message(msg: Message) -> None:
    """Parse every typed view a UAS/UAC depends on; raise ``ParseError(400)`` on the first
    malformed one. ``parse_message`` + ``validate_message`` is the strict reading of
    RFC 3261 that the RFC 4475 "invalid" verdicts ask for (§3.1.2 of RFC 4475)."""
    if isinstance(msg, Request):
        _ = msg.uri
    _ = msg.via
    _ = msg.from_
    _ = msg.to
    _ = msg.contact
    _ = msg.route
    _ = msg.record_route
    _ = msg.expires
    _ = msg.max_forwards
    date = msg.get("Date")
    if date is not None and _DATE_RE.fullmatch(date) is None:
        raise ParseError("malformed Date (RFC 1123 date in GMT required)")
    ctype = msg.get("Content-Type")
    if ctype is not None and _MEDIA_RE.fullmatch(ctype) is None:
        raise ParseError("malformed Content-Type")
    retry = msg.get("Retry-After")
    if retry is not None:
        parse_uint(retry.split("(", 1)[0].split(";", 1)[0], "Retry-After")
    for name in _OPTION_HEADERS:
        for value in msg.headers.get_all(name):
            if not is_token(value):
                raise ParseError(f"bad option tag in {name}")
    for value in msg.headers.get_all("warning"):
        code = value.split(" ", 1)[0]
        if len(code) != 3 or ascii_uint(code, 999) is None:
            raise ParseError("bad Warning code")
    for value in msg.headers.get_all("allow"):
        if not is_token(value):
            raise ParseError("bad method in Allow")


#: Request-URI schemes a pypbx UAS serves.
DEFAULT_SCHEMES = frozenset(("sip", "sips", "tel"))


def unsupported_options(request: Request, supported: Iterable[str]) -> list[str]:
    """Require option tags not in ``supported`` (case-insensitive), in order (§8.2.2.3);
    they go in the Unsupported header of the 420 response."""
    known = {tag.lower() for tag in supported}
    return [tag for tag in request.headers.get_all("require") if tag.lower() not in known]


def check_request(
    request: Request,
    *,
    schemes: Iterable[str] = DEFAULT_SCHEMES,
    supported: Iterable[str] = (),
) -> None:
    """The UAS checks of §8.2.2 that follow parsing: raise ``ParseError(416)`` if the
    Request-URI scheme is not served (§8.2.2.1), ``ParseError(420)`` if Require names an
    option tag not in ``supported`` (§8.2.2.3; the reason lists the tags). ACK and CANCEL
    are exempt from the Require check."""
    if request.uri.scheme not in {s.lower() for s in schemes}:
        raise ParseError(f"unsupported URI scheme {request.uri.scheme!r}", 416)
    if request.method in ("ACK", "CANCEL"):
        return
    missing = unsupported_options(request, supported)
    if missing:
        raise ParseError("unsupported extension: " + ", ".join(missing), 420)
