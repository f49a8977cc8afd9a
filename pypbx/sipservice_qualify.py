"""Qualify glue: OPTIONS pokes to peers with ``qualify=yes`` (RFC 3261 §11, chan_sip
``sip_poke_peer``).

Drives the pure :class:`pypbx.qualify.Qualifier` over a
:class:`~pypbx.transport.stack.SipStack`: one ``loop.call_later`` armed at the qualifier's next
deadline; when it fires, late pokes time out and due peers get an OPTIONS to where
:meth:`pypbx.peers.PeerDirectory.target` says they are (their registered Contact, or their
resolved host). Any final response counts as an answer (as in chan_sip); a local 408/503 from
the stack (no response, transport error) as none. Status changes are logged one line each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pypbx.log import verbose
from pypbx.peers import PeerDirectory
from pypbx.qualify import Qualifier, QualifyStatus, StatusChange
from pypbx.sip.events import Addr
from pypbx.sip.message import Request, Response, make_request
from pypbx.sip.uri import SipUri
from pypbx.transport.addr import via_host
from pypbx.transport.stack import SipStack

__all__ = ["QualifyDriver"]

log = logging.getLogger("pypbx.sip.qualify")


def _is_local_failure(response: Response) -> bool:
    """The stack's own 408/503 (no To tag): nothing came back from the peer."""
    return response.status in (408, 503) and "tag=" not in (response.get("to") or "")


class QualifyDriver:
    """Sends the pokes the qualifier asks for and feeds back the answers."""

    def __init__(
        self,
        qualifier: Qualifier,
        directory: PeerDirectory,
        stack: SipStack,
        *,
        clock: Callable[[], float],
        local_ip: Callable[[str], str],
    ) -> None:
        self.qualifier = qualifier
        self.directory = directory
        self.stack = stack
        self.clock = clock
        self.local_ip = local_ip
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def arm(self) -> None:
        """Re-arm the one timer at the qualifier's earliest deadline."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.qualifier.next_timer()
        if due is None or self._closed:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, due - self.clock()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self.clock()
        for change in self.qualifier.handle_timer(now):
            self._report(change)
        for name in self.qualifier.due(now):
            self._poke(name, now)
        self.arm()

    def _poke(self, name: str, now: float) -> None:
        where = self.directory.target(name, now)
        if where is None:  # the registration went away: nothing to poke
            self.qualifier.remove(name)
            return
        dest, transport = where
        request = self._options(name, dest, transport, now)
        self.qualifier.sent(name, now)
        task = asyncio.get_running_loop().create_task(self._await(name, request, dest, transport))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _options(self, name: str, dest: Addr, transport: str, now: float) -> Request:
        binding = self.directory.binding(name, now)
        uri = binding.contact if binding is not None else None
        if uri is None:
            host = f"[{dest[0]}]" if ":" in dest[0] else dest[0]
            uri = str(SipUri(host=host, port=dest[1]))
        ours = via_host(self.local_ip(dest[0]))
        port = self.stack.local_addr[1]
        ids = self.stack.ids
        return make_request(
            "OPTIONS",
            uri,
            from_=f'"pypbx" <sip:pypbx@{ours}:{port}>;tag={ids.tag()}',
            to=f"<{uri}>",
            call_id=ids.call_id(ours),
            cseq=102,
            via=f"SIP/2.0/{transport.upper()} {ours}:{port};branch={ids.branch()};rport",
            contact=f"<sip:pypbx@{ours}:{port}>",
            headers=[("User-Agent", self.directory.general.useragent)],
        )

    async def _await(self, name: str, request: Request, dest: Addr, transport: str) -> None:
        response = await self.stack.request(request, dest, transport=transport.upper())
        if self._closed:
            return
        now = self.clock()
        if _is_local_failure(response):
            change = self.qualifier.timed_out(name, now)
        else:
            change = self.qualifier.answered(name, now)
        if change is not None:
            self._report(change)
        self.arm()

    @staticmethod
    def _report(change: StatusChange) -> None:
        if change.new is QualifyStatus.UNREACHABLE or change.new is QualifyStatus.LAGGED:
            log.warning("%s", change.log)
        else:
            verbose(log, 1, "%s", change.log)

    async def close(self) -> None:
        """Stop the timer and the pokes in flight."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
