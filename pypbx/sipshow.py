"""Text of ``sip show peers`` and ``sip show peer NAME`` (chan_sip's CLI), from live state.

Pure formatting over :class:`~pypbx.peers.PeerDirectory` and :class:`~pypbx.qualify.Qualifier`;
``now`` is Unix time. Columns and words are chan_sip's (``_sip_show_peers`` format
``%-25.25s %-39.39s %-3.3s %-10.10s %-10.10s %-3.3s %-8d %-11s %-32.32s %s``; footer
``N sip peers [Monitored: …]``). :class:`SipStatus` adapts the same objects to the
``SipRuntime`` protocol that :mod:`pypbx.control.sip` reads (``sip show registry`` rows come
from :meth:`pypbx.trunks.OutboundRegistration.row`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pypbx.config.sipconf import NatMode, Peer, PeerType
from pypbx.peers import PeerDirectory, PeerView
from pypbx.qualify import Qualifier, QualifyStatus
from pypbx.trunks import OutboundRegistration, RegistryRow

__all__ = ["PeerRow", "SipStatus", "format_peer", "format_peers", "peer_rows"]

_PEERS = "{:<25.25} {:<39.39} {:<3.3} {:<10.10} {:<10.10} {:<3.3} {:<8} {:<11} {:<32.32} {}"


@dataclass(frozen=True, slots=True)
class PeerRow:
    """One line of ``sip show peers`` plus what the footer counts."""

    name: str
    host: str
    dynamic: bool
    forcerport: str
    comedia: str
    acl: bool
    port: int
    status: str
    description: str
    monitored: bool
    online: bool


def _nat_words(peer: Peer) -> tuple[str, str]:
    def col(plain: NatMode, auto: NatMode) -> str:
        if auto in peer.nat:
            return "Auto (No)"  # decided per request; unknown until a request comes
        return "Yes" if plain in peer.nat else "No"

    return (
        col(NatMode.FORCE_RPORT, NatMode.AUTO_FORCE_RPORT),
        col(NatMode.COMEDIA, NatMode.AUTO_COMEDIA),
    )


def _status(peer: Peer, qualifier: Qualifier, view: PeerView | None) -> tuple[str, bool, bool]:
    """(Status text, monitored, online) as chan_sip's ``peer_status``."""
    if peer.qualify:
        if peer.name not in qualifier:
            return QualifyStatus.UNKNOWN.value, True, False
        status = qualifier.status(peer.name)
        online = status in (QualifyStatus.OK, QualifyStatus.LAGGED)
        return qualifier.status_text(peer.name), True, online
    online = view is not None and view.address is not None
    return QualifyStatus.UNMONITORED.value, False, online


def peer_rows(directory: PeerDirectory, qualifier: Qualifier, now: float) -> list[PeerRow]:
    """Every peer, in sip.conf order; ``type=user`` entries are users, not listed here."""
    rows: list[PeerRow] = []
    for peer in directory.peers():
        if peer.type is PeerType.USER:
            continue
        view = directory.status(peer.name, now, lastms=qualifier.lastms(peer.name))
        status, monitored, online = _status(peer, qualifier, view)
        rport, comedia = _nat_words(peer)
        user = peer.defaultuser
        rows.append(
            PeerRow(
                name=f"{peer.name}/{user}" if user else peer.name,
                host=(view.address if view and view.address else "(Unspecified)"),
                dynamic=peer.dynamic,
                forcerport=rport,
                comedia=comedia,
                acl=bool(peer.acl),
                port=view.port if view else 0,
                status=status,
                description="",
                monitored=monitored,
                online=online,
            )
        )
    return rows


