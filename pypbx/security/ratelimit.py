"""Requests per second per source address: token buckets in a bounded table (issue 9 item 3).

RFC 3261 §26.1.5 names request floods as a denial-of-service threat and leaves the defence to
implementations; this is the usual one. Each source address has one token bucket per
:class:`TrafficClass`, holding at most ``burst`` tokens and refilled at ``rate`` tokens per
second; a request takes one token or is refused. A global bucket per class caps the sum over
all sources, so a flood from many addresses cannot starve the process either.

Out-of-dialog requests (REGISTER, INVITE, OPTIONS, ...) are :attr:`TrafficClass.INITIAL`;
requests inside a dialog (ACK, BYE, re-INVITE, anything with a To tag) and CANCEL are
:attr:`TrafficClass.IN_DIALOG` and have their own, larger buckets, so a flood of new requests
from one address cannot stop the calls that are already up from being hung up.

The table holds at most ``max_sources`` addresses (least recently seen dropped first): a
source that comes back after being dropped starts with a full bucket, which the global bucket
bounds. Time only moves forward here: a ``now`` earlier than the last one refills nothing.

A flood from many addresses empties the global bucket, and then legitimate requests would be
dropped with the flood. So the glue marks a source that has just authenticated as *trusted*
(:meth:`RateLimiter.trust`, for ``ttl`` seconds, at most ``max_sources`` of them): a trusted
source skips the global bucket, and its own buckets are ``trusted_factor`` times larger (an
SBC, a trunk or an office behind one NAT address sends far more than one phone). Only a
correct password (or being a peer matched by host) earns that, so a flood cannot; a flood
spoofing a trusted address is still bounded by the larger bucket.

Whether a source lies in an ``exempt`` network is decided once per source and remembered
(at most ``max_sources`` verdicts, all forgotten on a reconfigure): a flood from one address
does not pay for parsing it against the networks on every request.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

from pypbx.config.netaddr import Network
from pypbx.security.bans import source_key

__all__ = [
    "Bucket",
    "BucketSpec",
    "RateLimitConfig",
    "RateLimiter",
    "TrafficClass",
    "classify",
]


class TrafficClass(StrEnum):
    INITIAL = "initial"
    IN_DIALOG = "in-dialog"


def classify(method: str, *, to_tag: bool) -> TrafficClass:
    """The class of a request: in-dialog when it has a To tag, or is ACK or CANCEL."""
    if to_tag or method.upper() in ("ACK", "CANCEL"):
        return TrafficClass.IN_DIALOG
    return TrafficClass.INITIAL


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """A token bucket's shape: ``rate`` tokens per second, at most ``burst`` held."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.rate >= 0 and self.burst >= 1):
            raise ValueError("a bucket needs rate >= 0 and burst >= 1")


def _per_source() -> dict[TrafficClass, BucketSpec]:
    return {
        TrafficClass.INITIAL: BucketSpec(rate=20.0, burst=60.0),
        TrafficClass.IN_DIALOG: BucketSpec(rate=100.0, burst=300.0),
    }


def _global() -> dict[TrafficClass, BucketSpec]:
    return {
        TrafficClass.INITIAL: BucketSpec(rate=2000.0, burst=4000.0),
        TrafficClass.IN_DIALOG: BucketSpec(rate=5000.0, burst=10000.0),
    }


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """Bucket shapes per traffic class, per source and in total; the table bound; exemptions.

    ``exempt`` networks are never limited (nothing is exempt by default); a trusted source's
    buckets are ``trusted_factor`` times the ``per_source`` ones.
    """

    per_source: dict[TrafficClass, BucketSpec] = field(default_factory=_per_source)
    total: dict[TrafficClass, BucketSpec] = field(default_factory=_global)
    max_sources: int = 10_000
    exempt: tuple[Network, ...] = ()
    trusted_factor: float = 50.0

    def __post_init__(self) -> None:
        if self.max_sources < 1 or not self.trusted_factor >= 1:
            raise ValueError("max_sources and trusted_factor must be at least 1")
        for table in (self.per_source, self.total):
            missing = set(TrafficClass) - set(table)
            if missing:
                raise ValueError(f"no bucket for {sorted(missing)}")


