"""Outbound registration glue: one asyncio task per ``register =>`` line (RFC 3261 §10.2).

Drives the pure :class:`pypbx.trunks.OutboundRegistration` machine over a
:class:`~pypbx.transport.stack.SipStack`: resolves the provider's host name without blocking
(``loop.getaddrinfo``, retried while it fails), picks our Contact address (the local address
towards the provider, or the external address outside ``localnet``: ``externip``, or
``externhost`` looked up without blocking and again every ``externrefresh`` seconds, as
:class:`pypbx.transport.nat.NatPolicy` decides), sends what the machine asks for, feeds
responses back, sleeps until its next timer, and logs the machine's notes one line each.
``stop`` sends the un-REGISTER (``Expires: 0``, answering one challenge) within a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable

from pypbx.config.sipconf import General, Registration
from pypbx.log import verbose
from pypbx.sip.events import Addr
from pypbx.sip.message import Request
from pypbx.sipservice_dns import SrvRecord, pick, srv_name
from pypbx.transport.addr import ip_family, is_wildcard
from pypbx.transport.nat import NatPolicy
from pypbx.transport.natwire import interface_ip
from pypbx.transport.stack import SipStack
from pypbx.trunks import OutboundRegistration, RegistryRow, RegState

__all__ = ["RegistrationLine", "local_ip_towards", "registration_key", "resolve_host"]

log = logging.getLogger("pypbx.sip.registry")

_BOUND = frozenset({RegState.REGISTERED, RegState.REQUEST_SENT, RegState.AUTH_SENT})
"""States in which the provider may hold our binding: stop() un-registers from these."""
RESOLVE_RETRY = 10.0
"""Seconds before the first new attempt to resolve a provider host name that did not resolve;
the wait doubles after each failure up to :data:`RESOLVE_RETRY_MAX` (a mistyped host name does
not fill the log every ten seconds, and a name that starts resolving is found again)."""
RESOLVE_RETRY_MAX = 60.0
"""At most a minute: a provider unreachable at boot (network not up yet) is registered with
soon after it resolves (Asterisk retries every ``registertimeout``, 20 s, for ever)."""

SrvLookup = Callable[[str], Awaitable[list[SrvRecord]]]


def registration_key(reg: Registration) -> tuple[object, ...]:
    """What identifies a ``register =>`` line across reloads (everything but file:line)."""
    return (
        reg.user,
        reg.host,
        reg.peer,
        reg.transport,
        reg.domain,
        reg.domain_port,
        reg.secret,
        reg.authuser,
        reg.port,
        reg.extension,
        reg.expiry,
    )


async def resolve_host(host: str, port: int) -> list[str]:
    """IPv4/IPv6 addresses of ``host`` without blocking the loop (an IP is returned as is)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = str(sockaddr[0])
        if ip not in seen:
            seen.append(ip)
    return seen


def local_ip_towards(dest_ip: str, bindaddr: str) -> str:
    """Our source address for packets to ``dest_ip``: ``bindaddr`` unless it is a wildcard,
    else what the kernel routes from (a connected UDP socket sends nothing)."""
    if not is_wildcard(bindaddr):
        return bindaddr.strip("[]")
    return interface_ip(dest_ip) or ("::1" if ":" in dest_ip else "127.0.0.1")


