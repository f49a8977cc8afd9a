"""Scanner detection: behaviour thresholds per window, User-Agent as one signal, bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.config.netaddr import parse_network
from pypbx.security.bans import BanList
from pypbx.security.scanner import (
    ScannerConfig,
    ScannerDetector,
    ScanSignal,
    ScanVerdict,
    is_scanner_agent,
)

SRC = "203.0.113.5"


def sweep(
    det: ScannerDetector,
    method: str,
    users: list[str],
    *,
    agent: str | None = None,
    start: float = 0.0,
    step: float = 0.1,
) -> list[ScanVerdict | None]:
    return [
        det.observe_request(SRC, method=method, user=u, user_agent=agent, now=start + i * step)
        for i, u in enumerate(users)
    ]


@pytest.mark.parametrize(
    ("agent", "scanner"),
    [
        ("friendly-scanner", True),
        ("Friendly-Scanner 1.0", True),
        ("sipvicious", True),
        ("sipcli/v1.8", True),
        ("VaxSIPUserAgent/3.1", True),
        ("pypbx", False),
        ("Linphone/5.2", False),
        ("", False),
        (None, False),
    ],
)
def test_known_agents(agent: str | None, scanner: bool) -> None:
    assert is_scanner_agent(agent) is scanner


@pytest.mark.parametrize(
    ("method", "signal"),
    [
        ("REGISTER", ScanSignal.DISTINCT_USERS),
        ("INVITE", ScanSignal.DISTINCT_USERS),
        ("options", ScanSignal.OPTIONS_SWEEP),
    ],
)
def test_distinct_targets_reach_threshold(method: str, signal: ScanSignal) -> None:
    det = ScannerDetector(ScannerConfig(distinct_users=10, options_sweep=10))
    verdicts = sweep(det, method, [str(100 + i) for i in range(10)])
    assert verdicts[:9] == [None] * 9
    verdict = verdicts[9]
    assert verdict is not None
    assert verdict.addr == SRC
    assert verdict.signals == (signal,)
    assert verdict.counts == ((signal, 10),)
    assert verdict.reason == f"scanner ({signal} 10)"


def test_repeating_one_user_is_not_a_scan() -> None:
    det = ScannerDetector()
    assert sweep(det, "REGISTER", ["1000"] * 500) == [None] * 500


def test_a_busy_phone_that_authenticates_is_not_a_scanner() -> None:
    """Each call's first INVITE draws a challenge (no credentials), then it authenticates."""
    det = ScannerDetector(ScannerConfig(distinct_users=3, options_sweep=3))
    for i in range(30):
        assert det.observe_request(SRC, method="INVITE", user=f"555{i:04}", now=i) is None
        det.observe_authenticated(SRC, now=i + 0.1)
    # authentication does not excuse an OPTIONS sweep
    assert sweep(det, "OPTIONS", ["a", "b"], start=40) == [None, None]
    det.observe_authenticated(SRC, now=40.5)
    assert sweep(det, "OPTIONS", ["c"], start=41)[0] is not None


def test_authenticated_unknown_source_is_harmless() -> None:
    det = ScannerDetector()
    det.observe_authenticated(SRC, now=0)
    assert len(det) == 0


def test_options_and_users_are_counted_apart() -> None:
    det = ScannerDetector(ScannerConfig(distinct_users=5, options_sweep=5))
    assert sweep(det, "OPTIONS", ["a", "b", "c", "d"]) == [None] * 4
    assert sweep(det, "INVITE", ["a", "b", "c", "d"], start=1) == [None] * 4
    assert sweep(det, "BYE", [str(i) for i in range(50)], start=2) == [None] * 50


def test_spread_beyond_window_is_not_a_scan() -> None:
    det = ScannerDetector(ScannerConfig(window=60, distinct_users=5))
    verdicts = sweep(det, "REGISTER", [str(i) for i in range(20)], step=20)
    assert verdicts == [None] * 20


def test_404_run() -> None:
    det = ScannerDetector(ScannerConfig(not_found=3))
    assert det.observe_response(SRC, status=404, now=0) is None
    assert det.observe_response(SRC, status=401, now=0) is None  # only 404 counts
    assert det.observe_response(SRC, status=404, now=1) is None
    verdict = det.observe_response(SRC, status=404, now=2)
    assert verdict is not None
    assert verdict.signals == (ScanSignal.NOT_FOUND,)


def test_agent_alone_is_not_a_verdict() -> None:
    det = ScannerDetector()
    assert sweep(det, "OPTIONS", ["100"] * 20, agent="friendly-scanner") == [None] * 20
    assert det.observe_response(SRC, status=404, now=3) is None


