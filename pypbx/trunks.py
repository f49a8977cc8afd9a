"""Outbound registration: one state machine per ``register =>`` line (RFC 3261 §10.2).

Pure: the glue asks :meth:`OutboundRegistration.next_action` for a REGISTER to send (and
re-arms one timer at :meth:`~OutboundRegistration.next_timer`), passes final responses to
:meth:`~OutboundRegistration.on_response` (which may hand back a request to send at once, e.g.
the answer to a 401/407) and transaction failures to :meth:`~OutboundRegistration.on_timeout`.
``now`` is Unix time in seconds.

Behaviour and words follow chan_sip: states as ``regstate2str`` shows them; CSeq starts at
101 and grows, Call-ID and From tag stay for the life of the line, so the provider sees
refreshes of one binding (and the Contact, ``sip:<extension>@<our address>``, does not
move); a refresh is due ``expires - 15`` s after a 200 (``expires - max(20 %, 0.5 s)`` when
the granted expiry is 30 s or less). A request unanswered ``registertimeout`` seconds is a
timeout: state "Timeout", sent again at once. A challenge is answered (up to 3 times in a
row; refreshes reuse the last challenge with the next nonce-count, as chan_sip does); a
second, non-stale challenge to credentials built from the challenge just received means the
password is wrong: "No Authentication" (a challenge to credentials from a cached nonce is
answered again: the registrar may have restarted). 423 retries with ``Min-Expires`` unless
above ``maxexpiry``. 403 and other failures are "Rejected". After a failure the line tries
again ``registertimeout`` later; with ``registerattempts`` > 0 it stops ("Failed") after
that many unanswered or refused attempts in a row (0 = forever). pypbx differs from chan_sip
here on purpose: chan_sip stops for good after 403 ("No Authentication", unless
``register_retry_403``) and after 404/423 ("Rejected"); pypbx keeps retrying within
``registerattempts`` so a provider fixing the account is picked up without a reload.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pypbx.config.netaddr import is_local
from pypbx.config.sipconf import General, Registration, Transport
from pypbx.sip.abnf import ParseError
from pypbx.sip.auth import (
    AuthError,
    ClientAuthState,
    challenge_header,
    credentials_header,
    parse_challenge,
)
from pypbx.sip.events import Addr
from pypbx.sip.ids import IdFactory
from pypbx.sip.message import Request, Response, make_request
from pypbx.sip.uri import NameAddr, SipUri

__all__ = [
    "EXPIRY_GUARD_LIMIT",
    "EXPIRY_GUARD_MIN",
    "EXPIRY_GUARD_PCT",
    "EXPIRY_GUARD_SECS",
    "MAX_AUTHTRIES",
    "IllegalTransition",
    "OutboundRegistration",
    "RegState",
    "RegistryRow",
    "contact_address",
    "format_registry",
    "refresh_after",
]

EXPIRY_GUARD_SECS = 15  # refresh this long before expiry ...
EXPIRY_GUARD_LIMIT = 30  # ... when the expiry is above this; else by percentage:
EXPIRY_GUARD_PCT = 0.20
EXPIRY_GUARD_MIN = 0.5  # seconds, the least margin for short expiries
MAX_AUTHTRIES = 3
INITIAL_CSEQ = 101


class RegState(StrEnum):
    """chan_sip ``regstate2str``."""

    UNREGISTERED = "Unregistered"
    REQUEST_SENT = "Request Sent"
    AUTH_SENT = "Auth. Sent"
    REGISTERED = "Registered"
    REJECTED = "Rejected"
    TIMEOUT = "Timeout"
    NO_AUTHENTICATION = "No Authentication"
    FAILED = "Failed"


_S = RegState
_SENDING = frozenset({_S.REQUEST_SENT, _S.AUTH_SENT})
_OUTCOMES = frozenset(
    {_S.REGISTERED, _S.REJECTED, _S.TIMEOUT, _S.NO_AUTHENTICATION, _S.FAILED, _S.UNREGISTERED}
)
_AFTER_FAILURE = frozenset({_S.REQUEST_SENT, _S.AUTH_SENT, _S.FAILED, _S.UNREGISTERED})
#: state → the states it may move to (an illegal move raises and the state stays).
TRANSITIONS: dict[RegState, frozenset[RegState]] = {
    _S.UNREGISTERED: frozenset({_S.REQUEST_SENT, _S.AUTH_SENT, _S.UNREGISTERED}),
    _S.REQUEST_SENT: _SENDING | _OUTCOMES,
    _S.AUTH_SENT: _SENDING | _OUTCOMES,
    _S.REGISTERED: frozenset({_S.REQUEST_SENT, _S.AUTH_SENT, _S.UNREGISTERED}),
    _S.REJECTED: _AFTER_FAILURE,
    _S.TIMEOUT: _AFTER_FAILURE,
    _S.NO_AUTHENTICATION: _AFTER_FAILURE,
    _S.FAILED: frozenset({_S.UNREGISTERED}),
}


class IllegalTransition(Exception):
    """A state change the table does not allow."""


def refresh_after(expires: int) -> float:
    """Seconds after a 200 at which chan_sip re-registers, for a granted ``expires``."""
    if expires <= EXPIRY_GUARD_LIMIT:
        return max(0.0, expires - max(expires * EXPIRY_GUARD_PCT, EXPIRY_GUARD_MIN))
    return float(expires - EXPIRY_GUARD_SECS)


def contact_address(general: General, provider_ip: str, local: Addr) -> Addr:
    """Our address for the Contact: ``externaddr`` when the provider is outside ``localnet``.

    Without ``externaddr`` (or when the provider is inside a ``localnet``) the local address
    the glue bound is used. ``externport`` defaults to the local port. As in chan_sip, the
    external address is used only when ``localnet`` is set (sip.conf.sample: "if localnet is
    not set, the external address will not be set correctly"); ``pypbx check`` warns.
    """
    if general.externaddr is None or not general.localnet:
        return local
    try:
        ipaddress.ip_address(provider_ip)
    except ValueError:
        return local
    if is_local(provider_ip, general.localnet):
        return local
    return general.externaddr, general.externport or local[1]


@dataclass(frozen=True, slots=True)
class RegistryRow:
    """One line of ``sip show registry``."""

    host: str
    dnsmgr: str
    username: str
    refresh: int
    state: str
    regtime: float | None


_REG_HEAD = "{:<39.39} {:<6.6} {:<12.12}  {:>8.8} {:<20.20} {:<25.25}"
_REG_ROW = "{:<39.39} {:<6.6} {:<12.12}  {:>8d} {:<20.20} {:<25.25}"


def format_registry(rows: list[RegistryRow], *, tz: object = None) -> str:
    """chan_sip ``sip show registry``: header, one line per registration, count footer.

    ``Reg.Time`` is the local time of the last successful registration (empty if none);
    ``tz`` is a ``datetime.tzinfo`` for tests (None means the local zone).
    """
    lines = [_REG_HEAD.format("Host", "dnsmgr", "Username", "Refresh", "State", "Reg.Time")]
    for r in rows:
        when = ""
        if r.regtime:
            stamp = datetime.fromtimestamp(r.regtime, tz)  # type: ignore[arg-type]
            when = stamp.strftime("%a, %d %b %Y %H:%M:%S")
        lines.append(_REG_ROW.format(r.host, r.dnsmgr, r.username, r.refresh, r.state, when))
    lines.append(f"{len(rows)} SIP registrations.")
    return "\n".join(line.rstrip() for line in lines) + "\n"


class OutboundRegistration:
    """The client side of one ``register =>`` line."""

    def __init__(
        self,
        registration: Registration,
        general: General,
        *,
        ids: IdFactory,
        contact_addr: Addr,
        start: float = 0.0,
        cnonce: Callable[[], str] | None = None,
    ) -> None:
        self.reg = registration
        self.general = general
        self.ids = ids
        self.contact_addr = contact_addr
        self.state = RegState.UNREGISTERED
        self.configured_expiry = registration.expiry or general.defaultexpiry
        self.expiry = self.configured_expiry
        self.refresh = self.configured_expiry
        self.regtime: float | None = None
        self.attempts = 0
        self.log: list[str] = []
        self.auth = ClientAuthState(
            registration.authuser or registration.user, registration.secret or ""
        )
        self._cnonce = cnonce or ids.tag
        self._domain = registration.domain or registration.host
        self._call_id = ids.call_id(contact_addr[0])
        self._tag = ids.tag()
        self._cseq = INITIAL_CSEQ - 1
        self._due: float | None = start
        self._deadline: float | None = None
        self._inflight: int | None = None  # CSeq of the request waiting for an answer
        self._sent_creds: dict[str, list[str]] = {}  # header name → values in that request
        self._realm_header: dict[str, str] = {}  # realm → Authorization/Proxy-Authorization
        self._authtries = 0
        self._fresh = False  # the request in flight answers the challenge just received
        self._challenged = False  # the last 401/407 was parsed and learnt
        self._stopping = False

    # -- identity -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.reg.user}@{self.reg.host}"

    @property
    def call_id(self) -> str:
        return self._call_id

    @property
    def contact(self) -> str:
        host, port = self.contact_addr
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        params = "" if self.reg.transport is Transport.UDP else f";transport={self.reg.transport}"
        return f"<sip:{self.reg.extension}@{host}:{port}{params}>"

    def _aor(self) -> str:
        port = self.reg.domain_port if self.reg.domain else self.reg.port
        return f"sip:{self._domain}" + (f":{port}" if port else "")

    # -- timers ---------------------------------------------------------------------------

    def next_timer(self) -> float | None:
        """When :meth:`next_action` has something to do (send, or time a request out)."""
        if self._inflight is not None:
            return self._deadline
        return self._due

    def next_action(self, now: float) -> Request | None:
        """The REGISTER to send now, if one is due (a timed-out request is retried here)."""
        if self._inflight is not None:
            if self._deadline is not None and now >= self._deadline:
                self.on_timeout(now)
            else:
                return None
        if self._stopping or self._due is None or now < self._due:
            return None
        self._due = None
        self.attempts += 1
        self._authtries = 0
        self._fresh = False
        return self._send(now)

    # -- responses ------------------------------------------------------------------------

    def on_response(self, response: Response, now: float) -> Request | None:
        """A response to our REGISTER; returns a request to send at once, if any."""
        try:
            cseq = response.cseq
        except ParseError:
            return None
        if cseq.method != "REGISTER" or cseq.number != self._inflight or response.is_provisional:
            return None
        self._inflight = None
        self._deadline = None
        status = response.status
        if self._stopping:
            if status in (401, 407) and self._learn(response, status):
                return self._send(now, expires=0)
            return None
        if 200 <= status < 300:
            self._registered(response, now)
            return None
        if status in (401, 407):
            # Credentials from a cached challenge (a refresh, a new attempt) may just carry a
            # nonce the registrar forgot: only a challenge to credentials built from the
            # previous answer in this exchange says the password is wrong.
            retry = self._learn(response, status) or (not self._fresh and self._challenged)
            if self._authtries < MAX_AUTHTRIES and retry:
                self._authtries += 1
                self._fresh = True
                return self._send(now)
            self._note(
                f"Failed to authenticate on REGISTER to '{self.name}' (Tries {self._authtries})"
            )
            self._failed(RegState.NO_AUTHENTICATION, now)
            return None
        if status == 423:
            return self._too_brief(response, now)
        if status == 403:
            self._note(
                f"Forbidden - wrong password on authentication for REGISTER for "
                f"'{self.reg.user}' to '{self.reg.host}'"
            )
        else:
            self._note(f"Got {status} {response.reason} on SIP register to service {self.name}")
        self._failed(RegState.REJECTED, now)
        return None

    def on_timeout(self, now: float, *, cseq: int | None = None) -> None:
        """No answer to the request in flight (our deadline, or the transaction's timer F)."""
        if self._inflight is None or (cseq is not None and cseq != self._inflight):
            return
        self._inflight = None
        self._deadline = None
        if self._stopping:
            return
        self._set(RegState.TIMEOUT)
        if self._give_up():
            return
        self._note(
            f"   -- Registration for '{self.name}' timed out, trying again "
            f"(Attempt #{self.attempts + 1})"
        )
        self._due = now

    def unregister(self, now: float) -> Request | None:
        """Expires: 0 for shutdown or removal; None when nothing is registered."""
        was = self.state
        self._stopping = True
        self._due = None
        if was is RegState.UNREGISTERED or was is RegState.FAILED:
            self._set(RegState.UNREGISTERED)
            return None
        request = self._send(now, expires=0)
        self._set(RegState.UNREGISTERED)
        return request

    def row(self) -> RegistryRow:
        """This line for ``sip show registry``."""
        port = self.reg.port or (5061 if self.reg.transport is Transport.TLS else 5060)
        return RegistryRow(
            host=f"{self.reg.host}:{port}",
            dnsmgr="N",
            username=self.reg.user,
            refresh=int(self.refresh),
            state=self.state.value,
            regtime=self.regtime,
        )

    # -- internals ------------------------------------------------------------------------

    def _set(self, state: RegState) -> None:
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.name}: {self.state} → {state}")
        self.state = state

    def _note(self, text: str) -> None:
        self.log.append(text)

    def _send(self, now: float, *, expires: int | None = None) -> Request:
        self._cseq += 1
        aor = self._aor()
        user_aor = f"sip:{self.reg.user}@{aor[4:]}"
        host, port = self.contact_addr
        via_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        via = (
            f"SIP/2.0/{self.reg.transport.value.upper()} {via_host}:{port}"
            f";branch={self.ids.branch()};rport"
        )
        exp = self.expiry if expires is None else expires
        headers = [("Expires", str(exp))]
        if self.general.useragent:
            headers.append(("User-Agent", self.general.useragent))
        authed = False
        self._sent_creds = {}
        for realm in self.auth.realms:
            name = self._realm_header.get(realm, "Authorization")
            value = self.auth.authorization(
                realm, method="REGISTER", uri=aor, cnonce=self._cnonce()
            )
            headers.append((name, value))
            self._sent_creds.setdefault(name, []).append(value)
            authed = True
        request = make_request(
            "REGISTER",
            aor,
            from_=f"<{user_aor}>;tag={self._tag}",
            to=f"<{user_aor}>",
            call_id=self._call_id,
            cseq=self._cseq,
            via=via,
            contact=self.contact,
            headers=headers,
        )
        self._inflight = self._cseq
        self._deadline = now + self.general.registertimeout
        if not self._stopping:
            self._set(RegState.AUTH_SENT if authed else RegState.REQUEST_SENT)
        return request

    def _learn(self, response: Response, status: int) -> bool:
        values = response.get_all(challenge_header(status))
        if not values:
            return False
        sent = self._sent_creds.get(credentials_header(status), [])
        retry = False
        self._challenged = False
        seen: set[str] = set()
        try:
            for value in values:
                challenge = parse_challenge(value)
                if challenge.realm in seen:
                    continue  # several algorithms offered: the first is preferred (RFC 8760)
                seen.add(challenge.realm)
                retry = self.auth.learn(challenge, sent=sent) or retry
                self._realm_header[challenge.realm] = credentials_header(status)
        except (AuthError, ParseError):
            return False
        self._challenged = True
        return retry

    def _registered(self, response: Response, now: float) -> None:
        granted = self._granted(response)
        self.refresh = int(refresh_after(granted))
        self._set(RegState.REGISTERED)
        self.regtime = now
        self.attempts = 0
        self._due = now + refresh_after(granted)
        self._note(
            f"Outbound Registration: Expiry for {self.reg.host} is {granted} sec "
            f"(Scheduling reregistration in {self.refresh} s)"
        )

    def _granted(self, response: Response) -> int:
        """Expiry the registrar granted: our Contact's ``expires``, else Expires, else ours."""
        try:
            contacts = response.contact
            mine = SipUri.parse(self.contact[1:-1])
            for c in contacts:
                if (
                    isinstance(c, NameAddr)
                    and isinstance(c.uri, SipUri)
                    and c.uri.user == mine.user
                    and c.uri.host.lower() == mine.host.lower()
                    and (c.uri.port or 5060) == (mine.port or 5060)
                ):
                    value = c.param("expires")
                    if value is not None and int(value) > 0:
                        return int(value)
            header = response.expires
        except (ParseError, ValueError):
            header = None
        return header if header else self.expiry

    def _too_brief(self, response: Response, now: float) -> Request | None:
        text = response.get("Min-Expires", "") or ""
        text = text.strip()
        minimum = int(text) if text.isascii() and text.isdigit() else 0
        self._note(
            f"Got 423 Interval too brief for service {self.name}, minimum is {minimum} seconds"
        )
        if minimum <= self.expiry or minimum > self.general.maxexpiry:
            self._note(f"Required expiration time from {self.name} is too high, giving up")
            self.expiry = self.configured_expiry
            self._failed(RegState.REJECTED, now)
            return None
        self.expiry = minimum
        return self._send(now)

    def _failed(self, state: RegState, now: float) -> None:
        self._set(state)
        if not self._give_up():
            self._due = now + self.general.registertimeout

    def _give_up(self) -> bool:
        limit = self.general.registerattempts
        if limit > 0 and self.attempts >= limit:
            self._note(
                f"   -- Last Registration Attempt #{self.attempts} failed, "
                f"Giving up forever trying to register '{self.name}'"
            )
            self._set(RegState.FAILED)
            self._due = None
            return True
        return False
