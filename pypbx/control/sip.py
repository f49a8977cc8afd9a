"""``sip show peers|peer|users|registry|channels``, ``sip reload``, ``sip set debug`` (chan_sip.c).

Columns, headers and footers are Asterisk 13's chan_sip format strings, so scripts written
for ``asterisk -rx 'sip show peers'`` read ``pypbx -rx 'sip show peers'`` the same way. The
static part comes from the loaded sip.conf; the live part (addresses, qualify times,
registration states, dialogs) from ``pbx.sip_runtime`` once the SIP service provides one
(see :class:`SipRuntime`); without it peers show as not yet seen.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from pypbx.control.commands import CommandError, ShowUsage, command
from pypbx.control.core import ess
from pypbx.log import TRACE, TraceFilter

if TYPE_CHECKING:
    from pypbx.server import Pbx

DEFAULT_QUALIFY_MS = 2000
"""``qualify=yes`` in Asterisk means a 2000 ms limit."""


class PeerStatus(Protocol):
    """What the SIP service knows about a peer now."""

    address: str | None
    port: int
    lastms: int | None
    """Last qualify round trip in ms; -1 when unreachable; None when not measured yet."""
    username: str
    useragent: str
    contact: str


class RegistrationStatus(Protocol):
    """The state of one outbound ``register =>`` line."""

    state: str
    """Asterisk's words: Unregistered, Request Sent, Auth. Sent, Registered, Rejected, ..."""
    refresh: int
    regtime: float | None


class DialogView(Protocol):
    """One SIP dialog for ``sip show channels``."""

    peer_address: str
    user: str
    call_id: str
    codec: str
    on_hold: bool
    last_method: str


class SipRuntime(Protocol):
    """What ``pbx.sip_runtime`` offers the commands (the SIP service implements it)."""

    def peer_status(self, name: str) -> PeerStatus | None: ...

    def registration_status(self, registration: Any) -> RegistrationStatus | None: ...

    def dialogs(self) -> list[DialogView]: ...


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        value = getattr(obj, n, None)
        if value is not None:
            return value
    return default


def _peers(pbx: Pbx) -> dict[str, Any]:
    return dict(_get(pbx.sip, "peers", default={}))


