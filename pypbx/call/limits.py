"""Per-peer call counting for sip.conf's ``call-limit`` (Asterisk chan_sip
``update_call_counter``): calls to and from a peer count together; at the limit a new outgoing
leg fails with cause 17 USER_BUSY (``DIALSTATUS=BUSY``) and a new incoming INVITE gets
480 Temporarily Unavailable. Pure bookkeeping: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["CallLimits"]


class CallLimits:
    """Calls in use per peer name. A peer without a limit (``None`` or 0) is counted too, so
    ``sip show inuse``-style views stay right, but never refused."""

    def __init__(self) -> None:
        self._in_use: dict[str, int] = {}

    def in_use(self, name: str) -> int:
        """Calls currently counted for ``name``."""
        return self._in_use.get(name, 0)

    def acquire(self, name: str, limit: int | None) -> bool:
        """Count one more call for ``name``; False (and nothing counted) when ``limit`` calls
        are already in use."""
        current = self._in_use.get(name, 0)
        if limit is not None and limit > 0 and current >= limit:
            return False
        self._in_use[name] = current + 1
        return True

    def release(self, name: str) -> None:
        """One call of ``name`` ended (never below zero)."""
        current = self._in_use.get(name, 0)
        if current <= 1:
            self._in_use.pop(name, None)
        else:
            self._in_use[name] = current - 1

    def hold(self, name: str, limit: int | None) -> Callable[[], None] | None:
        """:meth:`acquire`, returning the matching release (safe to call more than once),
        or None when the limit is reached."""
        if not self.acquire(name, limit):
            return None
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.release(name)

        return release

    def snapshot(self) -> dict[str, int]:
        """Peer name → calls in use (only peers with calls)."""
        return dict(self._in_use)
