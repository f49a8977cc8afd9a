"""Built-in fail2ban: ban a source address after repeated failed authentications (issue 9 item 3).

The decision is fail2ban's ``asterisk`` jail with its defaults: ``failures`` (5) failed
authentications from one address within ``window`` seconds (600) ban it for ``ban_time``
seconds (3600). What counts as a failure is the glue's business (RFC 3261 §22.1): a wrong
password or an unknown user name counts, the first request that merely draws the 401/407
challenge does not. A failure is in the window while ``now - when < window``; the ban starts at
the failure that reaches the threshold and lasts while ``now < until``.

Nothing is exempt by default: loopback and ``localnet`` addresses can be banned (an attacker
can sit there too); ``allow`` lists networks that are never counted nor banned.

Memory is bounded whatever arrives: each address keeps at most ``failures`` timestamps, at most
``max_tracked`` addresses are tracked (least recently failing dropped first) and at most
``max_bans`` bans are held (the one expiring soonest dropped first). :meth:`BanList.is_banned`
is one dictionary lookup.

A success (:meth:`BanList.record_success`) forgets only that user's failures from that address
(a phone that retried with the right password), never the failures recorded for other user
names: an attacker holding one valid account cannot use it to reset a password-guessing run.

Every ban is logged as one line that an external fail2ban can read as well::

    SECURITY: banned 192.0.2.7 for 3600 s after 5 failed authentications (last user '1000')
    SECURITY: banned 192.0.2.8 for 3600 s: scanner (distinct users 10)

A matching fail2ban filter (``/etc/fail2ban/filter.d/pypbx.conf``) and jail; each line is
already a ban, so one match is enough (``maxretry = 1``)::

    [Definition]
    failregex = SECURITY: banned <HOST> for \\d+ s\\b

    [pypbx]
    enabled  = true
    filter   = pypbx
    logpath  = /var/log/pypbx/messages
    maxretry = 1

User names come from the network, so they are quoted with every character outside printable
ASCII (and ``'`` and ``\\``) escaped and cut to 64 characters: a line stays one line.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from pypbx.config.netaddr import Network
from pypbx.config.pypbxconf import Security

__all__ = [
    "Ban",
    "BanConfig",
    "BanEvent",
    "BanList",
    "format_seconds",
    "quote_user",
    "source_key",
]

_MAX_KEY: Final = 255
_MAX_USER: Final = 64


@lru_cache(maxsize=4096)
def source_key(addr: str) -> str:
    """The canonical text of a source address: one key per host whatever its spelling.

    IPv6 is compressed and lower-cased, ``[..]`` brackets are dropped and an IPv4-mapped IPv6
    address becomes the IPv4 address. Anything that is not an IP address is kept (lower-cased,
    cut to 255 characters) so a caller mistake cannot make keys grow without bound.
    Memoised (4,096 entries): it runs several times for every received message.
    """
    text = addr.strip()
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ip = ipaddress.ip_address(inner)
    except ValueError:
        return text.lower()[:_MAX_KEY].strip()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _escape(text: str) -> str:
    out: list[str] = []
    for c in text[:_MAX_USER]:
        if c in "'\\" or not (" " <= c <= "~"):
            code = ord(c)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(c)
    return "".join(out) + ("..." if len(text) > _MAX_USER else "")


def quote_user(user: str | None) -> str:
    """``'1000'``: a user name safe for a one-line log (escaped, at most 64 characters)."""
    return "none" if user is None else f"'{_escape(user)}'"


def format_seconds(seconds: float) -> str:
    """``3600`` for a whole number of seconds, ``2.5`` otherwise."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.1f}"


@dataclass(frozen=True, slots=True)
class BanConfig:
    """Ban thresholds (fail2ban asterisk jail defaults) and table bounds.

    ``failures`` failed authentications within ``window`` seconds ban an address for
    ``ban_time`` seconds; ``allow`` networks are never counted nor banned.
    """

    failures: int = 5
    window: float = 600.0
    ban_time: float = 3600.0
    allow: tuple[Network, ...] = ()
    max_tracked: int = 10_000
    max_bans: int = 100_000

    def __post_init__(self) -> None:
        if self.failures < 1 or self.max_tracked < 1 or self.max_bans < 1:
            raise ValueError("failures, max_tracked and max_bans must be at least 1")
        if not (self.window > 0 and self.ban_time > 0):
            raise ValueError("window and ban_time must be positive")

    @classmethod
    def from_security(cls, security: Security) -> BanConfig:
        """The ``[security]`` section of pypbx.conf as a ban configuration."""
        return cls(
            failures=security.ban_failures,
            window=float(security.ban_window),
            ban_time=float(security.ban_time),
            allow=security.allow,
        )


@dataclass(frozen=True, slots=True)
class Ban:
    """One banned address, for ``sip show bans``: banned while ``since <= now < until``."""

    addr: str
    since: float
    until: float
    failures: int
    reason: str

    def active(self, now: float) -> bool:
        return now < self.until


@dataclass(frozen=True, slots=True)
class BanEvent:
    """A ban just decided, with the last user name tried (None when not an auth ban)."""

    ban: Ban
    user: str | None = None

    @property
    def log_line(self) -> str:
        """The one-line log record (see the module docstring for the fail2ban filter)."""
        ban = self.ban
        head = f"SECURITY: banned {ban.addr} for {format_seconds(ban.until - ban.since)} s"
        if ban.failures > 0:
            return (
                f"{head} after {ban.failures} failed authentications "
                f"(last user {quote_user(self.user)})"
            )
        return f"{head}: {_escape(ban.reason)}"