def test_agent_lowers_the_thresholds() -> None:
    det = ScannerDetector(ScannerConfig(distinct_users=10, ua_factor=5))
    verdicts = sweep(det, "REGISTER", ["100", "101"], agent="friendly-scanner")
    assert verdicts[0] is None
    verdict = verdicts[1]
    assert verdict is not None
    assert verdict.signals == (ScanSignal.DISTINCT_USERS, ScanSignal.SCANNER_AGENT)
    assert verdict.user_agent == "friendly-scanner"
    assert verdict.reason == "scanner (distinct users 2, scanner user agent)"


def test_agent_seen_once_counts_for_the_window() -> None:
    det = ScannerDetector(ScannerConfig(distinct_users=10, ua_factor=2))
    assert sweep(det, "INVITE", ["1"], agent="sipcli") == [None]
    verdicts = sweep(det, "INVITE", ["2", "3", "4", "5"], agent="Zoiper", start=1)
    assert verdicts[:3] == [None, None, None]
    assert verdicts[3] is not None


def test_verdict_is_given_once_then_counting_restarts() -> None:
    det = ScannerDetector(ScannerConfig(distinct_users=3))
    verdicts = sweep(det, "REGISTER", ["a", "b", "c", "d", "e"])
    assert [v is not None for v in verdicts] == [False, False, True, False, False]
    assert len(det) == 1


def test_exempt_network() -> None:
    cfg = ScannerConfig(distinct_users=2, exempt=(parse_network("203.0.113.0/24"),))
    det = ScannerDetector(cfg)
    assert sweep(det, "REGISTER", ["a", "b", "c"]) == [None] * 3
    assert det.observe_response(SRC, status=404, now=0) is None
    assert len(det) == 0


def test_exempt_verdicts_are_remembered_and_bounded() -> None:
    cfg = ScannerConfig(distinct_users=2, exempt=(parse_network("203.0.113.0/24"),), max_sources=4)
    det = ScannerDetector(cfg)
    for i in range(50):
        assert det.is_exempt(f"203.0.113.{i}")
        assert not det.is_exempt(f"198.51.100.{i}")
        assert len(det._exempt) <= 4
    outside = "198.51.100.1"
    for _ in range(3):  # remembered as not exempt: still judged
        assert det.is_exempt(outside) is False
    verdicts = [det.observe_request(outside, method="REGISTER", user=u, now=0) for u in ("a", "b")]
    assert verdicts[-1] is not None
    assert not ScannerDetector(ScannerConfig()).is_exempt("203.0.113.5")  # nothing exempt


def test_verdict_turns_into_a_ban() -> None:
    det = ScannerDetector(ScannerConfig(options_sweep=3))
    bans = BanList()
    verdict = sweep(det, "OPTIONS", ["1", "2", "3"])[-1]
    assert verdict is not None
    event = bans.ban(verdict.addr, now=1, reason=verdict.reason)
    assert event is not None
    assert event.log_line == "SECURITY: banned 203.0.113.5 for 3600 s: scanner (options sweep 3)"
    assert bans.is_banned(SRC, now=2)


def test_flood_of_distinct_sources_keeps_table_bounded() -> None:
    det = ScannerDetector(ScannerConfig(max_sources=1000))
    for i in range(100_000):
        addr = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        det.observe_request(addr, method="REGISTER", user=str(i), now=i * 1e-4)
    assert len(det) == 1000


def test_names_are_cut_short() -> None:
    """A source sending long, ever-new names keeps each of them at 64 characters at most."""
    det = ScannerDetector(ScannerConfig(distinct_users=10**6))
    for i in range(2000):
        det.observe_request(SRC, method="INVITE", user=f"{i}" + "x" * 10_000, now=0)
    src = det._sources[SRC]
    assert all(len(name) <= 64 for name in src.users)


@pytest.mark.parametrize(
    "kwargs",
    [{"distinct_users": 0}, {"ua_factor": 0}, {"max_sources": 0}, {"window": 0}],
)
def test_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ScannerConfig(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["10.0.0.1", "10.0.0.2", "::1", "bogus", "10.0.0.3"]),
            st.one_of(
                st.sampled_from(["REGISTER", "INVITE", "OPTIONS", "BYE", "x"]),
                st.integers(100, 699),
            ),
            st.one_of(st.none(), st.text(max_size=8)),
            st.one_of(st.none(), st.sampled_from(["friendly-scanner", "Linphone"]), st.text()),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
        max_size=80,
    )
)
def test_never_raises_and_stays_bounded(
    ops: list[tuple[str, str | int, str | None, str | None, float]],
) -> None:
    det = ScannerDetector(
        ScannerConfig(distinct_users=3, options_sweep=3, not_found=3, max_sources=2)
    )
    for addr, what, user, agent, now in ops:
        if isinstance(what, int):
            verdict = det.observe_response(addr, status=what, now=now)
        else:
            verdict = det.observe_request(addr, method=what, user=user, user_agent=agent, now=now)
        if verdict is not None:
            assert verdict.signals
            assert verdict.reason.startswith("scanner (")
        assert len(det) <= 2
