"""The guard that screens a SIP service's input (pure: bytes and explicit ``now``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.config.conf import parse_text
from pypbx.config.netaddr import parse_network
from pypbx.config.pypbxconf import Security
from pypbx.config.sipconf import parse_sip_conf
from pypbx.security import guard as guard_module
from pypbx.security.bans import BanEvent
from pypbx.security.guard import Drop, Guard, GuardConfig, Peek, peek
from pypbx.security.ratelimit import TrafficClass

ATTACKER = "127.0.0.66"
PHONE = "127.0.0.10"


def msg(
    method: str = "REGISTER",
    *,
    ruri: str = "sip:pbx.example",
    to: str = "<sip:1000@pbx.example>",
    agent: str | None = None,
    extra: int = 0,
    body: bytes = b"",
) -> bytes:
    lines = [
        f"{method} {ruri} SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.66:5060;branch=z9hG4bK1",
        "From: <sip:x@pbx.example>;tag=1",
        f"To: {to}",
        "Call-ID: c1",
        f"CSeq: 1 {method}",
    ]
    if agent is not None:
        lines.append(f"User-Agent: {agent}")
    lines += [f"X-Pad-{i}: {i}" for i in range(extra)]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


PEEKS = [
    pytest.param(msg(), "REGISTER", "", "1000", False, TrafficClass.INITIAL, id="register"),
    pytest.param(
        msg("INVITE", ruri="sip:18002223333@pbx", to="<sip:18002223333@pbx>"),
        "INVITE",
        "18002223333",
        "18002223333",
        False,
        TrafficClass.INITIAL,
        id="invite",
    ),
    pytest.param(
        msg("BYE", ruri="sip:1000@10.0.0.1", to="<sip:1000@pbx>;tag=abc"),
        "BYE",
        "1000",
        "1000",
        True,
        TrafficClass.IN_DIALOG,
        id="bye-in-dialog",
    ),
    pytest.param(
        msg("INVITE", to="sip:2000@pbx ; tag=x"),
        "INVITE",
        "",
        "2000",
        True,
        TrafficClass.IN_DIALOG,
        id="reinvite-bare-to",
    ),
    pytest.param(
        b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", None, "", "", False, TrafficClass.IN_DIALOG, id="resp"
    ),
    pytest.param(b"\x00\xffgarbage", "?", "", "", False, TrafficClass.INITIAL, id="garbage"),
    pytest.param(msg("CANCEL"), "CANCEL", "", "1000", False, TrafficClass.IN_DIALOG, id="cancel"),
]


@pytest.mark.parametrize(("data", "method", "user", "to_user", "tag", "traffic"), PEEKS)
def test_peek_reads_what_the_guard_needs(
    data: bytes,
    method: str | None,
    user: str,
    to_user: str,
    tag: bool,
    traffic: TrafficClass,
) -> None:
    seen = peek(data)
    assert (seen.method, seen.user, seen.to_user, seen.to_tag) == (method, user, to_user, tag)
    assert seen.traffic is traffic


def test_peek_counts_headers_and_reads_the_user_agent() -> None:
    seen = peek(msg(agent="friendly-scanner", extra=3))
    assert seen.user_agent == "friendly-scanner"
    assert seen.headers == 5 + 1 + 3 + 1  # Via From To Call-ID CSeq, UA, pads, CL


@given(st.binary(max_size=600))
def test_peek_never_raises(data: bytes) -> None:
    seen = peek(data)
    assert seen.headers >= 0
    assert len(seen.target) <= 256


def make_guard(config: GuardConfig | None = None) -> tuple[Guard, list[str], list[str]]:
    bans: list[str] = []
    notices: list[str] = []

    def on_ban(event: BanEvent) -> None:
        bans.append(event.log_line)

    guard = Guard(config, on_ban=on_ban, on_notice=notices.append)
    return guard, bans, notices


def test_five_failures_ban_and_the_banned_source_is_dropped_silently() -> None:
    guard, bans, _ = make_guard()
    for i in range(4):
        assert guard.auth_failed(ATTACKER, "1000", now=float(i)) is None
    assert guard.screen("UDP", msg(), ATTACKER, now=4.5)
    event = guard.auth_failed(ATTACKER, "1000", now=5.0)
    assert event is not None
    assert bans == [
        "SECURITY: banned 127.0.0.66 for 3600 s after 5 failed authentications (last user '1000')"
    ]
    for _ in range(1000):
        assert not guard.screen("UDP", msg(), ATTACKER, now=6.0)
    assert guard.drops[Drop.BANNED] == 1000
    assert guard.screen("UDP", msg(), PHONE, now=6.0)  # nobody else is affected
    assert guard.screen("UDP", msg(), ATTACKER, now=5.0 + 3600.0)  # the ban expires
    assert [b.addr for b in guard.active_bans(now=3700.0)] == []


def test_unban_lifts_the_ban_and_forgets_the_failures() -> None:
    guard, _, _ = make_guard()
    for i in range(5):
        guard.auth_failed(ATTACKER, "1000", now=float(i))
    assert [b.addr for b in guard.active_bans(now=10.0)] == [ATTACKER]
    assert guard.unban(ATTACKER)
    assert not guard.unban(ATTACKER)
    assert guard.screen("UDP", msg(), ATTACKER, now=10.0)
    assert guard.auth_failed(ATTACKER, "1000", now=11.0) is None  # counting starts afresh


def test_a_success_does_not_reset_other_users_failures() -> None:
    guard, bans, _ = make_guard()
    for i in range(4):
        guard.auth_failed(ATTACKER, "2000", now=float(i))
    guard.auth_ok(ATTACKER, user="1000", now=4.0)
    assert guard.auth_failed(ATTACKER, "2000", now=5.0) is not None
    assert len(bans) == 1


def test_over_rate_requests_are_dropped_and_reported_once_a_second() -> None:
    guard, _, notices = make_guard()
    passed = sum(guard.screen("UDP", msg("OPTIONS"), ATTACKER, now=0.0) for _ in range(500))
    assert passed == 60  # the burst of the per-source bucket
    assert guard.drops[Drop.RATE] == 440
    assert len(notices) == 1
    assert "127.0.0.66: over the request rate" in notices[0]
    guard.screen("UDP", msg("OPTIONS"), ATTACKER, now=0.5)
    assert len(notices) == 1
    guard.screen("UDP", msg("OPTIONS"), ATTACKER, now=1.0)  # 20 tokens refilled: passes
    for _ in range(30):
        guard.screen("UDP", msg("OPTIONS"), ATTACKER, now=1.2)
    assert len(notices) == 2
    assert "more dropped since the last report" in notices[1]
    assert guard.screen("UDP", msg("OPTIONS"), PHONE, now=0.0)  # per source


def test_a_trusted_phone_gets_past_a_many_source_flood() -> None:
    guard, _, _ = make_guard()
    guard.auth_ok(PHONE, user="1000", now=0.0)
    for n in range(200):  # 200 sources x 60 = 12,000 > the global burst of 4,000
        for _ in range(60):
            guard.screen("UDP", msg("OPTIONS"), f"10.1.{n // 250}.{n % 250}", now=0.0)
    assert not guard.screen("UDP", msg("OPTIONS"), "10.9.9.9", now=0.0)  # the global bucket
    assert guard.screen("UDP", msg("INVITE"), PHONE, now=0.0)


@pytest.mark.parametrize(
    ("data", "drop"),
    [
        pytest.param(msg(body=b"x" * 70_000), Drop.OVERSIZE, id="oversize"),
        pytest.param(msg(extra=100), Drop.HEADERS, id="too-many-headers"),
    ],
)
def test_limits_drop_the_message(data: bytes, drop: Drop) -> None:
    guard, _, notices = make_guard()
    assert not guard.screen("UDP", data, ATTACKER, now=0.0)
    assert guard.drops[drop] == 1
    assert str(drop) in notices[0]


def test_an_extension_scan_is_banned_by_behaviour() -> None:
    guard, bans, _ = make_guard()
    results = [
        guard.screen("UDP", msg(to=f"<sip:{100 + i}@pbx>"), ATTACKER, now=i * 0.1)
        for i in range(12)
    ]
    assert results == [True] * 9 + [False] * 3
    assert bans == ["SECURITY: banned 127.0.0.66 for 3600 s: scanner (distinct users 10)"]


def test_a_friendly_scanner_needs_only_two_names() -> None:
    guard, bans, _ = make_guard()
    assert guard.screen(
        "UDP", msg("OPTIONS", ruri="sip:100@pbx", agent="friendly-scanner"), ATTACKER, now=0
    )
    assert not guard.screen(
        "UDP", msg("OPTIONS", ruri="sip:101@pbx", agent="friendly-scanner"), ATTACKER, now=0
    )
    assert "options sweep 2, scanner user agent" in bans[0]


def test_trunk_hosts_are_not_judged_as_scanners() -> None:
    guard, bans, _ = make_guard()
    guard.set_peer_hosts({"127.0.0.9"})
    for i in range(50):
        assert guard.screen("UDP", msg("INVITE", ruri=f"sip:{i}@pbx"), "127.0.0.9", now=i)
    for _ in range(20):
        guard.response_sent("127.0.0.9", 404, now=1.0)
    assert bans == []


def test_a_run_of_404s_bans() -> None:
    guard, bans, _ = make_guard()
    for _ in range(10):
        guard.response_sent(ATTACKER, 404, now=1.0)
    assert len(bans) == 1
    assert "404 answers 10" in bans[0]


def test_in_dialog_requests_are_not_scanned() -> None:
    guard, bans, _ = make_guard()
    for i in range(30):
        guard.screen("UDP", msg("BYE", to=f"<sip:{i}@pbx>;tag=t"), PHONE, now=0.0)
    assert bans == []


def test_allow_listed_sources_are_never_banned() -> None:
    cfg = GuardConfig.from_general(
        parse_sip_conf(parse_text("[general]\nbanallow=127.0.0.0/24\n", "sip.conf")).general
    )
    guard, bans, _ = make_guard(cfg)
    for i in range(20):
        guard.auth_failed(ATTACKER, "1000", now=float(i))
    assert bans == []
    sweep = [msg("OPTIONS", ruri=f"sip:{n}@pbx", agent="friendly-scanner") for n in range(500)]
    assert all(guard.screen("UDP", data, ATTACKER, now=30.0) for data in sweep)  # nor limited
    assert bans == []


def test_config_from_sip_conf_general() -> None:
    text = (
        "[general]\nbanfailures=3\nbanwindow=60\nbantime=120\nbanallow=10.0.0.0/8\n"
        "ratelimit=5\nmaxheaders=20\nmaxmessagesize=4096\nregistrationlimit=2\n"
    )
    general = parse_sip_conf(parse_text(text, "sip.conf")).general
    assert general.registrationlimit == 2
    cfg = GuardConfig.from_general(general)
    assert (cfg.bans.failures, cfg.bans.window, cfg.bans.ban_time) == (3, 60.0, 120.0)
    assert cfg.bans.allow == (parse_network("10.0.0.0/8"),)
    assert cfg.rate.per_source[TrafficClass.INITIAL].rate == 5.0
    assert cfg.rate.per_source[TrafficClass.INITIAL].burst == 15.0
    assert (cfg.max_headers, cfg.max_message_size) == (20, 4096)
    guard, bans, _ = make_guard(cfg)
    for i in range(3):
        guard.auth_failed(ATTACKER, "1000", now=float(i))
    assert bans == [
        "SECURITY: banned 127.0.0.66 for 120 s after 3 failed authentications (last user '1000')"
    ]


def test_config_defaults_and_pypbx_conf_fallback() -> None:
    general = parse_sip_conf(parse_text("[general]\n", "sip.conf")).general
    cfg = GuardConfig.from_general(general)
    assert (cfg.bans.failures, cfg.bans.window, cfg.bans.ban_time) == (5, 600.0, 3600.0)
    assert cfg.bans.allow == ()  # loopback is not exempt
    cfg = GuardConfig.from_general(general, Security(ban_failures=7, ban_window=30, ban_time=9))
    assert (cfg.bans.failures, cfg.bans.window, cfg.bans.ban_time) == (7, 30.0, 9.0)


def test_ratelimit_zero_turns_the_per_source_limit_off() -> None:
    general = parse_sip_conf(parse_text("[general]\nratelimit=0\n", "sip.conf")).general
    guard, _, _ = make_guard(GuardConfig.from_general(general))
    assert all(guard.screen("UDP", msg("OPTIONS"), ATTACKER, now=0.0) for _ in range(1000))
    sources = [f"10.0.{n // 200}.{n % 200}" for n in range(5000)]  # past the global burst too
    assert all(guard.screen("UDP", msg("OPTIONS"), src, now=0.0) for src in sources)


def test_bad_config_values_warn_and_keep_the_default() -> None:
    text = "[general]\nbanfailures=0\nmaxheaders=2\nbanallow=not-a-net\n"
    cfg = parse_sip_conf(parse_text(text, "sip.conf"))
    assert cfg.general.banfailures is None
    assert cfg.general.maxheaders == 64
    assert len([w for w in cfg.warnings if "sip.conf" in str(w.origin.file)]) == 3


def test_reconfigure_keeps_the_bans() -> None:
    guard, _, _ = make_guard()
    for i in range(5):
        guard.auth_failed(ATTACKER, "1000", now=float(i))
    guard.reconfigure(GuardConfig(), now=10.0)
    assert not guard.screen("UDP", msg(), ATTACKER, now=10.0)


@pytest.mark.parametrize(
    ("data", "burst"),
    [
        pytest.param(msg("INVITE"), 60, id="new-request"),
        pytest.param(msg("INVITE", to="<sip:1@pbx>;tag=x"), 300, id="re-invite"),
        pytest.param(msg("ACK"), 300, id="ack"),
        pytest.param(b"SIP/2.0 180 Ringing\r\nVia: x\r\n\r\n", 300, id="response"),
    ],
)
def test_in_dialog_traffic_has_its_own_larger_bucket(data: bytes, burst: int) -> None:
    guard, _, _ = make_guard()
    assert sum(guard.screen("UDP", data, ATTACKER, now=0.0) for _ in range(400)) == burst
    guard.auth_ok(PHONE, user="1000", now=0.0)  # trusted: fifty times the bucket
    assert sum(guard.screen("UDP", data, PHONE, now=0.0) for _ in range(20_000)) == burst * 50


def test_a_trusted_office_nat_is_not_a_scanner_but_still_sweeps() -> None:
    guard, bans, _ = make_guard()
    guard.auth_ok(PHONE, user="1000", now=0.0)
    for n in range(30):  # thirty phones behind one address boot together
        assert guard.screen("UDP", msg(to=f"<sip:{2000 + n}@pbx>"), PHONE, now=1.0)
    assert bans == []
    for n in range(10):
        guard.screen("UDP", msg("OPTIONS", ruri=f"sip:{n}@pbx"), PHONE, now=2.0)
    assert len(bans) == 1
    assert "options sweep 10" in bans[0]


def test_reconfigure_keeps_trust_and_resets_buckets_only_when_changed() -> None:
    guard, _, _ = make_guard()
    guard.auth_ok(PHONE, user="1000", now=0.0)
    for _ in range(60):
        guard.screen("UDP", msg("OPTIONS"), ATTACKER, now=0.0)
    assert not guard.screen("UDP", msg("OPTIONS"), ATTACKER, now=0.0)
    guard.reconfigure(GuardConfig(), now=0.0)  # same settings: the empty bucket stays empty
    assert not guard.screen("UDP", msg("OPTIONS"), ATTACKER, now=0.0)
    text = "[general]\nratelimit=30\n"
    guard.reconfigure(
        GuardConfig.from_general(parse_sip_conf(parse_text(text, "sip.conf")).general), now=0.0
    )
    assert guard.rate.is_trusted(PHONE, now=0.0)
    assert sum(guard.screen("UDP", msg("OPTIONS"), ATTACKER, now=0.0) for _ in range(200)) == 90


@pytest.mark.parametrize(
    ("data", "trusted", "exempt", "peeks"),
    [
        pytest.param(msg(), False, False, 1, id="register-untrusted"),
        pytest.param(msg(), True, False, 0, id="register-trusted"),
        pytest.param(msg("INVITE", ruri="sip:1@pbx"), True, False, 0, id="invite-trusted"),
        pytest.param(msg(), False, True, 0, id="register-exempt"),
        pytest.param(msg("OPTIONS"), True, False, 1, id="options-trusted"),
        pytest.param(msg("options"), True, False, 1, id="lower-case-options-trusted"),
        pytest.param(b"\r\n" + msg("OPTIONS"), True, False, 1, id="options-after-crlf"),
        pytest.param(msg("OPTIONS"), False, True, 0, id="options-exempt"),
    ],
)
def test_the_full_glance_runs_only_when_the_scanner_may_judge(
    monkeypatch: pytest.MonkeyPatch, data: bytes, trusted: bool, exempt: bool, peeks: int
) -> None:
    """peek() is skipped for what the scanner would not judge anyway (same verdicts)."""
    calls: list[bytes] = []

    def counting_peek(raw: bytes) -> Peek:
        calls.append(raw)
        return peek(raw)

    monkeypatch.setattr(guard_module, "peek", counting_peek)
    allow = "banallow=127.0.0.0/24\n" if exempt else ""
    general = parse_sip_conf(parse_text(f"[general]\n{allow}", "sip.conf")).general
    guard, _, _ = make_guard(GuardConfig.from_general(general))
    if trusted:
        guard.auth_ok(PHONE, user="1000", now=0.0)
    assert guard.screen("UDP", data, PHONE, now=1.0)
    assert len(calls) == peeks


def test_a_trusted_source_sweeping_with_lower_case_options_is_still_banned() -> None:
    guard, bans, _ = make_guard()
    guard.auth_ok(PHONE, user="1000", now=0.0)
    for n in range(10):
        guard.screen("UDP", msg("options", ruri=f"sip:{n}@pbx"), PHONE, now=1.0)
    assert len(bans) == 1
    assert "options sweep 10" in bans[0]
