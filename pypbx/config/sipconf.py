"""sip.conf → typed configuration, read as Asterisk's chan_sip reads it.

Meaning stage on top of :mod:`pypbx.config.conf`: ``[general]`` becomes :class:`General`
(chan_sip ``reload_config`` defaults, with pypbx's own ``allowguest=no`` and ``useragent``),
every ``register =>`` line a :class:`Registration` (RFC 3261 §10.2, chan_sip
``sip_parse_register_line``), ``[authentication]`` ``auth =`` lines :class:`AuthCredential`
entries (RFC 2617 §3.2.2, matched by realm), and every other typed section a :class:`Peer`
(chan_sip ``build_peer``) whose defaults come from ``[general]``.

As in Asterisk, nothing here fails a load that the dialect stage accepted: unknown options, bad
values and bad register lines become :class:`ConfWarning` entries with ``file:line`` (a bad value
falls back to its default), and a section without a usable ``type`` is skipped with a warning.
Options are table-driven: one handler per name in ``_COMMON``, ``_GENERAL`` and ``_PEER``;
options Asterisk knows but pypbx does not model are in ``_KNOWN_*`` and accepted silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any

from pypbx.config.conf import ConfFile, ConfWarning, Entry, Origin, ReadFile, Section, load
from pypbx.config.netaddr import (
    Acl,
    AclAction,
    AclRule,
    Network,
    parse_network,
    parse_port,
    split_hostport,
)

__all__ = [
    "AUDIO_CODECS",
    "DEFAULT_CODECS",
    "AmaFlags",
    "AuthCredential",
    "CallerId",
    "DirectMedia",
    "DtmfMode",
    "General",
    "Insecure",
    "NatMode",
    "Peer",
    "PeerType",
    "Registration",
    "SipConfig",
    "Transport",
    "apply_codecs",
    "ast_false",
    "ast_true",
    "load_sip_conf",
    "parse_auth_line",
    "parse_callerid",
    "parse_nat",
    "parse_register_line",
    "parse_sip_conf",
]

_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "0", "off"})


def ast_true(value: str) -> bool:
    """Asterisk's ``ast_true``: yes/true/y/t/1/on, any case."""
    return value.strip().lower() in _TRUE


def ast_false(value: str) -> bool:
    """Asterisk's ``ast_false``: no/false/n/f/0/off, any case."""
    return value.strip().lower() in _FALSE


class PeerType(StrEnum):
    FRIEND = "friend"
    PEER = "peer"
    USER = "user"


class DtmfMode(StrEnum):
    RFC2833 = "rfc2833"
    INFO = "info"
    SHORTINFO = "shortinfo"
    INBAND = "inband"
    AUTO = "auto"


class NatMode(StrEnum):
    FORCE_RPORT = "force_rport"
    COMEDIA = "comedia"
    AUTO_FORCE_RPORT = "auto_force_rport"
    AUTO_COMEDIA = "auto_comedia"


class Insecure(StrEnum):
    PORT = "port"
    INVITE = "invite"


class Transport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"
    WS = "ws"
    WSS = "wss"


class AmaFlags(StrEnum):
    DEFAULT = "default"
    OMIT = "omit"
    BILLING = "billing"
    DOCUMENTATION = "documentation"


# Codec names Asterisk knows; only audio ones are kept in preference lists (pypbx is audio only).
AUDIO_CODECS: tuple[str, ...] = (
    "ulaw", "alaw", "gsm", "g729", "g722", "g723", "g726", "g726aal2", "adpcm", "ilbc",
    "speex", "speex16", "speex32", "lpc10", "g719", "siren7", "siren14", "opus", "testlaw",
    "slin", "slin12", "slin16", "slin24", "slin32", "slin44", "slin48", "slin96", "slin192",
    "silk", "silk8", "silk12", "silk16", "silk24", "codec2",
)  # fmt: skip
_OTHER_CODECS = frozenset(
    {"h261", "h263", "h263p", "h264", "h265", "mpeg4", "vp8", "vp9", "red", "t140", "t140red"}
    | {"jpeg", "png", "t38"}
)
DEFAULT_CODECS: tuple[str, ...] = ("ulaw", "alaw", "gsm")  # chan_sip: ulaw, alaw, gsm, h263
_DEFAULT_MAXMS = 2000
STANDARD_SIP_PORT = 5060
STANDARD_TLS_PORT = 5061
_NO_ACL = Acl()


@dataclass(frozen=True, slots=True)
class DirectMedia:
    """``directmedia``/``canreinvite``: yes (also across NAT), nonat, update, outgoing, no."""

    enabled: bool = True
    across_nat: bool = False
    update: bool = False
    outgoing: bool = False


@dataclass(frozen=True, slots=True)
class CallerId:
    name: str = ""
    number: str = ""