class RegistrationLine:
    """One ``register =>`` line: its task, its machine once the host resolved, its row."""

    def __init__(
        self,
        reg: Registration,
        general: General,
        stack: SipStack,
        *,
        clock: Callable[[], float],
        srv: SrvLookup | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.reg = reg
        self.sleep = sleep
        self.srv = srv
        self.general = general
        self.stack = stack
        self.clock = clock
        self.machine: OutboundRegistration | None = None
        self.dest: Addr | None = None
        self._task: asyncio.Task[None] | None = None
        self._noted = 0
        self._last_state = RegState.UNREGISTERED
        self._contact_at: float | None = None  # when the Contact address was last decided

    @property
    def name(self) -> str:
        return f"{self.reg.user}@{self.reg.host}"

    @property
    def key(self) -> tuple[object, ...]:
        return registration_key(self.reg)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"reg {self.name}")

    def row(self) -> RegistryRow:
        """The ``sip show registry`` row (Unregistered until the host resolved)."""
        if self.machine is not None:
            return self.machine.row()
        port = self.reg.port or 5060
        refresh = self.reg.expiry or self.general.defaultexpiry
        return RegistryRow(
            f"{self.reg.host}:{port}", "N", self.reg.user, refresh, "Unregistered", None
        )

    # -- the task ---------------------------------------------------------------------------

    async def _target(self) -> tuple[str, int]:
        """Host and port to resolve: the SRV pick for a name without a port (srvlookup)."""
        host, port = self.reg.host, self.reg.port
        if port is not None or self.srv is None or ip_family(host) is not None:
            return host, port or 5060
        best = pick(await self.srv(srv_name(host, self.reg.transport.value)))
        if best is None:
            return host, 5060
        verbose(log, 3, "SRV lookup for '%s': %s:%d", host, best.target, best.port)
        return best.target, best.port

    async def _resolve_dest(self) -> Addr:
        """The provider's address, asked again with a growing wait until its name resolves."""
        delay = RESOLVE_RETRY
        while True:
            host, port = await self._target()
            try:
                ips = await resolve_host(host, port)
            except OSError as exc:
                ips = []
                log.warning(
                    "Could not resolve '%s' for registration: %s (next try in %.0f s)",
                    host,
                    exc,
                    delay,
                )
            if ips:
                return ips[0], port
            await self.sleep(delay)
            delay = min(2 * delay, RESOLVE_RETRY_MAX)

    async def _run(self) -> None:
        if self.dest is None:
            self.dest = await self._resolve_dest()
        contact = await self.contact_address()
        self.machine = OutboundRegistration(
            self.reg, self.general, ids=self.stack.ids, contact_addr=contact, start=self.clock()
        )
        while True:
            machine = self.machine
            if self._contact_due():
                machine.contact_addr = await self.contact_address()
            request = machine.next_action(self.clock())
            self._notes()
            if request is None:
                due = machine.next_timer()
                delay = 3600.0 if due is None else max(0.0, due - self.clock())
                await asyncio.sleep(min(delay, 3600.0))
                continue
            await self._exchange(request)

    def _local_port(self) -> int:
        return self.stack.local_addr[1]

    async def contact_address(self) -> Addr:
        """Our Contact host:port toward the provider (RFC 3261 §10.2.1): the local address,
        or the external one when the provider is outside every ``localnet`` (``externip``,
        or ``externhost`` resolved now without blocking; a failed lookup leaves the
        ``externip``/local choice)."""
        assert self.dest is not None
        local = (local_ip_towards(self.dest[0], self.stack.config.bindaddr), self._local_port())
        policy = NatPolicy(self.general)
        name = policy.externhost_name
        if name is not None:
            try:
                ips = [ip for ip in await resolve_host(name[0], name[1] or 5060) if ":" not in ip]
            except OSError as exc:
                ips = []
                log.warning("Unable to lookup externhost '%s': %s", name[0], exc)
            if ips:
                policy = policy.with_externhost_ip(ips[0])
        self._contact_at = self.clock()
        return policy.our_address(self.dest[0], local)

    def _contact_due(self) -> bool:
        """``externhost`` needs a fresh look before the next REGISTER."""
        return NatPolicy(self.general).externhost_due(self._contact_at, self.clock())

    async def _exchange(self, request: Request | None, *, deadline: float | None = None) -> None:
        """Send ``request`` and the machine's immediate follow-ups (challenge answers)."""
        assert self.machine is not None
        assert self.dest is not None
        while request is not None:
            cseq = request.cseq.number
            limit = self.machine.next_timer() if deadline is None else deadline
            timeout = None if limit is None else max(0.05, limit - self.clock())
            try:
                response = await asyncio.wait_for(
                    self.stack.request(request, self.dest, transport=self.reg.transport.value),
                    timeout,
                )
            except TimeoutError:
                self._notes()
                return  # next_action sees the deadline passed: "Timeout", sent again
            now = self.clock()
            if response.status in (408, 503) and "tag=" not in (response.get("to") or ""):
                self.machine.on_timeout(now, cseq=cseq)  # local answer: no response came
                request = None
            else:
                request = self.machine.on_response(response, now)
            self._notes()

    def _notes(self) -> None:
        machine = self.machine
        if machine is None:
            return
        for note in machine.log[self._noted :]:
            verbose(log, 3, "%s", note.strip())
        self._noted = len(machine.log)
        if len(machine.log) > 1000:
            del machine.log[:500]
            self._noted = len(machine.log)
        state = machine.state
        if state is not self._last_state:
            if state is RegState.REGISTERED:
                verbose(log, 3, "Registered to '%s' (%s)", self.name, machine.contact)
            elif state in (RegState.REJECTED, RegState.NO_AUTHENTICATION, RegState.FAILED):
                log.warning("Registration to '%s' is now %s", self.name, state.value)
            self._last_state = state

    # -- stopping ---------------------------------------------------------------------------

    async def stop(self, *, timeout: float = 2.0) -> None:
        """Cancel the task and un-REGISTER (``Expires: 0``) if registered, within ``timeout``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        machine = self.machine
        if machine is None or self.dest is None or machine.state not in _BOUND:
            return  # nothing is bound at the provider (refused, timed out, failed)
        deadline = self.clock() + timeout
        request = machine.unregister(self.clock())
        if request is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._exchange(request, deadline=deadline), timeout)
        verbose(log, 3, "Unregistered from '%s'", self.name)
