"""Peer directory: sip.conf peers looked up by name, registered contact or source address,
and the digest decision for requests from them (RFC 3261 §22.3 proxy auth, §26.3.2.3).

Pure; host names are resolved by the glue and handed in with :meth:`PeerDirectory.set_resolved`.
Matching follows chan_sip: a ``type=user``/``friend`` peer is found by the From user name; a
``type=peer``/``friend`` peer by its source address (registered address for ``host=dynamic``,
configured/resolved host otherwise): ip and port, or ip only with ``insecure=port``.

:meth:`PeerDirectory.authenticate_invite` is the INVITE decision (chan_sip ``check_user_full``):
``insecure=invite`` waives auth only for a peer matched by *address* (a From user name is
trivially spoofed); other matched peers get a 407 challenge checked against ``secret`` or
``md5secret`` (a peer with neither is accepted, as in Asterisk); unknown sources become guests
in ``[general] context`` only with ``allowguest=yes``. With ``alwaysauthreject`` an unknown
source, a failed ACL and a wrong password all get the same answers (407, then 403).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from pypbx.config.sipconf import Insecure, Peer, PeerType, SipConfig
from pypbx.location import Binding, Location
from pypbx.sip.abnf import ParseError
from pypbx.sip.auth import (
    AuthParseError,
    Credentials,
    DigestServer,
    Verdict,
    parse_credentials,
    uri_matches,
)
from pypbx.sip.events import Addr
from pypbx.sip.message import Request, Response, build_response
from pypbx.sip.uri import SipUri

__all__ = [
    "InviteAuth",
    "InviteDecision",
    "PeerDirectory",
    "PeerView",
    "accepted_usernames",
    "has_secret",
    "response_tag",
    "verify_peer",
]

STANDARD_PORT = 5060


def response_tag(request: Request) -> str | None:
    """A To tag for our final responses, stable for retransmissions of one request.

    None when the To header does not parse (the response then copies it untouched).
    """
    try:
        _ = request.to
    except ParseError:
        return None
    seed = f"{request.get('call-id', '')}|{request.get('cseq', '')}|{request.get('from', '')}"
    return hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()


def accepted_usernames(peer: Peer) -> frozenset[str]:
    """Digest user names a peer may authenticate as: its name and its defaultuser."""
    names = {peer.name}
    if peer.defaultuser:
        names.add(peer.defaultuser)
    return frozenset(names)


def verify_peer(
    digest: DigestServer, peer: Peer, creds: Credentials, method: str, *, now: float
) -> Verdict:
    """Check credentials against the peer's ``secret`` (preferred) or ``md5secret`` (HA1)."""
    if peer.secret:
        return digest.verify(creds, method, password=peer.secret, now=now)
    return digest.verify(creds, method, ha1=peer.md5secret or "", now=now)


def has_secret(peer: Peer) -> bool:
    """Whether the peer must authenticate (it has a ``secret`` or an ``md5secret``)."""
    return bool(peer.secret or peer.md5secret)


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


class InviteDecision(StrEnum):
    ACCEPT = "accept"  # go on into ``context``
    CHALLENGE = "challenge"  # send ``response`` (407) and wait for the retry
    REFUSE = "refuse"  # send ``response`` (400/403/404) and stop


@dataclass(frozen=True, slots=True)
class InviteAuth:
    """What to do with a dialog-creating request; ``auth_failure`` feeds the ban counter."""

    decision: InviteDecision
    peer: Peer | None = None
    context: str | None = None
    response: Response | None = None
    log: str | None = None
    auth_failure: bool = False


@dataclass(frozen=True, slots=True)
class PeerView:
    """A peer's live state in the shape ``pypbx.control.sip.PeerStatus`` reads."""

    address: str | None
    port: int
    lastms: int | None
    username: str
    useragent: str
    contact: str


