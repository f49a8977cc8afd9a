"""``sip show peers|peer|users|registry|channels|bans``, ``sip unban``, ``sip reload``,
``sip set debug`` (chan_sip.c; the ban commands are pypbx's, issue 9).

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
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol, cast

from pypbx.call.sip_view import SipDialogRow
from pypbx.config.sipmodel import (
    STANDARD_SIP_PORT,
    CallerId,
    NatMode,
    Peer,
    PeerType,
    Registration,
)
from pypbx.control.commands import CommandError, ShowUsage, command, reload_output
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


class SipRuntime(Protocol):
    """What ``pbx.sip_runtime`` offers the commands (the SIP service implements it)."""

    def peer_status(self, name: str) -> PeerStatus | None: ...

    def registration_status(self, registration: Registration) -> RegistrationStatus | None: ...

    def dialogs(self) -> list[SipDialogRow]: ...


class BanView(Protocol):
    """One ban in force (``pypbx.security.bans.Ban``)."""

    addr: str
    since: float
    until: float
    failures: int
    reason: str


class BanRuntime(Protocol):
    """The ban side of ``pbx.sip_runtime`` (the SIP service's abuse guard)."""

    clock: Callable[[], float]

    def bans(self) -> list[BanView]: ...

    def unban(self, addr: str) -> bool: ...


def _ban_runtime(pbx: Pbx) -> BanRuntime | None:
    rt = pbx.sip_runtime
    if rt is None or not all(hasattr(rt, name) for name in ("bans", "unban", "clock")):
        return None
    return cast(BanRuntime, rt)


def _peers(pbx: Pbx) -> dict[str, Peer]:
    return dict(pbx.sip.peers) if pbx.sip is not None else {}


def _peer_names(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    return list(_peers(pbx)) if not args else []


def _runtime_peer(pbx: Pbx, name: str) -> PeerStatus | None:
    rt: SipRuntime | None = pbx.sip_runtime
    return rt.peer_status(name) if rt is not None else None


def _nat(peer: Peer) -> tuple[str, str]:
    """(Forcerport, Comedia) column values as chan_sip prints them."""

    def col(on: NatMode, auto: NatMode) -> str:
        yes = on in peer.nat
        if auto in peer.nat:
            return f"Auto ({'Yes' if yes else 'No'})"
        return "Yes" if yes else "No"

    return (
        col(NatMode.FORCE_RPORT, NatMode.AUTO_FORCE_RPORT),
        col(NatMode.COMEDIA, NatMode.AUTO_COMEDIA),
    )


def _maxms(peer: Peer) -> int:
    return peer.qualify or 0


def _dynamic(peer: Peer) -> bool:
    return (peer.host or "").lower() == "dynamic"


def _static_address(peer: Peer) -> str | None:
    try:
        return str(ipaddress.ip_address(peer.host or ""))
    except ValueError:
        return None


def _username(peer: Peer, rt: PeerStatus | None) -> str:
    return (rt.username if rt is not None else "") or peer.defaultuser or peer.username or ""


def _status(peer: Peer, rt: PeerStatus | None) -> tuple[str, bool, bool]:
    """(status text, monitored, online) as chan_sip's peer_status()."""
    maxms = _maxms(peer)
    lastms = rt.lastms if rt is not None else None
    if maxms:
        if lastms is None or lastms == 0:
            return "UNKNOWN", True, False
        if lastms < 0:
            return "UNREACHABLE", True, False
        if lastms > maxms:
            return f"LAGGED ({lastms} ms)", True, True
        return f"OK ({lastms} ms)", True, True
    online = rt is not None and rt.address is not None
    return "Unmonitored", False, online


def _address(peer: Peer, rt: PeerStatus | None) -> tuple[str | None, int]:
    if rt is not None and rt.address:
        return rt.address, rt.port
    if _dynamic(peer):
        return None, 0
    addr = _static_address(peer)
    return addr, ((peer.port or STANDARD_SIP_PORT) if addr else 0)


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
        user = _username(peer, rt)
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
                " A " if peer.acl else "   ",
                str(port),
                status,
                "",
                "",
            )
        )
    lines.append(
        f"{total} sip peers [Monitored: {counts[(True, True)]} online, "
        f"{counts[(True, False)]} offline Unmonitored: {counts[(False, True)]} online, "
        f"{counts[(False, False)]} offline]"
    )
    return "\n".join(line.rstrip() for line in lines)


def _callerid(cid: CallerId | None) -> str:
    if cid is None:
        return ""
    return f'"{cid.name}" <{cid.number}>' if cid.name else (f"<{cid.number}>" if cid.number else "")


