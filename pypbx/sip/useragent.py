"""The user agent: INVITE sessions over one endpoint, keeping the sans-I/O contract.

:class:`UserAgent` wraps one :class:`~pypbx.sip.endpoint.Endpoint`, dispatches endpoint
events to :class:`~pypbx.sip.session.Session` objects (RFC 3261 §12-§15) and queues session
events for the call layer. Endpoint events that belong to no session (REGISTER,
out-of-dialog MESSAGE ...) are passed through unchanged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from pypbx.sip.auth import (
    ClientAuthState,
)
from pypbx.sip.dialog import DialogId, uas_dialog_id
from pypbx.sip.endpoint import Endpoint
from pypbx.sip.events import (
    AckReceived,
    Addr,
    CancelReceived,
    Event,
    MessageRejected,
    RequestReceived,
    ResponseReceived,
    SessionEvent,
    SessionOffered,
    TransactionKey,
    TransactionTerminated,
    TransactionTimedOut,
    TransportError,
)
from pypbx.sip.headers import Star
from pypbx.sip.message import build_response, make_request
from pypbx.sip.session import Role, Session, SessionState
from pypbx.sip.uri import NameAddr, Uri, parse_name_addr

__all__ = ["UserAgent"]

# ---------------------------------------------------------------- the user agent


class UserAgent:
    """Sessions over one endpoint, with the endpoint's sans-I/O contract.

    ``contact`` is our Contact; with ``symmetric`` in-dialog requests go back to where the
    INVITE came from (UAS) or went to (UAC) instead of the Contact/route set (NAT, as
    Asterisk's ``nat=force_rport,comedia``).
    """

    def __init__(
        self, endpoint: Endpoint, *, contact: NameAddr | str, symmetric: bool = False
    ) -> None:
        self.endpoint = endpoint
        self.contact = parse_name_addr(contact) if isinstance(contact, str) else contact
        self.symmetric = symmetric
        self._events: deque[Event | SessionEvent] = deque()
        self._by_key: dict[TransactionKey, Session] = {}
        self._dialogs: dict[DialogId, Session] = {}
        self.sessions: list[Session] = []

    def _emit(self, event: Event | SessionEvent) -> None:
        self._events.append(event)

    def _bind(self, did: DialogId, session: Session) -> None:
        self._dialogs[did] = session
        session._ids.add(did)

    def _unbind(self, did: DialogId) -> None:
        session = self._dialogs.pop(did, None)
        if session is not None:
            session._ids.discard(did)

    def session_for(self, did: DialogId) -> Session | None:
        """The live session that owns dialog ``did`` (early or confirmed)."""
        return self._dialogs.get(did)

    # -- sans-I/O contract ----------------------------------------------------------

    def receive(self, data: bytes, addr: Addr, *, now: float) -> None:
        """Feed one datagram; endpoint events are dispatched to sessions."""
        self.endpoint.receive(data, addr, now=now)
        self._pump(now)

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        """What the endpoint queued."""
        return self.endpoint.datagrams_to_send(now=now)

    def next_event(self) -> Event | SessionEvent | None:
        """Session events and the endpoint events no session took."""
        return self._events.popleft() if self._events else None

    def next_timer(self) -> float | None:
        """Earliest of the endpoint's and the sessions' deadlines."""
        times = [t for s in self.sessions if (t := s.next_timer()) is not None]
        ep = self.endpoint.next_timer()
        if ep is not None:
            times.append(ep)
        return min(times) if times else None

    def handle_timer(self, *, now: float) -> None:
        """Fire what is due."""
        self.endpoint.handle_timer(now=now)
        for session in list(self.sessions):
            t = session.next_timer()
            if t is not None and t <= now:
                session.handle_timer(now=now)
        self._pump(now)
        self.sessions = [s for s in self.sessions if s.state is not SessionState.TERMINATED]

    # -- actions --------------------------------------------------------------------

    def transport_error(self, target: TransactionKey | Addr, *, now: float) -> None:
        """The glue could not send (see ``Endpoint.transport_error``)."""
        self.endpoint.transport_error(target, now=now)
        self._pump(now)

    def invite(
        self,
        uri: Uri | str,
        *,
        to: NameAddr | str,
        from_: NameAddr | str,
        dest: Addr,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        auth: ClientAuthState | None = None,
        now: float,
    ) -> Session:
        """Start an outgoing call: an INVITE towards ``dest`` (the next hop). With ``auth``
        a 401/407 is answered with credentials instead of failing the call."""
        ids = self.endpoint.ids
        sender = parse_name_addr(from_) if isinstance(from_, str) else from_
        request = make_request(
            "INVITE",
            uri,
            from_=sender.with_tag(ids.tag()),
            to=to,
            call_id=ids.call_id(self.endpoint.config.host),
            cseq=1,
            via="SIP/2.0/UDP invalid",
            contact=self.contact,
            headers=headers,
            body=body,
            content_type=content_type,
        )
        request.headers.remove("via")
        key = self.endpoint.send_request(request, dest, now=now)
        session = Session(self, Role.UAC, request, key, dest)
        session.auth = auth
        self._by_key[key] = session
        self.sessions.append(session)
        return session

    # -- dispatch -------------------------------------------------------------------

    def _pump(self, now: float) -> None:
        while (ev := self.endpoint.next_event()) is not None:
            self._dispatch(ev, now)

    def _dispatch(self, ev: Event, now: float) -> None:
        if isinstance(ev, ResponseReceived):
            session = self._by_key.get(ev.key)
            if session is None:
                self._emit(ev)
            else:
                session._on_response(ev.response, ev.key, now)
        elif isinstance(ev, RequestReceived):
            self._on_request(ev, now)
        elif isinstance(ev, AckReceived):
            did = uas_dialog_id(ev.request)
            session = self._dialogs.get(did) if did is not None else None
            if session is None:
                self._emit(ev)
            else:
                session._on_ack(ev.request)
        elif isinstance(ev, CancelReceived):
            session = self._by_key.get(ev.invite_key)
            if session is None:
                self._emit(ev)
            else:
                session._on_cancel(ev.request, ev.invite_key, now)
        elif isinstance(ev, TransactionTimedOut | TransportError):
            session = self._by_key.get(ev.key)
            if session is None:
                self._emit(ev)
            elif ev.key == session.invite_key:
                session._on_invite_failure(408 if isinstance(ev, TransactionTimedOut) else 503)
        elif isinstance(ev, TransactionTerminated):
            if self._by_key.pop(ev.key, None) is None:
                self._emit(ev)
        else:
            self._emit(ev)

    def _on_request(self, ev: RequestReceived, now: float) -> None:
        req = ev.request
        did = uas_dialog_id(req)
        if did is None:
            if req.method != "INVITE":
                self._emit(ev)
                return
            if not any(not isinstance(c, Star) for c in req.contact):
                resp = build_response(req, 400, "Missing Contact", to_tag=self.endpoint.ids.tag())
                self.endpoint.send_response(ev.key, resp, now=now)
                self._emit(MessageRejected("INVITE without Contact", ev.source, 400))
                return
            session = Session(self, Role.UAS, req, ev.key, ev.source)
            self._by_key[ev.key] = session
            self.sessions.append(session)
            self._emit(SessionOffered(session, req))
            return
        known = self._dialogs.get(did)
        if known is None or known.dialog is None:
            # §12.2.2: a request for a dialog we do not know
            resp = build_response(req, 481)
            self.endpoint.send_response(ev.key, resp, now=now)
            self._emit(MessageRejected("no such dialog (§12.2.2)", ev.source, 481))
            return
        known._on_request(req, ev.key, now)