@dataclass(frozen=True, slots=True)
class Registration:
    """``register => [peer?][transport://]user[@domain][:secret[:authuser]]@host[:port][/ext][~expiry]``.

    ``port`` None means 5060 (5061 for TLS); ``expiry`` None means ``defaultexpiry``; a secret
    may hold ``@`` (the host starts after the last one) but not ``:`` (that starts authuser).
    """

    user: str
    host: str
    origin: Origin
    peer: str | None = None
    transport: Transport = Transport.UDP
    domain: str | None = None
    domain_port: int | None = None
    secret: str | None = None
    authuser: str | None = None
    port: int | None = None
    extension: str = "s"
    expiry: int | None = None


@dataclass(frozen=True, slots=True)
class AuthCredential:
    """``auth = user:secret@realm`` or ``auth = user#md5secret@realm``."""

    user: str
    realm: str
    origin: Origin
    secret: str | None = None
    md5secret: str | None = None


@dataclass(frozen=True, slots=True)
class General:
    """``[general]`` of sip.conf with chan_sip's defaults (pypbx: ``allowguest`` is off).

    ``bindaddr``/``bindport`` are the UDP listener (``udpbindaddr=host:port`` overrides both,
    ``bindport`` applies when the address has no port); ``tcpbindaddr`` None means bindaddr;
    ``externport`` None means bindport. Times are seconds, ``qualify`` milliseconds (None = off).
    ``allow`` is the ordered audio codec preference list; ``allowguest_explicit`` tells whether
    the file set ``allowguest`` (chan_sip's default is yes, pypbx's is no).
    """

    bindaddr: str = "0.0.0.0"
    bindport: int = STANDARD_SIP_PORT
    tcpenable: bool = False
    tcpbindaddr: str | None = None
    tcpbindport: int = STANDARD_SIP_PORT
    externaddr: str | None = None
    externport: int | None = None
    externhost: str | None = None
    externrefresh: int = 10
    localnet: tuple[Network, ...] = ()
    nat: frozenset[NatMode] = frozenset({NatMode.FORCE_RPORT})
    allow: tuple[str, ...] = DEFAULT_CODECS
    context: str = "default"
    allowguest: bool = False
    allowguest_explicit: bool = False
    alwaysauthreject: bool = True
    defaultexpiry: int = 120
    minexpiry: int = 60
    maxexpiry: int = 3600
    registertimeout: int = 20
    registerattempts: int = 0
    qualify: int | None = None
    qualifyfreq: int = 60
    useragent: str = "pypbx"
    srvlookup: bool = True
    dtmfmode: DtmfMode = DtmfMode.RFC2833
    rtptimeout: int = 0
    rtpholdtimeout: int = 0
    realm: str = "asterisk"
    fromdomain: str | None = None
    callerid: str = "asterisk"
    directmedia: DirectMedia = DirectMedia()
    insecure: frozenset[Insecure] = frozenset()
    language: str = ""
    transports: tuple[Transport, ...] = (Transport.UDP,)
    origin: Origin | None = None


@dataclass(frozen=True, slots=True)
class Peer:
    """One device or trunk section; ``type=friend`` is both a peer and a user.

    Defaults come from ``[general]`` (context, language, nat, directmedia, insecure, dtmfmode,
    allow, qualify, qualifyfreq, fromdomain, rtptimeout, rtpholdtimeout, transports). ``host``
    None means unspecified (kept, as chan_sip keeps it: such a peer can only be matched by
    name); ``port`` None means 5060 (5061 for TLS); ``call_limit`` None means no limit.
    """

    name: str
    type: PeerType
    origin: Origin
    host: str | None = None
    port: int | None = None
    defaultip: str | None = None
    secret: str | None = None
    md5secret: str | None = None
    remotesecret: str | None = None
    username: str | None = None
    defaultuser: str | None = None
    fromuser: str | None = None
    fromdomain: str | None = None
    authuser: str | None = None
    context: str = "default"
    insecure: frozenset[Insecure] = frozenset()
    nat: frozenset[NatMode] = frozenset({NatMode.FORCE_RPORT})
    directmedia: DirectMedia = DirectMedia()
    allow: tuple[str, ...] = DEFAULT_CODECS
    dtmfmode: DtmfMode = DtmfMode.RFC2833
    qualify: int | None = None
    qualifyfreq: int = 60
    mailbox: tuple[str, ...] = ()
    callerid: CallerId | None = None
    call_limit: int | None = None
    acl: Acl = _NO_ACL
    outboundproxy: str | None = None
    language: str = ""
    accountcode: str = ""
    amaflags: AmaFlags | None = None
    setvar: tuple[tuple[str, str], ...] = ()
    transports: tuple[Transport, ...] = (Transport.UDP,)
    auth: tuple[AuthCredential, ...] = ()
    rtptimeout: int = 0
    rtpholdtimeout: int = 0

    @property
    def dynamic(self) -> bool:
        """``host=dynamic``: the address is learnt from REGISTER."""
        return self.host is not None and self.host.lower() == "dynamic"

    @property
    def auth_name(self) -> str:
        """User name for outbound digest auth: authuser, else defaultuser/username, else name."""
        return self.authuser or self.defaultuser or self.name


