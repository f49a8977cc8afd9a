"""Token buckets per source and in total: burst, refill, classes, bounded table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.config.netaddr import parse_network
from pypbx.security.ratelimit import (
    BucketSpec,
    RateLimitConfig,
    RateLimiter,
    TrafficClass,
    classify,
)

INITIAL = TrafficClass.INITIAL
IN_DIALOG = TrafficClass.IN_DIALOG
BIG = BucketSpec(rate=1e6, burst=1e6)


def config(
    rate: float = 10,
    burst: float = 3,
    *,
    total: BucketSpec = BIG,
    max_sources: int = 100,
    trusted_factor: float = 1.0,
) -> RateLimitConfig:
    return RateLimitConfig(
        per_source={INITIAL: BucketSpec(rate, burst), IN_DIALOG: BucketSpec(rate * 10, burst)},
        total={INITIAL: total, IN_DIALOG: BIG},
        max_sources=max_sources,
        trusted_factor=trusted_factor,
    )


@pytest.mark.parametrize(
    ("method", "to_tag", "traffic"),
    [
        ("INVITE", False, INITIAL),
        ("REGISTER", False, INITIAL),
        ("options", False, INITIAL),
        ("INVITE", True, IN_DIALOG),  # re-INVITE
        ("BYE", True, IN_DIALOG),
        ("ACK", False, IN_DIALOG),
        ("CANCEL", False, IN_DIALOG),
    ],
)
def test_classify(method: str, to_tag: bool, traffic: TrafficClass) -> None:
    assert classify(method, to_tag=to_tag) is traffic


def test_burst_then_refused_then_refilled() -> None:
    rl = RateLimiter(config(rate=8, burst=3))
    assert [rl.allow("192.0.2.1", now=0) for _ in range(4)] == [True, True, True, False]
    assert not rl.allow("192.0.2.1", now=0.0625)  # half a token
    assert rl.allow("192.0.2.1", now=0.125)  # one token back
    assert not rl.allow("192.0.2.1", now=0.125)
    assert [rl.allow("192.0.2.1", now=100) for _ in range(4)] == [True, True, True, False]
    assert (rl.allowed, rl.denied) == (7, 4)


def test_sources_are_independent() -> None:
    rl = RateLimiter(config(burst=1))
    assert rl.allow("192.0.2.1", now=0)
    assert not rl.allow("192.0.2.1", now=0)
    assert rl.allow("192.0.2.2", now=0)


def test_in_dialog_has_its_own_bucket() -> None:
    """A flood of new requests does not stop a BYE from the same address."""
    rl = RateLimiter(config(burst=2))
    while rl.allow("192.0.2.1", now=0):
        pass
    assert rl.allow("192.0.2.1", now=0, traffic=IN_DIALOG)


def test_global_cap_limits_many_sources() -> None:
    rl = RateLimiter(config(burst=5, total=BucketSpec(rate=100, burst=10)))
    results = [rl.allow(f"10.0.0.{i}", now=0) for i in range(20)]
    assert results == [True] * 10 + [False] * 10
    assert rl.allow("10.0.0.99", now=0.01)  # 100/s: one token after 10 ms


def test_trusted_source_skips_the_global_bucket() -> None:
    rl = RateLimiter(config(burst=5, total=BucketSpec(rate=0, burst=3)))
    rl.trust("10.0.0.9", now=0, ttl=10)
    assert rl.is_trusted("10.0.0.9", now=9.9)
    assert [rl.allow(f"10.0.0.{i}", now=0) for i in range(5)] == [True] * 3 + [False] * 2
    # the global bucket is empty, but the trusted source still has its own five tokens
    assert [rl.allow("10.0.0.9", now=1) for _ in range(6)] == [True] * 5 + [False]
    # trust expires
    assert not rl.is_trusted("10.0.0.9", now=10)
    rl.forget("10.0.0.9")
    assert not rl.allow("10.0.0.9", now=11)


def test_trust_table_is_bounded_and_forget_drops_trust() -> None:
    rl = RateLimiter(config(max_sources=10))
    for i in range(1000):
        rl.trust(f"10.0.{i >> 8}.{i & 255}", now=0)
    assert rl.trusted == 10
    rl.trust("::1", now=0)
    rl.forget("[::1]")
    assert not rl.is_trusted("::1", now=0)


def test_refused_request_takes_no_token() -> None:
    rl = RateLimiter(config(burst=1, total=BucketSpec(rate=0, burst=1)))
    assert rl.allow("10.0.0.1", now=0)
    assert not rl.allow("10.0.0.2", now=0)  # global empty: 10.0.0.2 keeps its token
    rl2 = RateLimiter(config(burst=1, total=BucketSpec(rate=0, burst=2)))
    assert rl2.allow("10.0.0.1", now=0)
    assert not rl2.allow("10.0.0.1", now=0)  # per-source empty: global keeps its token
    assert rl2.allow("10.0.0.2", now=0)


def test_clock_going_back_refills_nothing() -> None:
    rl = RateLimiter(config(rate=8, burst=1))
    assert rl.allow("10.0.0.1", now=100)
    assert not rl.allow("10.0.0.1", now=50)
    assert not rl.allow("10.0.0.1", now=100.0625)
    assert rl.allow("10.0.0.1", now=100.125)


def test_exempt_networks_are_never_limited() -> None:
    cfg = RateLimitConfig(
        per_source={INITIAL: BucketSpec(0, 1), IN_DIALOG: BucketSpec(0, 1)},
        exempt=(parse_network("127.0.0.0/8"),),
    )
    rl = RateLimiter(cfg)
    assert all(rl.allow("127.0.0.5", now=0) for _ in range(50))
    assert rl.allow("10.0.0.1", now=0)
    assert not rl.allow("10.0.0.1", now=0)
    assert len(rl) == 1


def test_exempt_verdicts_are_remembered_within_max_sources() -> None:
    cfg = RateLimitConfig(
        per_source={INITIAL: BucketSpec(0, 1), IN_DIALOG: BucketSpec(0, 1)},
        exempt=(parse_network("10.1.0.0/16"),),
        max_sources=8,
    )
    rl = RateLimiter(cfg)
    for i in range(100):  # a sweep over many addresses: the memo stays bounded
        inside = f"10.1.0.{i}"
        outside = f"10.2.0.{i}"
        assert rl.is_exempt(inside)
        assert not rl.is_exempt(outside)
        assert len(rl._exempt) <= 8
    assert rl.is_exempt("[::ffff:10.1.2.3]")  # the canonical key, whatever the spelling
    assert not rl.is_exempt("sip.example.com")


@pytest.mark.parametrize(
    ("before", "after", "addr", "limited_after"),
    [
        ("127.0.0.0/8", "10.0.0.0/8", "127.0.0.5", True),  # no longer exempt
        ("10.0.0.0/8", "127.0.0.0/8", "127.0.0.5", False),  # newly exempt
    ],
)
def test_reconfigure_forgets_the_exempt_verdicts(
    before: str, after: str, addr: str, limited_after: bool
) -> None:
    closed = {INITIAL: BucketSpec(0, 1), IN_DIALOG: BucketSpec(0, 1)}
    rl = RateLimiter(RateLimitConfig(per_source=closed, exempt=(parse_network(before),)))
    rl.allow(addr, now=0)  # the verdict under the old networks is remembered
    rl.reconfigure(RateLimitConfig(per_source=closed, exempt=(parse_network(after),)), now=1)
    results = [rl.allow(addr, now=1) for _ in range(5)]
    assert (not all(results)) is limited_after


def test_defaults_are_nothing_exempt() -> None:
    rl = RateLimiter()
    results = [rl.allow("127.0.0.1", now=0) for _ in range(1000)]
    assert not all(results)


def test_forget_gives_a_fresh_bucket() -> None:
    rl = RateLimiter(config(rate=0, burst=1))
    assert rl.allow("10.0.0.1", now=0)
    assert not rl.allow("10.0.0.1", now=0)
    rl.forget("10.0.0.1")
    assert rl.allow("10.0.0.1", now=0)


def test_flood_of_distinct_sources_keeps_table_bounded() -> None:
    rl = RateLimiter(config(max_sources=1000))
    for i in range(100_000):
        rl.allow(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", now=i * 1e-5)
    assert len(rl) == 1000
    for i in range(1000):
        rl.allow(f"10.0.{i >> 8 & 255}.{i & 255}", now=1.0, traffic=IN_DIALOG)
    assert len(rl) == 1000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_sources": 0},
        {"per_source": {INITIAL: BucketSpec(1, 1)}},
        {"total": {IN_DIALOG: BucketSpec(1, 1)}},
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"max_sources|no bucket"):
        RateLimitConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rate", "burst"), [(-1, 5), (1, 0.5)])
def test_bad_bucket_is_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="bucket"):
        BucketSpec(rate, burst)


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["10.0.0.1", "10.0.0.2", "::1", "junk", "10.0.0.3", "10.0.0.4"]),
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from(list(TrafficClass)),
        ),
        max_size=80,
    )
)
def test_never_raises_and_stays_bounded(ops: list[tuple[str, float, TrafficClass]]) -> None:
    rl = RateLimiter(config(rate=5, burst=2, max_sources=2))
    for addr, now, traffic in ops:
        rl.allow(addr, now=now, traffic=traffic)
        assert len(rl) <= 2
    assert rl.allowed + rl.denied == len(ops)


@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), max_size=100))
def test_never_more_than_burst_plus_rate_times_span(times: list[float]) -> None:
    """Over any run, the requests allowed are at most burst + rate * elapsed time."""
    rl = RateLimiter(config(rate=10, burst=3))
    times = sorted(times)
    allowed = sum(rl.allow("10.0.0.1", now=t) for t in times)
    span = times[-1] - times[0] if times else 0.0
    assert allowed <= 3 + 10 * span + 1e-9


def test_reconfigure_refills_under_new_shapes_and_keeps_trust() -> None:
    limiter = RateLimiter(config(burst=3))
    limiter.trust("192.0.2.1", now=0.0)
    assert [limiter.allow("192.0.2.9", now=0.0) for _ in range(4)] == [True] * 3 + [False]
    limiter.reconfigure(config(burst=3), now=0.0)  # unchanged: nothing moves
    assert not limiter.allow("192.0.2.9", now=0.0)
    limiter.reconfigure(config(burst=5), now=0.0)
    assert [limiter.allow("192.0.2.9", now=0.0) for _ in range(6)] == [True] * 5 + [False]
    assert limiter.is_trusted("192.0.2.1", now=1.0)


def test_a_trusted_source_has_larger_buckets_until_trust_ends() -> None:
    rl = RateLimiter(config(rate=0, burst=2, trusted_factor=10))
    assert [rl.allow("10.0.0.9", now=0) for _ in range(3)] == [True, True, False]
    rl.trust("10.0.0.9", now=0, ttl=10)
    assert sum(rl.allow("10.0.0.9", now=1) for _ in range(30)) == 20  # a fresh, larger bucket
    assert sum(rl.allow("10.0.0.9", now=11) for _ in range(30)) == 0  # back, nothing left
    with pytest.raises(ValueError, match="trusted_factor"):
        config(trusted_factor=0.5)
