"""Qualify: OPTIONS keepalive and latency per peer (RFC 3261 §11, chan_sip ``sip_poke_peer``).

Pure: the glue asks :meth:`Qualifier.due` which peers to send an OPTIONS to, reports
:meth:`~Qualifier.sent`, then :meth:`~Qualifier.answered` (any final response counts, as in
chan_sip) or :meth:`~Qualifier.timed_out`; it re-arms one timer at
:meth:`~Qualifier.next_timer`; :meth:`~Qualifier.handle_timer` times out pokes nobody answered.

chan_sip's timing: a poke not answered within twice the ``qualify`` limit (``maxms``, 2000 ms
for ``qualify=yes``) makes the peer UNREACHABLE; a reply slower than ``maxms`` makes it
LAGGED. The next poke follows ``qualifyfreq`` (60 s) after an answer within the limit, and
10 s (``DEFAULT_FREQ_NOTOK``) after a lagged answer or none. A registration pokes at once.
Status words are those of ``sip show peers``: ``OK (N ms)``, ``LAGGED (N ms)``,
``UNREACHABLE``, ``UNKNOWN`` (not measured yet) and ``Unmonitored`` (qualify off).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["DEFAULT_FREQ_NOTOK", "DEFAULT_QUALIFY_MS", "Qualifier", "QualifyStatus", "StatusChange"]

DEFAULT_QUALIFY_MS = 2000
DEFAULT_FREQ_NOTOK = 10.0


class QualifyStatus(StrEnum):
    UNKNOWN = "UNKNOWN"
    OK = "OK"
    LAGGED = "LAGGED"
    UNREACHABLE = "UNREACHABLE"
    UNMONITORED = "Unmonitored"


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A peer's reachability changed; ``log`` is chan_sip's wording."""

    peer: str
    old: QualifyStatus
    new: QualifyStatus
    log: str


@dataclass(slots=True)
class _Poke:
    maxms: int
    freq: float
    next_at: float
    sent_at: float | None = None
    lastms: int | None = None  # None: not measured; -1: unreachable
    status: QualifyStatus = QualifyStatus.UNKNOWN


class Qualifier:
    """Qualify state for every monitored peer."""

    def __init__(self, *, notok_freq: float = DEFAULT_FREQ_NOTOK) -> None:
        self.notok_freq = notok_freq
        self._pokes: dict[str, _Poke] = {}

    def add(self, peer: str, *, maxms: int, freq: float, now: float) -> None:
        """Monitor ``peer`` (``qualify`` ms limit, ``qualifyfreq`` s); first poke at ``now``."""
        if maxms <= 0 or freq <= 0:
            raise ValueError("qualify needs maxms > 0 and freq > 0")
        self._pokes[peer] = _Poke(maxms=maxms, freq=freq, next_at=now)

    def remove(self, peer: str) -> None:
        self._pokes.pop(peer, None)

    def __contains__(self, peer: object) -> bool:
        return peer in self._pokes

    # -- scheduling -----------------------------------------------------------------------

    def due(self, now: float) -> list[str]:
        """Peers to poke now (not already waiting for an answer), earliest first."""
        ready = [
            (p.next_at, name)
            for name, p in self._pokes.items()
            if p.sent_at is None and p.next_at <= now
        ]
        return [name for _, name in sorted(ready)]

    def sent(self, peer: str, now: float) -> None:
        """An OPTIONS went out to ``peer``."""
        poke = self._pokes[peer]
        poke.sent_at = now

    def registered(self, peer: str, now: float) -> None:
        """A (re-)registration: poke right away (unless a poke is already out)."""
        poke = self._pokes.get(peer)
        if poke is not None and poke.sent_at is None:
            poke.next_at = now

    def next_timer(self) -> float | None:
        """The next poke or poke deadline."""
        times = [
            p.next_at if p.sent_at is None else p.sent_at + 2 * p.maxms / 1000
            for p in self._pokes.values()
        ]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[StatusChange]:
        """Time out every poke older than twice its limit."""
        late = [
            name
            for name, p in self._pokes.items()
            if p.sent_at is not None and now >= p.sent_at + 2 * p.maxms / 1000
        ]
        return [c for c in (self.timed_out(name, now) for name in late) if c is not None]

    # -- results --------------------------------------------------------------------------

    def answered(self, peer: str, now: float) -> StatusChange | None:
        """A response to the poke arrived; measures the round trip."""
        poke = self._pokes.get(peer)
        if poke is None or poke.sent_at is None:
            return None
        rtt = max(1, round((now - poke.sent_at) * 1000))
        poke.sent_at = None
        poke.lastms = rtt
        reachable = rtt <= poke.maxms
        poke.next_at = now + (poke.freq if reachable else self.notok_freq)
        new = QualifyStatus.OK if reachable else QualifyStatus.LAGGED
        word = "Reachable" if reachable else "Lagged"
        return self._change(
            peer, poke, new, f"Peer '{peer}' is now {word}. ({rtt}ms / {poke.maxms}ms)"
        )

    def timed_out(self, peer: str, now: float) -> StatusChange | None:
        """No answer to the poke (our deadline or the OPTIONS transaction's)."""
        poke = self._pokes.get(peer)
        if poke is None or poke.sent_at is None:
            return None
        poke.sent_at = None
        last = poke.lastms
        poke.lastms = -1
        poke.next_at = now + self.notok_freq
        log = f"Peer '{peer}' is now UNREACHABLE!  Last qualify: {last or 0}"
        return self._change(peer, poke, QualifyStatus.UNREACHABLE, log)

    # -- views ----------------------------------------------------------------------------

    def lastms(self, peer: str) -> int | None:
        """Last round trip in ms, -1 when unreachable, None when unknown or unmonitored."""
        poke = self._pokes.get(peer)
        return poke.lastms if poke is not None else None

    def status(self, peer: str) -> QualifyStatus:
        poke = self._pokes.get(peer)
        return poke.status if poke is not None else QualifyStatus.UNMONITORED

    def status_text(self, peer: str) -> str:
        """The ``Status`` column of ``sip show peers``."""
        poke = self._pokes.get(peer)
        if poke is None:
            return QualifyStatus.UNMONITORED.value
        if poke.status in (QualifyStatus.OK, QualifyStatus.LAGGED):
            return f"{poke.status.value} ({poke.lastms} ms)"
        return poke.status.value

    def _change(self, peer: str, poke: _Poke, new: QualifyStatus, log: str) -> StatusChange | None:
        old = poke.status
        poke.status = new
        if old is new:
            return None
        return StatusChange(peer, old, new, log)