@dataclass(frozen=True, slots=True)
class SipConfig:
    general: General
    peers: dict[str, Peer]
    registrations: list[Registration]
    auth: list[AuthCredential]
    warnings: list[ConfWarning]


# --- value parsers -------------------------------------------------------------------------


def parse_nat(
    value: str, start: frozenset[NatMode] = frozenset()
) -> tuple[frozenset[NatMode], bool]:
    """chan_sip ``sip_parse_nat_option``: a comma list applied to ``start``.

    Returns the flags and whether the deprecated ``yes`` was used. ``no`` clears everything and
    ``yes`` means force_rport+comedia; both end the list. An ``auto_*`` flag wins over its plain
    twin whichever comes first. Unknown words are ignored, as in Asterisk.
    """
    flags = set(start)
    for word in (w.strip().lower() for w in value.split(",")):
        if ast_false(word):
            return frozenset(), False
        if word == "yes":
            flags -= {NatMode.AUTO_FORCE_RPORT, NatMode.AUTO_COMEDIA}
            return frozenset(flags | {NatMode.FORCE_RPORT, NatMode.COMEDIA}), True
        if word == "force_rport" and NatMode.AUTO_FORCE_RPORT not in flags:
            flags.add(NatMode.FORCE_RPORT)
        elif word == "comedia" and NatMode.AUTO_COMEDIA not in flags:
            flags.add(NatMode.COMEDIA)
        elif word == "auto_force_rport":
            flags.add(NatMode.AUTO_FORCE_RPORT)
            flags.discard(NatMode.FORCE_RPORT)
        elif word == "auto_comedia":
            flags.add(NatMode.AUTO_COMEDIA)
            flags.discard(NatMode.COMEDIA)
    return frozenset(flags), False


def apply_codecs(
    codecs: tuple[str, ...], value: str, *, allow: bool
) -> tuple[tuple[str, ...], list[str]]:
    """Apply one ``allow=``/``disallow=`` line; returns the new list and unknown names.

    ``all`` adds every audio codec (allow) or clears the list (disallow); ``!name`` inverts;
    ``name:ms`` framing is accepted and ignored; an already allowed codec keeps its place;
    ``|`` separates like ``,`` (Asterisk 13+ ``ast_format_cap_update_by_allow_disallow``).
    """
    result = list(codecs)
    unknown: list[str] = []
    for item in value.replace("|", ",").split(","):
        name = item.strip().lower()
        allowing = allow
        if name.startswith("!"):
            name, allowing = name[1:].strip(), not allow
        name = name.partition(":")[0].strip()
        if not name:
            continue
        if name == "all":
            if allowing:
                result.extend(c for c in AUDIO_CODECS if c not in result)
            else:
                result.clear()
        elif name in AUDIO_CODECS:
            if allowing and name not in result:
                result.append(name)
            elif not allowing and name in result:
                result.remove(name)
        elif name not in _OTHER_CODECS:
            unknown.append(name)
    return tuple(result), unknown


def parse_callerid(value: str) -> CallerId:
    """``"Name" <number>``, ``Name <number>``, a bare number or a bare name."""
    value = value.strip()
    lt = value.find("<")
    if lt >= 0:
        gt = value.find(">", lt)
        number = value[lt + 1 : gt if gt >= 0 else len(value)].strip()
        name = value[:lt].strip()
        if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
            name = name[1:-1].strip()
        return CallerId(name, number)
    if value and all(c.isdigit() or c in "+*#-() ." for c in value):
        return CallerId("", value)
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return CallerId(value, "")


def parse_auth_line(value: str, origin: Origin) -> AuthCredential:
    """chan_sip ``add_realm_authentication``: ``user[:secret]@realm`` or ``user#md5@realm``."""
    user, at, realm = value.strip().rpartition("@")
    if not at or not user or not realm:
        raise ValueError("format for authentication entry is user[:secret]@realm")
    secret = md5 = None
    if ":" in user:
        user, _, secret = user.partition(":")
    elif "#" in user:
        user, _, md5 = user.partition("#")
    return AuthCredential(user=user, realm=realm, origin=origin, secret=secret, md5secret=md5)


_REGISTER_FORMAT = (
    "format for registration is "
    "[peer?][transport://]user[@domain][:secret[:authuser]]@host[:port][/extension][~expiry]"
)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def _optional(text: str | None) -> str | None:
    return None if text is None else _unquote(text) or None


