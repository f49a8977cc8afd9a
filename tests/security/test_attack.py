"""The three guards together under a simulated attack (pure: explicit ``now``, no sockets).

The glue is expected to run them in this order for every request: drop if banned, drop if
over the rate, feed the scanner (a verdict bans), then authenticate and report the outcome
to the ban list. This file plays that glue against a password-guessing run, an extension scan
and a many-source flood, with a legitimate phone working all the while.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pypbx.security.bans import BanList
from pypbx.security.ratelimit import RateLimiter, TrafficClass
from pypbx.security.scanner import ScannerDetector

PHONE = "192.0.2.10"
ATTACKER = "198.51.100.66"


@dataclass
class Guard:
    bans: BanList = field(default_factory=BanList)
    rate: RateLimiter = field(default_factory=RateLimiter)
    scanner: ScannerDetector = field(default_factory=ScannerDetector)
    processed: dict[str, int] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def request(
        self,
        addr: str,
        *,
        user: str,
        good_password: bool | None,
        now: float,
        agent: str = "x",
    ) -> str:
        """One REGISTER, with right, wrong or (None) no credentials; what happened to it."""
        if self.bans.is_banned(addr, now=now):
            return "dropped: banned"
        if not self.rate.allow(addr, now=now, traffic=TrafficClass.INITIAL):
            return "dropped: rate"
        verdict = self.scanner.observe_request(
            addr, method="REGISTER", user=user, user_agent=agent, now=now
        )
        if verdict is not None:
            event = self.bans.ban(addr, now=now, reason=verdict.reason)
            if event is not None:
                self.log.append(event.log_line)
            return "dropped: scanner"
        self.processed[addr] = self.processed.get(addr, 0) + 1
        if good_password is None:
            return "401"  # the challenge: not a failure
        if good_password:
            self.bans.record_success(addr, user=user, now=now)
            self.rate.trust(addr, now=now)
            self.scanner.observe_authenticated(addr, now=now)
            return "200"
        event = self.bans.record_failure(addr, now=now, reason="wrong password", user=user)
        if event is not None:
            self.log.append(event.log_line)
        return "403"


def test_password_guessing_is_banned_after_five_while_the_phone_keeps_working() -> None:
    guard = Guard()
    phone_ok = 0
    for i in range(10_000):  # 1,000 guesses a second for 10 s
        now = i / 1000
        guard.request(ATTACKER, user="1000", good_password=False, now=now)
        if i % 1000 == 0:  # the real phone re-registers every second
            phone_ok += guard.request(PHONE, user="1000", good_password=True, now=now) == "200"
    assert guard.processed[ATTACKER] == 5  # banned at the fifth failure, nothing processed after
    assert guard.bans.is_banned(ATTACKER, now=10)
    assert not guard.bans.is_banned(PHONE, now=10)  # no false ban
    assert phone_ok == 10
    assert guard.log == [
        "SECURITY: banned 198.51.100.66 for 3600 s after 5 failed authentications "
        "(last user '1000')"
    ]


def test_extension_scan_with_scanner_agent_is_banned_before_auth_bans() -> None:
    guard = Guard()
    results = [
        guard.request(
            ATTACKER, user=str(100 + i), good_password=False, now=i * 0.01, agent="friendly-scanner"
        )
        for i in range(50)
    ]
    assert results[:2] == ["403", "dropped: scanner"]
    assert set(results[2:]) == {"dropped: banned"}
    assert guard.log == [
        "SECURITY: banned 198.51.100.66 for 3600 s: scanner (distinct users 2, scanner user agent)"
    ]


def test_enumeration_without_credentials_is_caught_by_behaviour() -> None:
    """svwar-style: REGISTER without credentials to many users draws only challenges (never an
    auth failure), and an innocent User-Agent: the distinct user names give it away."""
    guard = Guard()
    results = [
        guard.request(ATTACKER, user=f"{200 + i}", good_password=None, now=i * 0.5)
        for i in range(12)
    ]
    assert results == ["401"] * 9 + ["dropped: scanner", "dropped: banned", "dropped: banned"]
    assert guard.bans.failures(ATTACKER, now=6) == 0
    assert not guard.bans.is_banned(PHONE, now=6)


def test_a_phone_retrying_its_challenge_is_never_banned() -> None:
    guard = Guard()
    for i in range(1000):  # every registration draws a challenge, then succeeds
        assert guard.request(PHONE, user="1000", good_password=None, now=i * 60.0) == "401"
        assert guard.request(PHONE, user="1000", good_password=True, now=i * 60.0 + 0.1) == "200"
    assert guard.log == []


@pytest.mark.parametrize("sources", [50, 5000])
def test_flood_from_many_sources_leaves_the_phone_registering(sources: int) -> None:
    guard = Guard()
    phone = []
    for i in range(20_000):
        now = i / 2000  # 2,000 requests a second from the flood, for 10 s
        addr = f"10.0.{(i % sources) >> 8}.{(i % sources) & 255}"
        guard.request(addr, user="1000", good_password=False, now=now)
        if i % 2000 == 0:
            phone.append(guard.request(PHONE, user="1000", good_password=True, now=now))
    assert phone == ["200"] * 10
    assert len(guard.rate) <= guard.rate.config.max_sources
    assert len(guard.scanner) <= guard.scanner.config.max_sources
    assert guard.bans.tracked <= guard.bans.config.max_tracked
    assert not guard.bans.is_banned(PHONE, now=10)


def test_distributed_flood_beyond_the_global_cap_does_not_starve_the_phone() -> None:
    """10,000 requests a second from 5,000 addresses empty the global bucket; the phone,
    trusted since its last successful registration, still gets every request through."""
    guard = Guard()
    assert guard.request(PHONE, user="1000", good_password=True, now=0) == "200"
    phone = []
    dropped = 0
    for i in range(50_000):
        now = i / 10_000
        addr = f"10.1.{(i % 5000) >> 8}.{(i % 5000) & 255}"
        dropped += guard.request(addr, user="1000", good_password=None, now=now) == "dropped: rate"
        if i % 500 == 0:
            phone.append(guard.request(PHONE, user="1000", good_password=True, now=now))
    assert dropped > 25_000  # the global cap did bite
    assert phone == ["200"] * 100
