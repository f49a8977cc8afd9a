"""The four transaction state machines of RFC 3261 §17, as tables, with timers A–M.

§17.1.1 INVITE client, §17.1.2 non-INVITE client, §17.2.1 INVITE server, §17.2.2
non-INVITE server; the Accepted state and timers L/M of RFC 6026 (a 2xx ends the INVITE
transaction in Accepted, which absorbs retransmissions instead of losing them). Timer
values follow §17.1.1.2 and the table of Appendix A.

A :class:`Transaction` knows its state and its timers as absolute deadlines; it does no
I/O. ``step(input, now)`` looks ``(state, input)`` up in the kind's table, moves to the next
state, re-arms timers, and returns the :class:`Action` values the endpoint must carry out
(send, pass up, report). A pair that is not in the table raises :class:`IllegalTransition`
and leaves the state as it was. ``build_ack`` and ``build_cancel`` make the two requests
the transaction layer builds itself (§17.1.1.3, §9.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum, StrEnum

from pypbx.errors import PbxError
from pypbx.sip.events import Addr, ClientTxnKey, ServerTxnKey
from pypbx.sip.headers import Headers
from pypbx.sip.message import Request, Response

__all__ = [
    "TABLES",
    "Action",
    "IllegalTransition",
    "Input",
    "Kind",
    "State",
    "Timer",
    "TimerConfig",
    "Transaction",
    "Transition",
    "build_ack",
    "build_cancel",
]


class IllegalTransition(PbxError):
    """An input that the transaction's state does not accept (the state is unchanged)."""


class Kind(Enum):
    """Which of the four §17 machines."""

    INVITE_CLIENT = "ICT"
    NON_INVITE_CLIENT = "NICT"
    INVITE_SERVER = "IST"
    NON_INVITE_SERVER = "NIST"

    @property
    def is_client(self) -> bool:
        """True for the two client machines."""
        return self in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT)


