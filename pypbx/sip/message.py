"""SIP requests and responses: the message model, serialization and response building.

RFC 3261 §7 (message format: start line, headers, body), §8.1.1 (the header fields a UAC
request must carry) and §8.2.6 (building a response from a request). A message read from
the wire keeps its header text; typed accessors (``via``, ``cseq``, ``from_`` ...) parse
on first use and are cached until the header changes. Typed accessors raise
``ParseError`` (status 400) if the underlying header is missing or malformed.
"""

from __future__ import annotations

from collections.abc import Iterable

from pypbx.sip.abnf import ParseError, is_token, split_commas
from pypbx.sip.headers import (
    Contact,
    CSeq,
    Field,
    Headers,
    Via,
    new_field,
    parse_contact_list,
    parse_cseq,
    parse_name_addr_list,
    parse_uint,
    parse_via_list,
)
from pypbx.sip.status import reason_phrase
from pypbx.sip.uri import NameAddr, Uri, parse_name_addr, parse_uri

__all__ = ["Message", "Request", "Response", "build_response", "make_request"]

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"


def _only(values: list[str], name: str) -> str:
    if not values:
        raise ParseError(f"missing {name} header")
    if len(values) > 1:
        raise ParseError(f"more than one {name} header")
    return values[0]


def _cseq_view(values: list[str]) -> CSeq:
    return parse_cseq(_only(values, "CSeq"))


def _from_view(values: list[str]) -> NameAddr:
    return parse_name_addr(values[0] if len(values) == 1 else _only(values, "From"))


def _to_view(values: list[str]) -> NameAddr:
    return parse_name_addr(values[0] if len(values) == 1 else _only(values, "To"))


def _max_forwards_view(values: list[str]) -> int | None:
    return parse_uint(_only(values, "Max-Forwards"), "Max-Forwards", 255) if values else None


def _expires_view(values: list[str]) -> int | None:
    return parse_uint(_only(values, "Expires"), "Expires") if values else None


class _Base:
    """What requests and responses share: headers, body and the typed header views."""

    __slots__ = ("body", "headers")

    headers: Headers
    body: bytes

    def _start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """Wire form. Content-Length is recomputed from ``body``; other fields that were
        read from the wire and not changed are written back exactly."""
        lines = [self._start_line(), *self.headers.lines(len(self.body)), "", ""]
        return "\r\n".join(lines).encode(_ENCODING, _ERRORS) + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()

    # -- plain header access (delegates to the multimap) -------------------------------

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of header ``name``."""
        return self.headers.get(name, default)

    def get_all(self, name: str) -> list[str]:
        """All values of header ``name`` (list headers split on commas)."""
        return self.headers.get_all(name)

    def set(self, name: str, value: str) -> None:
        """Replace all ``name`` fields with one (see :meth:`Headers.set`)."""
        self.headers.set(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a ``name`` field."""
        self.headers.add(name, value)

    def insert_first(self, name: str, value: str) -> None:
        """Insert a field before the first ``name`` field (push a Via / Record-Route)."""
        self.headers.insert_first(name, value)

    def remove(self, name: str) -> int:
        """Remove all ``name`` fields; return how many lines were removed."""
        return self.headers.remove(name)

    # -- typed views ------------------------------------------------------------------

    @property
    def via(self) -> list[Via]:
        """All Via values, topmost first (§20.42)."""
        return list(self.headers.parsed("via", parse_via_list))

    @property
    def top_via(self) -> Via:
        """The topmost Via (the transaction's own, §17.1.3/§17.2.3)."""
        vias: tuple[Via, ...] = self.headers.parsed("via", parse_via_list)
        if not vias:
            raise ParseError("missing Via header")
        return vias[0]

    @property
    def call_id(self) -> str:
        """Call-ID value (§20.8)."""
        value = self.headers.get("call-id")
        if not value:
            raise ParseError("missing Call-ID header")
        return value

    @property
    def cseq(self) -> CSeq:
        """CSeq number and method (§20.16)."""
        result: CSeq = self.headers.parsed("cseq", _cseq_view)
        return result

    @property
    def from_(self) -> NameAddr:
        """From (§20.20); ``from_.tag`` is the local/remote tag."""
        result: NameAddr = self.headers.parsed("from", _from_view)
        return result

    @property
    def to(self) -> NameAddr:
        """To (§20.39)."""
        result: NameAddr = self.headers.parsed("to", _to_view)
        return result

    @property
    def contact(self) -> list[Contact]:
        """Contact values (§20.10); a wildcard is :data:`pypbx.sip.headers.STAR`."""
        return list(self.headers.parsed("contact", parse_contact_list))

    @property
    def route(self) -> list[NameAddr]:
        """Route values, in order (§20.34)."""
        return list(self.headers.parsed("route", parse_name_addr_list))

    @property
    def record_route(self) -> list[NameAddr]:
        """Record-Route values, in order (§20.30)."""
        return list(self.headers.parsed("record-route", parse_name_addr_list))

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards (0..255), ``None`` if absent (§20.22)."""
        result: int | None = self.headers.parsed("max-forwards", _max_forwards_view)
        return result

    @property
    def expires(self) -> int | None:
        """Expires in seconds, ``None`` if absent (§20.19)."""
        result: int | None = self.headers.parsed("expires", _expires_view)
        return result

    @property
    def content_type(self) -> str | None:
        """Media type of the body, lowercased, parameters dropped (``application/sdp``);
        the full value is ``get("Content-Type")``."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower()

    def option_tags(self, name: str) -> list[str]:
        """Option tags of Require / Proxy-Require / Supported / Unsupported, lowercased."""
        return [v.lower() for v in self.headers.get_all(name)]


