"""The sans-I/O SIP endpoint: transaction matching, Via handling and the TU event queue.

RFC 3261 §17.1.3 (matching responses to client transactions), §17.2.3 (matching requests
to server transactions, with the RFC 2543 fallback for branches without ``z9hG4bK``),
§8.2.2.2 (merged requests → 482), §9.1/§9.2 (building and matching CANCEL), §13.3.1.4
(the ACK for a 2xx goes to the TU), §18.2.1/§18.2.2 and RFC 3581 (``received``/``rport``
and where responses go), §11.2 (OPTIONS answered out of dialog).

Contract (DESIGN.md §2): ``receive(data, addr, *, now)``; ``next_event()``;
``datagrams_to_send(*, now)``; ``next_timer()``; ``handle_timer(*, now)``; and the TU's
actions ``send_request``, ``send_response``, ``send_stateless``, ``cancel``,
``transport_error``. Nothing here reads a clock, opens a socket or raises on bad input.

The glue (``pypbx/transport``) drives it like this, re-arming one timer after every input::

    endpoint.receive(data, addr, now=loop.time())
    for payload, dest in endpoint.datagrams_to_send(now=loop.time()):
        sock.sendto(payload, dest)          # on OSError: endpoint.transport_error(dest, ...)
    while (event := endpoint.next_event()) is not None:
        tu.handle(event)
    deadline = endpoint.next_timer()        # loop.call_at(deadline, on_timer) if not None
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from pypbx.errors import PbxError
from pypbx.sip.abnf import ParseError
from pypbx.sip.events import (
    AckReceived,
    Addr,
    CancelReceived,
    ClientTxnKey,
    Event,
    MessageRejected,
    RequestReceived,
    ResponseDropped,
    ResponseReceived,
    ServerTxnKey,
    TransactionTerminated,
    TransactionTimedOut,
    TransportError,
)
from pypbx.sip.headers import (
    KEYS,
    Headers,
    Via,
    parse_contact_list,
    parse_name_addr_list,
    parse_via_list,
)
from pypbx.sip.ids import MAGIC_COOKIE, IdFactory
from pypbx.sip.message import Message, Request, Response, build_response
from pypbx.sip.parse import parse_message
from pypbx.sip.transaction import (
    TIMER_INPUT,
    Action,
    Input,
    Kind,
    State,
    TimerConfig,
    Transaction,
    build_ack,
    build_cancel,
)

__all__ = [
    "DEFAULT_ALLOW",
    "Endpoint",
    "EndpointConfig",
    "UnknownTransaction",
    "response_destination",
    "server_key",
]

DEFAULT_ALLOW = ("INVITE", "ACK", "CANCEL", "OPTIONS", "BYE", "INFO", "REGISTER", "NOTIFY")
_RELIABLE = frozenset(("TCP", "TLS", "SCTP", "WS", "WSS"))
_DEFAULT_PORT = 5060


class UnknownTransaction(PbxError):
    """The TU named a transaction the endpoint does not hold (it ended, or never was)."""


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """How an endpoint behaves.

    ``host``/``port`` go into the sent-by of the Via we add (§18.1.1); ``transport`` names
    the transport this endpoint serves (``UDP`` retransmits, ``TCP``/``TLS`` do not).
    ``max_transactions`` bounds the live transactions: new requests beyond it get 503.
    ``auto_options`` answers out-of-dialog OPTIONS with 200 (Allow, Accept, Supported,
    Server); ``auto_trying`` sends 100 Trying for every new INVITE at once (§17.2.1);
    ``auto_487`` answers a cancelled INVITE with 487 itself (§9.2) instead of leaving it to
    the TU.
    """

    host: str = "127.0.0.1"
    port: int = _DEFAULT_PORT
    transport: str = "UDP"
    timers: TimerConfig = field(default_factory=TimerConfig)
    max_transactions: int = 10_000
    auto_options: bool = True
    auto_trying: bool = True
    auto_487: bool = False
    user_agent: str = "pypbx"
    allow: tuple[str, ...] = DEFAULT_ALLOW
    accept: tuple[str, ...] = ("application/sdp",)
    supported: tuple[str, ...] = ()

    @property
    def reliable(self) -> bool:
        """True for connection-oriented transports (no retransmissions, §17.1.1.2)."""
        return self.transport.upper() in _RELIABLE


def _is_rfc3261_branch(branch: str | None) -> bool:
    return branch is not None and branch.startswith(MAGIC_COOKIE)


def server_key(request: Request, method: str | None = None) -> ServerTxnKey:
    """The §17.2.3 key of ``request`` (``method`` overrides, e.g. INVITE for a CANCEL).

    An ACK maps to the INVITE it acknowledges. Without the magic cookie the RFC 2543 fields
    (Request-URI, From tag, Call-ID, CSeq number, top Via) identify the transaction.
    """
    via = request.top_via
    if method is None:
        method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    host = via.host.lower()
    if _is_rfc3261_branch(branch):
        assert branch is not None
        return ServerTxnKey(branch, host, via.port, method)
    legacy = (
        request.uri_text,
        request.from_.tag or "",
        request.call_id,
        str(request.cseq.number),
        str(via).lower(),
    )
    return ServerTxnKey("", host, via.port, method, legacy)


def response_destination(via: Via, source: Addr, *, reliable: bool) -> Addr:
    """Where a response goes (§18.2.2, RFC 3581 §4): over the connection it came on for a
    reliable transport; else to ``maddr``, else to ``received`` with ``rport`` (or the
    sent-by port), else to the sent-by."""
    if reliable:
        return source
    default = _DEFAULT_PORT
    if via.maddr:
        return via.maddr, via.port or default
    rport = via.rport
    port = rport if rport is not None else (via.port or default)
    if via.received:
        return via.received, port
    return via.host.strip("[]"), port


def _stamp_via(request: Request, source: Addr) -> None:
    """§18.2.1 / RFC 3581 §4: add ``received`` when the sent-by host is not the source
    address (always when ``rport`` is asked for), fill in ``rport``."""
    headers = request.headers
    vias: tuple[Via, ...] = headers.parsed("via", parse_via_list)
    if not vias:
        raise ParseError("missing Via header")
    via = vias[0]
    host, port = source
    rport = via.has_rport
    if not rport and via.host.strip("[]").lower() == host.lower():
        return
    # the first rport and received keep their places; missing ones are appended, rport first
    params: list[tuple[str, str | None]] = []
    rport_at = received_at = -1
    for name, value in via.params:
        if name == "branch":
            params.append((name, value))
            continue
        lname = name.lower()
        if lname == "rport" and rport and rport_at < 0:
            rport_at = len(params)
            value = str(port)
        elif lname == "received" and received_at < 0:
            received_at = len(params)
            value = host
        params.append((name, value))
    if rport and rport_at < 0:
        params.append(("rport", str(port)))
    if received_at < 0:
        params.append(("received", host))
    new = Via(via.transport, via.host, via.port, tuple(params), via.protocol)
    headers.replace_first("via", str(new))
    # the rewritten list is known: spare the next reader a parse of every Via
    headers.seed_view("via", (new, *vias[1:]))


def _salvage_headers(data: bytes) -> Headers | None:
    """The Via/From/To/Call-ID/CSeq lines of an unparsable request, to answer it (§8.2.6:
    a 400 still copies them). ``None`` if there is not enough to build a response."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    if not lines or lines[0].startswith("SIP/"):
        return None
    wanted = ("via", "from", "to", "call-id", "cseq")
    found: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        key = KEYS.get(name.strip().lower())
        if key in wanted and "\r" not in value:
            found.setdefault(key, []).append(value.strip())
    if any(k not in found for k in wanted):
        return None
    out = Headers()
    for key in wanted:
        for value in found[key] if key == "via" else found[key][:1]:
            out.add(key, value)
    return out