def parse_register_line(value: str, origin: Origin) -> tuple[Registration | None, list[str]]:
    """chan_sip ``sip_parse_register_line``; returns the registration (None if refused) and notes.

    The host part starts after the *last* ``@`` (so a secret may contain ``@``); the user part
    splits on the first ``?`` (peer), ``/`` (``transport://``), then ``:`` into user[@domain],
    secret and authuser. Four colon fields mean ``user@domain:domainport:secret:authuser``.
    """
    notes: list[str] = []
    userpart, at, hostpart = value.strip().rpartition("@")
    if not at or not userpart or not hostpart:
        return None, [_REGISTER_FORMAT]
    peer: str | None = None
    before, q, after = userpart.partition("?")
    if q and after:
        peer, userpart = before, after
    elif q:
        userpart = before
    parts = userpart.split("/", 2)
    transport_text: str | None = None
    if len(parts) == 3:
        transport_text, blank, userpart = parts[0][:-1], parts[1], parts[2]
        if blank:
            return None, [_REGISTER_FORMAT]
    elif len(parts) == 2:
        return None, [_REGISTER_FORMAT]
    user_fields = userpart.split(":", 2)
    user_at = user_fields[0]
    secret = user_fields[1] if len(user_fields) > 1 else None
    authuser = user_fields[2] if len(user_fields) > 2 else None
    domain_port_text: str | None = None
    if authuser is not None and ":" in authuser:
        first, _, second = authuser.partition(":")
        domain_port_text, secret, authuser = secret, first, second
    host_expiry, _, expiry_text = hostpart.partition("~")
    host_port, _, extension = host_expiry.partition("/")
    host, _, port_text = host_port.partition(":")
    user, _, domain = user_at.partition("@")
    transport = Transport.UDP
    if transport_text is not None:
        word = transport_text[:3].lower()
        if word in ("tcp", "tls", "udp"):
            transport = Transport(word)
        else:
            notes.append(f"'{transport_text[:3]}' is not a valid transport type; using udp")
    port = domain_port = None
    if port_text:
        try:
            port = parse_port(port_text)
        except ValueError:
            notes.append(f"'{port_text}' is not a valid port number; using default")
    if domain_port_text:
        try:
            domain_port = parse_port(domain_port_text)
        except ValueError:
            notes.append(f"'{domain_port_text}' is not a valid domain port number; using default")
    expiry = None
    if expiry_text:
        try:
            expiry = int(_unquote(expiry_text))
        except ValueError:
            notes.append(f"'{expiry_text}' is not a valid expiry; using defaultexpiry")
    reg = Registration(
        user=_unquote(user),
        host=_unquote(host),
        origin=origin,
        peer=_optional(peer),
        transport=transport,
        domain=_unquote(domain) or None,
        domain_port=domain_port,
        secret=_optional(secret),
        authuser=_optional(authuser),
        port=port,
        extension=_unquote(extension) or "s",
        expiry=expiry,
    )
    if not reg.host:
        return None, [_REGISTER_FORMAT]
    return reg, notes


# --- option handlers -----------------------------------------------------------------------


@dataclass(slots=True)
class _Scope:
    """The section being read: field values (starting from defaults) and collected warnings."""

    name: str
    defaults: dict[str, Any]
    warnings: list[ConfWarning]
    general: General
    values: dict[str, Any] = field(default_factory=dict)
    registrations: list[Registration] = field(default_factory=list)

    def warn(self, entry: Entry, message: str, kind: str = "bad-value") -> None:
        self.warnings.append(ConfWarning(entry.origin, f"[{self.name}] {message}", kind))

    def reset(self, key: str) -> None:
        self.values[key] = self.defaults[key]


Handler = Callable[[_Scope, Entry], None]


def _text(key: str, *, empty_is_none: bool = False) -> Handler:
    def handle(scope: _Scope, entry: Entry) -> None:
        scope.values[key] = entry.value or None if empty_is_none else entry.value

    return handle


def _flag(key: str, *, unless_false: bool = False) -> Handler:
    """A yes/no option: chan_sip tests ``ast_true`` (or ``!ast_false`` for ``unless_false``)."""

    def handle(scope: _Scope, entry: Entry) -> None:
        value = not ast_false(entry.value) if unless_false else ast_true(entry.value)
        if not (ast_true(entry.value) or ast_false(entry.value)):
            word = "yes" if value else "no"
            scope.warn(entry, f"{entry.key}={entry.value!r} is neither yes nor no; taken as {word}")
        scope.values[key] = value

    return handle


