"""Header fields: the multimap, the registry of known names, and typed header values.

RFC 3261 §7.3 (header field format, compact forms §7.3.3, comma-joined values §7.3.1)
and §20 (the individual header fields). Values are kept as written so that a message is
re-serialized byte-exact; typed views (Via list, CSeq, name-addr ...) are parsed on first
access and cached until the header is changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

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
    split_commas,
)
from pypbx.sip.uri import NameAddr, parse_name_addr, split_hostport

__all__ = [
    "KEYS",
    "SPELLED",
    "STAR",
    "UNIQUE_KEYS",
    "CSeq",
    "Contact",
    "Field",
    "HeaderSpec",
    "Headers",
    "Star",
    "Via",
    "canonical_name",
    "header_spec",
    "new_field",
    "parse_contact_list",
    "parse_cseq",
    "parse_name_addr_list",
    "parse_uint",
    "parse_via_list",
    "register_header",
]


@dataclass(frozen=True, slots=True)
class HeaderSpec:
    """What pypbx knows about a header name: canonical spelling, compact form (§7.3.3),
    and whether a value is a comma-separated list (§7.3.1)."""

    name: str
    compact: str | None = None
    multi: bool = False


_REGISTRY: dict[str, HeaderSpec] = {}

#: Lowercase name or compact form → lowercase canonical key (``"v"`` → ``"via"``), for
#: hot loops that cannot afford a function call per header. Unknown names are not in it.
KEYS: dict[str, str] = {}


# name as given by code → (lookup key, canonical spelling), for names already checked to be
# tokens; bounded so that names made up at run time cannot grow it without limit.
_NAMES: dict[str, tuple[str, str]] = {}
_NAMES_MAX = 1024


#: Names as they are usually written (canonical spelling, compact form in either case) →
#: lowercase key, so that a parser can skip ``lower()`` for them; other spellings go
#: through ``KEYS``.
SPELLED: dict[str, str] = {}


def register_header(spec: HeaderSpec) -> HeaderSpec:
    """Add a header to the registry (keyed by lowercase name and compact form); messages
    parsed afterwards use its canonical key, compact form and list-ness."""
    key = spec.name.lower()
    _NAMES.clear()
    _REGISTRY[key] = spec
    KEYS[key] = key
    SPELLED[spec.name] = key
    SPELLED[key] = key
    if spec.compact:
        _REGISTRY[spec.compact.lower()] = spec
        KEYS[spec.compact.lower()] = key
        SPELLED[spec.compact.lower()] = key
        SPELLED[spec.compact.upper()] = key
    return spec


for _name, _compact, _multi in (
    ("Accept", None, True),
    ("Accept-Encoding", None, True),
    ("Accept-Language", None, True),
    ("Accept-Contact", "a", True),
    ("Alert-Info", None, True),
    ("Allow", None, True),
    ("Allow-Events", "u", True),
    ("Authentication-Info", None, False),
    ("Authorization", None, False),
    ("Call-ID", "i", False),
    ("Call-Info", None, True),
    ("Contact", "m", True),
    ("Content-Disposition", None, False),
    ("Content-Encoding", "e", True),
    ("Content-Language", None, True),
    ("Content-Length", "l", False),
    ("Content-Type", "c", False),
    ("CSeq", None, False),
    ("Date", None, False),
    ("Error-Info", None, True),
    ("Event", "o", False),
    ("Expires", None, False),
    ("From", "f", False),
    ("Identity", "y", False),
    ("Identity-Info", "n", False),
    ("In-Reply-To", None, True),
    ("Max-Forwards", None, False),
    ("Min-Expires", None, False),
    ("Min-SE", None, False),
    ("MIME-Version", None, False),
    ("Organization", None, False),
    ("P-Asserted-Identity", None, True),
    ("P-Preferred-Identity", None, True),
    ("Path", None, True),
    ("Priority", None, False),
    ("Privacy", None, False),
    ("Proxy-Authenticate", None, False),
    ("Proxy-Authorization", None, False),
    ("Proxy-Require", None, True),
    ("RAck", None, False),
    ("Reason", None, True),
    ("Record-Route", None, True),
    ("Refer-To", "r", False),
    ("Referred-By", "b", False),
    ("Reject-Contact", "j", True),
    ("Replaces", None, False),
    ("Reply-To", None, False),
    ("Request-Disposition", "d", True),
    ("Require", None, True),
    ("Retry-After", None, False),
    ("Route", None, True),
    ("RSeq", None, False),
    ("Server", None, False),
    ("Service-Route", None, True),
    ("Session-Expires", "x", False),
    ("Subject", "s", False),
    ("Subscription-State", None, False),
    ("Supported", "k", True),
    ("Timestamp", None, False),
    ("To", "t", False),
    ("Unsupported", None, True),
    ("User-Agent", None, False),
    ("Via", "v", True),
    ("Warning", None, True),
    ("WWW-Authenticate", None, False),
):
    register_header(HeaderSpec(_name, _compact, _multi))


def header_spec(name: str) -> HeaderSpec | None:
    """Registry entry for ``name`` (any case, long or compact form)."""
    return _REGISTRY.get(name.lower())


def canonical_name(name: str) -> str:
    """``"v"`` → ``"Via"``, ``"call-id"`` → ``"Call-ID"``; unknown names are unchanged."""
    spec = _REGISTRY.get(name.lower())
    return spec.name if spec is not None else name


def header_key(name: str) -> str:
    """The lowercase lookup key of a header name (compact forms map to the long form)."""
    lname = name.lower()
    return KEYS.get(lname, lname)


_MISSING = object()

#: Header keys a message may carry at most once (the parser refuses duplicates, §7.3.1
#: allows only list headers to repeat).
UNIQUE_KEYS = frozenset(("from", "to", "call-id", "cseq", "max-forwards", "content-length"))

# A stored field: (key, name as written, value (unfolded, stripped), raw wire text or None).
Field = tuple[str, str, str, str | None]


def new_field(name: str, value: str) -> Field:
    """A field set by code (not read from the wire): ``ValueError`` for a name that is not
    a token or a value with CR or LF (it would forge header lines)."""
    names = _NAMES.get(name)
    if names is None:
        if not is_token(name):
            raise ValueError(f"bad header name {name!r}")
        names = (header_key(name), canonical_name(name))
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[name] = names
    if "\r" in value or "\n" in value:
        raise ValueError(f"CR/LF in value of header {name}")
    return (names[0], names[1], value.strip(), None)


class Headers:
    """An ordered multimap of header fields with case-insensitive, compact-aware names.

    Fields read from the wire keep their exact text and are written back unchanged unless
    modified. ``get``/``get_all`` return strings; typed views are cached per header name.
    """

    __slots__ = ("_cache", "_fields", "_first")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[Field] = [new_field(n, v) for n, v in fields]
        self._cache: dict[str, Any] = {}
        # key -> index of its first field, as a parser found them; None once changed
        self._first: dict[str, int] | None = None

    @classmethod
    def from_wire(
        cls,
        fields: list[Field],
        views: dict[str, Any] | None = None,
        first: dict[str, int] | None = None,
    ) -> Headers:
        """For parsers: adopt ``fields`` as they are (no checks), with typed ``views``
        already computed (keyed by lowercase header key). ``first`` maps each key to the
        index of its first field; the parser vouches that keys in :data:`UNIQUE_KEYS`
        occur at most once, so their values are found without a scan."""
        obj = cls.__new__(cls)
        obj._fields = fields
        obj._cache = {} if views is None else views
        obj._first = first
        return obj

    def copy(self) -> Headers:
        """An independent copy (wire text is kept)."""
        return Headers.from_wire(list(self._fields))

    def __len__(self) -> int:
        return len(self._fields)

    def fields(self) -> list[Field]:
        """The stored fields (key, name as written, value, raw wire text or ``None``), in
        order. This is the live list, for fast read-only passes: do not change it."""
        return self._fields

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """(name as written, value) for every field line, in order."""
        return ((f[1], f[2]) for f in self._fields)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        return any(f[0] == key for f in self._fields)

    def __repr__(self) -> str:
        return f"Headers({[(f[1], f[2]) for f in self._fields]!r})"

    def count(self, name: str) -> int:
        """Number of field lines named ``name``."""
        key = header_key(name)
        return sum(1 for f in self._fields if f[0] == key)

    def get(self, name: str, default: str | None = None) -> str | None:
        """Value of the first field line named ``name`` (as written, unfolded)."""
        key = header_key(name)
        first = self._first
        if first is not None:
            i = first.get(key)
            return default if i is None else self._fields[i][2]
        for f in self._fields:
            if f[0] == key:
                return f[2]
        return default

    def get_all(self, name: str) -> list[str]:
        """All values of ``name`` in order. For list headers (Via, Contact, Route, Allow ...)
        comma-joined values are split (respecting quotes and ``<>``), empty ones dropped."""
        key = header_key(name)
        values = [f[2] for f in self._fields if f[0] == key]
        spec = _REGISTRY.get(key)
        if spec is None or not spec.multi:
            return values
        out: list[str] = []
        for value in values:
            out.extend(v for v in split_commas(value) if v)
        return out

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` field with one (at the first one's position, else at end).

        ``set``/``add``/``insert_first`` raise ``ValueError`` for a name that is not a
        token or a value containing CR or LF (it would forge header lines)."""
        new = new_field(name, value)
        key = new[0]
        out: list[Field] = []
        placed = False
        for f in self._fields:
            if f[0] == key:
                if not placed:
                    out.append(new)
                    placed = True
            else:
                out.append(f)
        if not placed:
            out.append(new)
        self._fields = out
        self._cache.pop(key, None)
        self._first = None

    def add(self, name: str, value: str) -> None:
        """Append a field line."""
        new = new_field(name, value)
        self._fields.append(new)
        self._cache.pop(new[0], None)
        self._first = None

    def insert_first(self, name: str, value: str) -> None:
        """Insert a field line before the first ``name`` field (top of the message if none);
        this is how a Via or Record-Route is pushed (§16.6, §18.1.1)."""
        new = new_field(name, value)
        key = new[0]
        for i, f in enumerate(self._fields):
            if f[0] == key:
                self._fields.insert(i, new)
                break
        else:
            self._fields.insert(0, new)
        self._cache.pop(key, None)
        self._first = None

    def remove(self, name: str) -> int:
        """Remove every ``name`` field; return how many lines were removed."""
        key = header_key(name)
        before = len(self._fields)
        self._fields = [f for f in self._fields if f[0] != key]
        self._cache.pop(key, None)
        self._first = None
        return before - len(self._fields)

    def remove_first(self, name: str) -> str | None:
        """Remove the first *value* of a list header (e.g. the top Via, §8.1.3.3/§16.7);
        a comma-joined line keeps its remaining values. Returns the removed value."""
        key = header_key(name)
        for i, f in enumerate(self._fields):
            if f[0] != key:
                continue
            values = [v for v in split_commas(f[2]) if v]
            if len(values) <= 1:
                del self._fields[i]
            else:
                self._fields[i] = (key, f[1], ", ".join(values[1:]), None)
            self._cache.pop(key, None)
            self._first = None
            return values[0] if values else ""
        return None

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first *value* of list header ``name`` (rewrite the top Via, §18.2.1)
        where it stands. If it shares a comma-joined line, it gets a line of its own just
        before the rest of that line. Without a ``name`` field, ``value`` goes first."""
        new = new_field(name, value)
        key = new[0]
        fields = self._fields
        for i, f in enumerate(fields):
            if f[0] != key:
                continue
            rest = [v for v in split_commas(f[2]) if v] if "," in f[2] else []
            if len(rest) <= 1:
                fields[i] = new
                self._cache.pop(key, None)
                return  # nothing moved: the index of every first field still holds
            fields[i : i + 1] = [new, (key, f[1], ", ".join(rest[1:]), None)]
            break
        else:
            fields.insert(0, new)
        self._cache.pop(key, None)
        self._first = None

    def seed_view(self, key: str, view: Any) -> None:
        """Store the typed view of lowercase header ``key`` that a caller computed for the
        fields as they now stand (e.g. the Via list after rewriting the top Via), so that
        the next :meth:`parsed` does not parse them again. The caller vouches that ``view``
        equals what parsing the current fields would give."""
        self._cache[key] = view

    def parsed(self, name: str, parser: Callable[[list[str]], Any]) -> Any:
        """``parser(field values)`` for ``name``, cached until the header changes."""
        cache = self._cache
        result = cache.get(name, _MISSING)  # fast path: called with the lowercase key
        if result is not _MISSING:
            return result
        key = KEYS.get(name)  # the lowercase key maps to itself
        if key != name:
            key = header_key(name)
            result = cache.get(key, _MISSING)
            if result is not _MISSING:
                return result
        first = self._first
        if first is None:
            result = parser([f[2] for f in self._fields if f[0] == key])
        else:
            i = first.get(key)
            if i is None:
                result = parser([])
            elif key in UNIQUE_KEYS:
                result = parser([self._fields[i][2]])
            else:
                result = parser([f[2] for f in self._fields[i:] if f[0] == key])
        cache[key] = result
        return result

    def lines(self, content_length: int | None) -> list[str]:
        """Wire lines (without CRLF). If ``content_length`` is given, Content-Length is
        written with that value (replacing a stale one, or appended if missing)."""
        out: list[str] = []
        want = None if content_length is None else str(content_length)
        seen = False
        for key, name, value, raw in self._fields:
            if key == "content-length" and want is not None:
                if seen:
                    continue
                seen = True
                if value != want or raw is None:
                    out.append(f"{name}: {want}")
                    continue
            out.append(raw if raw is not None else f"{name}: {value}")
        if want is not None and not seen:
            out.append(f"Content-Length: {want}")
        return out


# ---------------------------------------------------------------- typed header values


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (§20.42): ``SIP/2.0/<transport> host[:port];params``.

    ``rport`` is the numeric rport value (RFC 3581) or ``None``; ``has_rport`` tells a
    bare ``;rport`` (a request to fill it in) from no rport at all.
    """

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter (transaction id, §8.1.1.7)."""
        return lower_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter (§18.2.1)."""
        return lower_param(self.params, "received")

    @property
    def has_rport(self) -> bool:
        """True if ``rport`` is present, with or without a value."""
        return has_param(self.params, "rport")

    @property
    def rport(self) -> int | None:
        """The numeric ``rport`` value, ``None`` if absent or bare (see ``has_rport``)."""
        value = lower_param(self.params, "rport")
        return ascii_uint(value, 65535) if value is not None else None

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter."""
        return lower_param(self.params, "maddr")

    @property
    def ttl(self) -> int | None:
        """The ``ttl`` parameter."""
        value = lower_param(self.params, "ttl")
        return ascii_uint(value, 255) if value is not None else None

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """(host, port) as written."""
        return self.host, self.port

    def param(self, name: str) -> str | None:
        """Value of parameter ``name`` (case-insensitive)."""
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> Via:
        """A copy with ``name`` set, keeping its position if already present."""
        params = list(self.params)
        lname = name.lower()
        for i, (k, _) in enumerate(params):
            if k.lower() == lname:
                params[i] = (k, value)
                break
        else:
            params.append((name, value))
        return Via(self.transport, self.host, self.port, tuple(params), self.protocol)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"


_VIA_RE = re.compile(
    r"""\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*
        ([A-Za-z0-9\-.!%*_+`'~]+)\s+
        (\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-_.]+)(?:[ \t]*:[ \t]*([0-9]+))?""",
    re.VERBOSE,
)


# The usual Via in one match: ``SIP/2.0/<transport> hostname[:port]`` then parameters
# without whitespace or quotes. IPv6 references, LWS and quoted values take the regex above.
_VIA_FAST_RE = re.compile(
    r"""SIP/2\.0/([A-Za-z0-9\-.!%*_+`'~]+)[ ]
        ([A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9.])?)(?::([0-9]{1,5}))?
        ((?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[^\s;,"?<>]+)?)*)""",
    re.VERBOSE,
)


def _via_fast(text: str) -> Via | None:
    """The common compact form ``SIP/2.0/UDP host[:port][;params]`` in one match."""
    m = _VIA_FAST_RE.fullmatch(text)
    if m is None:
        return None
    transport, host, port_text, ptext = m.groups()
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            return None
    params: Params = ()
    if ptext:
        out: list[tuple[str, str | None]] = []
        for item in ptext[1:].split(";"):
            name, eq, value = item.partition("=")
            if eq:
                out.append((name, value))
                if name != "branch" and name != "received":
                    lname = name.lower()
                    if (lname == "ttl" and ascii_uint(value, 255) is None) or (
                        lname == "rport" and ascii_uint(value, 65535) is None
                    ):
                        return None
            elif name == "rport":
                out.append(_RPORT_FLAG)
            else:
                if name.lower() in _VIA_VALUED:
                    return None
                out.append((name, None))
        params = tuple(out)
    return Via(_TRANSPORTS.get(transport) or transport.upper(), host, port, params, "SIP/2.0")


_RPORT_FLAG: tuple[str, str | None] = ("rport", None)
_TRANSPORTS = {t: t.upper() for t in ("UDP", "TCP", "TLS", "SCTP", "WS", "WSS", "udp", "tcp")}


def _via_split(text: str) -> tuple[str, str, int | None, int] | None:
    """``SIP/2.0/UDP host[:port][;params]`` by splitting (IPv6 references, LWS after ``;``)."""
    if not text.startswith("SIP/2.0/"):
        return None
    sp = text.find(" ", 8)
    if sp < 0:
        return None
    semi = text.find(";", sp)
    end = len(text) if semi < 0 else semi
    transport = text[8:sp]
    hostport = text[sp + 1 : end]
    if not is_token(transport) or " " in hostport or "\t" in hostport or not hostport:
        return None
    host, port = split_hostport(hostport)
    return transport, host, port, end


def parse_via(text: str) -> Via:
    """Parse one Via value (not a comma list)."""
    fast = _via_fast(text)
    if fast is not None:
        return fast
    split = _via_split(text)
    if split is not None:
        transport, host, port, end = split
    else:
        m = _VIA_RE.match(text)
        if m is None:
            raise ParseError(f"malformed Via {text[:60]!r}")
        name, version, transport, host, port_text = m.groups()
        if name.upper() != "SIP" or version != "2.0":
            raise ParseError(f"unsupported Via protocol {name}/{version}")
        port = None
        if port_text is not None:
            port = ascii_uint(port_text, 65535)
            if port is None:
                raise ParseError("bad Via port")
        if host[0] != "[" and (host[0] in "-." or host[-1] == "-"):
            raise ParseError(f"bad Via host {host[:40]!r}")
        end = m.end()
    params = parse_params(text, end) if end < len(text) else ()
    for key, value in params:
        lkey = key.lower()
        if value is None:
            if lkey in _VIA_VALUED:
                raise ParseError(f"Via parameter {key} needs a value")
        elif lkey == "ttl":
            if ascii_uint(value, 255) is None:
                raise ParseError("bad Via ttl")
        elif lkey == "rport" and ascii_uint(value, 65535) is None:
            raise ParseError("bad Via rport")
    return Via(transport.upper(), host, port, params, "SIP/2.0")


_VIA_VALUED = frozenset(("branch", "received", "maddr", "ttl"))


def _empty_via() -> str:
    raise ParseError("empty Via value")


def parse_via_list(values: list[str]) -> tuple[Via, ...]:
    """Every Via value of every Via line, top first. Empty list elements are errors."""
    if len(values) == 1 and "," not in values[0]:
        return (parse_via(values[0].strip(" \t") or _empty_via()),)
    out: list[Via] = []
    for line in values:
        for item in split_commas(line):
            if not item:
                raise ParseError("empty Via value")
            out.append(parse_via(item))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CSeq:
    """CSeq (§20.16): sequence number (< 2**31) and method."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(text: str) -> CSeq:
    """Parse a CSeq value; the number must fit in 32 bits signed (§8.1.1.5)."""
    parts = text.split()
    if len(parts) != 2 or not text.isascii():
        raise ParseError("malformed CSeq")
    num, method = parts
    number = ascii_uint(num, 2**31 - 1)
    if number is None:
        raise ParseError("malformed or too large CSeq number")
    return CSeq(number, method)


def parse_uint(text: str, name: str, limit: int = 2**32 - 1) -> int:
    """A decimal integer header value in ``0..limit`` (Expires, Max-Forwards ...)."""
    value = ascii_uint(text.strip(" \t"), limit)
    if value is None:
        raise ParseError(f"malformed or out of range {name}")
    return value


@dataclass(frozen=True, slots=True)
class Star:
    """The wildcard Contact ``*`` (§10.2.2), used to remove all bindings."""

    def __str__(self) -> str:
        return "*"


STAR = Star()

Contact = NameAddr | Star


def parse_name_addr_list(values: list[str]) -> tuple[NameAddr, ...]:
    """Every name-addr of a list header (Route, Record-Route, Path ...)."""
    out: list[NameAddr] = []
    for line in values:
        for item in split_commas(line):
            if not item:
                raise ParseError("empty list element")
            out.append(parse_name_addr(item))
    return tuple(out)


def parse_contact_list(values: list[str]) -> tuple[Contact, ...]:
    """Contact values (§20.10); ``*`` must stand alone. ``expires`` must be a 32-bit
    number and ``q`` a qvalue (0 to 1, up to 3 decimals)."""
    out: list[Contact] = []
    for line in values:
        for item in split_commas(line):
            if item == "*":
                out.append(STAR)
                continue
            if not item:
                raise ParseError("empty Contact value")
            addr = parse_name_addr(item)
            expires = addr.param("expires")
            if expires is not None:
                parse_uint(expires, "Contact expires")
            q = addr.param("q")
            if q is not None and _QVALUE_RE.fullmatch(q) is None:
                raise ParseError("bad Contact q value")
            out.append(addr)
    if len(out) > 1 and any(isinstance(c, Star) for c in out):
        raise ParseError("Contact * mixed with other contacts")
    return tuple(out)


_QVALUE_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