class Endpoint:
    """The transaction layer and its transport-facing side, for one transport.

    ``ids`` makes branches and tags (inject a seeded factory in tests).
    """

    def __init__(self, ids: IdFactory, config: EndpointConfig | None = None) -> None:
        self.config = config or EndpointConfig()
        self.ids = ids
        self._clients: dict[ClientTxnKey, Transaction] = {}
        self._servers: dict[ServerTxnKey, Transaction] = {}
        self._merge: dict[tuple[str, ...], ServerTxnKey] = {}
        self._events: deque[Event] = deque()
        self._out: list[tuple[bytes, Addr]] = []
        # (deadline, tie-breaker, transaction); entries go stale when a transaction's
        # deadlines change and are skipped lazily
        self._timers: list[tuple[float, int, Transaction]] = []
        self._seq = 0
        self._options_headers: tuple[tuple[str, str], ...] | None = None  # config is frozen

    # ------------------------------------------------------------------ inspection

    def __len__(self) -> int:
        """Number of live transactions."""
        return len(self._clients) + len(self._servers)

    def client_state(self, key: ClientTxnKey) -> State | None:
        """State of a live client transaction (``None`` once it is gone)."""
        txn = self._clients.get(key)
        return txn.state if txn is not None else None

    def server_state(self, key: ServerTxnKey) -> State | None:
        """State of a live server transaction (``None`` once it is gone)."""
        txn = self._servers.get(key)
        return txn.state if txn is not None else None

    def server_request(self, key: ServerTxnKey) -> Request:
        """The request that created server transaction ``key``."""
        txn = self._servers.get(key)
        if txn is None or txn.released:
            raise UnknownTransaction(str(key))
        return txn.request

    # ------------------------------------------------------------------ sans-I/O contract

    def next_event(self) -> Event | None:
        """The oldest queued event, or ``None``."""
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        """Everything queued for the wire since the last call, in order."""
        out, self._out = self._out, []
        return out

    def next_timer(self) -> float | None:
        """The earliest deadline of any transaction."""
        heap = self._timers
        while heap:
            deadline, _, txn = heap[0]
            if not txn.terminated and txn.next_deadline() == deadline:
                return deadline
            heapq.heappop(heap)  # stale: the transaction moved on or ended
        return None

    def handle_timer(self, *, now: float) -> None:
        """Fire every timer due at ``now`` (in deadline order)."""
        heap = self._timers
        while heap and heap[0][0] <= now:
            _, _, txn = heapq.heappop(heap)
            if not txn.terminated and (timer := txn.due_timer(now)) is not None:
                self._step(txn, TIMER_INPUT[timer], now)

    def receive(self, data: bytes, addr: Addr, *, now: float) -> None:
        """Take one datagram (or one framed stream message) from ``addr``."""
        if not data or (data[:1] in b"\r\n" and not data.strip(b"\r\n")):
            return  # keep-alive (RFC 5626 §3.5.1)
        try:
            msg = parse_message(data)
            self._check(msg)
        except ParseError as exc:
            self._reject_unparsable(data, addr, exc)
            return
        if isinstance(msg, Request):
            self._receive_request(msg, addr, now)
        else:
            self._receive_response(msg, addr, now)

    # ------------------------------------------------------------------ TU actions

    def send_request(self, request: Request, dest: Addr, *, now: float) -> ClientTxnKey:
        """Start a client transaction for ``request`` towards ``dest`` (the next hop).

        A Via with a fresh ``z9hG4bK`` branch is added if the request has none (a branch
        is added to a Via without one). ACK is not a transaction: use ``send_stateless``.
        """
        if request.method == "ACK":
            raise ValueError("ACK is sent with send_stateless, not in a transaction")
        self._ensure_via(request)
        key = ClientTxnKey(request.top_via.branch or "", request.method)
        if key in self._clients:
            raise ValueError(f"a client transaction {key} is already running")
        kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        txn = Transaction(
            kind,
            key,
            request,
            dest,
            now=now,
            config=self.config.timers,
            reliable=self.config.reliable,
        )
        self._clients[key] = txn
        self._schedule(txn)
        self._emit(request, dest)
        return key

    def send_response(
        self, key: ServerTxnKey, response: Response, *, now: float, forget: bool = False
    ) -> None:
        """Send the TU's ``response`` through server transaction ``key``.

        ``forget``: the TU answers as a stateless UAS would (RFC 3261 §8.2.7: "issuing
        unauthenticated challenges" is its example), so a final response to a non-INVITE
        request ends the transaction at once instead of holding it for Timer J (64*T1 on
        UDP, §17.2.2). Timer J only exists to absorb retransmissions of the request; without
        it a retransmitted request makes a new transaction and the TU answers it again --
        for a digest challenge, a fresh 401, exactly what a stateless proxy or registrar
        sends (§16.11, §22.1). An INVITE transaction keeps its timers whatever ``forget``
        says: its ACK must still be absorbed (§17.2.1).

        Raises ``UnknownTransaction`` if it is gone and ``IllegalTransition`` if its state
        takes no response (a second final response, say).
        """
        txn = self._servers.get(key)
        if txn is None:
            raise UnknownTransaction(str(key))
        self._respond(txn, response, now, forget=forget)

    def send_stateless(self, message: Message, dest: Addr | None = None) -> None:
        """Send outside any transaction: the ACK for a 2xx (§13.2.2.4), a 2xx retransmitted
        by the UAS core, a stateless response. A request gets a Via if it has none; a
        response without ``dest`` goes where its top Via says (§18.2.2)."""
        if isinstance(message, Request):
            self._ensure_via(message)
            if dest is None:
                raise ValueError("a request needs a destination")
            self._emit(message, dest)
            return
        if dest is None:
            dest = response_destination(message.top_via, ("", 0), reliable=False)
        self._emit(message, dest)

    def cancel(self, key: ClientTxnKey, *, now: float) -> ClientTxnKey | None:
        """Cancel the INVITE of client transaction ``key`` (§9.1).

        The CANCEL goes out once a provisional response was received; before that it is
        held and sent with the first 1xx. Returns the CANCEL's transaction key, or ``None``
        if there is nothing left to cancel (final response received, transaction gone).
        """
        txn = self._clients.get(key)
        if txn is None or txn.kind is not Kind.INVITE_CLIENT:
            return None
        cancel_key = ClientTxnKey(key.branch, "CANCEL")
        if txn.state is State.PROCEEDING:
            if cancel_key not in self._clients:
                self.send_request(build_cancel(txn.request), txn.dest, now=now)
            return cancel_key
        if txn.state is State.CALLING:
            txn.cancel_pending = True
            return cancel_key
        return None

    def transport_error(self, target: ClientTxnKey | ServerTxnKey | Addr, *, now: float) -> None:
        """The glue could not send: to one transaction's messages (a key) or to an address
        (every transaction whose messages go there)."""
        txns: list[Transaction]
        if isinstance(target, ClientTxnKey):
            txns = [t] if (t := self._clients.get(target)) else []
        elif isinstance(target, ServerTxnKey):
            txns = [t] if (t := self._servers.get(target)) else []
        else:
            txns = [
                t for t in (*self._clients.values(), *self._servers.values()) if t.dest == target
            ]
        for txn in txns:
            # a server transaction that has sent nothing yet (Trying) cannot fail to send
            if not txn.terminated and txn.accepts(Input.TRANSPORT_ERROR):
                self._step(txn, Input.TRANSPORT_ERROR, now)

    # ------------------------------------------------------------------ internals

    def _emit(self, message: Message, dest: Addr) -> None:
        self._out.append((message.serialize(), dest))

    def _ensure_via(self, request: Request) -> None:
        cfg = self.config
        if "via" not in request.headers:
            via = Via(
                cfg.transport.upper(),
                cfg.host,
                cfg.port,
                (("rport", None), ("branch", self.ids.branch())),
            )
            request.headers.insert_first("Via", str(via))
            return
        top = request.top_via
        if top.branch is None:
            request.headers.remove_first("via")
            request.headers.insert_first("via", str(top.with_param("branch", self.ids.branch())))

    @staticmethod
    def _check(msg: Message) -> None:
        """Force the typed views the transaction layer relies on (400 if malformed)."""
        headers = msg.headers
        _ = msg.top_via
        _ = msg.from_
        _ = msg.to
        _ = msg.call_id
        headers.parsed("contact", parse_contact_list)  # without the list copy of .contact
        headers.parsed("record-route", parse_name_addr_list)
        if isinstance(msg, Request):
            _ = msg.uri

    def _reject_unparsable(self, data: bytes, addr: Addr, exc: ParseError) -> None:
        headers = _salvage_headers(data)
        status: int | None = None
        if headers is not None:
            status = exc.status
            self._out.append((Response(status, None, headers).serialize(), addr))
        self._events.append(MessageRejected(exc.reason, addr, status))

    def _step(
        self,
        txn: Transaction,
        event: Input,
        now: float,
        message: Message | None = None,
        *,
        forget: bool = False,
    ) -> None:
        response = message if isinstance(message, Response) else None
        actions = txn.step(event, now=now, response=response)
        for action in actions:
            self._act(txn, action, message)
        if txn.terminated:
            self._forget(txn)
            return
        if txn.kind is Kind.NON_INVITE_SERVER and txn.state is State.COMPLETED and not txn.released:
            # the final response is on its way: keep only its bytes for retransmissions
            # (or, for a stateless answer, end now: Timer J made due at once)
            if forget:
                txn.end_wait(now)
            txn.release()
        # timers of zero duration (D/I/J/K on reliable transports) fire at once
        if (timer := txn.due_timer(now)) is not None:
            self._step(txn, TIMER_INPUT[timer], now)
        else:
            self._schedule(txn)

    def _schedule(self, txn: Transaction) -> None:
        deadline = txn.next_deadline()
        if deadline is not None:
            self._seq += 1
            heapq.heappush(self._timers, (deadline, self._seq, txn))

    def _act(self, txn: Transaction, action: Action, message: Message | None) -> None:
        if action is Action.SEND_REQUEST:
            self._emit(txn.request, txn.dest)
        elif action is Action.SEND_ACK:
            assert isinstance(message, Response)
            self._emit(build_ack(txn.request, message), txn.dest)
        elif action is Action.PASS_RESPONSE:
            assert isinstance(message, Response)
            assert isinstance(txn.key, ClientTxnKey)
            self._events.append(ResponseReceived(message, txn.key))
        elif action is Action.SEND_RESPONSE:
            if txn.last_response is not None:  # the step stored the TU's response there
                txn.wire = data = txn.last_response.serialize()
                self._out.append((data, txn.dest))
        elif action is Action.RESEND_RESPONSE:
            if txn.wire is not None:  # serialized once, when first sent
                self._out.append((txn.wire, txn.dest))
        elif action is Action.PASS_ACK:
            assert isinstance(message, Request)
            assert isinstance(txn.key, ServerTxnKey)
            self._events.append(AckReceived(message, txn.dest, txn.key))
        elif action is Action.REPORT_TIMEOUT:
            self._events.append(TransactionTimedOut(txn.key))
        elif action is Action.REPORT_TRANSPORT_ERROR:
            self._events.append(TransportError(txn.key, txn.dest))

    def _forget(self, txn: Transaction) -> None:
        if isinstance(txn.key, ClientTxnKey):
            self._clients.pop(txn.key, None)
        else:
            self._servers.pop(txn.key, None)
            if txn.merge_id is not None and self._merge.get(txn.merge_id) == txn.key:
                del self._merge[txn.merge_id]
        self._events.append(TransactionTerminated(txn.key))

    def _respond(
        self, txn: Transaction, response: Response, now: float, *, forget: bool = False
    ) -> None:
        invite = txn.kind is Kind.INVITE_SERVER
        if response.status < 200:
            event = Input.TU_1XX
        elif response.status < 300 and invite:
            event = Input.TU_2XX
        else:
            event = Input.TU_FINAL
        self._step(txn, event, now, response, forget=forget)

    def _receive_response(self, response: Response, addr: Addr, now: float) -> None:
        key = ClientTxnKey(response.top_via.branch or "", response.cseq.method)
        txn = self._clients.get(key)
        if txn is None:
            self._events.append(ResponseDropped(response, addr))
            return
        if response.status < 200:
            event = Input.RESP_1XX
        elif response.status < 300 and txn.kind is Kind.INVITE_CLIENT:
            event = Input.RESP_2XX
        else:
            event = Input.RESP_FINAL
        self._step(txn, event, now, response)
        if txn.cancel_pending and not txn.terminated:
            if txn.state is State.PROCEEDING:
                txn.cancel_pending = False
                self.send_request(build_cancel(txn.request), txn.dest, now=now)
            elif txn.state is not State.CALLING:
                txn.cancel_pending = False

    def _new_server(
        self, request: Request, key: ServerTxnKey, addr: Addr, now: float
    ) -> Transaction:
        kind = Kind.INVITE_SERVER if request.method == "INVITE" else Kind.NON_INVITE_SERVER
        dest = response_destination(request.top_via, addr, reliable=self.config.reliable)
        txn = Transaction(
            kind,
            key,
            request,
            dest,
            now=now,
            config=self.config.timers,
            reliable=self.config.reliable,
        )
        self._servers[key] = txn
        self._schedule(txn)
        return txn

    def _stateless_reply(
        self,
        request: Request,
        status: int,
        addr: Addr,
        reason: str,
        extra: Iterable[tuple[str, str]] = (),
    ) -> None:
        resp = build_response(request, status, to_tag=self.ids.tag(), headers=extra)
        dest = response_destination(request.top_via, addr, reliable=self.config.reliable)
        self._emit(resp, dest)
        self._events.append(MessageRejected(reason, addr, status))

    def _receive_request(self, request: Request, addr: Addr, now: float) -> None:
        key = server_key(request)
        _stamp_via(request, addr)
        method = request.method
        if method == "ACK":
            txn = self._servers.get(key)
            if txn is None or txn.kind is not Kind.INVITE_SERVER:
                self._events.append(AckReceived(request, addr))
            else:
                self._step(txn, Input.ACK, now, request)
            return
        txn = self._servers.get(key)
        if txn is not None:
            self._step(txn, Input.REQUEST, now, request)
            return
        if len(self) >= self.config.max_transactions:
            self._stateless_reply(
                request, 503, addr, "transaction limit reached", (("Retry-After", "5"),)
            )
            return
        if method == "CANCEL":
            self._receive_cancel(request, key, addr, now)
            return
        merge_id: tuple[str, ...] | None = None
        out_of_dialog = request.to.tag is None
        if out_of_dialog:
            cseq = request.cseq
            merge_id = (request.from_.tag or "", request.call_id, str(cseq.number), cseq.method)
            other = self._merge.get(merge_id)
            if other is not None and other != key and other in self._servers:
                txn = self._new_server(request, key, addr, now)
                self._respond(txn, build_response(request, 482, to_tag=self.ids.tag()), now)
                self._events.append(MessageRejected("merged request (§8.2.2.2)", addr, 482))
                return
        txn = self._new_server(request, key, addr, now)
        if merge_id is not None:
            txn.merge_id = merge_id
            self._merge[merge_id] = key
        if method == "INVITE" and self.config.auto_trying:
            self._respond(txn, build_response(request, 100), now)
        if method == "OPTIONS" and out_of_dialog and self.config.auto_options:
            self._respond(txn, self.options_response(request), now)
            return
        self._events.append(RequestReceived(request, key, addr))

    def options_response(self, request: Request) -> Response:
        """The 200 OK to an out-of-dialog OPTIONS (§11.2): what we allow, accept and
        support, and who we are."""
        extra = self._options_headers
        if extra is None:
            cfg = self.config
            extra = self._options_headers = (
                ("Allow", ", ".join(cfg.allow)),
                ("Accept", ", ".join(cfg.accept)),
                ("Supported", ", ".join(cfg.supported)),
                ("Server", cfg.user_agent),
            )
        return build_response(request, 200, to_tag=self.ids.tag(), headers=extra)

    def _receive_cancel(self, request: Request, key: ServerTxnKey, addr: Addr, now: float) -> None:
        invite_key = server_key(request, "INVITE")
        invite = self._servers.get(invite_key)
        txn = self._new_server(request, key, addr, now)
        if invite is None or invite.kind is not Kind.INVITE_SERVER:
            self._respond(txn, build_response(request, 481, to_tag=self.ids.tag()), now)
            self._events.append(MessageRejected("CANCEL matches no INVITE (§9.2)", addr, 481))
            return
        last = invite.last_response
        tag = last.to.tag if last is not None and last.to.tag else None
        tag = tag or self.ids.tag()
        self._respond(txn, build_response(request, 200, to_tag=tag), now)
        if invite.state is not State.PROCEEDING:
            return  # a final response went out already: the CANCEL has no effect
        self._events.append(CancelReceived(request, invite_key, key, addr))
        if self.config.auto_487:
            self._respond(invite, build_response(invite.request, 487, to_tag=tag), now)
