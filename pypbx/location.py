"""Location service: address-of-record bindings for registered peers (RFC 3261 §10.3).

Pure: every call takes ``now`` as Unix time in seconds (wall clock, so bindings stored by
:mod:`pypbx.location_store` keep their meaning across a restart). An AOR is a peer name; each
AOR holds up to ``max_contacts`` contacts (``registrations-limit``-like, default 10).

The §10.3 step 7 ordering rule is :meth:`Location.check`: a request carrying the Call-ID of an
existing binding with a CSeq lower than or equal to the stored one is out of order
(the registrar answers 500). Every add/refresh/remove is reported as a :class:`Change`, both
returned and passed to the ``on_change`` listener, so a store can persist it. Path is not
supported (ignored), as in Asterisk's chan_sip.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from pypbx.sip.events import Addr

__all__ = [
    "DEFAULT_MAX_CONTACTS",
    "Binding",
    "Change",
    "ChangeKind",
    "Location",
    "LocationError",
]

DEFAULT_MAX_CONTACTS = 10


class LocationError(Exception):
    """A binding update refused; ``status`` is the SIP answer (500 out of order, 503 full)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Binding:
    """One contact of an AOR.

    ``received`` is the source (ip, port) the REGISTER came from and ``transport`` its
    transport: NAT'd phones (``nat=force_rport``/``comedia``) are reached there instead of at
    the Contact's host. ``q`` is the Contact q-value as written, or None.
    """

    aor: str
    contact: str
    expires_at: float
    call_id: str
    cseq: int
    registered_at: float
    received: Addr | None = None
    transport: str = "udp"
    user_agent: str = ""
    q: str | None = None

    def remaining(self, now: float) -> int:
        """Seconds left, rounded up (what the 200 OK and ``sip show peer`` report)."""
        return max(0, math.ceil(self.expires_at - now - 1e-6))

    def expired(self, now: float) -> bool:
        return self.expires_at <= now

    @property
    def qvalue(self) -> float:
        """q as a number for ordering (absent counts as 1.0, as RFC 3261 §16.6 suggests)."""
        return float(self.q) if self.q else 1.0


class ChangeKind(StrEnum):
    ADDED = "added"
    REFRESHED = "refreshed"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    binding: Binding


Listener = Callable[[Change], None]


def _intern(text: str) -> str:
    return sys.intern(text) if len(text) <= 64 else text


