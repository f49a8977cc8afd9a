"""sip.conf values: the typed model (General, Peer, Registration ...) and the value parsers.

The value parsers read one option's text as chan_sip does: ``nat`` (``sip_parse_nat_option``),
``allow``/``disallow`` in order, ``callerid``, ``[authentication]`` ``auth =`` lines (RFC 2617
§3.2.2) and ``register =>`` lines (RFC 3261 §10.2, chan_sip ``sip_parse_register_line``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pypbx.config.conf import ConfWarning, Origin
from pypbx.config.netaddr import (
    Acl,
    Network,
    parse_port,
)

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
DEFAULT_MAXMS = 2000
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

    pypbx's own abuse guards (issue 9; see :mod:`pypbx.security.guard`): ``banfailures``
    failed authentications within ``banwindow`` seconds ban a source for ``bantime`` seconds
    (None: pypbx.conf ``[security]``, else 5 / 600 / 3600); ``banallow`` networks are never
    banned, judged as scanners or rate-limited; ``ratelimit`` out-of-dialog requests per
    second per source (0: no rate limit at all; None: the default 20); ``maxheaders`` header
    lines and ``maxmessagesize`` bytes per message; ``registrationlimit`` live contacts per
    peer.
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
    banfailures: int | None = None
    banwindow: int | None = None
    bantime: int | None = None
    banallow: tuple[Network, ...] = ()
    ratelimit: int | None = None
    maxheaders: int = 64
    maxmessagesize: int = 65535
    registrationlimit: int = 10
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
