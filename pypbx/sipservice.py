"""The SIP service: the running PBX's SIP side (RFC 3261 §10 registrations both ways, §11
OPTIONS, §8.2 UAS request handling).

Composition of the pure parts over a :class:`~pypbx.transport.stack.SipStack` bound on
``[general] bindaddr:bindport`` (UDP, and TCP with ``tcpenable``):

* REGISTER → :class:`pypbx.registrar.Registrar` (digest with a per-process random secret);
  binding changes go to :class:`pypbx.location_store.LocationStore` through
  :mod:`pypbx.sipservice_store` (one transaction per loop tick, the 200s after the commit).
  Bindings are loaded back at start (expired ones dropped) and swept every second.
* ``register =>`` lines → :mod:`pypbx.sipservice_register` (one task per line).
* ``qualify`` → :mod:`pypbx.sipservice_qualify` (static peers once resolved, dynamic peers
  from their registration on).
* OPTIONS outside a dialog is answered 200 by the endpoint. INVITE/SUBSCRIBE/REFER and
  in-dialog requests go to ``pbx.call_handler(service, event)`` when the call layer set one;
  without it a new dialog gets 480 and an in-dialog request 481. Other methods chan_sip knows
  get 405 (with Allow), unknown ones 501.
* :class:`SipService` implements ``pypbx.control.sip.SipRuntime`` for ``sip show
  peers|peer|registry`` through :class:`pypbx.sipshow.SipStatus`.
* Abuse guard (issue 9, :mod:`pypbx.security.guard`): one :class:`~pypbx.security.guard.Guard`
  screens every received message as the stack's ``inbound_filter`` (bans, size, rate,
  header count, scanners); the registrar's outcomes and, through
  :class:`~pypbx.security.invite.GuardedDirectory`, INVITE authentication feed its ban
  counter; 404s we send are watched on the way out. :meth:`SipService.auth_failed` /
  :meth:`SipService.auth_ok` let other layers report more. Bans are logged on ``pypbx.security``
  and listed by ``sip show bans``. TCP connections from banned sources are refused.

Every message in and out is logged in full on ``pypbx.sip.trace`` (``sip set debug``) by the
stack, with ``extra={"peer_ip": host}``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from pypbx.check import ConfigSet
from pypbx.config.sipconf import General, SipConfig
from pypbx.errors import PbxError
from pypbx.location import DEFAULT_MAX_CONTACTS, Change, ChangeKind, Location
from pypbx.location_store import LocationStore
from pypbx.log import verbose
from pypbx.peers import PeerDirectory
from pypbx.qualify import Qualifier
from pypbx.registrar import Registrar
from pypbx.security.bans import Ban, BanEvent
from pypbx.security.guard import Guard, GuardConfig
from pypbx.security.invite import GuardedDirectory
from pypbx.server import Pbx, register_service
from pypbx.sip.auth import DigestServer
from pypbx.sip.events import (
    AckReceived,
    Addr,
    CancelReceived,
    Event,
    RequestReceived,
    ServerTxnKey,
)
from pypbx.sip.ids import RandomSource
from pypbx.sip.message import Response
from pypbx.sip.uri import SipUri
from pypbx.sipservice_dns import DNS_PORT, SrvRecord, nameservers, query_srv
from pypbx.sipservice_qualify import QualifyDriver
from pypbx.sipservice_register import (
    RegistrationLine,
    local_ip_towards,
    registration_key,
    resolve_host,
)
from pypbx.sipservice_store import BindingWriter
from pypbx.sipshow import SipStatus
from pypbx.transport.addr import hostport
from pypbx.transport.natwire import NatGlue
from pypbx.transport.stack import SipStack, StackConfig
from pypbx.transport.tcp import TcpConfig

if TYPE_CHECKING:
    from pypbx.control.sip import PeerStatus, RegistrationStatus

__all__ = ["CallHandler", "SipService", "SipServiceError", "sip_service"]

log = logging.getLogger("pypbx.sip")
security_log = logging.getLogger("pypbx.security")

DIALOG_METHODS = frozenset({"INVITE", "SUBSCRIBE", "REFER"})
"""Out-of-dialog requests that create a dialog: the call layer's business."""
KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "SUBSCRIBE", "NOTIFY", "REFER"}
    | {"INFO", "MESSAGE", "UPDATE", "PRACK", "PUBLISH"}
)
"""Methods chan_sip knows: one it does not handle here gets 405, anything else 501."""
SWEEP_INTERVAL = 1.0
"""Seconds between sweeps of expired bindings."""
MAX_TRANSACTIONS = 200_000
"""Live transactions the stack keeps. A registration is two non-INVITE transactions (401,
then 200) that each linger 32 s in Completed (timer J over UDP), so 2,000 registrations/s
keep ~128,000 alive; the stack's default of 10,000 would cap them near 150/s."""
MAX_NONCES = 131_072
"""Nonces whose nonce-count the digest server tracks (LRU). Each challenge issues one and
they live 32 s, so 2,000 registrations/s keep ~64,000 alive; an evicted live nonce is
answered as stale (a new 401), which a phone must then redo."""
UNREGISTER_TIMEOUT = 2.0
"""Seconds ``stop`` gives the un-REGISTERs to the providers (within the PBX's stop deadline)."""


