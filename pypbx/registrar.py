"""Registrar: REGISTER in, response and binding changes out (RFC 3261 §10.3; RFC 2617 digest).

Pure (``now`` is Unix time in seconds). Order of the checks, as chan_sip's
``register_verify``: syntax (400), then authentication, then the bindings.

Authentication. Only ``host=dynamic`` peers (``type=peer``/``friend``) register. A dynamic
peer with neither ``secret`` nor ``md5secret`` is accepted without a challenge (as in
Asterisk). Everyone else is challenged (401, ``WWW-Authenticate``), and the credentials must
name the peer (its name or ``defaultuser``), the configured realm and the Request-URI. With
``alwaysauthreject=yes`` (the default) an unknown user, a peer failing its ACL, a user name
mismatch, a wrong password and a ``host=<ip>`` peer whose credentials are wrong all get the
same fresh 401 challenge, so names cannot be probed; only a ``host=<ip>`` peer presenting
its *right* password learns 403 (it already knows the name). With ``alwaysauthreject=no``:
unknown user 404, ``host=<ip>`` or ACL failure 403, wrong password 403. A stale nonce draws
``stale=true``; a replayed nonce-count, a foreign nonce or another realm a fresh challenge.
``auth_failure`` is set only when credentials were refused (never for the first,
unauthenticated request).

Bindings. ``Contact: *`` needs ``Expires: 0`` (else 400); no Contact is a query. A contact's
``expires`` parameter wins over the Expires header, which wins over ``defaultexpiry``; below
``minexpiry`` (and not 0) → 423 with ``Min-Expires``; above ``maxexpiry`` → clamped. Same
Call-ID with a CSeq not above the stored one → 500 (§10.3 step 7). More live contacts than
the location's ``max_contacts`` → 503 "Too Many Registered Contacts" (as Kamailio's
``max_contacts``), nothing changed. The 200 lists every live contact with its remaining
``expires`` and carries ``Date`` (§10.3 step 8; formatted once per second). Path is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formatdate

from pypbx.config.sipconf import General, Peer, PeerType
from pypbx.location import Change, Location, LocationError
from pypbx.peers import PeerDirectory, accepted_usernames, has_secret, response_tag, verify_peer
from pypbx.sip.abnf import ParseError
from pypbx.sip.auth import AuthParseError, DigestServer, Verdict, parse_credentials, uri_matches
from pypbx.sip.events import Addr
from pypbx.sip.headers import Star
from pypbx.sip.message import Request, Response, build_response
from pypbx.sip.uri import NameAddr, SipUri

__all__ = ["RegisterOutcome", "Registrar"]


@dataclass(frozen=True, slots=True)
class RegisterOutcome:
    """The answer to send, what changed, one log line for the operator (or None)."""

    response: Response
    changes: tuple[Change, ...] = ()
    log: str | None = None
    auth_failure: bool = False
    peer: str | None = None  # the authenticated peer, when the request got that far


@dataclass(frozen=True, slots=True)
class _Who:
    """The start of a failure's log line, written only when a line is: most REGISTERs
    succeed or draw a plain challenge, and those log nothing."""

    request: Request
    source: Addr

    def __str__(self) -> str:
        sender = self.request.get("from", "")
        return f"Registration from '{sender}' failed for '{self.source[0]}:{self.source[1]}'"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class _Answer(Exception):
    """Internal: stop processing with this outcome."""

    def __init__(self, outcome: RegisterOutcome) -> None:
        super().__init__(outcome.response.status)
        self.outcome = outcome


class Registrar:
    """Handles REGISTER requests for the peers of one sip.conf."""

    def __init__(
        self,
        location: Location,
        peers: PeerDirectory,
        general: General,
        digest: DigestServer,
        *,
        user_agent: str | None = None,
    ) -> None:
        self.location = location
        self.peers = peers
        self.general = general
        self.digest = digest
        self.user_agent = general.useragent if user_agent is None else user_agent
        self._date: tuple[int, str] = (-1, "")  # (whole second, its Date header text)

    def handle(
        self, request: Request, source: Addr, *, now: float, transport: str = "udp"
    ) -> RegisterOutcome:
        """Process one REGISTER that came from ``source`` over ``transport``."""
        if request.method != "REGISTER":
            raise ValueError(f"Registrar.handle got a {request.method}")
        try:
            return self._handle(request, source, now, transport)
        except _Answer as answer:
            return answer.outcome

    # -- steps ----------------------------------------------------------------------------

    def _handle(
        self, request: Request, source: Addr, now: float, transport: str
    ) -> RegisterOutcome:
        who = _Who(request, source)
        try:
            to_uri = request.to.uri
            contacts = request.contact
            expires_header = request.expires
            call_id = request.call_id
            cseq = request.cseq.number
        except ParseError as exc:
            raise self._fail(request, 400, f"{who} - bad request: {exc.reason}") from None
        if not isinstance(to_uri, SipUri) or not to_uri.user:
            raise self._fail(request, 400, f"{who} - To has no user part")
        peer = self._authenticate(request, to_uri.user, source, now, who)
        if not contacts:
            return self._ok(request, peer, (), now, None)
        if isinstance(contacts[0], Star):
            return self._wildcard(request, peer, expires_header, call_id, cseq, now, who)
        return self._bind(
            request, peer, contacts, expires_header, call_id, cseq, source, transport, now, who
        )

    def _authenticate(
        self, request: Request, user: str, source: Addr, now: float, who: _Who
    ) -> Peer:
        peer = self.peers.get(user)
        if peer is not None and peer.type is PeerType.USER:
            peer = None  # a user section only places calls; chan_sip registers peers
        acl_ok = peer is None or peer.acl.allows(source[0])
        if not self.general.alwaysauthreject:
            if peer is None:
                raise self._fail(request, 404, f"{who} - No matching peer found", failure=True)
            if not peer.dynamic:
                raise self._fail(
                    request, 403, f"{who} - Peer is not supposed to register", failure=True
                )
            if not acl_ok:
                raise self._fail(request, 403, f"{who} - Device does not match ACL", failure=True)
        if peer is not None and peer.dynamic and acl_ok and not has_secret(peer):
            return peer
        values = request.headers.get_all("authorization")
        if not values:
            raise self._challenge(request, now)
        if len(values) > 1:
            raise self._fail(request, 400, f"{who} - more than one Authorization header")
        try:
            creds = parse_credentials(values[0])
        except AuthParseError as exc:
            raise self._fail(request, 400, f"{who} - bad Authorization: {exc.reason}") from None
        if creds.realm != self.digest.realm:
            raise self._challenge(request, now, log=f"{who} - wrong realm {creds.realm!r}")
        if not uri_matches(creds.uri, request.uri_text):
            raise self._fail(request, 400, f"{who} - digest uri does not match the Request-URI")
        if peer is None:
            raise self._reject(request, now, f"{who} - No matching peer found")
        if not acl_ok:
            raise self._reject(request, now, f"{who} - Device does not match ACL")
        if creds.username not in accepted_usernames(peer):
            raise self._reject(request, now, f"{who} - Username/auth name mismatch")
        if not has_secret(peer):
            raise self._reject(request, now, f"{who} - Peer is not supposed to register")
        verdict = verify_peer(self.digest, peer, creds, "REGISTER", now=now)
        if verdict is Verdict.OK:
            if not peer.dynamic:
                log = f"{who} - Peer is not supposed to register (host={peer.host})"
                raise self._fail(request, 403, log, failure=True)
            return peer
        if verdict is Verdict.BAD_CREDENTIALS:
            raise self._reject(request, now, f"{who} - Wrong password")
        if verdict is Verdict.MALFORMED:
            raise self._fail(request, 400, f"{who} - malformed credentials")
        if verdict is Verdict.STALE:
            raise self._challenge(request, now, stale=True, log=f"{who} - stale nonce")
        reasons = {
            Verdict.REPLAY: "replayed nonce-count",
            Verdict.BAD_NONCE: "nonce not issued by us",
            Verdict.BAD_ALGORITHM: f"algorithm {creds.algorithm} not offered",
            Verdict.WRONG_REALM: "wrong realm",
        }
        raise self._challenge(request, now, log=f"{who} - {reasons[verdict]}")

    def _expiry(self, contact: NameAddr, header: int | None) -> int:
        text = contact.param("expires")
        if text is not None:
            return int(text)  # parse_contact_list checked it is a 32-bit number
        return self.general.defaultexpiry if header is None else header

    def _wildcard(
        self,
        request: Request,
        peer: Peer,
        expires_header: int | None,
        call_id: str,
        cseq: int,
        now: float,
        who: _Who,
    ) -> RegisterOutcome:
        if expires_header != 0:
            raise self._fail(request, 400, f"{who} - Contact: * needs Expires: 0")
        try:
            self.location.check(peer.name, None, call_id, cseq)
        except LocationError as exc:
            raise self._fail(request, exc.status, f"{who} - {exc.reason}", exc.reason) from None
        changes = tuple(self.location.remove_all(peer.name))
        return self._ok(request, peer, changes, now, 0)

    def _bind(
        self,
        request: Request,
        peer: Peer,
        contacts: list[NameAddr | Star],
        expires_header: int | None,
        call_id: str,
        cseq: int,
        source: Addr,
        transport: str,
        now: float,
        who: _Who,
    ) -> RegisterOutcome:
        ops: list[tuple[str, int, str | None]] = []
        for contact in contacts:
            assert isinstance(contact, NameAddr)  # '*' mixed with others fails to parse
            expires = self._expiry(contact, expires_header)
            if 0 < expires < self.general.minexpiry:
                minimum = self.general.minexpiry
                log = f"{who} - expiry {expires} below minexpiry {minimum}"
                raise self._fail(request, 423, log, headers=[("Min-Expires", str(minimum))])
            ops.append((str(contact.uri), min(expires, self.general.maxexpiry), contact.param("q")))
        try:
            for uri, _, _ in ops:
                self.location.check(peer.name, uri, call_id, cseq)
            self.location.check_room(peer.name, [u for u, e, _ in ops if e > 0], now)
        except LocationError as exc:
            raise self._fail(request, exc.status, f"{who} - {exc.reason}", exc.reason) from None
        agent = request.get("user-agent", "") or ""
        changes: list[Change] = []
        for uri, expires, q in ops:
            change = self.location.update(
                peer.name,
                uri,
                expires=expires,
                call_id=call_id,
                cseq=cseq,
                now=now,
                received=source,
                transport=transport.lower(),
                user_agent=agent,
                q=q,
            )
            if change is not None:
                changes.append(change)
        return self._ok(request, peer, tuple(changes), now, ops[0][1])

    # -- answers --------------------------------------------------------------------------

    def _ok(
        self,
        request: Request,
        peer: Peer,
        changes: tuple[Change, ...],
        now: float,
        expires: int | None,
    ) -> RegisterOutcome:
        headers = [
            (
                "Contact",
                f"<{b.contact}>;expires={b.remaining(now)}" + (f";q={b.q}" if b.q else ""),
            )
            for b in self.location.bindings(peer.name, now)
        ]
        if expires is not None:
            headers.append(("Expires", str(expires)))
        headers.append(("Date", self._date_text(now)))
        response = self._response(request, 200, headers)
        return RegisterOutcome(response, changes, None, False, peer.name)

    def _date_text(self, now: float) -> str:
        """The ``Date`` value for ``now`` (RFC 1123 in GMT), formatted once per second."""
        second = int(now // 1)
        cached_second, text = self._date
        if second != cached_second:
            text = formatdate(second, usegmt=True)
            self._date = (second, text)
        return text

    def _response(
        self,
        request: Request,
        status: int,
        headers: list[tuple[str, str]],
        reason: str | None = None,
    ) -> Response:
        if self.user_agent:
            headers.append(("Server", self.user_agent))
        return build_response(
            request, status, reason, to_tag=response_tag(request), headers=headers
        )

    def _fail(
        self,
        request: Request,
        status: int,
        log: str,
        reason: str | None = None,
        *,
        failure: bool = False,
        headers: list[tuple[str, str]] | None = None,
    ) -> _Answer:
        response = self._response(request, status, list(headers or ()), reason)
        return _Answer(RegisterOutcome(response, (), log, failure))

    def _challenge(
        self, request: Request, now: float, *, stale: bool = False, log: str | None = None
    ) -> _Answer:
        headers = [("WWW-Authenticate", v) for v in self.digest.challenges(now, stale=stale)]
        return _Answer(RegisterOutcome(self._response(request, 401, headers), (), log, False))

    def _reject(self, request: Request, now: float, log: str) -> _Answer:
        """Refused credentials: a fresh 401 with alwaysauthreject, else 403."""
        if self.general.alwaysauthreject:
            answer = self._challenge(request, now, log=log)
            outcome = answer.outcome
            return _Answer(RegisterOutcome(outcome.response, (), log, True))
        return self._fail(request, 403, log, failure=True)
