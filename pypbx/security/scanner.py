"""Recognise SIP scanners by what they do, per source address (issue 9 item 3).

Tools such as SIPVicious (``svmap``, ``svwar``, ``svcrack``), sipcli and the many clones sweep
a PBX in recognisable ways (RFC 3261 §26.1 threats; the SIPVicious manual describes each
mode): OPTIONS to many Request-URIs to map what answers, REGISTER or INVITE to many user names
to enumerate extensions, and a run of 404 answers for numbers that do not exist. Each of these
is counted per source inside a fixed window (``window`` seconds from the first event seen); a
count reaching its threshold gives a :class:`ScanVerdict`, which the glue turns into a ban
(:meth:`pypbx.security.bans.BanList.ban`).

A known scanner User-Agent (``friendly-scanner``, ``sipvicious``, ``sipcli``,
``VaxSIPUserAgent`` ...) is one signal among several, not a verdict by itself: the header is
free text, and a spoofed UDP datagram carrying it must not be enough to ban a real peer. It
divides the other thresholds by ``ua_factor`` (so two distinct user names from a
``friendly-scanner`` are enough by default).

Trunks and busy phones send INVITEs for many numbers. The glue does not feed requests from
peers matched by host (``insecure=invite``), and reports each successful authentication
(:meth:`ScannerDetector.observe_authenticated`): that clears the source's distinct-user count,
so the challenged first INVITE of every call a phone makes never adds up to a scan. Only a
valid password earns it; OPTIONS sweeps and 404 runs are still counted.

Memory is bounded: at most ``max_sources`` sources are tracked (least recently seen dropped
first), and each keeps at most one threshold's worth of distinct names, each cut to 64
characters. Whether a source is in an ``exempt`` network is decided once and remembered (at
most ``max_sources`` verdicts; a new configuration means a new detector).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pypbx.config.netaddr import Network
from pypbx.security.bans import source_key

__all__ = [
    "SCANNER_AGENTS",
    "ScanSignal",
    "ScanVerdict",
    "ScannerConfig",
    "ScannerDetector",
    "is_scanner_agent",
]

# Lower-case fragments of User-Agent values sent by known scanning tools.
SCANNER_AGENTS: Final = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "vaxsipuseragent",
    "sip-scan",
    "sipsak",
    "sundayddr",
    "iwar",
    "sivus",
    "smap",
    "pplsip",
    "voipsec",
    "siparmyknife",
    "sip auditor",
)
_MAX_NAME: Final = 64


def is_scanner_agent(user_agent: str | None) -> bool:
    """True when the User-Agent contains a known scanner's name (case-insensitive)."""
    if not user_agent:
        return False
    ua = user_agent[:256].lower()
    return any(name in ua for name in SCANNER_AGENTS)


class ScanSignal(StrEnum):
    DISTINCT_USERS = "distinct users"
    OPTIONS_SWEEP = "options sweep"
    NOT_FOUND = "404 answers"
    SCANNER_AGENT = "scanner user agent"


_METHOD_SIGNAL: Final = {
    "OPTIONS": ScanSignal.OPTIONS_SWEEP,
    "REGISTER": ScanSignal.DISTINCT_USERS,
    "INVITE": ScanSignal.DISTINCT_USERS,
    "SUBSCRIBE": ScanSignal.DISTINCT_USERS,
    "MESSAGE": ScanSignal.DISTINCT_USERS,
}


@dataclass(frozen=True, slots=True)
class ScannerConfig:
    """Thresholds per ``window`` seconds; ``exempt`` networks are never judged."""

    window: float = 60.0
    distinct_users: int = 10
    options_sweep: int = 10
    not_found: int = 10
    ua_factor: int = 5
    max_sources: int = 10_000
    exempt: tuple[Network, ...] = ()

    def __post_init__(self) -> None:
        if min(self.distinct_users, self.options_sweep, self.not_found, self.ua_factor) < 1:
            raise ValueError("thresholds and ua_factor must be at least 1")
        if self.max_sources < 1 or not self.window > 0:
            raise ValueError("max_sources must be at least 1 and window positive")


@dataclass(frozen=True, slots=True)
class ScanVerdict:
    """A source judged to be a scanner: the signals seen and the counts that decided."""

    addr: str
    signals: tuple[ScanSignal, ...]
    counts: tuple[tuple[ScanSignal, int], ...]
    user_agent: str | None = None

    @property
    def reason(self) -> str:
        """Short text for the ban record: ``scanner (distinct users 10, scanner user agent)``."""
        parts = [f"{signal} {count}" for signal, count in self.counts]
        if ScanSignal.SCANNER_AGENT in self.signals:
            parts.append(str(ScanSignal.SCANNER_AGENT))
        return f"scanner ({', '.join(parts)})"