class SipServiceError(PbxError):
    """The SIP service cannot start (its store is unusable ...)."""


class CallHandler(Protocol):
    """``pbx.call_handler``: takes dialog-creating and in-dialog requests (the call layer).

    It must answer every ``RequestReceived`` it is given (``service.stack.reply(...)``).
    """

    def __call__(
        self, service: SipService, event: RequestReceived | AckReceived | CancelReceived
    ) -> None: ...


class SipService:
    """Registrar, provider registrations, qualify and the request dispatcher of one PBX."""

    name = "sip"

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        rng: RandomSource | None = None,
        secret: bytes | None = None,
        max_contacts: int | None = None,
        store_path: str | None = None,
        max_transactions: int = MAX_TRANSACTIONS,
        dns_servers: list[tuple[str, int]] | None = None,
    ) -> None:
        self.clock: Callable[[], float] = clock or time.time
        self.rng = rng
        self.secret = secret or os.urandom(32)
        self._max_contacts = max_contacts
        self.max_contacts = max_contacts or DEFAULT_MAX_CONTACTS
        self.store_path = store_path
        self.max_transactions = max_transactions
        self.dns_servers = dns_servers
        self.pbx: Pbx | None = None
        self.stack: SipStack | None = None
        self.store: LocationStore | None = None
        self.location = Location(max_contacts=self.max_contacts, on_change=self._changed)
        self.guard = Guard(on_ban=self._on_ban, on_notice=security_log.warning, now=self.clock())
        self.config: SipConfig | None = None
        self.directory: PeerDirectory | None = None
        self.registrar: Registrar | None = None
        self.qualifier = Qualifier()
        self.qualify: QualifyDriver | None = None
        self.lines: list[RegistrationLine] = []
        self.status: SipStatus | None = None
        self.writer = BindingWriter(None, self._send_held)
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: dict[str, Callable[[RequestReceived], None]] = {
            "REGISTER": self._on_register,
        }

    # -- Service ----------------------------------------------------------------------------

    async def start(self, pbx: Pbx) -> None:
        config = pbx.sip
        if config is None:
            raise RuntimeError("SipService needs sip.conf")
        self.pbx = pbx
        general = config.general
        path = self.store_path or str(pbx.dirs.datadir / "location.sqlite3")
        try:
            self.store = LocationStore(path)
            loaded = self.location.load(self.store.load(self.clock()), self.clock())
            self.writer.store = self.store
        except sqlite3.Error as exc:
            raise SipServiceError(f"{path}: location store unusable: {exc}") from exc
        self.stack = SipStack(
            StackConfig(
                bindaddr=general.bindaddr,
                bindport=general.bindport,
                tcp=general.tcpenable,
                user_agent=general.useragent,
                max_transactions=self.max_transactions,
                tcp_limits=TcpConfig(max_message_size=general.maxmessagesize),
            ),
            self._dispatch,
            rng=self.rng,
        )
        try:
            await self.stack.start()
        except OSError:
            self.store.close()
            self.store = None
            raise
        self._adopt(config)
        self.stack.inbound_filter = self._screen
        if self.stack.tcp is not None:
            self.stack.tcp.accept_filter = self._accept_tcp
        if loaded:
            verbose(log, 1, "Loaded %d SIP registrations from %s", loaded, path)
        for name in self.location.aors():
            self._watch_registered(name)
        self._start_lines(config.registrations)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="sip sweep")
        pbx.sip_runtime = self

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self.qualify is not None:
            await self.qualify.close()
        if self.lines:
            await asyncio.gather(
                *(line.stop(timeout=UNREGISTER_TIMEOUT) for line in self.lines),
                return_exceptions=True,
            )
        for task in list(self._tasks):
            task.cancel()
        self.writer.flush()
        if self.stack is not None:
            await self.stack.close()
        if self.store is not None:
            self.writer.store = None
            self.store.close()
            self.store = None
        if self.pbx is not None and self.pbx.sip_runtime is self:
            self.pbx.sip_runtime = None

    def describe(self) -> list[str]:
        if self.stack is None:
            return []
        udp = hostport(self.stack.local_addr)
        lines = [f"SIP listening on udp {udp}"]
        if self.stack.tcp_addr is not None:
            lines.append(f"SIP listening on tcp {hostport(self.stack.tcp_addr)}")
        return lines

    async def reload(self, config: ConfigSet) -> list[str]:
        """Adopt a new sip.conf: bindings of peers that stay dynamic are kept, removed
        ``register =>`` lines unregister, new ones register, unchanged ones carry on."""
        new = config.sip
        if new is None or self.stack is None:
            return []
        lines: list[str] = []
        old_general = self.config.general if self.config is not None else None
        if old_general is not None and (
            (old_general.bindaddr, old_general.bindport, old_general.tcpenable)
            != (new.general.bindaddr, new.general.bindport, new.general.tcpenable)
        ):
            lines.append("SIP bind address changes take effect at the next restart")
        for aor in self.location.aors():
            peer = new.peers.get(aor)
            if peer is None or not peer.dynamic:
                self.location.remove_all(aor)
                self.qualifier.remove(aor)
        for name in list(self.qualifier_names()):
            peer = new.peers.get(name)
            if peer is None or not peer.qualify:
                self.qualifier.remove(name)
        self._adopt(new)
        for name in self.location.aors():
            self._watch_registered(name)
        old_lines = {line.key: line for line in self.lines}
        new_keys = [registration_key(r) for r in new.registrations]
        gone = [line for key, line in old_lines.items() if key not in new_keys]
        for line in gone:
            lines.append(f"Unregistering {line.name}")
        if gone:
            await asyncio.gather(
                *(line.stop(timeout=UNREGISTER_TIMEOUT) for line in gone), return_exceptions=True
            )
        kept: list[RegistrationLine] = []
        for reg in new.registrations:
            same = old_lines.get(registration_key(reg))
            if same is not None:
                same.reg = reg  # the same line, maybe at another file:line
                kept.append(same)
        self.lines = kept
        self._start_lines([r for r in new.registrations if registration_key(r) not in old_lines])
        self.writer.flush()
        return lines

    def qualifier_names(self) -> list[str]:
        if self.directory is None:
            return []
        return [n for n in self.directory.names() if n in self.qualifier]

    # -- SipRuntime -------------------------------------------------------------------------

    def peer_status(self, name: str) -> PeerStatus | None:
        # PeerView is frozen; the Protocol's plain attributes are only read
        view = self.status.peer_status(name) if self.status is not None else None
        return cast("PeerStatus | None", view)

    def registration_status(self, registration: Any) -> RegistrationStatus | None:
        try:
            key = registration_key(registration)
        except AttributeError:
            return None
        for line in self.lines:
            if line.key == key:
                return cast("RegistrationStatus", line.row())
        return None

    def dialogs(self) -> list[Any]:
        """``sip show channels``: the call layer's SIP legs (none before it attached)."""
        source = getattr(self.pbx.call_handler, "sip_dialogs", None) if self.pbx else None
        return list(source()) if callable(source) else []

    # -- the abuse guard --------------------------------------------------------------------

    def bans(self) -> list[Ban]:
        """``sip show bans``: the bans in force (``since``/``until`` on :attr:`clock`)."""
        return self.guard.active_bans(now=self.clock())

    def unban(self, addr: str) -> bool:
        """``sip unban ADDR``: False when the address was not banned."""
        lifted = self.guard.unban(addr)
        if lifted:
            security_log.warning("SECURITY: unbanned %s by the operator", addr)
        return lifted

    def auth_failed(self, addr: Addr, user: str | None) -> None:
        """Another layer refused credentials from ``addr`` (counts towards a ban)."""
        self.guard.auth_failed(addr[0], user, now=self.clock())

    def auth_ok(self, addr: Addr, user: str | None = None) -> None:
        """Another layer accepted credentials from ``addr`` as ``user``."""
        self.guard.auth_ok(addr[0], user=user, now=self.clock())

    def _screen(self, transport: str, data: bytes, addr: Addr) -> bool:
        return self.guard.screen(transport, data, addr[0], now=self.clock())

    def _accept_tcp(self, addr: Addr) -> bool:
        return not self.guard.bans.is_banned(addr[0], now=self.clock())

    def _outbound(self, transport: str, data: bytes, dest: Addr) -> bytes:
        if data.startswith(b"SIP/2.0 404 "):
            self.guard.response_sent(dest[0], 404, now=self.clock())
        rewrite = self._nat_rewrite
        return rewrite(transport, data, dest) if rewrite is not None else data

    def _on_ban(self, event: BanEvent) -> None:
        security_log.warning("%s", event.log_line)
        stack = self.stack
        if stack is not None and stack.tcp is not None:
            stack.tcp.close_host(event.ban.addr)

    def _peer_hosts(self) -> None:
        """Tell the guard the addresses of peers matched by host (not judged as scanners)."""
        directory = self.directory
        if directory is None:
            return
        static = [p.name for p in directory.peers() if not p.dynamic]
        hosts = {ip for name in static for ip in directory.resolved(name)}
        self.guard.set_peer_hosts(hosts)

    # -- building ---------------------------------------------------------------------------

    def _adopt(self, config: SipConfig) -> None:
        """(Re)build the directory, registrar and qualify driver for ``config``."""
        assert self.stack is not None
        general = config.general
        old_digest = self.registrar.digest if self.registrar is not None else None
        digest = (
            old_digest
            if old_digest is not None and old_digest.realm == general.realm
            else DigestServer(self.secret, general.realm, max_nonces=MAX_NONCES)
        )
        self.config = config
        self.nat = NatGlue(general)
        self._nat_rewrite = self.nat.rewrite  # None when no NAT rule can apply to this config
        self.stack.outbound_rewrite = self._outbound
        self.stack.inbound_rewrite = self.nat.inbound  # force_rport: ;rport added (RFC 3581)
        settings = self.pbx.config.settings if self.pbx is not None else None
        self.guard.reconfigure(
            GuardConfig.from_general(general, getattr(settings, "security", None)),
            now=self.clock(),
        )
        self.max_contacts = self._max_contacts or general.registrationlimit
        self.location.max_contacts = self.max_contacts
        directory = GuardedDirectory(config, self.location, digest=digest)
        directory.guard = self.guard
        self.directory = directory
        self._peer_hosts()
        self.registrar = Registrar(self.location, self.directory, general, digest)
        if self.qualify is not None:
            self.qualify.directory = self.directory
        else:
            self.qualify = QualifyDriver(
                self.qualifier,
                self.directory,
                self.stack,
                clock=self.clock,
                local_ip=lambda ip: local_ip_towards(ip, general.bindaddr),
            )
        self.status = SipStatus(self.directory, self.qualifier, [], self.clock)
        for peer in self.directory.peers():
            if peer.dynamic or not peer.host:
                continue
            self._spawn(self._resolve_peer(peer.name, peer.host, peer.port or 5060, general))

    def _start_lines(self, registrations: list[Any]) -> None:
        assert self.stack is not None
        assert self.config is not None
        for reg in registrations:
            line = RegistrationLine(
                reg,
                self.config.general,
                self.stack,
                clock=self.clock,
                srv=self._srv if self.config.general.srvlookup else None,
            )
            self.lines.append(line)
            line.start()

    async def _srv(self, name: str) -> list[SrvRecord]:
        servers = self.dns_servers or [(ns, DNS_PORT) for ns in nameservers()]
        return await query_srv(
            name, servers=servers, query_id=lambda: int.from_bytes(os.urandom(2), "big")
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve_peer(self, name: str, host: str, port: int, general: General) -> None:
        try:
            ips = await resolve_host(host, port)
        except OSError as exc:
            log.warning("Could not resolve host '%s' of peer '%s': %s", host, name, exc)
            return
        directory = self.directory
        if directory is None or directory.get(name) is None:
            return
        directory.set_resolved(name, ips)
        self._peer_hosts()
        peer = directory.get(name)
        if peer is not None and peer.qualify and name not in self.qualifier:
            self.qualifier.add(name, maxms=peer.qualify, freq=peer.qualifyfreq, now=self.clock())
            if self.qualify is not None:
                self.qualify.arm()

    def _watch_registered(self, name: str) -> None:
        """A dynamic peer has a binding: qualify it now (if it asks to be qualified)."""
        directory = self.directory
        peer = directory.get(name) if directory is not None else None
        if peer is None or not peer.qualify:
            return
        now = self.clock()
        if name in self.qualifier:
            self.qualifier.registered(name, now)
        else:
            self.qualifier.add(name, maxms=peer.qualify, freq=peer.qualifyfreq, now=now)
        if self.qualify is not None:
            self.qualify.arm()

    # -- requests ---------------------------------------------------------------------------

    def _dispatch(self, stack: SipStack, event: Event) -> None:
        """The stack's handler: the one boundary where a request meets the PBX logic."""
        if not isinstance(event, RequestReceived | AckReceived | CancelReceived):
            return
        try:
            if isinstance(event, RequestReceived):
                self._on_request(event)
            else:
                handler = self._call_handler()
                if handler is not None:
                    handler(self, event)
        except Exception as exc:
            log.error(
                "%s %s: internal error handling %s: %s: %s",
                event.request.get("call-id"),
                hostport(event.source),
                event.request.method,
                type(exc).__name__,
                exc,
            )
            if isinstance(event, RequestReceived):
                self._answer(event, 500, "Server Internal Error")

    def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        handler = self._handlers.get(request.method)
        if handler is not None:
            handler(event)
            return
        call_handler = self._call_handler()
        in_dialog = request.to.tag is not None
        if request.method in DIALOG_METHODS or in_dialog:
            if call_handler is not None:
                call_handler(self, event)
            elif in_dialog:
                self._answer(event, 481, "Call/Transaction Does Not Exist")
            else:
                self._answer(event, 480, "Temporarily Unavailable")
            return
        if request.method in KNOWN_METHODS:
            allow = ", ".join(self.stack.config.allow) if self.stack is not None else ""
            self._answer(event, 405, "Method Not Allowed", headers=[("Allow", allow)])
        else:
            self._answer(event, 501, "Not Implemented")

    def _call_handler(self) -> CallHandler | None:
        handler: CallHandler | None = getattr(self.pbx, "call_handler", None)
        return handler

    def _answer(
        self,
        event: RequestReceived,
        status: int,
        reason: str,
        *,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        assert self.stack is not None
        self.stack.reply(event, status, reason, headers=headers or ())

    def _on_register(self, event: RequestReceived) -> None:
        assert self.registrar is not None
        assert self.stack is not None
        request = event.request
        transport = request.top_via.transport.lower()
        outcome = self.registrar.handle(
            request, event.source, now=self.clock(), transport=transport
        )
        if outcome.log:
            log.warning("%s", outcome.log)
        now = self.clock()
        if outcome.auth_failure:
            user = request.to.uri.user if isinstance(request.to.uri, SipUri) else None
            self.guard.auth_failed(event.source[0], user, now=now)
        elif outcome.peer is not None and "authorization" in request.headers:
            self.guard.auth_ok(event.source[0], user=outcome.peer, now=now)
        if outcome.changes:
            self.writer.hold(event.key, outcome.response, event.source)
        else:
            challenge = outcome.response.status == 401 and not outcome.auth_failure
            self.stack.respond(event.key, outcome.response, forget=challenge)

    # -- bindings and the store -------------------------------------------------------------

    def _changed(self, change: Change) -> None:
        """Location listener: queue the change for the store; log it for the operator."""
        self.writer.add(change)
        binding = change.binding
        if change.kind is ChangeKind.ADDED:
            if self._verbose(3):
                where = hostport(binding.received or ("?", 0))
                verbose(log, 3, "Registered SIP '%s' at %s", binding.aor, where)
            self._watch_registered(binding.aor)
        elif change.kind is ChangeKind.REMOVED:
            if self._verbose(3):
                verbose(log, 3, "Unregistered SIP '%s' (%s)", binding.aor, binding.contact)
            if not self.location.bindings(binding.aor, self.clock()):
                self.qualifier.remove(binding.aor)

    def _verbose(self, level: int) -> bool:
        """Whether a ``verbose(level)`` line reaches anyone (the log or a remote console):
        a registration burst should not pay for building lines nobody reads."""
        pbx = self.pbx
        if pbx is None:
            return True
        return pbx.verbosity >= level or pbx.fanout.reaches(level)

    def _send_held(self, key: ServerTxnKey, response: Response, source: Addr) -> None:
        if self.stack is None:
            return
        self.stack.respond(key, response)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            self.location.expire(self.clock())


@register_service
def sip_service(pbx: Pbx) -> SipService | None:
    """The SIP service, when there is a sip.conf."""
    return SipService() if pbx.sip is not None else None