class _Track:
    """The recent failures of one address: (time, user) pairs, oldest first."""

    __slots__ = ("failures",)

    def __init__(self, size: int) -> None:
        self.failures: deque[tuple[float, str | None]] = deque(maxlen=size)

    def prune(self, now: float, window: float) -> None:
        while self.failures and not now - self.failures[0][0] < window:
            self.failures.popleft()


class BanList:
    """Failure counting and the ban table (see the module docstring for the rules)."""

    def __init__(self, config: BanConfig | None = None) -> None:
        self.config = config or BanConfig()
        self._tracks: OrderedDict[str, _Track] = OrderedDict()
        self._bans: OrderedDict[str, Ban] = OrderedDict()  # in insertion order

    # -- queries ---------------------------------------------------------------------------

    def is_banned(self, addr: str, *, now: float) -> bool:
        """True while ``addr`` has an unexpired ban (an expired one is dropped here)."""
        key = source_key(addr)
        ban = self._bans.get(key)
        if ban is None:
            return False
        if ban.active(now):
            return True
        del self._bans[key]
        return False

    def is_allowed(self, addr: str) -> bool:
        """True when ``addr`` is in an ``allow`` network (never counted, never banned)."""
        key = source_key(addr)
        return any(net.contains(key) for net in self.config.allow)

    def bans(self, now: float) -> list[Ban]:
        """The active bans, oldest first (expired ones are dropped)."""
        self._expire(now, everything=True)
        return sorted(self._bans.values(), key=lambda b: (b.since, b.addr))

    def failures(self, addr: str, *, now: float) -> int:
        """How many failures of ``addr`` are inside the window at ``now``."""
        track = self._tracks.get(source_key(addr))
        if track is None:
            return 0
        return sum(1 for when, _ in track.failures if now - when < self.config.window)

    @property
    def tracked(self) -> int:
        """How many addresses have a failure log (at most ``max_tracked``)."""
        return len(self._tracks)

    @property
    def banned(self) -> int:
        """How many bans are held, expired ones not yet dropped included (<= ``max_bans``)."""
        return len(self._bans)

    # -- changes ---------------------------------------------------------------------------

    def record_failure(
        self, addr: str, *, now: float, reason: str = "authentication failed", user: str | None
    ) -> BanEvent | None:
        """Count one failed authentication; the ban when it reaches the threshold, else None.

        A failure from an address already banned, or in the allow list, is not counted.
        """
        self._expire(now)
        key = source_key(addr)
        if self.is_banned(key, now=now) or self.is_allowed(key):
            return None
        cfg = self.config
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(cfg.failures)
            while len(self._tracks) > cfg.max_tracked:
                self._tracks.popitem(last=False)
        else:
            self._tracks.move_to_end(key)
            track.prune(now, cfg.window)
        track.failures.append((now, user))
        if len(track.failures) < cfg.failures:
            return None
        del self._tracks[key]
        ban = Ban(key, now, now + cfg.ban_time, len(track.failures), reason)
        self._put(ban)
        return BanEvent(ban, user)

    def record_success(self, addr: str, *, user: str, now: float) -> int:
        """Forget ``user``'s failures from ``addr`` (only that user's); how many were dropped."""
        key = source_key(addr)
        track = self._tracks.get(key)
        if track is None:
            return 0
        track.prune(now, self.config.window)
        kept = [(when, who) for when, who in track.failures if who != user]
        dropped = len(track.failures) - len(kept)
        track.failures.clear()
        track.failures.extend(kept)
        if not kept:
            del self._tracks[key]
        return dropped

    def ban(self, addr: str, *, now: float, reason: str) -> BanEvent | None:
        """Ban ``addr`` now for another reason (a scanner verdict); None if allow-listed.

        An address already banned keeps its ban (None is returned).
        """
        self._expire(now)
        key = source_key(addr)
        if self.is_banned(key, now=now) or self.is_allowed(key):
            return None
        self._tracks.pop(key, None)
        ban = Ban(key, now, now + self.config.ban_time, 0, reason)
        self._put(ban)
        return BanEvent(ban, None)

    def unban(self, addr: str) -> bool:
        """``sip unban ADDR``: lift the ban and forget the failures; False if it was not banned."""
        key = source_key(addr)
        self._tracks.pop(key, None)
        return self._bans.pop(key, None) is not None

    def reconfigure(self, config: BanConfig) -> None:
        """New settings (a reload): bans and recent failures are kept, allow-listed addresses
        are unbanned and forgotten, and the tables are cut to the new bounds."""
        self.config = config
        for key in [k for k in self._bans if self.is_allowed(k)]:
            del self._bans[key]
        while len(self._bans) > config.max_bans:
            self._bans.popitem(last=False)
        tracks: OrderedDict[str, _Track] = OrderedDict()
        for key, old in self._tracks.items():
            if not self.is_allowed(key):
                track = tracks[key] = _Track(config.failures)
                track.failures.extend(old.failures)
        while len(tracks) > config.max_tracked:
            tracks.popitem(last=False)
        self._tracks = tracks

    # -- internals -------------------------------------------------------------------------

    def _put(self, ban: Ban) -> None:
        self._bans.pop(ban.addr, None)
        self._bans[ban.addr] = ban
        while len(self._bans) > self.config.max_bans:
            self._bans.popitem(last=False)  # the oldest ban, which expires first

    def _expire(self, now: float, *, everything: bool = False) -> None:
        """Drop expired bans from the front (bans share one duration, so the front expires
        first); ``everything`` scans the whole table."""
        if everything:
            for key in [k for k, b in self._bans.items() if not b.active(now)]:
                del self._bans[key]
            return
        while self._bans:
            key, ban = next(iter(self._bans.items()))
            if ban.active(now):
                break
            del self._bans[key]
