"""sip.conf options: one handler per option name, as chan_sip's ``reload_config``/``build_peer``.

Tables ``COMMON``, ``GENERAL`` and ``PEER`` map option names to handlers that fill a
:class:`Scope`; options Asterisk knows but pypbx does not model are in ``KNOWN_*`` and accepted
silently. A bad value gives a warning with ``file:line`` and keeps the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pypbx.config.conf import ConfWarning, Entry
from pypbx.config.netaddr import (
    Acl,
    AclAction,
    AclRule,
    parse_network,
    parse_port,
    split_hostport,
)
from pypbx.config.sipmodel import (
    DEFAULT_MAXMS,
    AmaFlags,
    DirectMedia,
    DtmfMode,
    General,
    Insecure,
    PeerType,
    Registration,
    Transport,
    apply_codecs,
    ast_false,
    ast_true,
    parse_auth_line,
    parse_callerid,
    parse_nat,
    parse_register_line,
)


@dataclass(slots=True)
class Scope:
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


Handler = Callable[[Scope, Entry], None]


def _text(key: str, *, empty_is_none: bool = False) -> Handler:
    def handle(scope: Scope, entry: Entry) -> None:
        scope.values[key] = entry.value or None if empty_is_none else entry.value

    return handle


def _flag(key: str, *, unless_false: bool = False) -> Handler:
    """A yes/no option: chan_sip tests ``ast_true`` (or ``!ast_false`` for ``unless_false``)."""

    def handle(scope: Scope, entry: Entry) -> None:
        value = not ast_false(entry.value) if unless_false else ast_true(entry.value)
        if not (ast_true(entry.value) or ast_false(entry.value)):
            word = "yes" if value else "no"
            scope.warn(entry, f"{entry.key}={entry.value!r} is neither yes nor no; taken as {word}")
        scope.values[key] = value

    return handle


def _int(key: str, *, minimum: int = 0) -> Handler:
    """An integer option; a bad or too small value warns and falls back to the default."""

    def handle(scope: Scope, entry: Entry) -> None:
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


def _nat(scope: Scope, entry: Entry) -> None:
    # [general] adds to the defaults (force_rport); a peer's nat= replaces general's entirely.
    start = scope.values["nat"] if scope.name == "general" else frozenset()
    scope.values["nat"], deprecated = parse_nat(entry.value, start)
    if deprecated:
        scope.warn(entry, "nat=yes is deprecated, use nat=force_rport,comedia", "deprecated")


def _directmedia(scope: Scope, entry: Entry) -> None:
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


def _insecure(scope: Scope, entry: Entry) -> None:
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


def _dtmfmode(scope: Scope, entry: Entry) -> None:
    try:
        scope.values["dtmfmode"] = DtmfMode(entry.value.strip().lower())
    except ValueError:
        scope.warn(entry, f"unknown dtmf mode {entry.value!r}, using rfc2833")
        scope.values["dtmfmode"] = DtmfMode.RFC2833


def _codecs(scope: Scope, entry: Entry) -> None:
    allowing = entry.key.lower() == "allow"
    scope.values["allow"], unknown = apply_codecs(
        scope.values["allow"], entry.value, allow=allowing
    )
    verb = "allow" if allowing else "disallow"
    for name in unknown:
        scope.warn(entry, f"cannot {verb} unknown format {name!r}", "unknown-codec")


def _qualify(scope: Scope, entry: Entry) -> None:
    value = entry.value.strip().lower()
    if value == "no":
        scope.values["qualify"] = None
    elif value == "yes":
        scope.values["qualify"] = scope.general.qualify or DEFAULT_MAXMS
    else:
        digits = value[: len(value) - len(value.lstrip("-0123456789"))] if value else ""
        try:
            ms = int(digits)
        except ValueError:
            scope.warn(entry, f"qualify should be yes, no or milliseconds, not {entry.value!r}")
            ms = 0
        scope.values["qualify"] = ms if ms > 0 else None


def _transport(scope: Scope, entry: Entry) -> None:
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
    def handle(scope: Scope, entry: Entry) -> None:
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
    def handle(scope: Scope, entry: Entry) -> None:
        try:
            scope.values[key] = parse_port(entry.value)
        except ValueError:
            scope.warn(entry, f"invalid {entry.key} {entry.value!r}; using default")
            scope.reset(key)

    return handle


def _localnet(scope: Scope, entry: Entry) -> None:
    try:
        scope.values["localnet"] = (*scope.values["localnet"], parse_network(entry.value))
    except ValueError as exc:
        scope.warn(entry, f"invalid localnet value {entry.value!r}: {exc}")


def _banallow(scope: Scope, entry: Entry) -> None:
    try:
        scope.values["banallow"] = (*scope.values["banallow"], parse_network(entry.value))
    except ValueError as exc:
        scope.warn(entry, f"invalid banallow value {entry.value!r}: {exc}")


def _acl(scope: Scope, entry: Entry) -> None:
    action = AclAction(entry.key.lower())
    try:
        rule = AclRule(action, parse_network(entry.value), entry.origin)
    except ValueError as exc:
        scope.warn(entry, f"bad ACL entry {entry.value!r}: {exc}; rule ignored")
        return
    scope.values["acl"] = Acl((*scope.values["acl"].rules, rule))


def _register(scope: Scope, entry: Entry) -> None:
    reg, notes = parse_register_line(entry.value, entry.origin)
    for note in notes:
        scope.warn(entry, f"register {entry.value!r}: {note}", "bad-register")
    if reg is not None:
        scope.registrations.append(reg)


def _allowguest(scope: Scope, entry: Entry) -> None:
    _flag("allowguest")(scope, entry)
    scope.values["allowguest_explicit"] = True


def _peer_callerid(scope: Scope, entry: Entry) -> None:
    scope.values["callerid"] = parse_callerid(entry.value) if entry.value.strip() else None


def _call_limit(scope: Scope, entry: Entry) -> None:
    try:
        limit = int(entry.value.strip())
    except ValueError:
        limit = -1
    if limit < 0:
        scope.warn(entry, f"{entry.value!r} is not a valid call limit; no limit")
    scope.values["call_limit"] = limit if limit > 0 else None


def _type(scope: Scope, entry: Entry) -> None:
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


def _username(scope: Scope, entry: Entry) -> None:
    # the deprecated 'username' and 'defaultuser' set the same chan_sip field
    scope.values["username"] = scope.values["defaultuser"] = entry.value


def _mailbox(scope: Scope, entry: Entry) -> None:
    boxes = tuple(b.strip() for b in entry.value.split(",") if b.strip())
    scope.values["mailbox"] = (*scope.values["mailbox"], *boxes)


def _setvar(scope: Scope, entry: Entry) -> None:
    name, eq, value = entry.value.partition("=")
    if not eq or not name.strip():
        scope.warn(entry, f"setvar needs name=value, not {entry.value!r}")
        return
    scope.values["setvar"] = (*scope.values["setvar"], (name.strip(), value.strip()))


def _amaflags(scope: Scope, entry: Entry) -> None:
    try:
        scope.values["amaflags"] = AmaFlags(entry.value.strip().lower())
    except ValueError:
        scope.warn(entry, f"invalid AMA flags {entry.value!r}")


def _peer_auth(scope: Scope, entry: Entry) -> None:
    try:
        cred = parse_auth_line(entry.value, entry.origin)
    except ValueError as exc:
        scope.warn(entry, str(exc))
        return
    scope.values["auth"] = (*scope.values["auth"], cred)


COMMON: dict[str, Handler] = {
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

GENERAL: dict[str, Handler] = {
    **COMMON,
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
    # pypbx's abuse guards (issue 9), not chan_sip options
    "banfailures": _int("banfailures", minimum=1),
    "banwindow": _int("banwindow", minimum=1),
    "bantime": _int("bantime", minimum=1),
    "banallow": _banallow,
    "ratelimit": _int("ratelimit"),
    "maxheaders": _int("maxheaders", minimum=8),
    "maxmessagesize": _int("maxmessagesize", minimum=1024),
    "registrationlimit": _int("registrationlimit", minimum=1),
}

PEER: dict[str, Handler] = {
    **COMMON,
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


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Options chan_sip (1.4 … 20) knows that pypbx accepts without modelling them.
KNOWN_COMMON = words(
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
KNOWN_GENERAL = KNOWN_COMMON | words(
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
KNOWN_PEER = KNOWN_COMMON | words(
    """
    acl callbackextension callcounter cid_number contactacl contactdeny contactpermit
    description fullcontact fullname hasvoicemail ipaddr lastms mwi_from regexten registertrying
    regseconds regserver rtpbindaddr subscribemwi template trunkname useclientcode useragent
    """
)
