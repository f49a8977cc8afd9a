"""The abuse guard of one SIP service: ban, size, rate and scanner checks on every message.

RFC 3261 §26.1.5 (denial of service) and §22 (authentication failures); issue 9 items 3 and 4.
:meth:`Guard.screen` is installed as the SIP stack's ``inbound_filter``: it sees each received
datagram (or framed TCP message) *before* it is parsed and says whether it may go on. The
checks run cheapest first, so a flood costs little once its source is known:

1. a banned source is dropped silently (one dictionary lookup; counted);
2. a message larger than ``maxmessagesize`` bytes is dropped;
3. a glance at the head (:func:`peek`: method, To tag, users, User-Agent, header count)
   classifies it; over the source's request rate (:mod:`pypbx.security.ratelimit`) it is
   dropped;
4. more than ``maxheaders`` header lines: dropped;
5. out-of-dialog requests feed the scanner detector (:mod:`pypbx.security.scanner`): a verdict
   bans the source at once (many distinct user names, an OPTIONS sweep, a run of 404s, with a
   scanner User-Agent lowering the thresholds).

Authentication outcomes come from the glue: :meth:`Guard.auth_failed` (a wrong password or
an unknown user; never the first challenged request) counts towards a ban
(:mod:`pypbx.security.bans`); :meth:`Guard.auth_ok` forgets that user's failures, lets the
source past the global rate bucket and clears its distinct-user count. Peers matched by host
(trunks) are passed to :meth:`Guard.set_peer_hosts`: the scanner does not judge them and they
skip the global bucket (they are still banned for failures and limited per source). A source
that authenticated within the last hour is not judged by the user names it tries (an office
of phones behind one NAT address boots all at once); its OPTIONS are still counted.

Every ban is one log line (``on_ban``), which an external fail2ban can read too::

    SECURITY: banned 127.0.0.9 for 3600 s after 5 failed authentications (last user '1000')

Limit drops are reported through ``on_notice`` at most once a second per kind, with the number
of drops folded in, so a flood cannot flood the log.

Configuration, sip.conf ``[general]`` (pypbx's own keys; chan_sip has none of them):

=====================  =========  ==========================================================
``banfailures``        5          failed authentications that ban a source ...
``banwindow``          600        ... within this many seconds
``bantime``            3600       seconds a ban lasts
``banallow``           (none)     network never banned, judged or rate-limited (repeat)
``ratelimit``          20         out-of-dialog requests per second per source (burst 3x;
                                  a source that authenticated gets 50x); 0: no rate limit
``maxheaders``         64         header lines in one message (chan_sip's SIP_MAX_HEADERS)
``maxmessagesize``     65535      bytes in one datagram or TCP message
``registrationlimit``  10         live contacts per peer (the registrar answers 503)
=====================  =========  ==========================================================

``banfailures``/``banwindow``/``bantime`` fall back to pypbx.conf ``[security]``
``ban_failures``/``ban_window``/``ban_time`` when sip.conf does not set them. Loopback and
``localnet`` are *not* exempt by default: an attacker can sit there too.

Pure: time is the ``now`` argument; the tables below are all bounded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from pypbx.config.pypbxconf import Security
from pypbx.config.sipmodel import General
from pypbx.security.bans import Ban, BanConfig, BanEvent, BanList, source_key
from pypbx.security.ratelimit import BucketSpec, RateLimitConfig, RateLimiter, TrafficClass
from pypbx.security.scanner import ScannerConfig, ScannerDetector

__all__ = [
    "Drop",
    "Guard",
    "GuardConfig",
    "Peek",
    "peek",
]

_HEAD_LIMIT: Final = 16384  # bytes of a message :func:`peek` looks at
_FIELD_LIMIT: Final = 256
_NOTICE_INTERVAL: Final = 1.0


class Drop(StrEnum):
    """Why :meth:`Guard.screen` dropped a message."""

    BANNED = "banned source"
    OVERSIZE = "message too large"
    RATE = "over the request rate"
    HEADERS = "too many headers"
    SCANNER = "scanner"


@dataclass(frozen=True, slots=True)
class Peek:
    """What :func:`peek` saw at the head of a message (no validation: a hint for the guard).

    ``method`` is None for a response. ``user`` is the Request-URI user part, ``to_user`` the
    To URI's, ``target`` the whole Request-URI; all are cut to 256 characters.
    """

    method: str | None
    target: str = ""
    user: str = ""
    to_user: str = ""
    to_tag: bool = False
    user_agent: str | None = None
    headers: int = 0

    @property
    def traffic(self) -> TrafficClass:
        """Responses and requests inside a dialog (or ACK/CANCEL) are in-dialog traffic."""
        if self.method is None or self.to_tag or self.method in ("ACK", "CANCEL", "BYE"):
            return TrafficClass.IN_DIALOG
        return TrafficClass.INITIAL


def _text(raw: bytes) -> str:
    return raw[:_FIELD_LIMIT].decode("utf-8", "replace").strip()


def _uri_user(uri: str) -> str:
    """The user part of ``sip:user@host`` / ``<sip:user@host>;tag`` (empty if none)."""
    start = uri.find("<")
    if start >= 0:
        end = uri.find(">", start)
        uri = uri[start + 1 : end if end > 0 else None]
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.strip().lower() not in ("sip", "sips", "tel"):
        return ""
    user, at, _ = rest.partition("@")
    if not at and scheme.strip().lower() != "tel":
        return ""
    return user.split(";", 1)[0]


_TO = re.compile(rb"\n[ \t]*(?:to|t)[ \t]*:([^\r\n]*)", re.IGNORECASE)
_AGENT = re.compile(rb"\n[ \t]*user-agent[ \t]*:([^\r\n]*)", re.IGNORECASE)
_TAG = re.compile(rb";[ \t]*tag[ \t]*=", re.IGNORECASE)


def peek(data: bytes) -> Peek:
    """Glance at the first line and headers of a SIP message without parsing it properly
    (a few C-level searches: it runs for every datagram of a flood).

    Never raises: anything unreadable gives a request with the method ``"?"``.
    """
    head = _head(data)
    headers = head.count(b"\n")
    eol = head.find(b"\n")
    first = (head if eol < 0 else head[:eol]).strip()
    if first.startswith(b"SIP/"):
        return Peek(None, headers=headers)
    parts = first.split(b" ")
    method = _text(parts[0]).upper() if parts[0].isalpha() else "?"
    target = _text(parts[1]) if len(parts) == 3 else ""
    to_user = ""
    to_tag = False
    found = _TO.search(head)
    if found is not None:
        value = found.group(1)
        to_tag = _TAG.search(value) is not None
        to_user = _uri_user(_text(value))
    agent_found = _AGENT.search(head)
    agent = _text(agent_found.group(1)) if agent_found is not None else None
    return Peek(method, target, _uri_user(target), to_user, to_tag, agent, headers)


_IN_DIALOG_METHODS: Final = (b"ACK ", b"CANCEL ", b"BYE ")
_UNLIMITED: Final = BucketSpec(rate=1e12, burst=1e12)


def _head(data: bytes) -> bytes:
    head = data[:_HEAD_LIMIT]
    end = head.find(b"\r\n\r\n")
    if end < 0:
        end = head.find(b"\n\n")
    return head if end < 0 else head[:end]


def _classify(data: bytes) -> tuple[bytes, bool, TrafficClass]:
    """(head, is a response, traffic class): the least the rate check needs, cheaply."""
    head = _head(data)
    if head.startswith(b"SIP/"):
        return head, True, TrafficClass.IN_DIALOG
    if head.startswith(_IN_DIALOG_METHODS):
        return head, False, TrafficClass.IN_DIALOG
    found = _TO.search(head)
    if found is not None and _TAG.search(found.group(1)) is not None:
        return head, False, TrafficClass.IN_DIALOG
    return head, False, TrafficClass.INITIAL


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Everything the guard needs: the three detectors' settings and the message limits."""

    bans: BanConfig = field(default_factory=BanConfig)
    rate: RateLimitConfig = field(default_factory=RateLimitConfig)
    scanner: ScannerConfig = field(default_factory=ScannerConfig)
    max_headers: int = 64
    max_message_size: int = 65535

    @classmethod
    def from_general(cls, general: General, security: Security | None = None) -> GuardConfig:
        """sip.conf ``[general]`` keys, falling back to pypbx.conf ``[security]`` for the
        ban thresholds (see the module docstring)."""
        base = security or Security()
        bans = BanConfig(
            failures=general.banfailures or base.ban_failures,
            window=float(general.banwindow or base.ban_window),
            ban_time=float(general.bantime or base.ban_time),
            allow=tuple(general.banallow) + tuple(base.allow),
        )
        rate = RateLimitConfig(exempt=bans.allow)
        if general.ratelimit == 0:  # no rate limit at all
            open_bucket = {tc: _UNLIMITED for tc in TrafficClass}
            rate = replace(rate, per_source=open_bucket, total=dict(open_bucket))
        elif general.ratelimit is not None:
            r = float(general.ratelimit)
            per_source = {**rate.per_source, TrafficClass.INITIAL: BucketSpec(rate=r, burst=3 * r)}
            rate = replace(rate, per_source=per_source)
        return cls(
            bans=bans,
            rate=rate,
            scanner=ScannerConfig(exempt=bans.allow),
            max_headers=general.maxheaders,
            max_message_size=general.maxmessagesize,
        )