def _yesno(value: bool) -> str:
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
    fields = [
        ("Description", ""),
        ("Secret", "<Set>" if peer.secret else "<Not set>"),
        ("MD5Secret", "<Set>" if peer.md5secret else "<Not set>"),
        ("Context", peer.context),
        ("Type", str(peer.type)),
        ("Callerid", _callerid(peer.callerid)),
        ("Mailbox", ",".join(peer.mailbox)),
        ("Call limit", str(peer.call_limit or 0)),
        ("Dynamic", _yesno(_dynamic(peer))),
        ("Insecure", ",".join(sorted(str(i) for i in peer.insecure)) or "no"),
        ("Force rport", rport),
        ("Comedia", comedia),
        ("ACL", _yesno(bool(peer.acl))),
        ("DirectMedia", _yesno(peer.directmedia.enabled)),
        ("Defaultuser", peer.defaultuser or peer.username or ""),
        ("Fromuser", peer.fromuser or ""),
        ("Fromdomain", peer.fromdomain or ""),
        ("Addr->IP", f"{addr}:{port}" if addr else "(null)"),
        ("Qualify", f"{_maxms(peer)} ms" if _maxms(peer) else "no"),
        ("DTMFmode", str(peer.dtmfmode)),
        ("Codecs", ", ".join(peer.allow)),
        ("Status", status),
        ("Useragent", rt.useragent if rt is not None else ""),
        ("Reg. Contact", rt.contact if rt is not None else ""),
    ]
    lines = ["", f"  * Name       : {name}"]
    lines += [f"  {key:<13}: {value}" for key, value in fields]
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
        if peer.type is PeerType.PEER:
            continue
        if like is not None and like not in name:
            continue
        rport, _ = _nat(peer)
        lines.append(
            _USERS.format(
                name,
                peer.secret or "",
                peer.accountcode,
                peer.context,
                _yesno(bool(peer.acl)),
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
    sip = pbx.sip
    regs = list(sip.registrations) if sip is not None else []
    default_expiry = sip.general.defaultexpiry if sip is not None else 120
    rt: SipRuntime | None = pbx.sip_runtime
    for reg in regs:
        status = rt.registration_status(reg) if rt is not None else None
        host = f"{reg.host}:{reg.port or STANDARD_SIP_PORT}"
        dnsmgr = "N"
        if status is not None:
            refresh, state, regtime = status.refresh, status.state, _regtime(status.regtime)
            dnsmgr = str(getattr(status, "dnsmgr", "N"))
        else:
            refresh, state, regtime = reg.expiry or default_expiry, "Unregistered", ""
        lines.append(_REG.format(host, dnsmgr, reg.user, str(refresh), state, regtime))
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
    rt: SipRuntime | None = pbx.sip_runtime
    dialogs = list(rt.dialogs()) if rt is not None else []
    for d in dialogs:
        lines.append(
            _CHANNELS.format(
                d.peer_address,
                d.user,
                d.call_id,
                d.codec,
                "Yes" if d.on_hold else "No",
                d.last_method,
                "",
                "",
            )
        )
    lines.append(f"{len(dialogs)} active SIP dialog{ess(len(dialogs))}")
    return "\n".join(line.rstrip() for line in lines)


_BANS = "{:<39.39} {:>10} {:>10}  {}"


def _ban_reason(ban: BanView) -> str:
    return f"{ban.failures} {ban.reason}" if ban.failures else ban.reason


@command(
    "sip show bans",
    summary="List source addresses banned for abuse",
    usage="Usage: sip show bans\n"
    "       Lists the addresses the abuse guard banned (failed authentications, scanners),\n"
    "       with how long ago and how much longer, in seconds, and the reason.",
)
async def show_bans(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    rt = _ban_runtime(pbx)
    bans = rt.bans() if rt is not None else []
    now = rt.clock() if rt is not None else 0.0
    lines = [_BANS.format("Address", "Banned", "Remaining", "Reason")]
    for ban in bans:
        since = max(0, int(now - ban.since))
        left = max(0, int(ban.until - now + 0.999))
        lines.append(_BANS.format(ban.addr, f"{since} s", f"{left} s", _ban_reason(ban)))
    lines.append(f"{len(bans)} banned address{'es' if len(bans) != 1 else ''}")
    return "\n".join(line.rstrip() for line in lines)


def _banned(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    rt = _ban_runtime(pbx)
    return [b.addr for b in rt.bans()] if rt is not None and not args else []


@command(
    "sip unban",
    summary="Lift the ban of a source address",
    usage="Usage: sip unban <address>\n"
    "       Lifts the abuse guard's ban of <address> and forgets its failed authentications.",
    completer=_banned,
)
async def unban(pbx: Pbx, args: list[str]) -> str:
    if len(args) != 1:
        raise ShowUsage
    rt = _ban_runtime(pbx)
    if rt is None:
        raise CommandError("SIP is not running: no bans.")
    if not rt.unban(args[0]):
        raise CommandError(f"Address {args[0]} is not banned.")
    return f"Unbanned {args[0]}"


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
    return reload_output(await pbx.reload_sip())


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