class Request(_Base):
    """A SIP request. ``uri`` may be given as a parsed URI or as text (parsed lazily)."""

    __slots__ = ("_uri", "_uri_text", "method")

    def __init__(
        self,
        method: str,
        uri: Uri | str,
        headers: Headers | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        if not is_token(method):
            raise ValueError(f"method is not a token: {method!r}")
        if isinstance(uri, str) and (not uri or any(c in uri for c in " \t\r\n")):
            raise ValueError(f"bad Request-URI text {uri!r}")
        self.method = method
        if isinstance(uri, str):
            self._uri: Uri | None = None
            self._uri_text = uri
        else:
            self._uri = uri
            self._uri_text = str(uri)
        self.headers = headers if isinstance(headers, Headers) else Headers(headers or ())
        self.body = body

    @classmethod
    def from_wire(cls, method: str, uri_text: str, headers: Headers, body: bytes) -> Request:
        """For parsers: build without checks; the URI text is parsed on first access."""
        obj = cls.__new__(cls)
        obj.method = method
        obj._uri = None
        obj._uri_text = uri_text
        obj.headers = headers
        obj.body = body
        return obj

    @property
    def uri(self) -> Uri:
        """The Request-URI, parsed on first access (``ParseError`` 400 if malformed)."""
        if self._uri is None:
            self._uri = parse_uri(self._uri_text)
        return self._uri

    @uri.setter
    def uri(self, value: Uri) -> None:
        self._uri = value
        self._uri_text = str(value)

    @property
    def uri_text(self) -> str:
        """The Request-URI exactly as it will be written."""
        return self._uri_text

    def _start_line(self) -> str:
        return f"{self.method} {self._uri_text} SIP/2.0"

    def copy(self) -> Request:
        """An independent copy (headers copied, URI and body shared: they are immutable)."""
        new = Request.from_wire(self.method, self._uri_text, self.headers.copy(), self.body)
        new._uri = self._uri
        return new

    def __repr__(self) -> str:
        return f"<Request {self.method} {self._uri_text} ({len(self.headers)} headers)>"


class Response(_Base):
    """A SIP response; ``reason`` defaults to the standard phrase for ``status``."""

    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        if not 100 <= status <= 699:
            raise ValueError(f"status {status} out of range")
        if reason is not None and ("\r" in reason or "\n" in reason):
            raise ValueError("CR/LF in reason phrase")
        self.status = int(status)
        self.reason = reason_phrase(status) if reason is None else reason
        self.headers = headers if isinstance(headers, Headers) else Headers(headers or ())
        self.body = body

    @classmethod
    def from_wire(cls, status: int, reason: str, headers: Headers, body: bytes) -> Response:
        """For parsers: build without checks."""
        obj = cls.__new__(cls)
        obj.status = status
        obj.reason = reason
        obj.headers = headers
        obj.body = body
        return obj

    @property
    def is_provisional(self) -> bool:
        """1xx."""
        return self.status < 200

    @property
    def is_final(self) -> bool:
        """2xx-6xx."""
        return self.status >= 200

    def _start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def copy(self) -> Response:
        """An independent copy."""
        return Response.from_wire(self.status, self.reason, self.headers.copy(), self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} ({len(self.headers)} headers)>"


Message = Request | Response


#: The fields a response copies from its request after the Via fields (§8.2.6.2), by key,
#: with the spelling the response uses.
_COPIED = {"from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to ``request`` per §8.2.6.2: Via (all, same order), From, To, Call-ID and
    CSeq are copied; ``to_tag`` is added to To unless it already has a tag (§8.2.6.2, a
    100 Trying should pass none). A 100 copies Timestamp (§8.2.6.1). ``headers`` are
    appended after the copied fields."""
    vias: list[Field] = []
    first: dict[str, Field] = {}
    for key, _, value, _ in request.headers.fields():
        if key == "via":
            # values read or set earlier were checked then: copy them without a new check
            if "," in value:
                vias.extend(("via", "Via", v.strip(), None) for v in split_commas(value) if v)
            elif value:
                vias.append(("via", "Via", value.strip(), None))
        elif key in _COPIED and key not in first:
            first[key] = (key, _COPIED[key], value.strip(), None)
    fields = vias
    for key in _COPIED:
        field = first.get(key)
        if field is None:
            continue
        if key == "to" and to_tag is not None and request.to.tag is None:
            field = new_field("To", f"{field[2]};tag={to_tag}")
        fields.append(field)
    if status == 100:
        stamp = request.headers.get("timestamp")
        if stamp is not None:
            fields.append(new_field("Timestamp", stamp))
    for name, value in headers:
        fields.append(new_field(name, value))
    out = Headers.from_wire(fields)
    return Response(status, reason, out, body)


def make_request(
    method: str,
    uri: Uri | str,
    *,
    from_: NameAddr | str,
    to: NameAddr | str,
    call_id: str,
    cseq: int,
    via: Via | str,
    max_forwards: int = 70,
    contact: NameAddr | str | None = None,
    route: Iterable[NameAddr | str] = (),
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """A new UAC request with the §8.1.1 mandatory header fields, in the usual order:
    Via, Max-Forwards, Route, From, To, Call-ID, CSeq, Contact, extra ``headers``,
    Content-Type. The caller supplies tags, branch and Call-ID (from its injected rng)."""
    out = Headers()
    out.add("Via", str(via))
    out.add("Max-Forwards", str(max_forwards))
    for hop in route:
        out.add("Route", str(hop))
    out.add("From", str(from_))
    out.add("To", str(to))
    out.add("Call-ID", call_id)
    out.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        out.add("Contact", str(contact))
    for name, value in headers:
        out.add(name, value)
    if content_type is not None:
        out.add("Content-Type", content_type)
    return Request(method, uri, out, body)
