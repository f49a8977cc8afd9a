"""The NAT glue of the running SIP service: turns ``[general]`` NAT settings (``externip``,
``externhost``, ``localnet``, ``bindaddr``) into the stack's outbound rewrite (RFC 3261
§18.2.1 sent-by, §8.1.1.8 Contact; RFC 4566 §5.2/§5.7 ``o=``/``c=``; chan_sip
``ast_sip_ouraddrfor``) and offers the inbound ``force_rport`` rewrite (RFC 3581 §4).

Outbound, per message and destination:

* destination outside every ``localnet`` (IPv4) and an external address known
  (``externip``, or ``externhost`` as last resolved): the top Via sent-by of a request, our
  Contact and the SDP ``o=``/``c=`` carry the external address (and ``externport`` when given;
  otherwise the ports already written are kept, which are ours); so does the From host of a
  request when it names us (chan_sip writes ``ourip`` there);
* destination inside a ``localnet`` (or nothing to remap to) with a specific ``bindaddr``:
  untouched;
* ``bindaddr`` a wildcard: the stack wrote a loopback placeholder (it cannot know the
  interface); toward a non-loopback destination it becomes the interface address the kernel
  routes from (``our_address`` with the probed local address).

Cheap when nothing applies: the property :attr:`NatGlue.rewrite` is None when no rule can
ever apply; otherwise the destination IP is classified once (cached) and only a message that
needs a change is parsed. ``externhost`` is looked up with ``loop.getaddrinfo`` in a task,
first at construction (when a loop runs), again when ``externrefresh`` seconds passed at the
next use; until a lookup succeeds the old address (or none) stays in force.

The pure decisions live in :mod:`pypbx.transport.nat`; this module is the thin glue.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from enum import Enum

from pypbx.config.netaddr import is_local
from pypbx.config.sipmodel import General, NatMode
from pypbx.sip.abnf import ParseError
from pypbx.sip.events import Addr
from pypbx.sip.headers import Via
from pypbx.sip.message import Request
from pypbx.sip.parse import parse_message
from pypbx.transport.addr import is_wildcard
from pypbx.transport.nat import NatPolicy, effective_nat, remap_message

__all__ = ["Destination", "NatGlue", "Resolver", "Rewrite", "interface_ip"]

log = logging.getLogger("pypbx.transport.nat")

Rewrite = Callable[[str, bytes, Addr], bytes]
Resolver = Callable[[str, int], Awaitable[list[str]]]
PeerNat = Callable[[Request, Addr], frozenset[NatMode] | None]

CACHE_LIMIT = 4096
"""Destination IPs whose classification is remembered (the cache is emptied when full)."""
_PLACEHOLDERS = (b"127.0.0.1", b"[::1]")
"""What the stack writes for our host when bound to a wildcard (``SipStack._default_host``)."""


class Destination(Enum):
    """How a destination IP relates to the NAT settings."""

    LOOPBACK = "loopback"  # or not an IP: never rewritten
    INSIDE = "inside"  # inside a localnet, or no localnet configured, or IPv6
    OUTSIDE = "outside"  # IPv4 outside every localnet: gets the external address


def interface_ip(dest_ip: str) -> str | None:
    """The local address the kernel routes from toward ``dest_ip`` (a connected UDP socket
    sends nothing), or None when there is no route."""
    family = socket.AF_INET6 if ":" in dest_ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((dest_ip, 5060))
            return str(probe.getsockname()[0])
    except OSError:
        return None


async def _resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
    return [str(info[4][0]) for info in infos]


def _strip_zone(host: str) -> str:
    return host.strip("[]").split("%", 1)[0]


class NatGlue:
    """One per SIP service; rebuilt on reload. ``rewrite`` is None when nothing is remapped.

    ``clock`` (monotonic seconds) times the ``externhost`` refresh; ``resolver(host, port)``
    looks a name up without blocking; ``local_ip(dest_ip)`` finds the interface address
    for a wildcard ``bindaddr``; ``peer_nat(request, source)`` gives the ``nat=`` modes of
    the peer that sent ``request`` (None: the ``[general]`` ones) for :meth:`inbound`.
    """

    def __init__(
        self,
        general: General,
        *,
        clock: Callable[[], float] | None = None,
        resolver: Resolver | None = None,
        local_ip: Callable[[str], str | None] | None = None,
        peer_nat: PeerNat | None = None,
    ) -> None:
        self.general = general
        self.policy = NatPolicy(general)
        self._clock = clock or time.monotonic
        self._resolver = resolver or _resolve
        self._local_ip = local_ip or interface_ip
        self._peer_nat = peer_nat
        self._wildcard = is_wildcard(general.bindaddr)
        self._remaps = bool(general.localnet) and (
            general.externaddr is not None or self.policy.externhost_name is not None
        )
        self._own_hosts: tuple[str, ...] = ("127.0.0.1", "::1")
        if not self._wildcard:
            self._own_hosts += (general.bindaddr.strip("[]"),)
        self._kinds: dict[str, Destination] = {}
        self._ifaces: dict[str, str | None] = {}
        self._resolved_at: float | None = None
        self._lookup: asyncio.Task[str | None] | None = None
        self.rewritten = 0
        """Messages changed so far (for tests and ``sip show settings``-like views)."""
        self._maybe_refresh()

    # -- outbound ---------------------------------------------------------------------------

    @property
    def rewrite(self) -> Rewrite | None:
        """The stack's ``outbound_rewrite``: None when no rule can ever apply."""
        if not self._remaps and not self._wildcard:
            return None
        return self._rewrite

    @property
    def external(self) -> tuple[str, int | None] | None:
        """The external (host, port) in force now, if any (refreshing ``externhost``)."""
        self._maybe_refresh()
        return self.policy.external

    def classify(self, dest_ip: str) -> Destination:
        """Where ``dest_ip`` lies relative to ``localnet`` (cached)."""
        kind = self._kinds.get(dest_ip)
        if kind is None:
            kind = self._classify(dest_ip)
            if len(self._kinds) >= CACHE_LIMIT:
                self._kinds.clear()
            self._kinds[dest_ip] = kind
        return kind

    def _classify(self, dest_ip: str) -> Destination:
        try:
            ip = ipaddress.ip_address(_strip_zone(dest_ip))
        except ValueError:
            return Destination.LOOPBACK
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback:
            return Destination.LOOPBACK
        localnet = self.general.localnet
        if not localnet or ip.version == 6 or is_local(ip, localnet):
            return Destination.INSIDE
        return Destination.OUTSIDE

    def target_address(self, dest_ip: str) -> tuple[str, int | None] | None:
        """The (host, port or None = keep) our message to ``dest_ip`` must carry, or None
        when it goes out as written."""
        remapped = self._external_for(dest_ip)
        if remapped is not None:
            return remapped
        return self._wildcard_for(dest_ip)

    def _external_for(self, dest_ip: str) -> tuple[str, int | None] | None:
        if not self._remaps or self.classify(dest_ip) is not Destination.OUTSIDE:
            return None
        return self.external

    def _wildcard_for(self, dest_ip: str) -> tuple[str, int | None] | None:
        if not self._wildcard or self.classify(dest_ip) is Destination.LOOPBACK:
            return None
        if dest_ip not in self._ifaces:
            if len(self._ifaces) >= CACHE_LIMIT:
                self._ifaces.clear()
            self._ifaces[dest_ip] = self._local_ip(dest_ip)
        iface = self._ifaces[dest_ip]
        return None if iface is None else (iface, None)

    def _iface_hosts(self, dest_ip: str) -> tuple[str, ...]:
        """The interface address toward ``dest_ip`` when bound to a wildcard (glue such as
        qualify writes it where the stack would write its placeholder)."""
        target = self._wildcard_for(dest_ip)
        return (target[0],) if target is not None else ()

    def _rewrite(self, transport: str, data: bytes, dest: Addr) -> bytes:
        target = self._external_for(dest[0])
        if target is None:
            target = self._wildcard_for(dest[0])
            if target is None or not any(p in data for p in _PLACEHOLDERS):
                return data  # a wildcard bind: only the loopback placeholder is replaced
        try:
            msg = parse_message(data)
        except ParseError:
            return data  # not ours to fix; the peer will say so
        ours = (*self._own_hosts, *self._iface_hosts(dest[0]))
        if not remap_message(msg, *target, from_hosts=ours):
            return data
        self.rewritten += 1
        return bytes(msg)

    # -- externhost -------------------------------------------------------------------------

    def _maybe_refresh(self) -> None:
        name = self.policy.externhost_name
        if name is None or (self._lookup is not None and not self._lookup.done()):
            return
        if not self.policy.externhost_due(self._resolved_at, self._clock()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the first use under a loop starts the lookup
        self._lookup = loop.create_task(self.refresh(), name=f"externhost {name[0]}")

    async def refresh(self) -> str | None:
        """Look ``externhost`` up now; on failure the previous address stays in force.
        Returns the address in force afterwards."""
        name = self.policy.externhost_name
        if name is None:
            return None
        host, port = name
        started = self._clock()
        try:
            ips = await self._resolver(host, port or self.general.bindport)
        except OSError as exc:
            ips = []
            log.warning("Unable to lookup externhost '%s': %s", host, exc)
        ipv4 = [ip for ip in ips if ":" not in ip]
        self._resolved_at = started
        if ipv4:
            if ipv4[0] != self.policy.externhost_ip:
                log.info("externhost '%s' is now %s", host, ipv4[0])
            self.policy = self.policy.with_externhost_ip(ipv4[0])
        elif ips:
            log.warning("externhost '%s' has no IPv4 address", host)
        return self.policy.externhost_ip

    # -- inbound ----------------------------------------------------------------------------

    def inbound(self, transport: str, data: bytes, source: Addr) -> bytes:
        """RFC 3581 with ``force_rport``: a UDP request whose top Via lacks ``rport`` gets a
        bare ``;rport``, so the endpoint stamps ``rport=<source port>`` and answers the
        packet's source (chan_sip ``check_via`` with ``SIP_NAT_FORCE_RPORT``). Meant for a
        stack hook that may replace received bytes before parsing (see the module doc)."""
        if transport.upper() != "UDP" or data.startswith(b"SIP/2.0"):
            return data
        if self._peer_nat is None and not self.general.nat & _RPORT_MODES:
            return data  # no rule could force rport
        top = _top_via_value(data)
        if top is None or _asks_rport(top):
            return data  # it asked for rport itself (or has no Via: the endpoint says 400)
        if _sent_by(top) == source:
            return data  # answering the Via is answering the source: nothing to force
        try:
            msg = parse_message(data)
        except ParseError:
            return data  # the endpoint answers 400 on its own
        if not isinstance(msg, Request) or "Via" not in msg.headers:
            return data
        via = msg.top_via
        if via.has_rport:
            return data
        modes = self._peer_nat(msg, source) if self._peer_nat is not None else None
        if modes is None:
            modes = self.general.nat
        if NatMode.FORCE_RPORT not in effective_nat(modes, via, source):
            return data
        new = Via(via.transport, via.host, via.port, (*via.params, ("rport", None)), via.protocol)
        msg.headers.replace_first("Via", str(new))
        return bytes(msg)


_RPORT_MODES = frozenset({NatMode.FORCE_RPORT, NatMode.AUTO_FORCE_RPORT})


def _sent_by(via_value: bytes) -> tuple[str, int] | None:
    """``(host, port)`` of a Via value's sent-by (port 5060 when absent), None if unusual."""
    head = via_value.split(b";", 1)[0].split()
    if len(head) != 2:
        return None
    hostport = head[1].decode("ascii", "replace")
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = hostport.partition(":")
    if port_text and not port_text.isdigit():
        return None
    return host, int(port_text) if port_text else 5060


def _asks_rport(via_value: bytes) -> bool:
    """Whether a Via value carries an ``rport`` parameter (not just the letters somewhere,
    as in ``branch=z9hG4bKnorport``)."""
    return any(
        param.split(b"=", 1)[0].strip().lower() == b"rport" for param in via_value.split(b";")[1:]
    )


def _top_via_value(data: bytes) -> bytes | None:
    """The first value of the first Via header line, found without parsing the message."""
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"via", b"v"):
            return value.split(b",", 1)[0]
    return None