def _peer_names(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    return list(_peers(pbx)) if not args else []


def _runtime_peer(pbx: Pbx, name: str) -> Any:
    rt = pbx.sip_runtime
    return rt.peer_status(name) if rt is not None else None


def _words(value: Any) -> set[str]:
    """A setting as a set of lower-case words (enum members, sets, strings, bools)."""
    if value is None:
        return set()
    if isinstance(value, bool):
        return {"yes" if value else "no"}
    if isinstance(value, str):
        return {w.strip().lower() for w in value.split(",") if w.strip()}
    if isinstance(value, Iterable):
        out: set[str] = set()
        for v in value:
            out |= _words(v)
        return out
    name = getattr(value, "name", None) or getattr(value, "value", None) or str(value)
    return _words(str(name))


def _nat(peer: Any) -> tuple[str, str]:
    """(Forcerport, Comedia) column values as chan_sip prints them."""
    w = _words(_get(peer, "nat"))
    if "yes" in w:
        w |= {"force_rport", "comedia"}

    def col(flag: str) -> str:
        on = flag in w or flag.upper() in w
        if f"auto_{flag}" in w:
            return f"Auto ({'Yes' if on else 'No'})"
        return "Yes" if on else "No"

    return col("force_rport"), col("comedia")


def _maxms(peer: Any) -> int:
    q = _get(peer, "qualify")
    if isinstance(q, bool):
        return DEFAULT_QUALIFY_MS if q else 0
    if isinstance(q, int):
        return q
    if isinstance(q, str):
        if q.isdigit():
            return int(q)
        return DEFAULT_QUALIFY_MS if q.lower() in ("yes", "true", "on", "1") else 0
    ms = _get(peer, "qualify_ms", "maxms")
    return int(ms) if isinstance(ms, int) else 0


def _dynamic(peer: Any) -> bool:
    return str(_get(peer, "host", default="")).lower() == "dynamic" or bool(
        _get(peer, "dynamic", default=False) is True
    )


def _static_address(peer: Any) -> str | None:
    host = str(_get(peer, "host", default=""))
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _has_acl(peer: Any) -> bool:
    return bool(_get(peer, "acl", "permit", "deny", "ha", default=None))


def _status(peer: Any, rt: Any) -> tuple[str, bool, bool]:
    """(status text, monitored, online) as chan_sip's peer_status()."""
    maxms = _maxms(peer)
    lastms = getattr(rt, "lastms", None) if rt is not None else None
    if maxms:
        if lastms is None or lastms == 0:
            return "UNKNOWN", True, False
        if lastms < 0:
            return "UNREACHABLE", True, False
        if lastms > maxms:
            return f"LAGGED ({lastms} ms)", True, True
        return f"OK ({lastms} ms)", True, True
    online = rt is not None and getattr(rt, "address", None) is not None
    return "Unmonitored", False, online


def _address(peer: Any, rt: Any) -> tuple[str | None, int]:
    if rt is not None and getattr(rt, "address", None):
        return str(rt.address), int(getattr(rt, "port", 0) or 0)
    if _dynamic(peer):
        return None, 0
    addr = _static_address(peer)
    return addr, (int(_get(peer, "port", default=5060)) if addr else 0)


_PEERS = "{:<25.25} {:<39.39} {:<3.3} {:<10.10} {:<10.10} {:<3.3} {:<8} {:<11} {:<32.32} {}"


@command(
    "sip show peers",
    summary="List defined SIP peers",
    usage="Usage: sip show peers [like <pattern>]\n"
    "       Lists all known SIP peers (a 'like' pattern limits the list to names containing it).",
)
async def show_peers(pbx: Pbx, args: list[str]) -> str:
    like: str | None = None
    if args:
        if len(args) != 2 or args[0].lower() != "like":
            raise ShowUsage
        like = args[1]
    head = (
        "Name/username",
        "Host",
        "Dyn",
        "Forcerport",
        "Comedia",
        "ACL",
        "Port",
        "Status",
        "Description",
        "",
    )
    lines = [_PEERS.format(*head)]
    counts = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    total = 0
    for name, peer in _peers(pbx).items():
        if like is not None and like not in name:
            continue
        rt = _runtime_peer(pbx, name)
        user = (getattr(rt, "username", "") if rt is not None else "") or _get(
            peer, "defaultuser", "username", default=""
        )
        label = f"{name}/{user}" if user else name
        addr, port = _address(peer, rt)
        status, monitored, online = _status(peer, rt)
        counts[(monitored, online)] += 1
        total += 1
        rport, comedia = _nat(peer)
        lines.append(
            _PEERS.format(
                label,
                addr or "(Unspecified)",
                " D " if _dynamic(peer) else "   ",
                rport,
                comedia,
                " A " if _has_acl(peer) else "   ",
                str(port),
                status,
                str(_get(peer, "description", default="")),
                "",
            )
        )
    lines.append(
        f"{total} sip peers [Monitored: {counts[(True, True)]} online, "
        f"{counts[(True, False)]} offline Unmonitored: {counts[(False, True)]} online, "
        f"{counts[(False, False)]} offline]"
    )
    return "\n".join(line.rstrip() for line in lines)


def _callerid(cid: Any) -> str:
    if cid is None:
        return ""
    name, num = getattr(cid, "name", ""), getattr(cid, "number", "")
    return f'"{name}" <{num}>' if name else (f"<{num}>" if num else "")


def _yesno(value: Any) -> str:
    return "Yes" if value else "No"


@command(
    "sip show peer",
    summary="Show details on specific SIP peer",
    usage="Usage: sip show peer <name>\n"
    "       Shows all details on one SIP peer and the current status.",
    completer=_peer_names,
)
async def show_peer(pbx: Pbx, args: list[str]) -> str:
    if len(args) != 1:
        raise ShowUsage
    name = args[0]
    peer = _peers(pbx).get(name)
    if peer is None:
        raise CommandError(f"Peer {name} not found.")
    rt = _runtime_peer(pbx, name)
    addr, port = _address(peer, rt)
    status, _, _ = _status(peer, rt)
    rport, comedia = _nat(peer)
    codecs = _get(peer, "codecs", "allow", default=())
    codec_text = ", ".join(str(_get(c, "name", default=c)) for c in codecs) if codecs else ""
    fields = [
        ("Description", _get(peer, "description", default="")),
        ("Secret", "<Set>" if _get(peer, "secret") else "<Not set>"),
        ("MD5Secret", "<Set>" if _get(peer, "md5secret") else "<Not set>"),
        ("Context", _get(peer, "context", default="")),
        ("Type", _get(peer, "type", default="")),
        ("Callerid", _callerid(_get(peer, "callerid"))),
        ("Mailbox", ",".join(_get(peer, "mailbox", default=()))),
        ("Call limit", str(_get(peer, "call_limit", default=0))),
        ("Dynamic", _yesno(_dynamic(peer))),
        ("Insecure", ",".join(sorted(_words(_get(peer, "insecure")))) or "no"),
        ("Force rport", rport),
        ("Comedia", comedia),
        ("ACL", _yesno(_has_acl(peer))),
        ("DirectMedia", _yesno(getattr(_get(peer, "directmedia"), "enabled", False))),
        ("Defaultuser", _get(peer, "defaultuser", "username", default="")),
        ("Fromuser", _get(peer, "fromuser", default="")),
        ("Fromdomain", _get(peer, "fromdomain", default="")),
        ("Addr->IP", f"{addr}:{port}" if addr else "(null)"),
        ("Qualify", f"{_maxms(peer)} ms" if _maxms(peer) else "no"),
        ("DTMFmode", _get(peer, "dtmfmode", default="")),
        ("Codecs", codec_text),
        ("Status", status),
        ("Useragent", getattr(rt, "useragent", "") if rt is not None else ""),
        ("Reg. Contact", getattr(rt, "contact", "") if rt is not None else ""),
    ]
    lines = ["", f"  * Name       : {name}"]
    lines += [
        f"  {k:<13}: {_get(v, 'value', default=v) if not isinstance(v, str) else v}"
        for k, v in fields
    ]
    return "\n".join(line.rstrip() for line in lines)


_USERS = "{:<25.25}  {:<15.15}  {:<15.15}  {:<15.15}  {:<5.5}{:<10.10}"


@command(
    "sip show users",
    summary="List defined SIP users",
    usage="Usage: sip show users [like <pattern>]\n       Lists all known SIP users.",
)
async def show_users(pbx: Pbx, args: list[str]) -> str:
    like: str | None = None
    if args:
        if len(args) != 2 or args[0].lower() != "like":
            raise ShowUsage
        like = args[1]
    lines = [_USERS.format("Username", "Secret", "Accountcode", "Def.Context", "ACL", "Forcerport")]
    for name, peer in _peers(pbx).items():
        kind = str(_get(peer, "type", default="friend")).lower()
        if "peer" in kind and "friend" not in kind and "user" not in kind:
            continue
        if like is not None and like not in name:
            continue
        rport, _ = _nat(peer)
        lines.append(
            _USERS.format(
                name,
                str(_get(peer, "secret", default="")),
                str(_get(peer, "accountcode", default="")),
                str(_get(peer, "context", default="")),
                _yesno(_has_acl(peer)),
                "Yes" if rport.startswith("Yes") else "No",
            )
        )
    return "\n".join(line.rstrip() for line in lines)


_REG = "{:<39.39} {:<6.6} {:<12.12}  {:>8.8} {:<20.20} {:<25.25}"


def _regtime(ts: float | None) -> str:
    if not ts:
        return ""
    return time.strftime("%a, %d %b %Y %H:%M:%S", time.localtime(ts))


@command(
    "sip show registry",
    summary="List SIP registration status",
    usage="Usage: sip show registry\n       Lists all registration requests and status.",
)
async def show_registry(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    lines = [_REG.format("Host", "dnsmgr", "Username", "Refresh", "State", "Reg.Time")]
    regs = list(_get(pbx.sip, "registrations", default=()))
    default_expiry = _get(_get(pbx.sip, "general"), "defaultexpiry", default=120)
    rt = pbx.sip_runtime
    for reg in regs:
        status = rt.registration_status(reg) if rt is not None else None
        host = _get(reg, "host", "hostname", default="")
        port = _get(reg, "port", default=None) or 5060
        user = _get(reg, "username", "user", default="")
        refresh = getattr(status, "refresh", None) or _get(reg, "expiry", default=default_expiry)
        state = getattr(status, "state", None) or "Unregistered"
        regtime = _regtime(getattr(status, "regtime", None))
        lines.append(_REG.format(f"{host}:{port}", "N", str(user), str(refresh), state, regtime))
    lines.append(f"{len(regs)} SIP registrations.")
    return "\n".join(line.rstrip() for line in lines)


_CHANNELS = "{:<15.15}  {:<15.15}  {:<15.15}  {:<15.15}  {:<7.7}  {:<15.15} {:<10.10} {:<10.10}"


@command(
    "sip show channels",
    summary="List active SIP channels or subscriptions",
    usage="Usage: sip show channels\n       Lists all currently active SIP dialogs.",
)
async def show_channels(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    head = ("Peer", "User/ANR", "Call ID", "Format", "Hold", "Last Message", "Expiry", "Peer")
    lines = [_CHANNELS.format(*head)]
    rt = pbx.sip_runtime
    dialogs = list(rt.dialogs()) if rt is not None and hasattr(rt, "dialogs") else []
    for d in dialogs:
        lines.append(
            _CHANNELS.format(
                str(getattr(d, "peer_address", "")),
                str(getattr(d, "user", "")),
                str(getattr(d, "call_id", "")),
                str(getattr(d, "codec", "")),
                "Yes" if getattr(d, "on_hold", False) else "No",
                str(getattr(d, "last_method", "")),
                "",
                "",
            )
        )
    lines.append(f"{len(dialogs)} active SIP dialog{ess(len(dialogs))}")
    return "\n".join(line.rstrip() for line in lines)


@command(
    "sip reload",
    summary="Reload SIP configuration",
    usage="Usage: sip reload\n"
    "       Reloads sip.conf (and rtp.conf): reports the peers and registrations added, removed\n"
    "       and changed. A configuration with an error is refused and the running one kept.",
)
async def sip_reload(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    result = await pbx.reload_sip()
    text = "\n".join(result.lines)
    if not result.ok:
        raise CommandError(text)
    return text


def _debug_words(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    if not args:
        return ["on", "off", "peer", "ip"]
    if args == ["peer"]:
        return list(_peers(pbx))
    return []


def _trace_on(flt: TraceFilter | None) -> None:
    trace = logging.getLogger(TRACE)
    for old in [f for f in trace.filters if isinstance(f, TraceFilter)]:
        trace.removeFilter(old)
    if flt is not None:
        trace.addFilter(flt)
    trace.setLevel(logging.DEBUG)
    trace.propagate = True


@command(
    "sip set debug",
    summary="Enable/Disable SIP debugging",
    usage="Usage: sip set debug {on|off|ip <host[:port]>|peer <peer>}\n"
    "       Shows (or stops showing) every SIP message sent and received on the consoles\n"
    "       and in the log, optionally only those to and from one address or peer.",
    completer=_debug_words,
)
async def set_debug(pbx: Pbx, args: list[str]) -> str:
    word = args[0].lower() if args else ""
    if len(args) == 1 and word == "on":
        _trace_on(None)
        return "SIP Debugging enabled"
    if len(args) == 1 and word == "off":
        trace = logging.getLogger(TRACE)
        trace.setLevel(logging.CRITICAL)
        trace.propagate = False
        return "SIP Debugging Disabled"
    if len(args) == 2 and word == "ip":
        host = args[1].rsplit(":", 1)[0] if args[1].count(":") == 1 else args[1]
        _trace_on(TraceFilter({host}))
        return f"SIP Debugging Enabled for IP: {args[1]}"
    if len(args) == 2 and word == "peer":
        peer = _peers(pbx).get(args[1])
        if peer is None:
            raise CommandError(f"Unable to get IP address of peer '{args[1]}'")
        addr, _ = _address(peer, _runtime_peer(pbx, args[1]))
        if addr is None:
            raise CommandError(f"Unable to get IP address of peer '{args[1]}'")
        _trace_on(TraceFilter({addr}))
        return f"SIP Debugging Enabled for IP: {addr}"
    raise ShowUsage
