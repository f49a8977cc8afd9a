"""The user agent the call layer runs: :class:`~pypbx.sip.useragent.UserAgent` whose timer
bookkeeping does not walk every live session (RFC 3261 §13.3.1.4's 2xx retransmission is the
only session timer, and only sessions the call layer answered have one).

The base agent asks every session for its deadline on every pump, which is O(live calls)
per datagram; here the call layer :meth:`CallUserAgent.watch`\\ es a session after it sent a
2xx (answer, re-INVITE answer) and only watched sessions are asked. Terminated sessions are
dropped from ``sessions`` in batches instead of on every timer.
"""

from __future__ import annotations

from pypbx.sip.session import Session, SessionState
from pypbx.sip.useragent import UserAgent

__all__ = ["CallUserAgent"]

PRUNE_EVERY = 256  # prune ``sessions`` after this many new sessions


class CallUserAgent(UserAgent):
    """A UserAgent with a watched set of sessions that may have a timer."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._timed: set[Session] = set()
        self._seen = 0

    def watch(self, session: Session) -> None:
        """``session`` sent a 2xx and retransmits it until the ACK: include its deadline."""
        self._timed.add(session)

    def next_timer(self) -> float | None:
        best = self.endpoint.next_timer()
        done = []
        for session in self._timed:
            t = session.next_timer()
            if t is None:
                done.append(session)
            elif best is None or t < best:
                best = t
        for session in done:
            self._timed.discard(session)
        return best

    def handle_timer(self, *, now: float) -> None:
        self.endpoint.handle_timer(now=now)
        for session in list(self._timed):
            t = session.next_timer()
            if t is not None and t <= now:
                session.handle_timer(now=now)
        self._pump(now)
        if len(self.sessions) - self._seen >= PRUNE_EVERY:
            self.sessions = [s for s in self.sessions if s.state is not SessionState.TERMINATED]
            self._seen = len(self.sessions)