class Bucket:
    """A mutable token bucket (not a value: it changes with every request)."""

    __slots__ = ("spec", "stamp", "tokens")

    def __init__(self, spec: BucketSpec, now: float) -> None:
        self.spec = spec
        self.tokens = spec.burst
        self.stamp = now

    def refill(self, now: float) -> None:
        elapsed = now - self.stamp
        if elapsed > 0:  # False for a clock going back and for NaN
            self.tokens = min(self.spec.burst, self.tokens + elapsed * self.spec.rate)
            self.stamp = now

    def has_token(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= 1

    def take(self) -> None:
        self.tokens -= 1


class RateLimiter:
    """Per-source and global token buckets; :meth:`allow` is O(1) per request."""

    def __init__(self, config: RateLimitConfig | None = None, *, now: float = 0.0) -> None:
        self.config = config or RateLimitConfig()
        self._sources: OrderedDict[str, dict[TrafficClass, Bucket]] = OrderedDict()
        self._total = {tc: Bucket(self.config.total[tc], now) for tc in TrafficClass}
        self._trusted_specs = self._scaled(self.config)
        self._trusted: OrderedDict[str, float] = OrderedDict()  # key -> until
        self._exempt: dict[str, bool] = {}  # key -> in an exempt network (bounded)
        self.allowed = 0
        self.denied = 0

    @staticmethod
    def _scaled(config: RateLimitConfig) -> dict[TrafficClass, BucketSpec]:
        k = config.trusted_factor
        return {
            tc: BucketSpec(rate=spec.rate * k, burst=spec.burst * k)
            for tc, spec in config.per_source.items()
        }

    def __len__(self) -> int:
        """How many sources have buckets (at most ``max_sources``)."""
        return len(self._sources)

    def allow(self, addr: str, *, now: float, traffic: TrafficClass = TrafficClass.INITIAL) -> bool:
        """Take a token for one request from ``addr``; False when it must be dropped.

        A refused request takes no token from either bucket.
        """
        key = source_key(addr)
        cfg = self.config
        if cfg.exempt and self.is_exempt(key):
            self.allowed += 1
            return True
        buckets = self._sources.get(key)
        if buckets is None:
            buckets = self._sources[key] = {}
            while len(self._sources) > cfg.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(key)
        trusted = self.is_trusted(key, now=now)
        spec = self._trusted_specs[traffic] if trusted else cfg.per_source[traffic]
        bucket = buckets.get(traffic)
        if bucket is None or bucket.spec is not spec:  # new, or trust began or ended
            old = bucket
            bucket = buckets[traffic] = Bucket(spec, now)
            if old is not None and not trusted:
                bucket.tokens = min(spec.burst, old.tokens)
        total = None if trusted else self._total[traffic]
        if not (bucket.has_token(now) and (total is None or total.has_token(now))):
            self.denied += 1
            return False
        bucket.take()
        if total is not None:
            total.take()
        self.allowed += 1
        return True

    def is_exempt(self, addr: str) -> bool:
        """True when ``addr`` lies in one of the ``exempt`` networks (remembered per source)."""
        key = source_key(addr)
        verdict = self._exempt.get(key)
        if verdict is None:
            verdict = any(net.contains(key) for net in self.config.exempt)
            if len(self._exempt) >= self.config.max_sources:
                self._exempt.clear()  # a sweep of many addresses: start the memo afresh
            self._exempt[key] = verdict
        return verdict

    def trust(self, addr: str, *, now: float, ttl: float = 3600.0) -> None:
        """``addr`` just authenticated: let it past the global bucket until ``now + ttl``."""
        key = source_key(addr)
        self._trusted.pop(key, None)
        self._trusted[key] = now + ttl
        while len(self._trusted) > self.config.max_sources:
            self._trusted.popitem(last=False)

    def is_trusted(self, addr: str, *, now: float) -> bool:
        until = self._trusted.get(source_key(addr))
        return until is not None and now < until

    @property
    def trusted(self) -> int:
        """How many sources are trusted (at most ``max_sources``)."""
        return len(self._trusted)

    def reconfigure(self, config: RateLimitConfig, *, now: float) -> None:
        """New settings (a reload): buckets start full under the new shapes; the trusted
        sources stay trusted (a reload must not expose phones to a flood's global bucket)."""
        if config == self.config:
            return
        self.config = config
        self._sources.clear()
        self._exempt.clear()
        self._total = {tc: Bucket(config.total[tc], now) for tc in TrafficClass}
        self._trusted_specs = self._scaled(config)
        while len(self._trusted) > config.max_sources:
            self._trusted.popitem(last=False)

    def forget(self, addr: str) -> None:
        """Drop the buckets and the trust of ``addr`` (after an unban or a ban, say)."""
        key = source_key(addr)
        self._sources.pop(key, None)
        self._trusted.pop(key, None)