class _Source:
    __slots__ = ("agent", "not_found", "options", "start", "users")

    def __init__(self, now: float) -> None:
        self.start = now
        self.users: set[str] = set()
        self.options: set[str] = set()
        self.not_found = 0
        self.agent: str | None = None


class ScannerDetector:
    """Per-source behaviour counters; each ``observe_*`` may hand back a verdict once."""

    def __init__(self, config: ScannerConfig | None = None) -> None:
        self.config = config or ScannerConfig()
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self._exempt: dict[str, bool] = {}  # key -> in an exempt network (bounded)

    def __len__(self) -> int:
        """How many sources are tracked (at most ``max_sources``)."""
        return len(self._sources)

    def observe_request(
        self,
        addr: str,
        *,
        method: str,
        user: str | None,
        user_agent: str | None = None,
        now: float,
    ) -> ScanVerdict | None:
        """An out-of-dialog request from ``addr``; ``user`` is the To (REGISTER) or
        Request-URI user (others) it targets."""
        src = self._source(addr, now)
        if src is None:
            return None
        if src.agent is None and is_scanner_agent(user_agent):
            src.agent = (user_agent or "")[:_MAX_NAME]
        name = (user or "")[:_MAX_NAME]
        signal = _METHOD_SIGNAL.get(method.upper())
        if signal is not None:
            names = src.options if signal is ScanSignal.OPTIONS_SWEEP else src.users
            if len(names) < self._limits()[signal]:
                names.add(name)
        return self._judge(addr, src)

    def observe_response(self, addr: str, *, status: int, now: float) -> ScanVerdict | None:
        """A final response pypbx sent to ``addr`` (only 404 counts)."""
        if status != 404:
            return None
        src = self._source(addr, now)
        if src is None:
            return None
        src.not_found += 1
        return self._judge(addr, src)

    def observe_authenticated(self, addr: str, *, now: float) -> None:
        """A request from ``addr`` passed digest authentication: forget its distinct users."""
        src = self._sources.get(source_key(addr))
        if src is not None and now - src.start < self.config.window:
            src.users.clear()

    def forget(self, addr: str) -> None:
        self._sources.pop(source_key(addr), None)

    def is_exempt(self, addr: str) -> bool:
        """True when ``addr`` lies in an ``exempt`` network: never judged (remembered)."""
        if not self.config.exempt:
            return False
        key = source_key(addr)
        verdict = self._exempt.get(key)
        if verdict is None:
            verdict = any(net.contains(key) for net in self.config.exempt)
            if len(self._exempt) >= self.config.max_sources:
                self._exempt.clear()
            self._exempt[key] = verdict
        return verdict

    # -- internals -------------------------------------------------------------------------

    def _source(self, addr: str, now: float) -> _Source | None:
        cfg = self.config
        key = source_key(addr)
        if cfg.exempt and self.is_exempt(key):
            return None
        src = self._sources.get(key)
        if src is None or not now - src.start < cfg.window:
            src = _Source(now)
            self._sources.pop(key, None)
            self._sources[key] = src
            while len(self._sources) > cfg.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(key)
        return src

    def _limits(self) -> dict[ScanSignal, int]:
        cfg = self.config
        return {
            ScanSignal.DISTINCT_USERS: cfg.distinct_users,
            ScanSignal.OPTIONS_SWEEP: cfg.options_sweep,
            ScanSignal.NOT_FOUND: cfg.not_found,
        }

    def _threshold(self, limit: int, *, agent: bool) -> int:
        """The count that convicts: ``limit``, or with a scanner agent ``ceil(limit /
        ua_factor)`` but never less than 2 (the agent alone is not enough)."""
        if not agent:
            return limit
        return max(2, -(-limit // self.config.ua_factor))

    def _judge(self, addr: str, src: _Source) -> ScanVerdict | None:
        counts = {
            ScanSignal.DISTINCT_USERS: len(src.users),
            ScanSignal.OPTIONS_SWEEP: len(src.options),
            ScanSignal.NOT_FOUND: src.not_found,
        }
        hit = [
            (signal, counts[signal])
            for signal, limit in self._limits().items()
            if counts[signal] >= self._threshold(limit, agent=src.agent is not None)
        ]
        if not hit:
            return None
        key = source_key(addr)
        del self._sources[key]  # judged: start afresh (the glue bans it)
        signals = tuple(s for s, _ in hit)
        if src.agent is not None:
            signals += (ScanSignal.SCANNER_AGENT,)
        return ScanVerdict(key, signals, tuple(hit), src.agent)
