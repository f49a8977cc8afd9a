"""Ban list: threshold within the window, expiry, allow list, bounded tables, log line."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.config.netaddr import parse_network
from pypbx.config.pypbxconf import Security
from pypbx.security.bans import (
    Ban,
    BanConfig,
    BanEvent,
    BanList,
    format_seconds,
    quote_user,
    source_key,
)

ADDR = "192.0.2.7"
# The failregex documented in the module docstring, with fail2ban's <HOST> for an address.
FAILREGEX = re.compile(r"SECURITY: banned (?P<host>[0-9A-Fa-f:.]+) for \d+ s\b")


def fail_at(bans: BanList, times: list[float], addr: str = ADDR) -> list[BanEvent | None]:
    return [bans.record_failure(addr, now=t, reason="wrong password", user="1000") for t in times]


@pytest.mark.parametrize(
    ("times", "banned_at"),
    [
        ([0, 1, 2, 3], None),  # N-1 failures: no ban
        ([0, 1, 2, 3, 4], 4),  # exactly N within the window: ban at the Nth
        ([0, 100, 200, 300, 599.9], 4),  # N inside 600 s
        ([0, 100, 200, 300, 600], None),  # the first is exactly window old: out
        ([0, 200, 400, 600, 800, 1000], None),  # steady drip never reaches 5 in 600 s
        ([0, 700, 701, 702, 703, 704], 5),  # the old one expired, five fresh ones ban
    ],
)
def test_ban_after_exactly_n_failures_within_window(
    times: list[float], banned_at: int | None
) -> None:
    bans = BanList()
    events = fail_at(bans, times)
    hits = [i for i, e in enumerate(events) if e is not None]
    assert hits == ([] if banned_at is None else [banned_at])
    assert bans.is_banned(ADDR, now=times[-1]) is (banned_at is not None)


def test_ban_record_and_expiry() -> None:
    bans = BanList(BanConfig(failures=3, window=60, ban_time=100))
    event = fail_at(bans, [10, 11, 12])[-1]
    assert event is not None
    assert event.ban == Ban(ADDR, 12, 112, 3, "wrong password")
    assert event.user == "1000"
    assert bans.is_banned(ADDR, now=111.9)
    assert bans.bans(50) == [event.ban]
    assert not bans.is_banned(ADDR, now=112)
    assert bans.bans(112) == []
    # after expiry the count starts from zero: the old failures were consumed by the ban
    assert fail_at(bans, [113, 114]) == [None, None]
    assert fail_at(bans, [115])[0] is not None


def test_failures_while_banned_are_not_counted() -> None:
    bans = BanList(BanConfig(failures=2, ban_time=10))
    assert fail_at(bans, [0, 1])[-1] is not None
    assert fail_at(bans, [2, 3, 4]) == [None, None, None]
    assert bans.failures(ADDR, now=5) == 0
    assert bans.tracked == 0


def test_unban_lifts_ban_and_forgets_failures() -> None:
    bans = BanList(BanConfig(failures=2))
    fail_at(bans, [0, 1])
    assert bans.unban(ADDR)
    assert not bans.is_banned(ADDR, now=2)
    assert not bans.unban(ADDR)
    assert fail_at(bans, [3]) == [None]  # starts again from zero


@pytest.mark.parametrize(
    ("allow", "addr", "exempt"),
    [
        ((), "127.0.0.1", False),  # loopback is not exempt by default
        ((), "192.168.1.20", False),  # nor a localnet-style address
        (("127.0.0.0/8",), "127.0.0.9", True),
        (("10.0.0.0/8",), "10.1.2.3", True),
        (("10.0.0.0/8",), "11.1.2.3", False),
        (("2001:db8::/32",), "2001:db8::5", True),
        (("2001:db8::/32",), "[2001:DB8::5]", True),
        (("192.0.2.0/24",), "::ffff:192.0.2.1", True),
    ],
)
def test_allow_list(allow: tuple[str, ...], addr: str, exempt: bool) -> None:
    cfg = BanConfig(failures=1, allow=tuple(parse_network(a) for a in allow))
    bans = BanList(cfg)
    event = bans.record_failure(addr, now=0, reason="x", user=None)
    assert (event is None) is exempt
    assert bans.is_banned(addr, now=1) is not exempt
    assert (bans.ban(addr, now=2, reason="scanner") is None) is True  # banned or exempt


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("Host.Example", "host.example"),
        ("x" * 300, "x" * 255),
        ("[[::1]]", "[[::1]]"),
        ("\u0130" * 200, ("i\u0307" * 200)[:255]),
    ],
)
def test_source_key(spelling: str, key: str) -> None:
    assert source_key(spelling) == key


def test_spellings_of_one_address_share_a_ban() -> None:
    bans = BanList(BanConfig(failures=2))
    bans.record_failure("2001:db8::1", now=0, user="a")
    assert bans.record_failure("[2001:DB8::1]", now=1, user="a") is not None
    assert bans.is_banned("2001:db8:0::1", now=2)


def test_success_clears_only_that_users_failures() -> None:
    bans = BanList(BanConfig(failures=3))
    bans.record_failure(ADDR, now=0, user="1000")
    bans.record_failure(ADDR, now=1, user="2000")
    assert bans.record_success(ADDR, user="1000", now=2) == 1
    assert bans.failures(ADDR, now=2) == 1  # 2000's failure stays
    # an attacker with one valid account cannot reset the guessing of another
    bans.record_failure(ADDR, now=3, user="2000")
    assert bans.record_success(ADDR, user="1000", now=4) == 0
    assert bans.record_failure(ADDR, now=5, user="2000") is not None


def test_success_of_unknown_address_is_harmless() -> None:
    bans = BanList()
    assert bans.record_success("198.51.100.1", user="x", now=0) == 0
    assert bans.tracked == 0


def test_manual_ban_for_scanner_and_its_log_line() -> None:
    bans = BanList()
    event = bans.ban(ADDR, now=5, reason="scanner (distinct users 10)")
    assert event is not None
    assert event.ban.failures == 0
    assert event.log_line == "SECURITY: banned 192.0.2.7 for 3600 s: scanner (distinct users 10)"
    assert bans.ban(ADDR, now=6, reason="again") is None  # already banned


def test_log_line_format_and_failregex() -> None:
    bans = BanList()
    event = fail_at(bans, [0, 1, 2, 3, 4], addr="127.0.0.9")[-1]
    assert event is not None
    assert event.log_line == (
        "SECURITY: banned 127.0.0.9 for 3600 s after 5 failed authentications (last user '1000')"
    )
    m = FAILREGEX.search("[2026-11-27 04:50:00] NOTICE: " + event.log_line)
    assert m is not None
    assert m.group("host") == "127.0.0.9"


@pytest.mark.parametrize(
    ("user", "quoted"),
    [
        ("1000", "'1000'"),
        (None, "none"),
        ("a'b", "'a\\x27b'"),
        ("x\nSECURITY: banned 10.0.0.1 for 1 s", "'x\\x0aSECURITY: banned 10.0.0.1 for 1 s'"),
        ("é", "'\\xe9'"),
        ("\u20ac", "'\\u20ac'"),
        ("\U0001f600", "'\\U0001f600'"),
        ("u" * 70, "'" + "u" * 64 + "...'"),
    ],
)
def test_user_names_are_quoted_onto_one_line(user: str | None, quoted: str) -> None:
    assert quote_user(user) == quoted


@given(st.text())
def test_log_line_is_one_printable_line(user: str) -> None:
    bans = BanList(BanConfig(failures=1))
    event = bans.record_failure(ADDR, now=0, user=user, reason=user)
    assert event is not None
    line = event.log_line
    assert line.isprintable()
    assert "\n" not in line
    assert line.startswith("SECURITY: banned 192.0.2.7 for 3600 s after 1 failed")
    assert BanEvent(Ban(ADDR, 0, 1, 0, user)).log_line.isprintable()


@pytest.mark.parametrize(("seconds", "text"), [(3600, "3600"), (3600.0, "3600"), (2.5, "2.5")])
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_flood_of_distinct_sources_keeps_tables_bounded() -> None:
    cfg = BanConfig(failures=2, max_tracked=1000, max_bans=500)
    bans = BanList(cfg)
    for i in range(100_000):
        addr = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        bans.record_failure(addr, now=i * 0.001, user="1000")
        assert bans.tracked <= 1000
    assert bans.tracked == 1000
    # and a flood where every source gets banned keeps the ban table bounded too
    for i in range(2000):
        addr = f"172.16.{i >> 8 & 255}.{i & 255}"
        bans.record_failure(addr, now=200.0, user="x")
        bans.record_failure(addr, now=200.0, user="x")
        assert bans.banned <= 500
    assert bans.banned == 500
    assert len(bans.bans(200.0)) == 500


def test_attacker_is_still_banned_during_a_flood() -> None:
    """A flood evicts partial counts of other sources, but one address that fails N times in a
    row is banned whatever else arrives."""
    bans = BanList(BanConfig(max_tracked=100))
    for i in range(10_000):
        bans.record_failure(f"10.0.{i >> 8 & 255}.{i & 255}", now=0, user="x")
    events = fail_at(bans, [1, 1, 1, 1, 1])
    assert events[-1] is not None


def test_reconfigure_keeps_bans_and_applies_new_allow_list_and_bounds() -> None:
    bans = BanList(BanConfig(failures=3))
    for addr in ("10.0.0.1", "10.0.0.2", "192.0.2.1"):
        bans.ban(addr, now=0, reason="scanner")
    bans.record_failure("10.0.0.9", now=0, user="a")
    bans.record_failure("192.0.2.9", now=0, user="a")
    bans.record_failure("192.0.2.9", now=1, user="b")
    bans.reconfigure(BanConfig(failures=2, allow=(parse_network("10.0.0.0/8"),), max_bans=1))
    assert [b.addr for b in bans.bans(2)] == ["192.0.2.1"]
    assert bans.failures("10.0.0.9", now=2) == 0
    assert bans.failures("192.0.2.9", now=2) == 2
    assert bans.record_failure("192.0.2.9", now=3, user="c") is not None  # new threshold 2


def test_from_security_settings() -> None:
    net = parse_network("10.0.0.0/8")
    cfg = BanConfig.from_security(
        Security(ban_failures=3, ban_window=60, ban_time=120, allow=(net,))
    )
    assert cfg == BanConfig(failures=3, window=60.0, ban_time=120.0, allow=(net,))
    assert BanConfig.from_security(Security()) == BanConfig()


@pytest.mark.parametrize(
    "kwargs",
    [{"failures": 0}, {"window": 0}, {"ban_time": -1}, {"max_tracked": 0}, {"max_bans": 0}],
)
def test_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        BanConfig(**kwargs)  # type: ignore[arg-type]


_ops = st.lists(
    st.tuples(
        st.sampled_from(["fail", "success", "ban", "unban", "check", "list"]),
        st.sampled_from(["10.0.0.1", "10.0.0.2", "::1", "[::1]", "bogus", "", "10.0.0.3"]),
        st.floats(min_value=0, max_value=10_000, allow_nan=False),
        st.one_of(st.none(), st.text(max_size=5)),
    ),
    max_size=60,
)


@settings(max_examples=200)
@given(_ops)
def test_any_sequence_never_raises_and_stays_bounded(
    ops: list[tuple[str, str, float, str | None]],
) -> None:
    cfg = BanConfig(failures=3, window=100, ban_time=50, max_tracked=3, max_bans=2)
    bans = BanList(cfg)
    for op, addr, now, user in ops:
        if op == "fail":
            event = bans.record_failure(addr, now=now, user=user)
            if event is not None:
                assert bans.is_banned(addr, now=now)
                assert event.ban.until == now + 50
        elif op == "success":
            bans.record_success(addr, user=user or "", now=now)
        elif op == "ban":
            bans.ban(addr, now=now, reason="scan")
        elif op == "unban":
            bans.unban(addr)
            assert not bans.is_banned(addr, now=now)
        elif op == "check":
            bans.is_banned(addr, now=now)
        else:
            assert all(b.since <= b.until for b in bans.bans(now))
        assert bans.tracked <= 3
        assert bans.banned <= 2


@settings(max_examples=200)
@given(
    st.one_of(
        st.ip_addresses().map(str),
        st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
        st.text(max_size=300),
        st.text(alphabet="[] .:0123456789abcdefABCDEF\u0130", max_size=270),
    )
)
def test_source_key_is_idempotent_and_bounded(addr: str) -> None:
    key = source_key(addr)
    assert source_key(key) == key
    assert len(key) <= 255