class State(StrEnum):
    """Transaction states, named as in §17 (ACCEPTED from RFC 6026)."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Timer(StrEnum):
    """Timers A–K of §17 and L/M of RFC 6026."""

    A = "A"  # ICT request retransmit (unreliable only)
    B = "B"  # ICT transaction timeout
    D = "D"  # ICT wait time for response retransmits
    E = "E"  # NICT request retransmit (unreliable only)
    F = "F"  # NICT transaction timeout
    G = "G"  # IST response retransmit (unreliable only)
    H = "H"  # IST wait time for ACK receipt
    I = "I"  # noqa: E741  (IST wait time for ACK retransmits)
    J = "J"  # NIST wait time for request retransmits
    K = "K"  # NICT wait time for response retransmits
    L = "L"  # IST wait time for accepted INVITE request retransmits (RFC 6026)
    M = "M"  # ICT wait time for retransmission of 2xx to INVITE (RFC 6026)


class Input(StrEnum):
    """What can happen to a transaction: network input, TU requests, timers, errors."""

    # client side, from the network
    RESP_1XX = "1xx"
    RESP_2XX = "2xx"
    RESP_FINAL = "300-699"  # for non-INVITE clients: any final (200-699)
    # server side, from the network
    REQUEST = "request retransmission"
    ACK = "ACK"
    # server side, from the TU
    TU_1XX = "TU 1xx"
    TU_2XX = "TU 2xx"
    TU_FINAL = "TU 300-699"  # for non-INVITE servers: any final (200-699)
    TRANSPORT_ERROR = "transport error"
    TIMER_A = "timer A"
    TIMER_B = "timer B"
    TIMER_D = "timer D"
    TIMER_E = "timer E"
    TIMER_F = "timer F"
    TIMER_G = "timer G"
    TIMER_H = "timer H"
    TIMER_I = "timer I"
    TIMER_J = "timer J"
    TIMER_K = "timer K"
    TIMER_L = "timer L"
    TIMER_M = "timer M"


TIMER_INPUT: dict[Timer, Input] = {t: Input(f"timer {t.value}") for t in Timer}


class Action(Enum):
    """What the endpoint does after a step."""

    SEND_REQUEST = "send the request"  # client: (re)transmit
    SEND_ACK = "send the ACK for a non-2xx final"  # ICT
    PASS_RESPONSE = "pass the response to the TU"  # clients
    SEND_RESPONSE = "send the TU's response"  # servers (it becomes the last response)
    RESEND_RESPONSE = "retransmit the last response"  # servers
    PASS_ACK = "pass the ACK to the TU"  # IST in Accepted
    REPORT_TIMEOUT = "tell the TU the transaction timed out"
    REPORT_TRANSPORT_ERROR = "tell the TU the transport failed"


@dataclass(frozen=True, slots=True)
class Transition:
    """One table row: the next state, the actions, and the timer changes.

    ``start`` timers are armed with their initial value, ``stop`` timers are cancelled,
    ``backoff`` is re-armed with its interval doubled (capped at T2 for E and G, §17.1.2.2,
    §17.2.1; uncapped for A, §17.1.1.2), ``backoff_to_t2`` re-arms it at T2 (E in Proceeding).
    Entering Terminated cancels every timer.
    """

    next: State
    actions: tuple[Action, ...] = ()
    start: tuple[Timer, ...] = ()
    stop: tuple[Timer, ...] = ()
    backoff: Timer | None = None
    backoff_to_t2: bool = False


def _t(
    nxt: State,
    *actions: Action,
    start: tuple[Timer, ...] = (),
    stop: tuple[Timer, ...] = (),
    backoff: Timer | None = None,
    t2: bool = False,
) -> Transition:
    return Transition(nxt, actions, start, stop, backoff, t2)


S, In, A, T = State, Input, Action, Timer

_ICT: dict[tuple[State, Input], Transition] = {
    (S.CALLING, In.TIMER_A): _t(S.CALLING, A.SEND_REQUEST, backoff=T.A),
    (S.CALLING, In.TIMER_B): _t(S.TERMINATED, A.REPORT_TIMEOUT),
    (S.CALLING, In.RESP_1XX): _t(S.PROCEEDING, A.PASS_RESPONSE, stop=(T.A, T.B)),
    (S.PROCEEDING, In.RESP_1XX): _t(S.PROCEEDING, A.PASS_RESPONSE),
    (S.CALLING, In.RESP_2XX): _t(S.ACCEPTED, A.PASS_RESPONSE, start=(T.M,), stop=(T.A, T.B)),
    (S.PROCEEDING, In.RESP_2XX): _t(S.ACCEPTED, A.PASS_RESPONSE, start=(T.M,)),
    (S.CALLING, In.RESP_FINAL): _t(
        S.COMPLETED, A.PASS_RESPONSE, A.SEND_ACK, start=(T.D,), stop=(T.A, T.B)
    ),
    (S.PROCEEDING, In.RESP_FINAL): _t(S.COMPLETED, A.PASS_RESPONSE, A.SEND_ACK, start=(T.D,)),
    (S.COMPLETED, In.RESP_FINAL): _t(S.COMPLETED, A.SEND_ACK),
    (S.COMPLETED, In.RESP_1XX): _t(S.COMPLETED),  # late provisional: absorbed
    (S.COMPLETED, In.RESP_2XX): _t(S.COMPLETED),  # a 2xx after a non-2xx: absorbed
    (S.COMPLETED, In.TIMER_D): _t(S.TERMINATED),
    (S.ACCEPTED, In.RESP_2XX): _t(S.ACCEPTED, A.PASS_RESPONSE),  # TU re-ACKs (RFC 6026 §8.4)
    (S.ACCEPTED, In.RESP_1XX): _t(S.ACCEPTED),
    (S.ACCEPTED, In.RESP_FINAL): _t(S.ACCEPTED),
    (S.ACCEPTED, In.TIMER_M): _t(S.TERMINATED),
    (S.CALLING, In.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (S.PROCEEDING, In.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (S.COMPLETED, In.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (S.ACCEPTED, In.TRANSPORT_ERROR): _t(S.ACCEPTED, A.REPORT_TRANSPORT_ERROR),
}

_NICT: dict[tuple[State, Input], Transition] = {
    (S.TRYING, In.TIMER_E): _t(S.TRYING, A.SEND_REQUEST, backoff=T.E),
    (S.PROCEEDING, In.TIMER_E): _t(S.PROCEEDING, A.SEND_REQUEST, backoff=T.E, t2=True),
    (S.TRYING, In.TIMER_F): _t(S.TERMINATED, A.REPORT_TIMEOUT),
    (S.PROCEEDING, In.TIMER_F): _t(S.TERMINATED, A.REPORT_TIMEOUT),
    (S.TRYING, In.RESP_1XX): _t(S.PROCEEDING, A.PASS_RESPONSE),
    (S.PROCEEDING, In.RESP_1XX): _t(S.PROCEEDING, A.PASS_RESPONSE),
    (S.TRYING, In.RESP_FINAL): _t(S.COMPLETED, A.PASS_RESPONSE, start=(T.K,), stop=(T.E, T.F)),
    (S.PROCEEDING, In.RESP_FINAL): _t(S.COMPLETED, A.PASS_RESPONSE, start=(T.K,), stop=(T.E, T.F)),
    (S.COMPLETED, In.RESP_1XX): _t(S.COMPLETED),
    (S.COMPLETED, In.RESP_FINAL): _t(S.COMPLETED),  # retransmitted final: absorbed
    (S.COMPLETED, In.TIMER_K): _t(S.TERMINATED),
    (S.TRYING, In.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (S.PROCEEDING, In.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (S.COMPLETED, In.TRANSPORT_ERROR): _t(S.TERMINATED),
}

_IST: dict[tuple[State, Input], Transition] = {
    (S.PROCEEDING, In.REQUEST): _t(S.PROCEEDING, A.RESEND_RESPONSE),
    (S.PROCEEDING, In.ACK): _t(S.PROCEEDING),  # ACK before any final: nothing to confirm
    (S.PROCEEDING, In.TU_1XX): _t(S.PROCEEDING, A.SEND_RESPONSE),
    (S.PROCEEDING, In.TU_2XX): _t(S.ACCEPTED, A.SEND_RESPONSE, start=(T.L,)),
    (S.PROCEEDING, In.TU_FINAL): _t(S.COMPLETED, A.SEND_RESPONSE, start=(T.G, T.H)),
    (S.COMPLETED, In.REQUEST): _t(S.COMPLETED, A.RESEND_RESPONSE),
    (S.COMPLETED, In.TIMER_G): _t(S.COMPLETED, A.RESEND_RESPONSE, backoff=T.G),
    (S.COMPLETED, In.TIMER_H): _t(S.TERMINATED, A.REPORT_TIMEOUT),
    (S.COMPLETED, In.ACK): _t(S.CONFIRMED, start=(T.I,), stop=(T.G, T.H)),
    (S.CONFIRMED, In.ACK): _t(S.CONFIRMED),
    (S.CONFIRMED, In.REQUEST): _t(S.CONFIRMED),
    (S.CONFIRMED, In.TIMER_I): _t(S.TERMINATED),
    (S.ACCEPTED, In.REQUEST): _t(S.ACCEPTED),  # RFC 6026 §7.1: absorbed
    (S.ACCEPTED, In.ACK): _t(S.ACCEPTED, A.PASS_ACK),
    (S.ACCEPTED, In.TU_2XX): _t(S.ACCEPTED, A.SEND_RESPONSE),  # TU retransmits its 2xx
    (S.ACCEPTED, In.TIMER_L): _t(S.TERMINATED),
    (S.PROCEEDING, In.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (S.COMPLETED, In.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (S.CONFIRMED, In.TRANSPORT_ERROR): _t(S.CONFIRMED),
    (S.ACCEPTED, In.TRANSPORT_ERROR): _t(S.ACCEPTED, A.REPORT_TRANSPORT_ERROR),
}

_NIST: dict[tuple[State, Input], Transition] = {
    (S.TRYING, In.REQUEST): _t(S.TRYING),  # absorbed: nothing to send yet
    (S.TRYING, In.TU_1XX): _t(S.PROCEEDING, A.SEND_RESPONSE),
    (S.TRYING, In.TU_FINAL): _t(S.COMPLETED, A.SEND_RESPONSE, start=(T.J,)),
    (S.PROCEEDING, In.REQUEST): _t(S.PROCEEDING, A.RESEND_RESPONSE),
    (S.PROCEEDING, In.TU_1XX): _t(S.PROCEEDING, A.SEND_RESPONSE),
    (S.PROCEEDING, In.TU_FINAL): _t(S.COMPLETED, A.SEND_RESPONSE, start=(T.J,)),
    (S.COMPLETED, In.REQUEST): _t(S.COMPLETED, A.RESEND_RESPONSE),
    (S.COMPLETED, In.TIMER_J): _t(S.TERMINATED),
    (S.PROCEEDING, In.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
    (S.COMPLETED, In.TRANSPORT_ERROR): _t(S.TERMINATED, A.REPORT_TRANSPORT_ERROR),
}

del S, In, A, T

#: The transition table of each machine: (state, input) → transition.
TABLES: dict[Kind, dict[tuple[State, Input], Transition]] = {
    Kind.INVITE_CLIENT: _ICT,
    Kind.NON_INVITE_CLIENT: _NICT,
    Kind.INVITE_SERVER: _IST,
    Kind.NON_INVITE_SERVER: _NIST,
}

#: Initial state and the timers armed on creation (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
INITIAL: dict[Kind, tuple[State, tuple[Timer, ...]]] = {
    Kind.INVITE_CLIENT: (State.CALLING, (Timer.A, Timer.B)),
    Kind.NON_INVITE_CLIENT: (State.TRYING, (Timer.E, Timer.F)),
    Kind.INVITE_SERVER: (State.PROCEEDING, ()),
    Kind.NON_INVITE_SERVER: (State.TRYING, ()),
}


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """§17.1.1.1 base values: T1 (RTT estimate), T2 (max non-INVITE retransmit interval),
    T4 (max time a message stays in the network), in seconds."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def initial(self, timer: Timer, *, reliable: bool) -> float | None:
        """The first duration of ``timer``; ``None`` if it is not used on this transport.

        Appendix A: A/E/G only on unreliable transports; D is 32 s on unreliable ones and
        I/J/K are T4/64*T1/T4 there, all zero on reliable ones.
        """
        t1 = self.t1
        if timer in (Timer.A, Timer.E, Timer.G):
            return None if reliable else t1
        if timer in (Timer.B, Timer.F, Timer.H, Timer.L, Timer.M):
            return 64 * t1
        if timer is Timer.D:
            return 0.0 if reliable else max(32.0, 64 * t1)
        if timer is Timer.J:
            return 0.0 if reliable else 64 * t1
        # I and K
        return 0.0 if reliable else self.t4