def _int(key: str, *, minimum: int = 0) -> Handler:
    """An integer option; a bad or too small value warns and falls back to the default."""

    def handle(scope: _Scope, entry: Entry) -> None:
        try:
            number = int(entry.value.strip())
        except ValueError:
            number = minimum - 1
        if number < minimum:
            scope.warn(entry, f"invalid {entry.key} value {entry.value!r}; using default")
            scope.reset(key)
        else:
            scope.values[key] = number

    return handle


def _nat(scope: _Scope, entry: Entry) -> None:
    # [general] adds to the defaults (force_rport); a peer's nat= replaces general's entirely.
    start = scope.values["nat"] if scope.name == "general" else frozenset()
    scope.values["nat"], deprecated = parse_nat(entry.value, start)
    if deprecated:
        scope.warn(entry, "nat=yes is deprecated, use nat=force_rport,comedia", "deprecated")


def _directmedia(scope: _Scope, entry: Entry) -> None:
    if ast_true(entry.value):
        scope.values["directmedia"] = DirectMedia(enabled=True, across_nat=True)
        return
    if ast_false(entry.value):
        scope.values["directmedia"] = DirectMedia(enabled=False)
        return
    enabled = update = outgoing = False
    for word in (w.strip().lower() for w in entry.value.split(",")):
        if word in ("update", "nonat", "outgoing"):
            enabled = True
            update = update or word == "update"
            outgoing = outgoing or word == "outgoing"
        else:
            scope.warn(entry, f"unknown directmedia mode {word!r}")
    scope.values["directmedia"] = DirectMedia(enabled=enabled, update=update, outgoing=outgoing)


def _insecure(scope: _Scope, entry: Entry) -> None:
    value = entry.value.strip().lower()
    if not value or ast_false(value):
        scope.values["insecure"] = frozenset()
        return
    if value in ("very", "yes"):
        modes = {"very": "port,invite", "yes": "port"}[value]
        scope.warn(entry, f"insecure={value} is deprecated, use insecure={modes}", "deprecated")
        scope.values["insecure"] = frozenset(Insecure(m) for m in modes.split(","))
        return
    found: set[Insecure] = set()
    for word in (w.strip() for w in value.split(",")):
        if word in ("port", "invite"):
            found.add(Insecure(word))
        else:
            scope.warn(entry, f"unknown insecure mode {word!r}")
    scope.values["insecure"] = frozenset(found)


def _dtmfmode(scope: _Scope, entry: Entry) -> None:
    try:
        scope.values["dtmfmode"] = DtmfMode(entry.value.strip().lower())
    except ValueError:
        scope.warn(entry, f"unknown dtmf mode {entry.value!r}, using rfc2833")
        scope.values["dtmfmode"] = DtmfMode.RFC2833


def _codecs(scope: _Scope, entry: Entry) -> None:
    allowing = entry.key.lower() == "allow"
    scope.values["allow"], unknown = apply_codecs(
        scope.values["allow"], entry.value, allow=allowing
    )
    verb = "allow" if allowing else "disallow"
    for name in unknown:
        scope.warn(entry, f"cannot {verb} unknown format {name!r}", "unknown-codec")


def _qualify(scope: _Scope, entry: Entry) -> None:
    value = entry.value.strip().lower()
    if value == "no":
        scope.values["qualify"] = None
    elif value == "yes":
        scope.values["qualify"] = scope.general.qualify or _DEFAULT_MAXMS
    else:
        digits = value[: len(value) - len(value.lstrip("-0123456789"))] if value else ""
        try:
            ms = int(digits)
        except ValueError:
            scope.warn(entry, f"qualify should be yes, no or milliseconds, not {entry.value!r}")
            ms = 0
        scope.values["qualify"] = ms if ms > 0 else None


def _transport(scope: _Scope, entry: Entry) -> None:
    found: list[Transport] = []
    for word in (w.strip().lower() for w in entry.value.split(",")):
        try:
            if Transport(word) not in found:
                found.append(Transport(word))
        except ValueError:
            scope.warn(entry, f"{word!r} is not a valid transport (udp, tcp, tls, ws, wss)")
    if found:
        scope.values["transports"] = tuple(found)


def _hostport(host_key: str, port_key: str) -> Handler:
    def handle(scope: _Scope, entry: Entry) -> None:
        try:
            host, port = split_hostport(entry.value)
        except ValueError as exc:
            scope.warn(entry, f"invalid {entry.key} {entry.value!r}: {exc}")
            return
        scope.values[host_key] = host
        if port is not None:
            scope.values[port_key] = port

    return handle


def _port(key: str) -> Handler:
    def handle(scope: _Scope, entry: Entry) -> None:
        try:
            scope.values[key] = parse_port(entry.value)
        except ValueError:
            scope.warn(entry, f"invalid {entry.key} {entry.value!r}; using default")
            scope.reset(key)

    return handle