class Location:
    """AOR → contact URI → :class:`Binding`, with a (ip, port) → AOR index of sources."""

    __slots__ = ("_bindings", "_by_source", "_soonest", "max_contacts", "on_change")

    def __init__(
        self, *, max_contacts: int = DEFAULT_MAX_CONTACTS, on_change: Listener | None = None
    ) -> None:
        if max_contacts < 1:
            raise ValueError("max_contacts must be at least 1")
        self.max_contacts = max_contacts
        self.on_change = on_change
        self._bindings: dict[str, dict[str, Binding]] = {}
        # source -> its (aor, contact) keys in registration order (a dict: O(1) removal,
        # one NAT address or SBC may carry thousands of phones)
        self._by_source: dict[Addr, dict[tuple[str, str], None]] = {}
        # no binding expires before this (a lower bound: refreshes and removals leave it
        # early), so the sweep every second looks at the bindings only when one may be due
        self._soonest = math.inf

    def __len__(self) -> int:
        return sum(len(c) for c in self._bindings.values())

    # -- queries --------------------------------------------------------------------------

    def bindings(self, aor: str, now: float) -> list[Binding]:
        """Live bindings of ``aor``, best q first, then most recently registered first."""
        live = [b for b in self._bindings.get(aor, {}).values() if not b.expired(now)]
        live.sort(key=lambda b: (-b.qvalue, -b.registered_at))
        return live

    def lookup(self, aor: str, now: float) -> Binding | None:
        """The preferred live binding of ``aor`` (highest q, newest), or None."""
        live = self.bindings(aor, now)
        return live[0] if live else None

    def aor_at(self, source: Addr) -> str | None:
        """The AOR whose latest binding came from ``source`` (ip, port), if any."""
        keys = self._by_source.get(source)
        return next(reversed(keys))[0] if keys else None

    def aors(self) -> list[str]:
        return list(self._bindings)

    def all_bindings(self) -> list[Binding]:
        return [b for contacts in self._bindings.values() for b in contacts.values()]

    def next_expiry(self) -> float | None:
        """The earliest ``expires_at`` of all bindings (a timer for :meth:`expire`)."""
        times = [b.expires_at for c in self._bindings.values() for b in c.values()]
        return min(times) if times else None

    # -- §10.3 checks ---------------------------------------------------------------------

    def check(self, aor: str, contact: str | None, call_id: str, cseq: int) -> None:
        """Raise ``LocationError(500)`` when the request is out of order (§10.3 step 7).

        ``contact`` None checks every binding of the AOR (the ``Contact: *`` case).
        """
        contacts = self._bindings.get(aor, {})
        targets = contacts.values() if contact is None else [contacts.get(contact)]
        for old in targets:
            if old is not None and old.call_id == call_id and cseq <= old.cseq:
                raise LocationError(500, "Out of order CSeq")

    def check_room(self, aor: str, new_contacts: Iterable[str], now: float) -> None:
        """Raise ``LocationError(503)`` when adding ``new_contacts`` would pass the cap."""
        live = {b.contact for b in self.bindings(aor, now)}
        total = len(live | set(new_contacts))
        if total > self.max_contacts:
            raise LocationError(503, "Too Many Registered Contacts")

    # -- updates --------------------------------------------------------------------------

    def update(
        self,
        aor: str,
        contact: str,
        *,
        expires: int,
        call_id: str,
        cseq: int,
        now: float,
        received: Addr | None = None,
        transport: str = "udp",
        user_agent: str = "",
        q: str | None = None,
    ) -> Change | None:
        """Add, refresh or (``expires == 0``) remove one binding; no ordering/cap checks here."""
        contacts = self._bindings.get(aor)
        old = contacts.get(contact) if contacts else None
        if expires <= 0:
            return self._remove(aor, contact) if old is not None else None
        if old is not None and old.expired(now):
            self._remove(aor, contact)
            old = None
        new = Binding(
            aor=_intern(aor),
            contact=contact,
            expires_at=now + expires,
            call_id=call_id,
            cseq=cseq,
            registered_at=now if old is None else old.registered_at,
            received=received,
            transport=_intern(transport),
            user_agent=_intern(user_agent),
            q=q,
        )
        kind = ChangeKind.ADDED if old is None else ChangeKind.REFRESHED
        return self._put(new, kind)

    def remove(self, aor: str, contact: str) -> Change | None:
        """Remove one binding (unregister); None if there was none."""
        return self._remove(aor, contact)

    def remove_all(self, aor: str) -> list[Change]:
        """Remove every binding of ``aor`` (``Contact: *``)."""
        return [c for c in (self._remove(aor, k) for k in list(self._bindings.get(aor, {}))) if c]

    def expire(self, now: float) -> list[Change]:
        """Drop every binding whose time is up (a no-op until the soonest may be due)."""
        if now < self._soonest:
            return []
        dead: list[tuple[str, str]] = []
        soonest = math.inf
        for aor, contacts in self._bindings.items():
            for b in contacts.values():
                at = b.expires_at
                if at <= now:
                    dead.append((aor, b.contact))
                elif at < soonest:
                    soonest = at
        self._soonest = soonest
        return [c for c in (self._remove(aor, k) for aor, k in dead) if c]

    def load(self, bindings: Iterable[Binding], now: float) -> int:
        """Restore stored bindings without reporting changes; expired ones are skipped."""
        count = 0
        for b in bindings:
            if b.expired(now):
                continue
            self._insert(replace(b, aor=_intern(b.aor), transport=_intern(b.transport)))
            count += 1
        return count

    # -- internals ------------------------------------------------------------------------

    def _insert(self, binding: Binding) -> None:
        contacts = self._bindings.setdefault(binding.aor, {})
        old = contacts.get(binding.contact)
        if old is not None:
            self._unindex(old)
        contacts[binding.contact] = binding
        if binding.expires_at < self._soonest:
            self._soonest = binding.expires_at
        if binding.received is not None:
            self._by_source.setdefault(binding.received, {})[binding.aor, binding.contact] = None

    def _unindex(self, binding: Binding) -> None:
        if binding.received is None:
            return
        keys = self._by_source.get(binding.received)
        if keys is None:
            return
        key = (binding.aor, binding.contact)
        if key not in keys:
            return
        del keys[key]
        if not keys:
            del self._by_source[binding.received]

    def _put(self, binding: Binding, kind: ChangeKind) -> Change:
        self._insert(binding)
        return self._emit(Change(kind, binding))

    def _remove(self, aor: str, contact: str) -> Change | None:
        contacts = self._bindings.get(aor)
        if not contacts or contact not in contacts:
            return None
        old = contacts.pop(contact)
        if not contacts:
            del self._bindings[aor]
        self._unindex(old)
        return self._emit(Change(ChangeKind.REMOVED, old))

    def _emit(self, change: Change) -> Change:
        if self.on_change is not None:
            self.on_change(change)
        return change