class Guard:
    """Ban list + rate limiter + scanner detector, screening one SIP service's input.

    ``on_ban(event)`` is called for every new ban, ``on_notice(text)`` for rate-limited
    reports of dropped messages (see the module docstring). ``drops`` counts every drop by
    reason; ``passed`` the messages let through.
    """

    def __init__(
        self,
        config: GuardConfig | None = None,
        *,
        on_ban: Callable[[BanEvent], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
        now: float = 0.0,
    ) -> None:
        self.config = config or GuardConfig()
        self.on_ban = on_ban
        self.on_notice = on_notice
        self.bans = BanList(self.config.bans)
        self.rate = RateLimiter(self.config.rate, now=now)
        self.scanner = ScannerDetector(self.config.scanner)
        self.drops: Counter[Drop] = Counter()
        self.passed = 0
        self.ban_count = 0
        self._peer_hosts: frozenset[str] = frozenset()
        self._notices: dict[Drop, tuple[float, int]] = {}  # kind -> (last report, suppressed)

    # -- configuration ---------------------------------------------------------------------

    def reconfigure(self, config: GuardConfig, *, now: float) -> None:
        """A reload: bans, failure counts and trusted sources are kept; rate buckets and
        scanner counts start afresh when their settings changed."""
        if config.scanner != self.config.scanner:
            self.scanner = ScannerDetector(config.scanner)
        self.config = config
        self.bans.reconfigure(config.bans)
        self.rate.reconfigure(config.rate, now=now)

    def set_peer_hosts(self, hosts: frozenset[str] | set[str]) -> None:
        """The addresses of peers matched by host (trunks): not judged as scanners, and past
        the global rate bucket."""
        self._peer_hosts = frozenset(source_key(h) for h in hosts)

    # -- the inbound filter ----------------------------------------------------------------

    def screen(self, transport: str, data: bytes, host: str, *, now: float) -> bool:
        """True when the message ``data`` from ``host`` may reach the SIP core."""
        key = source_key(host)
        if self.bans.is_banned(key, now=now):
            self.drops[Drop.BANNED] += 1
            return False
        cfg = self.config
        if len(data) > cfg.max_message_size:
            return self._drop(Drop.OVERSIZE, key, now, f"{len(data)} bytes over {transport}")
        if key in self._peer_hosts and not self.rate.is_trusted(key, now=now):
            self.rate.trust(key, now=now)
        head, response, traffic = _classify(data)
        if not self.rate.allow(key, now=now, traffic=traffic):
            return self._drop(Drop.RATE, key, now, "response" if response else "request")
        headers = head.count(b"\n")
        if headers > cfg.max_headers:
            return self._drop(Drop.HEADERS, key, now, f"{headers} header lines")
        judged = not response and traffic is TrafficClass.INITIAL
        if judged and key not in self._peer_hosts and self._judged(key, head, now):
            seen = peek(data)  # the full glance only for what may start something new
            if self._scan(key, seen, now):
                return self._drop(Drop.SCANNER, key, now, seen.method or "?")
        self.passed += 1
        return True

    def _judged(self, key: str, head: bytes, now: float) -> bool:
        """Whether the scanner may have to see this request: not when the source is exempt,
        nor when it authenticated lately and this is not an OPTIONS (see :meth:`_scan`), so
        a phone's re-registration costs no :func:`peek`."""
        if self.scanner.is_exempt(key):
            return False
        if head.lstrip()[:7].upper() == b"OPTIONS":
            return True  # what peek() would read as OPTIONS: counted even when trusted
        return not self.rate.is_trusted(key, now=now)

    def _scan(self, key: str, seen: Peek, now: float) -> bool:
        method = seen.method or "?"
        if method != "OPTIONS" and self.rate.is_trusted(key, now=now):
            return False  # it authenticated lately: many users means many phones behind NAT
        user = seen.to_user if method == "REGISTER" else seen.user
        if method == "OPTIONS":
            user = seen.target
        verdict = self.scanner.observe_request(
            key, method=method, user=user, user_agent=seen.user_agent, now=now
        )
        if verdict is None:
            return False
        self._banned(self.bans.ban(key, now=now, reason=verdict.reason))
        return True

    # -- what the glue reports -------------------------------------------------------------

    def response_sent(self, host: str, status: int, *, now: float) -> None:
        """A final response went to ``host`` (a run of 404s is a scanner signal)."""
        key = source_key(host)
        if status != 404 or key in self._peer_hosts:
            return
        verdict = self.scanner.observe_response(key, status=status, now=now)
        if verdict is not None:
            self._banned(self.bans.ban(key, now=now, reason=verdict.reason))

    def auth_failed(
        self,
        host: str,
        user: str | None,
        *,
        now: float,
        reason: str = "failed authentications",
    ) -> BanEvent | None:
        """Credentials from ``host`` were refused (wrong password, unknown user): count it;
        the ban when this failure reaches the threshold."""
        event = self.bans.record_failure(host, now=now, reason=reason, user=user)
        self._banned(event)
        return event

    def auth_ok(self, host: str, *, user: str | None, now: float) -> None:
        """``host`` authenticated as ``user``: forget that user's failures, trust the source."""
        if user is not None:
            self.bans.record_success(host, user=user, now=now)
        self.rate.trust(host, now=now)
        self.scanner.observe_authenticated(host, now=now)

    # -- the operator ----------------------------------------------------------------------

    def active_bans(self, *, now: float) -> list[Ban]:
        """``sip show bans``: the bans in force, oldest first."""
        return self.bans.bans(now)

    def unban(self, host: str) -> bool:
        """``sip unban ADDR``: lift the ban and forget the source's history."""
        lifted = self.bans.unban(host)
        self.rate.forget(host)
        self.scanner.forget(host)
        return lifted

    # -- internals -------------------------------------------------------------------------

    def _banned(self, event: BanEvent | None) -> None:
        if event is None:
            return
        self.ban_count += 1
        self.rate.forget(event.ban.addr)
        self.scanner.forget(event.ban.addr)
        if self.on_ban is not None:
            self.on_ban(event)

    def _drop(self, kind: Drop, key: str, now: float, detail: str) -> bool:
        """Count a drop and report it, at most once a second per kind; always False."""
        self.drops[kind] += 1
        if self.on_notice is None or kind is Drop.SCANNER:
            return False
        last, suppressed = self._notices.get(kind, (float("-inf"), 0))
        if now - last < _NOTICE_INTERVAL:
            self._notices[kind] = (last, suppressed + 1)
            return False
        more = f" ({suppressed} more dropped since the last report)" if suppressed else ""
        self._notices[kind] = (now, 0)
        self.on_notice(f"SECURITY: dropped a message from {key}: {kind} ({detail}){more}")
        return False