def _localnet(scope: _Scope, entry: Entry) -> None:
    try:
        scope.values["localnet"] = (*scope.values["localnet"], parse_network(entry.value))
    except ValueError as exc:
        scope.warn(entry, f"invalid localnet value {entry.value!r}: {exc}")


def _acl(scope: _Scope, entry: Entry) -> None:
    action = AclAction(entry.key.lower())
    try:
        rule = AclRule(action, parse_network(entry.value), entry.origin)
    except ValueError as exc:
        scope.warn(entry, f"bad ACL entry {entry.value!r}: {exc}; rule ignored")
        return
    scope.values["acl"] = Acl((*scope.values["acl"].rules, rule))


def _register(scope: _Scope, entry: Entry) -> None:
    reg, notes = parse_register_line(entry.value, entry.origin)
    for note in notes:
        scope.warn(entry, f"register {entry.value!r}: {note}", "bad-register")
    if reg is not None:
        scope.registrations.append(reg)


def _allowguest(scope: _Scope, entry: Entry) -> None:
    _flag("allowguest")(scope, entry)
    scope.values["allowguest_explicit"] = True


def _peer_callerid(scope: _Scope, entry: Entry) -> None:
    scope.values["callerid"] = parse_callerid(entry.value) if entry.value.strip() else None


def _call_limit(scope: _Scope, entry: Entry) -> None:
    try:
        limit = int(entry.value.strip())
    except ValueError:
        limit = -1
    if limit < 0:
        scope.warn(entry, f"{entry.value!r} is not a valid call limit; no limit")
    scope.values["call_limit"] = limit if limit > 0 else None


def _type(scope: _Scope, entry: Entry) -> None:
    # chan_sip ORs the type lines together: peer + user (in any order) makes a friend.
    try:
        new = PeerType(entry.value.strip().lower())
    except ValueError:
        return  # chan_sip ignores it; only the section's first type line is checked
    old = scope.values["type"]
    if old is None or old is new:
        scope.values["type"] = new
    else:
        scope.values["type"] = PeerType.FRIEND


def _username(scope: _Scope, entry: Entry) -> None:
    # the deprecated 'username' and 'defaultuser' set the same chan_sip field
    scope.values["username"] = scope.values["defaultuser"] = entry.value


def _mailbox(scope: _Scope, entry: Entry) -> None:
    boxes = tuple(b.strip() for b in entry.value.split(",") if b.strip())
    scope.values["mailbox"] = (*scope.values["mailbox"], *boxes)


def _setvar(scope: _Scope, entry: Entry) -> None:
    name, eq, value = entry.value.partition("=")
    if not eq or not name.strip():
        scope.warn(entry, f"setvar needs name=value, not {entry.value!r}")
        return
    scope.values["setvar"] = (*scope.values["setvar"], (name.strip(), value.strip()))


def _amaflags(scope: _Scope, entry: Entry) -> None:
    try:
        scope.values["amaflags"] = AmaFlags(entry.value.strip().lower())
    except ValueError:
        scope.warn(entry, f"invalid AMA flags {entry.value!r}")


def _peer_auth(scope: _Scope, entry: Entry) -> None:
    try:
        cred = parse_auth_line(entry.value, entry.origin)
    except ValueError as exc:
        scope.warn(entry, str(exc))
        return
    scope.values["auth"] = (*scope.values["auth"], cred)


_COMMON: dict[str, Handler] = {
    "context": _text("context"),
    "language": _text("language"),
    "nat": _nat,
    "directmedia": _directmedia,
    "canreinvite": _directmedia,
    "insecure": _insecure,
    "dtmfmode": _dtmfmode,
    "allow": _codecs,
    "disallow": _codecs,
    "qualify": _qualify,
    "qualifyfreq": _int("qualifyfreq", minimum=1),
    "fromdomain": _text("fromdomain", empty_is_none=True),
    "rtptimeout": _int("rtptimeout"),
    "rtpholdtimeout": _int("rtpholdtimeout"),
    "transport": _transport,
}

_GENERAL: dict[str, Handler] = {
    **_COMMON,
    "bindaddr": _hostport("bindaddr", "bindport"),
    "udpbindaddr": _hostport("bindaddr", "bindport"),
    "bindport": _port("bindport"),
    "tcpenable": _flag("tcpenable", unless_false=True),
    "tcpbindaddr": _hostport("tcpbindaddr", "tcpbindport"),
    "externip": _hostport("externaddr", "externport"),
    "externaddr": _hostport("externaddr", "externport"),
    "externhost": _text("externhost", empty_is_none=True),
    "externrefresh": _int("externrefresh", minimum=1),
    "localnet": _localnet,
    "allowguest": _allowguest,
    "alwaysauthreject": _flag("alwaysauthreject"),
    "defaultexpiry": _int("defaultexpiry", minimum=1),
    "defaultexpirey": _int("defaultexpiry", minimum=1),
    "minexpiry": _int("minexpiry", minimum=1),
    "minexpirey": _int("minexpiry", minimum=1),
    "maxexpiry": _int("maxexpiry", minimum=1),
    "maxexpirey": _int("maxexpiry", minimum=1),
    "registertimeout": _int("registertimeout", minimum=1),
    "registerattempts": _int("registerattempts"),
    "useragent": _text("useragent"),
    "srvlookup": _flag("srvlookup"),
    "realm": _text("realm"),
    "callerid": _text("callerid"),
    "register": _register,
}

