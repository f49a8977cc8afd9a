"""Binding persistence glue: location changes written once per event-loop tick, and the
REGISTER answers of that tick sent after the commit (RFC 3261 §10.3 step 8: the 200 lists
the bindings the registrar now holds, so they are on disk before the phone hears of them).

The store is :class:`pypbx.location_store.LocationStore` (SQLite WAL); a failed write is
logged (one line with the count) and the answers still go out, as chan_sip does when astdb
cannot be written.

Commits are at least ``min_interval`` (5 ms) apart: a commit costs about three binding
writes, so under a registration burst the changes of a few ticks share one (about ten at
2,000 REGISTER/s), while a lone REGISTER is still written and answered in the tick after it
arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable

from pypbx.location import Change
from pypbx.location_store import LocationStore
from pypbx.sip.events import Addr, ServerTxnKey
from pypbx.sip.message import Response
from pypbx.transport.addr import hostport

__all__ = ["BindingWriter"]

log = logging.getLogger("pypbx.sip")

Send = Callable[[ServerTxnKey, Response, Addr], None]

MIN_INTERVAL = 0.005
"""Seconds between two commits (the delay a 200 OK may take in a burst)."""


class BindingWriter:
    """Queues changes and answers; :meth:`flush` commits then sends (scheduled per tick)."""

    def __init__(
        self, store: LocationStore | None, send: Send, *, min_interval: float = MIN_INTERVAL
    ) -> None:
        self.store = store
        self.send = send
        self.min_interval = min_interval
        self.commits = 0
        self._pending: list[Change] = []
        self._held: list[tuple[ServerTxnKey, Response, Addr]] = []
        self._scheduled = False
        self._last = float("-inf")  # loop time of the last flush

    def add(self, change: Change) -> None:
        """A binding was added, refreshed or removed."""
        self._pending.append(change)
        self._schedule()

    def hold(self, key: ServerTxnKey, response: Response, source: Addr) -> None:
        """Send ``response`` once this tick's changes are committed."""
        self._held.append((key, response, source))
        self._schedule()

    def _schedule(self) -> None:
        if self._scheduled:
            return
        self._scheduled = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no running loop (start-up, shutdown): write now
            self.flush()
            return
        wait = self._last + self.min_interval - loop.time()
        if wait > 0:
            loop.call_later(wait, self.flush)
        else:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Commit the queued changes in one transaction, then send the held answers."""
        self._scheduled = False
        with contextlib.suppress(RuntimeError):
            self._last = asyncio.get_running_loop().time()
        batch, self._pending = self._pending, []
        held, self._held = self._held, []
        if batch and self.store is not None:
            self.commits += 1
            try:
                self.store.apply(batch)
            except sqlite3.Error as exc:
                log.error("location store: could not save %d changes: %s", len(batch), exc)
        for key, response, source in held:
            try:
                self.send(key, response, source)
            except Exception as exc:  # the transaction went away meanwhile
                log.warning("%s: REGISTER answer not sent: %s", hostport(source), exc)
