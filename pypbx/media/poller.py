"""One reader for all the RTP sockets of an event loop.

Every relay leg's RTP socket is put in one ``epoll`` set, and the loop watches that set's own
descriptor: when it is readable, the ready sockets are served in one batch, each by the
handler its leg registered (a slow one that checks the source, or the leg's fast path once its
source is locked). A packet then costs its two system calls and one Python call, instead of
also passing through the loop's per-descriptor event dispatch (a callback handle per packet),
which on this path cost more than the forwarding itself (measured with bench/rtp_relay.py).
The level-triggered set stays readable while packets wait, so a batch larger than
:data:`BATCH` is served over several loop turns, between which SIP and timers run.

With the optional C extension (``pypbx/media/_fastrelay.c``, built by the package's install
when a compiler is at hand) the batch is read in C: sockets a leg has handed to the C table
(its fast path with nothing to change in the packets) are forwarded there with one ``recv``
and one ``send`` and no Python objects at all; the rest come back to their Python handlers.

Where ``select.epoll`` does not exist (not Linux), each socket gets its own loop reader and
:attr:`MediaPoller.batched` is False (legs then keep to their slow path).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import Callable
from typing import ClassVar

try:
    from pypbx.media._fastrelay import FastTable
except ImportError:  # not built: the Python paths do the same work
    FastTable = None  # type: ignore[assignment,misc]

__all__ = ["BATCH", "MediaPoller"]

BATCH = 256
"""Ready sockets served per loop turn at most."""

Handler = Callable[[], None]


class MediaPoller:
    """The sockets one loop reads RTP from; get the loop's with :meth:`of`."""

    _by_loop: ClassVar[dict[int, MediaPoller]] = {}
    use_c: ClassVar[bool] = True
    """Whether new pollers use the C fast path when it is built (tests turn it off)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._handlers: dict[int, Handler] = {}
        self._epoll: select.epoll | None = None
        self.table: FastTable | None = None
        if hasattr(select, "epoll"):
            self._epoll = select.epoll()
            loop.add_reader(self._epoll.fileno(), self._ready)
            if FastTable is not None and MediaPoller.use_c:
                self.table = FastTable()

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> MediaPoller:
        """The poller of ``loop``, made on first use and dropped when its last socket goes."""
        poller = cls._by_loop.get(id(loop))
        if poller is None or poller.loop is not loop:
            poller = cls._by_loop[id(loop)] = cls(loop)
        return poller

    @property
    def batched(self) -> bool:
        """True when sockets are served in batches from one epoll set (fast paths possible)."""
        return self._epoll is not None

    def __len__(self) -> int:
        return len(self._handlers)

    def add(self, fd: int, handler: Handler) -> None:
        """Start serving ``fd`` (readable) with ``handler``."""
        self._handlers[fd] = handler
        if self.table is not None:
            self.table.reset(fd)
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        else:
            self.loop.add_reader(fd, handler)

    def set_handler(self, fd: int, handler: Handler) -> None:
        """Serve an added ``fd`` with another handler from the next packet on."""
        if fd not in self._handlers:
            return
        self._handlers[fd] = handler
        if self._epoll is None:
            self.loop.add_reader(fd, handler)

    def remove(self, fd: int) -> None:
        """Stop serving ``fd`` (call before closing its socket); idempotent."""
        if self._handlers.pop(fd, None) is None:
            return
        if self.table is not None:
            self.table.reset(fd)
        if self._epoll is not None:
            with contextlib.suppress(OSError):  # already closed: the kernel dropped it
                self._epoll.unregister(fd)
        elif not self.loop.is_closed():
            self.loop.remove_reader(fd)
        if not self._handlers:
            self._close()

    def _close(self) -> None:
        if MediaPoller._by_loop.get(id(self.loop)) is self:
            del MediaPoller._by_loop[id(self.loop)]
        if self._epoll is not None:
            if not self.loop.is_closed():
                self.loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
            self._epoll = None

    def _ready(self) -> None:
        epoll = self._epoll
        if epoll is None:
            return
        handlers = self._handlers
        if self.table is not None:
            for fd in self.table.pump(epoll.fileno(), BATCH):
                handler = handlers.get(fd)
                if handler is not None:
                    handler()
            return
        for fd, _events in epoll.poll(0, BATCH):
            handler = handlers.get(fd)
            if handler is not None:
                handler()