_PEER: dict[str, Handler] = {
    **_COMMON,
    "host": _text("host", empty_is_none=True),
    "port": _port("port"),
    "defaultip": _text("defaultip", empty_is_none=True),
    "secret": _text("secret"),
    "md5secret": _text("md5secret"),
    "remotesecret": _text("remotesecret"),
    "type": _type,
    "username": _username,
    "defaultuser": _text("defaultuser"),
    "fromuser": _text("fromuser"),
    "authuser": _text("authuser"),
    "mailbox": _mailbox,
    "callerid": _peer_callerid,
    "call-limit": _call_limit,
    "permit": _acl,
    "deny": _acl,
    "outboundproxy": _text("outboundproxy", empty_is_none=True),
    "accountcode": _text("accountcode"),
    "amaflags": _amaflags,
    "setvar": _setvar,
    "auth": _peer_auth,
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Options chan_sip (1.4 … 20) knows that pypbx accepts without modelling them.
_KNOWN_COMMON = _words(
    """
    allowoverlap allowsubscribe allowtransfer autoframing avpf buggymwi busylevel callcounter
    callgroup callingpres cc_agent_dialstring cc_agent_policy cc_max_agents cc_max_monitors
    cc_monitor_policy cc_offer_timer cc_recall_timer ccbs_available_timer ccnr_available_timer
    cos_audio cos_sip cos_text cos_video directmediaacl directmediadeny directmediapermit
    disallowed_methods discard_remote_hold_retrieval dtlsautogeneratecert dtlscafile dtlscapath
    dtlscertfile dtlscipher dtlsenable dtlsfingerprint dtlsprivatekey dtlsrekey dtlssetup
    dtlsverify encryption encryption_taglen faxdetect force_avp g726nonstandard icesupport
    ignoresdpversion keepalive maxcallbitrate maxforwards mohinterpret mohsuggest musicclass
    musiconhold namedcallgroup namedpickupgroup notifyhold notifyringing
    outofcall_message_context parkinglot pickupgroup preferred_codec_only progressinband
    promiscredir rfc2833compensate rpid_immediate rpid_update rtcp_mux rtpkeepalive sdpowner
    sdpsession send_diversion sendrpid session-expires session-minse session-refresher session-
    timers snom_aoc_enabled subscribecontext t38pt_udptl t38pt_usertpsource textsupport timerb
    timert1 tonezone trust_id_outbound trustrpid unsolicited_mailbox use_q850_reason usereqphone
    videosupport vmexten webrtc
    """
)
_KNOWN_GENERAL = _KNOWN_COMMON | _words(
    """
    accept_outofcall_message allowexternaldomains auth_message_requests auth_options_requests
    authfailureevents autocreatepeer autodomain callevents checkmwi compactheaders contactacl
    contactdeny contactpermit domain domainsasrealm dumphistory dynamic_exclude_static
    dynamic_excludes_static externtcpport externtlsport ignoreregexpire jbenable jbforce jbimpl
    jblog jbmaxsize jbresyncthreshold jbtargetextra legacy_useroption_parsing limitonpeers
    match_auth_username matchexternaddrlocally matchexterniplocally media_address mwi mwi_from
    mwiexpirey mwiexpiry notifycid notifymimetype pedantic prematuremedia qualifygap
    qualifypeers recordhistory recordofffeature recordonfeature refer_addheaders regcontext
    regextenonqualify register_retry_403 relaxdtmf rtautoclear rtcachefriends rtpbindaddr
    rtsavepath rtsavesysname rtupdate shrinkcallerid sipdebug storesipcause submaxexpiry
    subminexpiry subscribe_network_change_event supportpath t1min tcpauthlimit tcpauthtimeout
    tlsbindaddr tlscafile tlscapath tlscertfile tlscipher tlsclientmethod tlsdontverifyserver
    tlsenable tlsprivatekey tlsverifyclient tos tos_audio tos_sip tos_text tos_video
    websocket_enabled websocket_write_timeout
    """
)
_KNOWN_PEER = _KNOWN_COMMON | _words(
    """
    acl callbackextension callcounter cid_number contactacl contactdeny contactpermit
    description fullcontact fullname hasvoicemail ipaddr lastms mwi_from regexten registertrying
    regseconds regserver rtpbindaddr subscribemwi template trunkname useclientcode useragent
    """
)


# --- sections → model ----------------------------------------------------------------------


def _apply(
    scope: _Scope, entries: list[Entry], table: dict[str, Handler], known: frozenset[str]
) -> None:
    for entry in entries:
        key = entry.key.lower()
        handler = table.get(key)
        if handler is not None:
            handler(scope, entry)
        elif key not in known:
            scope.warn(entry, f"unknown option {entry.key!r} ignored", "unknown-option")


def _field_defaults(cls: type[General] | type[Peer]) -> dict[str, Any]:
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def _build_general(
    conf: ConfFile, warnings: list[ConfWarning]
) -> tuple[General, list[Registration]]:
    sections = [s for s in conf.categories() if s.name.lower() == "general"]
    base = General()
    scope = _Scope("general", _field_defaults(General), warnings, base)
    scope.values = dict(scope.defaults)
    if sections:
        scope.values["origin"] = sections[0].origin
        _apply(scope, sections[0].entries, _GENERAL, _KNOWN_GENERAL)
        for extra in sections[1:]:
            warnings.append(
                ConfWarning(extra.origin, "second [general] section ignored", "ignored-section")
            )
    return General(**scope.values), scope.registrations


def _peer_defaults(general: General) -> dict[str, Any]:
    inherited = _words(
        "context language nat directmedia insecure dtmfmode allow qualify qualifyfreq "
        "fromdomain rtptimeout rtpholdtimeout transports"
    )
    values = _field_defaults(Peer)
    values.update({name: getattr(general, name) for name in inherited})
    return values


def _build_auth(conf: ConfFile, warnings: list[ConfWarning]) -> list[AuthCredential]:
    creds: list[AuthCredential] = []
    sections = [s for s in conf.categories() if s.name.lower() == "authentication"]
    for section in sections[:1]:
        for entry in section.entries:
            if entry.key.lower() != "auth":
                warnings.append(
                    ConfWarning(
                        entry.origin,
                        f"[authentication] unknown option {entry.key!r} ignored",
                        "unknown-option",
                    )
                )
                continue
            try:
                creds.append(parse_auth_line(entry.value, entry.origin))
            except ValueError as exc:
                warnings.append(ConfWarning(entry.origin, f"[authentication] {exc}", "bad-value"))
    return creds


def _peer_type_ok(section: Section, warnings: list[ConfWarning]) -> bool:
    """chan_sip's check before build_peer: the first ``type`` line must be friend/peer/user."""
    types = section.all("type")
    if not types:
        msg = f"section [{section.name}] lacks type; skipped"
        warnings.append(ConfWarning(section.origin, msg, "no-type"))
        return False
    if types[0].value.strip().lower() not in set(PeerType):
        msg = f"unknown type {types[0].value!r} for [{section.name}]; section skipped"
        warnings.append(ConfWarning(types[0].origin, msg, "unknown-type"))
        return False
    return True


def parse_sip_conf(conf: ConfFile) -> SipConfig:
    """Give meaning to a parsed sip.conf (see the module docstring for the rules).

    A second section with exactly the same name is merged into the first, as chan_sip's
    ``build_peer`` does when it finds the peer already built: its options apply on top of the
    first's, except setvar, auth, mailbox and transport, which start again.
    """
    warnings = list(conf.warnings)
    general, registrations = _build_general(conf, warnings)
    auth = _build_auth(conf, warnings)
    defaults = _peer_defaults(general)
    scopes: dict[str, _Scope] = {}
    for section in conf.categories():
        if section.name.lower() in ("general", "authentication"):
            continue
        if not _peer_type_ok(section, warnings):
            continue
        scope = scopes.get(section.name)
        if scope is None:
            scope = _Scope(section.name, defaults, warnings, general)
            scope.values = {**defaults, "name": section.name, "type": None}
            scope.values["origin"] = section.origin
            scopes[section.name] = scope
        else:
            msg = f"peer [{section.name}] defined again; merged into the first definition"
            warnings.append(ConfWarning(section.origin, msg, "duplicate-peer"))
            for key in ("setvar", "auth", "mailbox", "transports"):
                scope.reset(key)
        _apply(scope, section.entries, _PEER, _KNOWN_PEER)
    peers = {name: Peer(**scope.values) for name, scope in scopes.items()}
    return SipConfig(general, peers, registrations, auth, warnings)


def load_sip_conf(path: str | os.PathLike[str], *, read_file: ReadFile | None = None) -> SipConfig:
    """Read ``path`` (with its includes) and return its meaning; ``ConfigError`` if refused."""
    return parse_sip_conf(load(path, read_file=read_file))