def format_peers(rows: Iterable[PeerRow]) -> str:
    """``sip show peers`` text: header, rows, and the monitored/unmonitored footer."""
    head = ("Name/username", "Host", "Dyn", "Forcerport", "Comedia", "ACL", "Port", "Status")
    lines = [_PEERS.format(*head, "Description", "")]
    counts = {(m, o): 0 for m in (True, False) for o in (True, False)}
    total = 0
    for r in rows:
        total += 1
        counts[(r.monitored, r.online)] += 1
        lines.append(
            _PEERS.format(
                r.name,
                r.host,
                " D " if r.dynamic else "   ",
                r.forcerport,
                r.comedia,
                " A " if r.acl else "   ",
                str(r.port),
                r.status,
                r.description,
                "",
            )
        )
    lines.append(
        f"{total} sip peers [Monitored: {counts[(True, True)]} online, "
        f"{counts[(True, False)]} offline Unmonitored: {counts[(False, True)]} online, "
        f"{counts[(False, False)]} offline]"
    )
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _set(value: str | None) -> str:
    return "<Set>" if value else "<Not set>"


def format_peer(directory: PeerDirectory, qualifier: Qualifier, name: str, now: float) -> str:
    """``sip show peer NAME`` text (chan_sip's field names); "Peer NAME not found." if absent."""
    peer = directory.get(name)
    if peer is None:
        return f"Peer {name} not found.\n"
    view = directory.status(peer.name, now, lastms=qualifier.lastms(peer.name))
    status, _, _ = _status(peer, qualifier, view)
    rport, comedia = _nat_words(peer)
    binding = directory.binding(peer.name, now) if peer.dynamic else None
    addr = f"{view.address}:{view.port}" if view and view.address else "(null)"
    cid = peer.callerid
    callerid = f'"{cid.name}" <{cid.number}>' if cid else ""
    fields: list[tuple[str, str]] = [
        ("Secret", _set(peer.secret)),
        ("MD5Secret", _set(peer.md5secret)),
        ("Remote Secret", _set(peer.remotesecret)),
        ("Context", peer.context),
        ("Language", peer.language),
        ("Callerid", callerid),
        ("Call limit", str(peer.call_limit or 0)),
        ("Dynamic", "Yes" if peer.dynamic else "No"),
        ("Insecure", ",".join(sorted(i.value for i in peer.insecure)) or "no"),
        ("Force rport", rport),
        ("Comedia", comedia),
        ("ACL", "Yes" if peer.acl else "No"),
        ("Def. Username", peer.defaultuser or ""),
        ("Fromuser", peer.fromuser or ""),
        ("Fromdomain", peer.fromdomain or ""),
        ("Addr->IP", addr),
        ("Defaddr->IP", peer.defaultip or "(null)"),
        ("Reg. exten", ""),
        ("Qualify", f"{peer.qualify} ms" if peer.qualify else "no"),
        ("Qualify freq", f"{peer.qualifyfreq * 1000} ms"),
        ("DTMFmode", peer.dtmfmode.value),
        ("Codecs", "(" + "|".join(peer.allow) + ")"),
        ("Status", status),
        ("Useragent", binding.user_agent if binding else ""),
        ("Reg. Contact", binding.contact if binding else ""),
        ("Reg. Expires", str(binding.remaining(now)) if binding else ""),
    ]
    lines = ["", f"  * Name       : {peer.name}"]
    lines += [f"  {key:<13}: {value}" for key, value in fields]
    return "\n".join(line.rstrip() for line in lines) + "\n"


class SipStatus:
    """The ``SipRuntime`` view of :mod:`pypbx.control.sip` over the live SIP objects."""

    def __init__(
        self,
        directory: PeerDirectory,
        qualifier: Qualifier,
        registrations: Iterable[OutboundRegistration],
        clock: Callable[[], float],
    ) -> None:
        self.directory = directory
        self.qualifier = qualifier
        self.registrations = list(registrations)
        self.clock = clock

    def peer_status(self, name: str) -> PeerView | None:
        return self.directory.status(name, self.clock(), lastms=self.qualifier.lastms(name))

    def registration_status(self, registration: Any) -> RegistryRow | None:
        for line in self.registrations:
            if line.reg is registration or line.reg == registration:
                return line.row()
        return None

    def dialogs(self) -> list[Any]:
        """Dialogs are not tracked here; the SIP service merges its own."""
        return []