# (id(config), reliable) -> (config, initial duration of every timer): TimerConfig is frozen,
# so its durations are worked out once; the config is kept to tell a reused id apart.
_DURATIONS: dict[tuple[int, bool], tuple[TimerConfig, dict[Timer, float | None]]] = {}


class Transaction:
    """One transaction: kind, key, the request that made it, state and deadlines.

    ``dest`` is where its messages go: the next hop for a client, the response address
    (§18.2.2) for a server. ``last_response`` is what a server retransmits; ``wire`` is its
    serialized form, kept by the endpoint so that a retransmission is not serialized again.
    """

    __slots__ = (
        "_request",
        "cancel_pending",
        "config",
        "deadlines",
        "dest",
        "intervals",
        "key",
        "kind",
        "last_response",
        "merge_id",
        "reliable",
        "state",
        "wire",
    )

    def __init__(
        self,
        kind: Kind,
        key: ClientTxnKey | ServerTxnKey,
        request: Request,
        dest: Addr,
        *,
        now: float,
        config: TimerConfig | None = None,
        reliable: bool = False,
    ) -> None:
        self.kind = kind
        self.key = key
        self._request: Request | None = request
        self.dest = dest
        self.config = config or TimerConfig()
        self.reliable = reliable
        self.last_response: Response | None = None
        self.wire: bytes | None = None
        self.deadlines: dict[Timer, float] = {}
        self.intervals: dict[Timer, float] = {}
        self.cancel_pending = False
        self.merge_id: tuple[str, ...] | None = None
        state, timers = INITIAL[kind]
        self.state = state
        for timer in timers:
            self._arm(timer, now)

    def __repr__(self) -> str:
        return f"<Transaction {self.kind.value} {self.state} {self.key}>"

    @property
    def request(self) -> Request:
        """The request that created the transaction (``LookupError`` once released)."""
        request = self._request
        if request is None:
            raise LookupError(f"{self!r} released its request")
        return request

    @property
    def released(self) -> bool:
        """True once :meth:`release` dropped the request and the parsed response."""
        return self._request is None

    def release(self) -> None:
        """Keep only what a non-INVITE server in Completed still uses (§17.2.2): its key,
        timers and the response's wire bytes (``wire``), which it resends for every
        retransmitted request until Timer J fires. The parsed request and response go, so
        the 64*T1 of Timer J hold a few hundred bytes instead of two parsed messages."""
        if self.kind is not Kind.NON_INVITE_SERVER or self.state is not State.COMPLETED:
            raise IllegalTransition(f"only a Completed NIST can be released, not {self!r}")
        if self.wire is None:
            raise ValueError("release needs the wire bytes of the last response")
        self._request = None
        self.last_response = None
        self.intervals.clear()  # J does not back off: only its deadline is left

    def end_wait(self, now: float) -> None:
        """Make the armed Timer J due at ``now``: the TU asked for no absorption of request
        retransmissions (a stateless answer, RFC 3261 §8.2.7), so Completed ends at once,
        as it does on a reliable transport (§17.2.2, Timer J = 0)."""
        if self.kind is not Kind.NON_INVITE_SERVER or self.state is not State.COMPLETED:
            raise IllegalTransition(f"only a Completed NIST waits on Timer J, not {self!r}")
        if Timer.J in self.deadlines:
            self.deadlines[Timer.J] = now

    def _arm(self, timer: Timer, now: float) -> None:
        durations = _DURATIONS.get((id(self.config), self.reliable))
        if durations is None or durations[0] is not self.config:
            durations = (
                self.config,
                {t: self.config.initial(t, reliable=self.reliable) for t in Timer},
            )
            if len(_DURATIONS) >= 64:
                _DURATIONS.clear()
            _DURATIONS[id(self.config), self.reliable] = durations
        duration = durations[1][timer]
        if duration is None:
            return
        self.intervals[timer] = duration
        self.deadlines[timer] = now + duration

    def _backoff(self, timer: Timer, now: float, *, to_t2: bool) -> None:
        if timer not in self.intervals:
            return
        if to_t2:
            interval = self.config.t2
        else:
            cap = math.inf if timer is Timer.A else self.config.t2
            interval = min(self.intervals[timer] * 2, cap)
        self.intervals[timer] = interval
        self.deadlines[timer] = now + interval

    @property
    def terminated(self) -> bool:
        """True once the machine reached Terminated."""
        return self.state is State.TERMINATED

    def accepts(self, event: Input) -> bool:
        """True if ``event`` is legal in the current state."""
        return (self.state, event) in TABLES[self.kind]

    def step(
        self, event: Input, *, now: float, response: Response | None = None
    ) -> tuple[Action, ...]:
        """Apply ``event``. TU inputs carry the ``response`` to send. Returns the actions."""
        row = TABLES[self.kind].get((self.state, event))
        if row is None:
            raise IllegalTransition(f"{self.kind.value} in {self.state}: {event} not allowed")
        if Action.SEND_RESPONSE in row.actions:
            if response is None:
                raise ValueError(f"{event} needs the response to send")
            self.last_response = response
        self.state = row.next
        if row.next is State.TERMINATED:
            self.deadlines.clear()
            return row.actions
        for timer in row.stop:
            self.deadlines.pop(timer, None)
        if row.backoff is not None:
            self._backoff(row.backoff, now, to_t2=row.backoff_to_t2)
        for timer in row.start:
            self._arm(timer, now)
        return row.actions

    def next_deadline(self) -> float | None:
        """The earliest armed deadline."""
        deadlines = self.deadlines
        return min(deadlines.values()) if deadlines else None

    def due_timer(self, now: float) -> Timer | None:
        """The earliest timer whose deadline is at or before ``now`` (removed from the
        armed set: firing it is the caller's next step)."""
        best: Timer | None = None
        best_at = now
        for timer, at in self.deadlines.items():
            # earliest deadline first; ties go to the lower letter (Timer is a StrEnum)
            if at < best_at or (at == best_at and (best is None or timer < best)):
                best, best_at = timer, at
        if best is not None:
            del self.deadlines[best]
        return best


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 300-699 (§17.1.1.3): same
    Request-URI, Call-ID, From and CSeq number as the INVITE, To from the response (with
    its tag), only the INVITE's top Via (same branch), and the INVITE's Route headers."""
    headers = Headers()
    via = invite.headers.get_all("via")[0]
    headers.add("Via", via)
    headers.add("Max-Forwards", "70")
    for route in invite.headers.get_all("route"):
        headers.add("Route", route)
    headers.add("From", invite.headers.get("from") or "")
    headers.add("To", response.headers.get("to") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.number} ACK")
    return Request("ACK", invite.uri_text, headers)


def build_cancel(invite: Request) -> Request:
    """A CANCEL for ``invite`` (§9.1): Request-URI, Call-ID, From, To and CSeq number of the
    INVITE, method CANCEL, only its top Via (same branch) and its Route headers."""
    headers = Headers()
    headers.add("Via", invite.headers.get_all("via")[0])
    headers.add("Max-Forwards", "70")
    for route in invite.headers.get_all("route"):
        headers.add("Route", route)
    headers.add("From", invite.headers.get("from") or "")
    headers.add("To", invite.headers.get("to") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.number} CANCEL")
    return Request("CANCEL", invite.uri_text, headers)