class PeerDirectory:
    """sip.conf peers plus their registrations (from :class:`Location`) and resolved hosts."""

    def __init__(
        self, sip_config: SipConfig, location: Location, *, digest: DigestServer | None = None
    ) -> None:
        self.config = sip_config
        self.general = sip_config.general
        self.location = location
        self.digest = digest
        self._peers = dict(sip_config.peers)
        self._folded = {name.lower(): peer for name, peer in self._peers.items()}
        self._resolved: dict[str, tuple[str, ...]] = {}
        self._by_ip: dict[str, list[Peer]] = {}
        for peer in self._peers.values():
            ip = _ip(peer.host or "") if not peer.dynamic else None
            if ip is not None:
                self._resolved[peer.name] = (ip,)
        self._reindex()

    # -- lookups --------------------------------------------------------------------------

    def get(self, name: str) -> Peer | None:
        """Peer by name; case-insensitive like chan_sip's peer container."""
        peer = self._peers.get(name)
        return peer if peer is not None else self._folded.get(name.lower())

    def peers(self) -> list[Peer]:
        """Every peer, in sip.conf order."""
        return list(self._peers.values())

    def names(self) -> list[str]:
        return list(self._peers)

    def set_resolved(self, peer_name: str, ips: list[str] | tuple[str, ...]) -> None:
        """Addresses the glue resolved for a peer's ``host=`` name (replaces earlier ones)."""
        if peer_name not in self._peers:
            raise KeyError(peer_name)
        self._resolved[peer_name] = tuple(ip for ip in (_ip(a) for a in ips) if ip)
        self._reindex()

    def resolved(self, peer_name: str) -> tuple[str, ...]:
        return self._resolved.get(peer_name, ())

    def by_user(self, user: str) -> Peer | None:
        """A ``type=user``/``friend`` peer named like a From user."""
        peer = self.get(user)
        if peer is None or peer.type is PeerType.PEER:
            return None
        return peer

    def by_source(self, source: Addr, now: float) -> Peer | None:
        """A ``type=peer``/``friend`` peer sending from ``source`` (ip, port).

        Registered contacts come first (their address is exact), then fixed hosts: ip and
        port (the peer's port, 5060 by default), or ip alone with ``insecure=port``.
        """
        ip = _ip(source[0]) or source[0]
        aor = self.location.aor_at((ip, source[1]))
        if aor is not None and self.location.bindings(aor, now):
            peer = self.get(aor)
            if peer is not None and peer.type is not PeerType.USER:
                return peer
        for peer in self._by_ip.get(ip, ()):
            if Insecure.PORT in peer.insecure or source[1] == (peer.port or STANDARD_PORT):
                return peer
        return None

    def binding(self, name: str, now: float) -> Binding | None:
        """The preferred live registration of a dynamic peer."""
        return self.location.lookup(name, now)

    def target(self, name: str, now: float) -> tuple[Addr, str] | None:
        """Where to send requests for a peer: ((ip, port), transport), or None if unknown.

        A registered peer with any ``nat=`` setting is reached at the source of its REGISTER;
        without NAT handling at the Contact's host and port.
        """
        peer = self.get(name)
        if peer is None:
            return None
        if peer.dynamic:
            b = self.location.lookup(peer.name, now)
            if b is None:
                return None
            if peer.nat and b.received is not None:
                return b.received, b.transport
            try:
                uri = SipUri.parse(b.contact)
            except ParseError:
                return (b.received, b.transport) if b.received else None
            return (uri.host.strip("[]"), uri.port or STANDARD_PORT), b.transport
        ips = self._resolved.get(peer.name, ())
        if not ips:
            return None
        transport = peer.transports[0].value if peer.transports else "udp"
        return (ips[0], peer.port or STANDARD_PORT), transport

    def status(self, name: str, now: float, *, lastms: int | None = None) -> PeerView | None:
        """The live view ``sip show peer(s)`` needs; ``lastms`` comes from the qualifier."""
        peer = self.get(name)
        if peer is None:
            return None
        b = self.location.lookup(peer.name, now) if peer.dynamic else None
        where = self.target(peer.name, now)
        return PeerView(
            address=where[0][0] if where else None,
            port=where[0][1] if where else 0,
            lastms=lastms,
            username=peer.defaultuser or "",
            useragent=b.user_agent if b else "",
            contact=b.contact if b else "",
        )

    # -- INVITE authentication ------------------------------------------------------------

    def authenticate_invite(self, request: Request, source: Addr, *, now: float) -> InviteAuth:
        """Decide whether a dialog-creating request may proceed (see the module docstring)."""
        if self.digest is None:
            raise RuntimeError("PeerDirectory needs digest= to authenticate requests")
        try:
            from_uri = request.from_.uri
        except ParseError as exc:
            return self._answer(request, 400, f"bad From: {exc.reason}")
        user = from_uri.user if isinstance(from_uri, SipUri) else None
        where = f"'{source[0]}:{source[1]}'"
        by_addr = self.by_source(source, now)
        peer = by_addr
        if by_addr is None and user:
            peer = self.by_user(user)
        if peer is not None and not peer.acl.allows(source[0]):
            log = f"Call from '{user or ''}' ({where}) to '{request.uri_text}' rejected: ACL"
            return self._unknown(request, now, log)
        if peer is None:
            if self.general.allowguest:
                return InviteAuth(InviteDecision.ACCEPT, None, self.general.context)
            log = (
                f"Call from '{user or ''}' ({where}) to extension "
                f"'{request.uri_text}' rejected because extension not found."
            )
            return self._unknown(request, now, log)
        if peer is by_addr and Insecure.INVITE in peer.insecure:
            return InviteAuth(InviteDecision.ACCEPT, peer, peer.context)
        if not has_secret(peer):
            return InviteAuth(InviteDecision.ACCEPT, peer, peer.context)
        return self._check(request, peer, now, where)

    def _check(self, request: Request, peer: Peer, now: float, where: str) -> InviteAuth:
        assert self.digest is not None
        values = request.headers.get_all("proxy-authorization")
        if not values:
            return self._challenge(request, peer, now)
        if len(values) > 1:
            return self._answer(request, 400, "more than one Proxy-Authorization header", peer)
        try:
            creds = parse_credentials(values[0])
        except AuthParseError as exc:
            return self._answer(request, 400, f"bad Proxy-Authorization: {exc.reason}", peer)
        if creds.realm != self.digest.realm:
            return self._challenge(request, peer, now, log=f"wrong realm {creds.realm!r}")
        if not uri_matches(creds.uri, request.uri_text):
            return self._answer(request, 400, "digest uri does not match the Request-URI", peer)
        if creds.username not in accepted_usernames(peer):
            return self._forbidden(request, peer, f"username mismatch from {where}")
        verdict = verify_peer(self.digest, peer, creds, request.method, now=now)
        if verdict is Verdict.OK:
            return InviteAuth(InviteDecision.ACCEPT, peer, peer.context)
        if verdict is Verdict.BAD_CREDENTIALS:
            return self._forbidden(request, peer, f"wrong password from {where}")
        if verdict is Verdict.MALFORMED:
            return self._answer(request, 400, "malformed credentials", peer)
        stale = verdict is Verdict.STALE
        return self._challenge(request, peer, now, stale=stale, log=f"{verdict.value} {where}")

    def _unknown(self, request: Request, now: float, log: str) -> InviteAuth:
        """An unknown source or failed ACL: the same answers a wrong password gets."""
        if not self.general.alwaysauthreject:
            return self._answer(request, 403, log, auth_failure=True)
        if request.headers.count("proxy-authorization"):
            return self._answer(request, 403, log, auth_failure=True)
        return self._challenge(request, None, now)

    def _forbidden(self, request: Request, peer: Peer, why: str) -> InviteAuth:
        log = f"Failed to authenticate device {request.get('from', '')} for {peer.name}: {why}"
        return self._answer(request, 403, log, peer, auth_failure=True)

    def _challenge(
        self,
        request: Request,
        peer: Peer | None,
        now: float,
        *,
        stale: bool = False,
        log: str | None = None,
    ) -> InviteAuth:
        assert self.digest is not None
        headers = [("Proxy-Authenticate", v) for v in self.digest.challenges(now, stale=stale)]
        response = build_response(request, 407, to_tag=response_tag(request), headers=headers)
        return InviteAuth(InviteDecision.CHALLENGE, peer, None, response, log)

    def _answer(
        self,
        request: Request,
        status: int,
        log: str,
        peer: Peer | None = None,
        *,
        auth_failure: bool = False,
    ) -> InviteAuth:
        response = build_response(request, status, to_tag=response_tag(request))
        return InviteAuth(InviteDecision.REFUSE, peer, None, response, log, auth_failure)

    # -- internals ------------------------------------------------------------------------

    def _reindex(self) -> None:
        index: dict[str, list[Peer]] = {}
        for name, ips in self._resolved.items():
            peer = self._peers[name]
            if peer.type is PeerType.USER:
                continue
            for ip in ips:
                index.setdefault(ip, []).append(peer)
        self._by_ip = index
