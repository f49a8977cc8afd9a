"""The SIP stack: endpoints on UDP and TCP sockets, one timer, TU events and requests.

The async facade the rest of pypbx uses. It binds UDP (and TCP when enabled) on
``bindaddr:bindport`` (IPv4 or IPv6), feeds each sans-I/O :class:`Endpoint` with
``now=loop.time()``, sends what it emits on its transport, re-arms ONE ``loop.call_at``
for the earliest endpoint deadline after every input, and hands TU events to a handler.

RFC 3261 §8.1.3.1 (a transaction timeout is a 408, a transport error a 503, to the TU),
§22.2/§22.3 (a 401/407 is answered by retrying with credentials, new branch and CSeq + 1),
§13.2.2.4 (the ACK for a 2xx, sent by the UAC core and repeated for retransmitted 2xx),
§11.2 (OPTIONS answered 200 by the endpoint as soon as the sockets are up).

User agents (optional): :meth:`SipStack.use_user_agents` wraps each endpoint in a
:class:`~pypbx.sip.useragent.UserAgent` (same sans-I/O contract); the pump then drives the
UAs, INVITE dialogs become sessions (§12-§15), session events go to ``session_handler`` and
every other event to ``handler`` as before. Without a session handler a new INVITE is
refused with 480.

Errors: received bytes cross exactly one ``except`` (``_boundary``), which logs one line on
logger ``pypbx.transport`` with the source address and carries on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pypbx.log import TRACE
from pypbx.sip.abnf import ParseError
from pypbx.sip.auth import (
    AuthError,
    ClientAuthState,
    challenge_header,
    credentials_header,
    parse_challenge,
    parse_credentials,
)
from pypbx.sip.endpoint import DEFAULT_ALLOW, Endpoint, EndpointConfig
from pypbx.sip.events import (
    Addr,
    ClientTxnKey,
    Event,
    MessageRejected,
    RequestReceived,
    ResponseReceived,
    ServerTxnKey,
    SessionEvent,
    SessionOffered,
    TransactionTerminated,
    TransactionTimedOut,
    TransportError,
)
from pypbx.sip.headers import Via
from pypbx.sip.ids import IdFactory, RandomSource
from pypbx.sip.message import Message, Request, Response, build_response
from pypbx.sip.parse import parse_message
from pypbx.sip.transaction import TimerConfig
from pypbx.sip.uri import NameAddr
from pypbx.sip.useragent import UserAgent
from pypbx.transport.addr import hostport, is_wildcard, unbracket, via_host
from pypbx.transport.tcp import TcpConfig, TcpTransport
from pypbx.transport.udp import UdpTransport, open_udp

__all__ = ["EventHandler", "SessionHandler", "SipStack", "StackConfig", "UaFactory"]

log = logging.getLogger("pypbx.transport")
trace_log = logging.getLogger(TRACE)
"""Every message in and out, in full (``sip set debug``); ``extra`` carries ``peer_ip``."""

EventHandler = Callable[["SipStack", Event], None]
SessionHandler = Callable[["SipStack", SessionEvent], None]
UaFactory = Callable[[Endpoint], UserAgent]


@dataclass(frozen=True, slots=True)
class StackConfig:
    """Where and how the stack listens.

    ``bindaddr``/``bindport`` as in sip.conf (port 0 picks a free one, the same for UDP and
    TCP). ``tcp`` enables the TCP listener. ``via_host`` is the sent-by host written in our
    Via headers (default: ``bindaddr``, or the loopback address of its family when that
    is a wildcard). ``max_auth_attempts`` bounds the 401/407 retries of :meth:`request`.
    """

    bindaddr: str = "0.0.0.0"
    bindport: int = 5060
    tcp: bool = False
    via_host: str | None = None
    timers: TimerConfig = field(default_factory=TimerConfig)
    tcp_limits: TcpConfig = field(default_factory=TcpConfig)
    user_agent: str = "pypbx"
    auto_options: bool = True
    allow: tuple[str, ...] = DEFAULT_ALLOW
    supported: tuple[str, ...] = ()
    max_transactions: int = 10_000
    max_auth_attempts: int = 2


@dataclass(slots=True)
class _Pending:
    """A :meth:`SipStack.request` waiting for its final response."""

    future: asyncio.Future[Response]
    transport: str


def _local_response(request: Request, status: int, reason: str) -> Response:
    """§8.1.3.1: what the TU sees when no response came (408) or sending failed (503)."""
    return build_response(request, status, reason)


def _reconnect_target(response: bytes, dest: Addr) -> Addr:
    """§18.2.2: a response whose connection is gone goes over a new connection to the
    ``received`` address (else the sent-by host) and the sent-by port (else 5060)."""
    try:
        via = parse_message(response).top_via
    except ParseError:
        return dest
    return unbracket(via.received or via.host), via.port or 5060


def _ack_for_2xx(request: Request, response: Response) -> Request:
    """§13.2.2.4: the ACK for a 2xx, sent end to end (new Via branch is added on send)."""
    contacts = [c for c in response.contact if isinstance(c, NameAddr)]
    target = contacts[0].uri if contacts else request.uri
    ack = Request("ACK", target)
    ack.headers.add("Max-Forwards", "70")
    for hop in reversed(response.record_route):
        ack.headers.add("Route", str(hop))
    for key in ("from", "call-id"):
        value = request.headers.get(key)
        if value is not None:
            ack.headers.add(key, value)
    to = response.headers.get("to")
    if to is not None:
        ack.headers.add("To", to)
    ack.headers.add("CSeq", f"{request.cseq.number} ACK")
    for value in request.headers.get_all("authorization"):
        ack.headers.add("Authorization", value)
    for value in request.headers.get_all("proxy-authorization"):
        ack.headers.add("Proxy-Authorization", value)
    return ack


class SipStack:
    """Sockets + endpoints + one timer. Create, ``await start()``, ``await close()``.

    ``handler(stack, event)`` receives every endpoint event that :meth:`request` does not
    consume: ``RequestReceived`` (answer with :meth:`respond` or :meth:`reply`),
    ``AckReceived``, ``CancelReceived``, ``MessageRejected`` ... Without a handler, new
    requests are answered 501. ``rng`` supplies branches, tags and cnonces.
    """

    def __init__(
        self,
        config: StackConfig | None = None,
        handler: EventHandler | None = None,
        *,
        rng: RandomSource | None = None,
        ua_factory: UaFactory | None = None,
        session_handler: SessionHandler | None = None,
    ) -> None:
        self.config = config or StackConfig()
        self.handler = handler
        self.session_handler = session_handler
        self._ua_factory = ua_factory
        self.uas: dict[str, UserAgent] = {}
        """The user agent around each transport's endpoint (see :meth:`use_user_agents`)."""
        self._rng: RandomSource = rng if rng is not None else random.SystemRandom()
        self.ids = IdFactory(self._rng)
        self.endpoints: dict[str, Endpoint] = {}
        self.udp: UdpTransport | None = None
        self.tcp: TcpTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._pumping = False
        self._dirty = False
        self._closed = False
        self._pending: dict[ClientTxnKey, _Pending] = {}
        self._sent: dict[ClientTxnKey, tuple[Request, Addr]] = {}
        self._acks: dict[ClientTxnKey, tuple[Request, Addr]] = {}
        self._tcp_busy: dict[ClientTxnKey | ServerTxnKey, Addr] = {}
        self._own: set[ClientTxnKey] = set()  # client transactions request() started
        self.internal_errors = 0
        self.inbound_filter: Callable[[str, bytes, Addr], bool] | None = None
        """Asked before received bytes reach the SIP core (security guard): False drops them."""
        self.outbound_rewrite: Callable[[str, bytes, Addr], bytes] | None = None
        """Applied to every message on its way out (NAT: external address in Via/Contact/SDP)."""
        self.inbound_rewrite: Callable[[str, bytes, Addr], bytes] | None = None
        """Applied to received bytes after the filter (NAT: ``force_rport`` adds ``;rport``)."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the stack runs on (after :meth:`start`)."""
        if self._loop is None:
            raise RuntimeError("SipStack is not started")
        return self._loop

    @property
    def local_addr(self) -> Addr:
        """The bound UDP address (host, port)."""
        if self.udp is None:
            raise RuntimeError("SipStack is not started")
        return self.udp.local_addr

    @property
    def tcp_addr(self) -> Addr | None:
        """The bound TCP listener address, if TCP is enabled."""
        return self.tcp.local_addr if self.tcp is not None else None

    async def start(self) -> None:
        """Bind the sockets and create the endpoints."""
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self.udp = await open_udp(
            cfg.bindaddr, cfg.bindport, lambda d, a: self._boundary("UDP", d, a)
        )
        port = self.udp.local_addr[1]
        if cfg.tcp:
            self.tcp = TcpTransport(
                lambda d, a: self._boundary("TCP", d, a),
                config=cfg.tcp_limits,
                on_send_error=self._tcp_send_failed,
                is_busy=lambda a: a in self._tcp_busy.values(),
            )
            try:
                await self.tcp.listen(cfg.bindaddr, port)
            except OSError:
                self.udp.close()
                raise
        host = cfg.via_host or self._default_host()
        for transport in ("UDP", "TCP") if cfg.tcp else ("UDP",):
            self.endpoints[transport] = Endpoint(
                self.ids,
                EndpointConfig(
                    host=via_host(host),
                    port=port,
                    transport=transport,
                    timers=cfg.timers,
                    max_transactions=cfg.max_transactions,
                    auto_options=cfg.auto_options,
                    user_agent=cfg.user_agent,
                    allow=cfg.allow,
                    supported=cfg.supported,
                ),
            )
        if self._ua_factory is not None:
            self.use_user_agents(self._ua_factory)
        log.info(
            "sip stack listening on %s (%s)",
            hostport(self.udp.local_addr),
            "UDP+TCP" if cfg.tcp else "UDP",
        )

    def use_user_agents(
        self, factory: UaFactory, session_handler: SessionHandler | None = None
    ) -> dict[str, UserAgent]:
        """Wrap every endpoint in ``factory(endpoint)`` (after :meth:`start`, or at start when
        given to the constructor); the pump drives the user agents from then on."""
        if session_handler is not None:
            self.session_handler = session_handler
        for transport, endpoint in self.endpoints.items():
            if transport not in self.uas:
                self.uas[transport] = factory(endpoint)
        return self.uas

    def flush(self) -> None:
        """Send what sessions queued outside the pump (a call task answering, hanging up)."""
        if self._loop is not None and not self._closed:
            self._pump()

    def _driver(self, transport: str) -> Endpoint | UserAgent:
        """What received bytes and timers go to: the transport's UA, else its endpoint."""
        ua = self.uas.get(transport)
        return ua if ua is not None else self.endpoints[transport]

    def _default_host(self) -> str:
        bind = self.config.bindaddr
        if not is_wildcard(bind):
            return bind
        return "::1" if ":" in bind else "127.0.0.1"

    async def close(self) -> None:
        """Close the sockets and fail every waiting :meth:`request` with a local 503."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            await self.tcp.close()
        for key, pending in self._pending.items():
            request = self._request_of(key)
            if not pending.future.done() and request is not None:
                pending.future.set_result(_local_response(request, 503, "Stack Closed"))

    async def __aenter__(self) -> SipStack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ input

    def _boundary(self, transport: str, data: bytes, addr: Addr) -> None:
        """The one place received bytes enter the SIP core; nothing escapes it."""
        try:
            screen = self.inbound_filter
            if screen is not None and not screen(transport, data, addr):
                return
            if self.inbound_rewrite is not None:
                data = self.inbound_rewrite(transport, data, addr)
            if trace_log.isEnabledFor(logging.DEBUG):
                _trace("<--- SIP read from %s --->", data, addr)
            self._driver(transport).receive(data, addr, now=self.loop.time())
            self._pump()
        except Exception as exc:
            self.internal_errors += 1
            log.error(
                "%s %s: internal error on received message: %s: %s",
                transport.lower(),
                hostport(addr),
                type(exc).__name__,
                exc,
            )

    def _on_timer(self) -> None:
        self._timer = None
        now = max(self.loop.time(), self._deadline or 0.0)
        self._deadline = None
        try:
            for transport in self.endpoints:
                self._driver(transport).handle_timer(now=now)
            self._pump()
        except Exception as exc:
            self.internal_errors += 1
            log.error("sip timer: internal error: %s: %s", type(exc).__name__, exc)
            self._arm_timer()

    def _tcp_send_failed(self, addr: Addr) -> None:
        if "TCP" in self.endpoints:
            self._driver("TCP").transport_error(addr, now=self.loop.time())
            self._pump()

    # ------------------------------------------------------------------ the pump

    def _pump(self) -> None:
        """Send every queued datagram, dispatch every queued event, re-arm the timer.
        Re-entrant calls (a handler answering) only mark more work for the running pump."""
        if self._pumping:
            self._dirty = True
            return
        self._pumping = True
        try:
            while True:
                self._dirty = False
                now = self.loop.time()
                for transport, endpoint in self.endpoints.items():
                    for data, dest in endpoint.datagrams_to_send(now=now):
                        self._send_bytes(transport, data, dest)
                for transport, endpoint in self.endpoints.items():
                    ua = self.uas.get(transport)
                    if ua is None:
                        while (event := endpoint.next_event()) is not None:
                            self._dispatch(transport, event)
                        continue
                    ua._pump(now)  # endpoint events that direct endpoint calls queued
                    while (any_event := ua.next_event()) is not None:
                        if isinstance(any_event, SessionEvent):
                            self._dispatch_session(any_event)
                            self._dirty = True  # the handler may have answered: send it
                        else:
                            self._dispatch(transport, any_event)
                if not self._dirty:
                    break
        finally:
            self._pumping = False
            self._arm_timer()

    def _send_bytes(self, transport: str, data: bytes, dest: Addr) -> None:
        if self.outbound_rewrite is not None:
            data = self.outbound_rewrite(transport, data, dest)
        if trace_log.isEnabledFor(logging.DEBUG):
            _trace("<--- Transmitting to %s --->", data, dest)
        if transport == "TCP":
            assert self.tcp is not None
            if dest not in self.tcp.connections and data.startswith(b"SIP/2.0 "):
                dest = _reconnect_target(data, dest)
            self.tcp.send(data, dest)
        elif self.udp is not None and not self.udp.send(data, dest):
            self._driver("UDP").transport_error(dest, now=self.loop.time())
            self._dirty = True

    def _dispatch_session(self, event: SessionEvent) -> None:
        if self.session_handler is not None:
            self.session_handler(self, event)
        elif isinstance(event, SessionOffered):
            event.session.reject(480, now=self.loop.time())
            self._dirty = True

    def _arm_timer(self) -> None:
        deadline: float | None = None
        for transport in self.endpoints:  # one or two: no list built after every input
            d = self._driver(transport).next_timer()
            if d is not None and (deadline is None or d < deadline):
                deadline = d
        if deadline == self._deadline and (deadline is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = deadline
        if deadline is not None and self._loop is not None and not self._closed:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _dispatch(self, transport: str, event: Event) -> None:
        if type(event) is RequestReceived:  # the usual event: none of the checks below apply
            self._hand_over(transport, event)
            return
        if isinstance(event, ResponseReceived) and self._own_response(transport, event):
            return
        if isinstance(event, TransactionTimedOut | TransportError) and isinstance(
            event.key, ClientTxnKey
        ):
            pending = self._pending.get(event.key)
            if pending is not None:
                if not pending.future.done():
                    status = 408 if isinstance(event, TransactionTimedOut) else 503
                    reason = "Request Timeout" if status == 408 else "Service Unavailable"
                    request = self._request_of(event.key)
                    if request is not None:
                        pending.future.set_result(_local_response(request, status, reason))
                return
        if isinstance(event, TransactionTerminated):
            self._tcp_busy.pop(event.key, None)
            if isinstance(event.key, ClientTxnKey):
                self._acks.pop(event.key, None)
                if event.key in self._own:
                    self._own.discard(event.key)
                    return
        if isinstance(event, TransactionTimedOut | TransportError | ResponseReceived) and (
            event.key in self._own
        ):
            return  # late news about a request() that has its answer already
        if isinstance(event, MessageRejected):
            answered = f"answered {event.status}" if event.status else "dropped"
            log.warning(
                "%s %s: rejected message: %s (%s)",
                transport.lower(),
                hostport(event.source),
                event.reason,
                answered,
            )
        self._hand_over(transport, event)

    def _hand_over(self, transport: str, event: Event) -> None:
        """Give ``event`` to the handler (a request over TCP marks its connection busy);
        without a handler a new request is answered 501."""
        if isinstance(event, RequestReceived) and transport == "TCP":
            self._tcp_busy[event.key] = event.source
        if self.handler is not None:
            self.handler(self, event)
        elif isinstance(event, RequestReceived):
            self.respond(event.key, build_response(event.request, 501, to_tag=self.ids.tag()))

    def _own_response(self, transport: str, event: ResponseReceived) -> bool:
        key = event.key
        response = event.response
        ack = self._acks.get(key)
        if ack is not None:  # a retransmitted 2xx: repeat our ACK (§13.2.2.4)
            self.endpoints[transport].send_stateless(ack[0], ack[1])
            self._dirty = True
            return True
        pending = self._pending.get(key)
        if pending is None:
            return False
        if response.status < 200 or pending.future.done():
            return True
        if key.method == "INVITE" and response.status < 300:
            request = self._request_of(key)
            dest = self._dest_of(key)
            if request is not None and dest is not None:
                ack_req = _ack_for_2xx(request, response)
                self.endpoints[transport].send_stateless(ack_req, dest)
                self._acks[key] = (ack_req, dest)
                self._dirty = True
        pending.future.set_result(response)
        return True

    def _request_of(self, key: ClientTxnKey) -> Request | None:
        return self._sent.get(key, (None, None))[0]

    def _dest_of(self, key: ClientTxnKey) -> Addr | None:
        return self._sent.get(key, (None, None))[1]

    # ------------------------------------------------------------------ TU actions

    def _endpoint(self, transport: str) -> Endpoint:
        endpoint = self.endpoints.get(transport.upper())
        if endpoint is None:
            raise ValueError(f"transport {transport} is not enabled")
        return endpoint

    def send_request(self, request: Request, dest: Addr, *, transport: str = "UDP") -> ClientTxnKey:
        """Start a client transaction; its events go to the handler."""
        endpoint = self._endpoint(transport)
        key = endpoint.send_request(request, dest, now=self.loop.time())
        if transport.upper() == "TCP":
            self._tcp_busy[key] = dest
        self._pump()
        return key

    def cancel(self, key: ClientTxnKey) -> ClientTxnKey | None:
        """CANCEL the INVITE of client transaction ``key`` (§9.1); see ``Endpoint.cancel``."""
        for endpoint in self.endpoints.values():
            if endpoint.client_state(key) is not None:
                cancel_key = endpoint.cancel(key, now=self.loop.time())
                self._pump()
                return cancel_key
        return None

    async def request(
        self,
        request: Request,
        dest: Addr,
        *,
        transport: str = "UDP",
        auth: ClientAuthState | tuple[str, str] | None = None,
    ) -> Response:
        """Send ``request`` to ``dest`` and return its final response.

        With ``auth`` (a username/password pair or a :class:`ClientAuthState`), a 401/407
        is answered by resending with credentials (CSeq + 1, new branch), up to
        ``max_auth_attempts`` times; a challenge that refuses the credentials we sent is
        returned as is. A timeout gives a local 408, a transport failure a local 503. A 2xx
        to INVITE is ACKed (and the ACK repeated for retransmitted 2xx).
        """
        state = ClientAuthState(*auth) if isinstance(auth, tuple) else auth
        current = request
        attempts = 0
        while True:
            template = current.copy()
            response = await self._request_once(current, dest, transport)
            if response.status not in (401, 407) or state is None:
                return response
            if attempts >= self.config.max_auth_attempts:
                return response
            retry = self._authenticated(template, response, state)
            if retry is None:
                return response
            attempts += 1
            current = retry

    async def _request_once(self, request: Request, dest: Addr, transport: str) -> Response:
        endpoint = self._endpoint(transport)
        future: asyncio.Future[Response] = self.loop.create_future()
        key = endpoint.send_request(request, dest, now=self.loop.time())
        self._sent[key] = (request, dest)
        self._pending[key] = _Pending(future, transport.upper())
        self._own.add(key)
        if transport.upper() == "TCP":
            self._tcp_busy[key] = dest
        try:
            self._pump()
            return await future
        finally:
            self._pending.pop(key, None)
            self._sent.pop(key, None)

    def _authenticated(
        self, template: Request, response: Response, state: ClientAuthState
    ) -> Request | None:
        """The retry of ``template`` answering the challenges in ``response`` (§22.2)."""
        status = response.status
        cred_name = credentials_header(status)
        sent = template.headers.get_all(cred_name)
        realms: list[str] = []
        try:
            for value in response.headers.get_all(challenge_header(status)):
                challenge = parse_challenge(value)
                if not state.learn(challenge, sent=sent):
                    return None
                realms.append(challenge.realm)
        except AuthError as exc:
            log.warning("cannot answer %d challenge: %s", status, exc)
            return None
        if not realms:
            return None
        retry = template.copy()
        if "via" in retry.headers:  # a new transaction: the top Via gets a new branch
            top = retry.top_via
            params = tuple(p for p in top.params if p[0].lower() != "branch")
            retry.headers.remove_first("via")
            retry.headers.insert_first("Via", str(Via(top.transport, top.host, top.port, params)))
        kept = [v for v in sent if _realm(v) not in realms]
        retry.headers.remove(cred_name)
        for value in kept:
            retry.headers.add(cred_name, value)
        for realm in realms:
            retry.headers.add(
                cred_name,
                state.authorization(
                    realm,
                    method=retry.method,
                    uri=retry.uri_text,
                    cnonce=format(self._rng.getrandbits(64), "016x"),
                    body=retry.body,
                ),
            )
        retry.headers.set("CSeq", f"{template.cseq.number + 1} {template.method}")
        return retry

    def respond(self, key: ServerTxnKey, response: Response, *, forget: bool = False) -> None:
        """Send ``response`` through server transaction ``key`` (on whichever transport
        holds it). ``forget``: the caller does not need the transaction to absorb
        retransmissions (a digest challenge): a final response to a non-INVITE request
        then ends its transaction at once instead of 64*T1 later (RFC 3261 §8.2.7; see
        ``Endpoint.send_response``)."""
        now = self.loop.time()
        for endpoint in self.endpoints.values():
            if endpoint.server_state(key) is not None:
                endpoint.send_response(key, response, now=now, forget=forget)
                self._pump()
                return
        endpoint = next(iter(self.endpoints.values()))
        endpoint.send_response(key, response, now=now)  # raises UnknownTransaction

    def reply(
        self,
        event: RequestReceived,
        status: int,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        """Build the response to ``event``'s request (a new To tag unless 100) and send it."""
        tag = None if status == 100 else self.ids.tag()
        response = build_response(
            event.request, status, reason, to_tag=tag, headers=headers, body=body
        )
        self.respond(event.key, response)
        return response

    def send_stateless(
        self, message: Message, dest: Addr | None = None, *, transport: str = "UDP"
    ) -> None:
        """Send outside any transaction (an ACK for a 2xx, a retransmitted 2xx ...)."""
        self._endpoint(transport).send_stateless(message, dest)
        self._pump()


def _realm(credentials: str) -> str | None:
    try:
        return parse_credentials(credentials).realm
    except AuthError:
        return None


def _trace(head: str, data: bytes, addr: Addr) -> None:
    """One ``sip set debug`` record: chan_sip's banner, then the message as it is on the wire."""
    text = data.decode("utf-8", "replace")
    trace_log.debug(
        "%s\n%s<------------->", head % hostport(addr), text, extra={"peer_ip": addr[0]}
    )
