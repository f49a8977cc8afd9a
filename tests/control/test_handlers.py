"""Command handlers on an in-process Pbx (tutorial configuration, fake clock and SIP runtime)."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypbx.check import ConfigSet, load_config_dir
from pypbx.control import load_commands
from pypbx.control.commands import REGISTRY, Outcome, current_console
from pypbx.control.core import timestr
from pypbx.control.server import ConsoleSession
from pypbx.errors import PbxError
from pypbx.log import FanoutHandler, LogSink, VerbosityFilter, verbose
from pypbx.security.bans import Ban
from pypbx.server import Pbx, sip_changes
from tests.control.pbxproc import TUTORIAL


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _restore_trace_logger() -> Iterator[None]:
    """``sip set debug`` changes the process-wide SIP trace logger: put it back."""
    trace = logging.getLogger("pypbx.sip.trace")
    saved = (trace.level, trace.propagate, list(trace.filters))
    yield
    trace.setLevel(saved[0])
    trace.propagate = saved[1]
    trace.filters[:] = saved[2]


@pytest.fixture
def cfg_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(TUTORIAL, tmp_path / "cfg"))


@pytest.fixture
def pbx(cfg_dir: Path) -> Pbx:
    load_commands()
    return Pbx(load_config_dir(cfg_dir), clock=Clock(1_000_000.0), log_filter=VerbosityFilter(3))


def run(pbx: Pbx, line: str) -> Outcome:
    return asyncio.run(REGISTRY.execute(pbx, line))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "1 minute"),
        (61, "1 minute, 1 second"),
        (3723, "1 hour, 2 minutes, 3 seconds"),
        (86400 + 7200, "1 day, 2 hours"),
        (8 * 86400, "1 week, 1 day"),
        (366 * 86400 + 5, "1 year, 1 day, 5 seconds"),
        (-5, "0 seconds"),
    ],
)
def test_timestr(seconds: int, text: str) -> None:
    assert timestr(seconds) == text


def test_uptime_and_last_reload(pbx: Pbx, cfg_dir: Path) -> None:
    clock = pbx.clock
    assert isinstance(clock, Clock)
    clock.now += 3723
    assert run(pbx, "core show uptime").output == (
        "System uptime: 1 hour, 2 minutes, 3 seconds\nLast reload: 1 hour, 2 minutes, 3 seconds"
    )
    assert run(pbx, "dialplan reload").ok
    clock.now += 5
    assert run(pbx, "core show uptime seconds").output == ("System uptime: 3728\nLast reload: 5")


def test_set_verbose_daemon_or_console(pbx: Pbx) -> None:
    assert run(pbx, "core set verbose 5").output == "Verbosity was 3 and is now 5"
    assert pbx.log_filter.level == 5
    session = ConsoleSession(1, LogSink(lambda line: None, 2))
    token = current_console.set(session)
    try:
        assert run(pbx, "core set verbose 4").output == "Verbosity was 2 and is now 4"
    finally:
        current_console.reset(token)
    assert session.verbosity == 4
    assert pbx.log_filter.level == 5  # the daemon's level did not move


@dataclass
class PeerState:
    address: str | None
    port: int
    lastms: int | None
    username: str = ""
    useragent: str = ""
    contact: str = ""


@dataclass
class RegState:
    state: str
    refresh: int
    regtime: float | None


@dataclass
class Runtime:
    peers: dict[str, PeerState] = field(default_factory=dict)
    reg: RegState | None = None

    def peer_status(self, name: str) -> PeerState | None:
        return self.peers.get(name)

    def registration_status(self, registration: Any) -> RegState | None:
        return self.reg

    def dialogs(self) -> list[Any]:
        return [
            SimpleNamespace(
                peer_address="192.0.2.7",
                user="1000",
                call_id="abc123@host",
                codec="ulaw",
                on_hold=False,
                last_method="ACK",
            )
        ]


@dataclass
class BanRuntime(Runtime):
    """A runtime with the abuse guard's ban table (``sip show bans`` / ``sip unban``)."""

    now: float = 5000.0
    table: dict[str, Ban] = field(default_factory=dict)

    def clock(self) -> float:
        return self.now

    def bans(self) -> list[Ban]:
        return list(self.table.values())

    def unban(self, addr: str) -> bool:
        return self.table.pop(addr, None) is not None


def test_sip_show_bans_and_unban(pbx: Pbx) -> None:
    assert run(pbx, "sip show bans").output.splitlines()[-1] == "0 banned addresses"
    rt = BanRuntime()
    rt.table["127.0.0.9"] = Ban("127.0.0.9", 4990.0, 8590.0, 5, "failed authentications")
    rt.table["198.51.100.7"] = Ban("198.51.100.7", 4999.5, 8599.5, 0, "scanner (options sweep 10)")
    pbx.sip_runtime = rt
    out = run(pbx, "sip show bans").output.splitlines()
    assert out[0].split() == ["Address", "Banned", "Remaining", "Reason"]
    assert out[1].split() == ["127.0.0.9", "10", "s", "3590", "s", "5", "failed", "authentications"]
    assert out[2].split()[:5] == ["198.51.100.7", "0", "s", "3600", "s"]
    assert out[2].endswith("scanner (options sweep 10)")
    assert out[-1] == "2 banned addresses"
    done = run(pbx, "sip unban 127.0.0.9")
    assert (done.ok, done.output) == (True, "Unbanned 127.0.0.9")
    again = run(pbx, "sip unban 127.0.0.9")
    assert (again.ok, again.output) == (False, "Address 127.0.0.9 is not banned.")
    assert run(pbx, "sip show bans").output.splitlines()[-1] == "1 banned address"
    assert not run(pbx, "sip unban").ok


def test_sip_show_peers_with_live_state(pbx: Pbx) -> None:
    pbx.sip_runtime = Runtime(
        peers={
            "1000": PeerState("192.0.2.7", 5062, 12, username="1000"),
            "1001": PeerState("192.0.2.8", 5060, -1),
            "flowroute": PeerState("203.0.113.5", 5060, 2500, username="PROVIDER_USER"),
        }
    )
    out = run(pbx, "sip show peers").output.splitlines()
    assert re.fullmatch(r"1000/1000 +192\.0\.2\.7 +D  Yes +Yes +5062 +OK \(12 ms\)", out[2])
    assert re.fullmatch(r"1001 +192\.0\.2\.8 +D  Yes +Yes +5060 +UNREACHABLE", out[3])
    assert re.fullmatch(
        r"flowroute/PROVIDER_USER +203\.0\.113\.5 +Yes +No +5060 +LAGGED \(2500 ms\)", out[1]
    )
    assert out[-1] == (
        "3 sip peers [Monitored: 2 online, 1 offline Unmonitored: 0 online, 0 offline]"
    )
    # column positions are chan_sip's: name 25, host 39, dyn 3, forcerport 10, comedia 10 ...
    assert out[2].index("192.0.2.7") == 26
    assert out[2].index("5062") == out[0].index("Port")
    assert out[2].index("OK") == out[0].index("Status")
    assert run(pbx, "sip show peers like 100").output.splitlines()[-1].startswith("2 sip peers")


def test_sip_show_peers_unmonitored(cfg_dir: Path) -> None:
    sip = cfg_dir / "sip.conf"
    sip.write_text(sip.read_text().replace("qualify=yes", "qualify=no"))
    pbx = Pbx(load_config_dir(cfg_dir))
    pbx.sip_runtime = Runtime(peers={"1000": PeerState("192.0.2.7", 5062, None)})
    out = run(pbx, "sip show peers").output.splitlines()
    assert re.search(r"^1000 .* Unmonitored$", "\n".join(out), re.MULTILINE)
    assert out[-1] == (
        "3 sip peers [Monitored: 0 online, 0 offline Unmonitored: 1 online, 2 offline]"
    )


def test_sip_show_registry_with_live_state(pbx: Pbx) -> None:
    when = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1))
    pbx.sip_runtime = Runtime(reg=RegState("Registered", 105, when))
    out = run(pbx, "sip show registry").output.splitlines()
    assert re.fullmatch(
        r"sip\.provider\.example:5060 +N +PROVIDER_USE +105 Registered +Fri, 02 Jan 2026 03:04:05",
        out[1],
    )
    assert out[1].index("105") + 3 == out[0].index("Refresh") + len("Refresh")  # right-aligned


def test_sip_show_channels_from_runtime(pbx: Pbx) -> None:
    pbx.sip_runtime = Runtime()
    out = run(pbx, "sip show channels").output.splitlines()
    assert re.fullmatch(r"192\.0\.2\.7 +1000 +abc123@host +ulaw +No +ACK", out[1])
    assert out[-1] == "1 active SIP dialog"


def test_sip_set_debug(pbx: Pbx) -> None:
    trace = logging.getLogger("pypbx.sip.trace")
    assert (
        run(pbx, "sip set debug ip 192.0.2.1").output == "SIP Debugging Enabled for IP: 192.0.2.1"
    )
    assert trace.isEnabledFor(logging.DEBUG)
    rec = logging.LogRecord("pypbx.sip.trace", logging.DEBUG, __file__, 1, "msg", None, None)
    rec.peer_ip = "192.0.2.1"
    assert trace.filter(rec)
    rec.peer_ip = "192.0.2.2"
    assert not trace.filter(rec)
    peer = run(pbx, "sip set debug peer 1000")
    assert (peer.ok, peer.output) == (False, "Unable to get IP address of peer '1000'")
    assert run(pbx, "sip set debug off").output == "SIP Debugging Disabled"
    assert not trace.isEnabledFor(logging.CRITICAL - 1)
    assert run(pbx, "sip set debug sideways").output.startswith("Usage: sip set debug")


@dataclass
class Chan:
    name: str
    context: str = "outgoing"
    exten: str = "600"
    priority: int = 2
    state: str = "Up"
    app: str = "Playback"
    data: str = "demo-echotest"
    hung_up: bool = False

    async def request_hangup(self) -> None:
        self.hung_up = True


def test_core_show_channels_and_hangup(pbx: Pbx) -> None:
    a, b = Chan("SIP/1000-00000001"), Chan("SIP/1001-00000002", app="", data="")
    pbx.channels = [a, b]
    pbx.active_calls = 1
    pbx.calls_processed = 7
    out = run(pbx, "core show channels").output.splitlines()
    assert out[1] == "SIP/1000-00000001    600@outgoing:2       Up      Playback(demo-echotest)"
    assert out[2].endswith("(None)")
    assert out[-3:] == ["2 active channels", "1 active call", "7 calls processed"]
    concise = run(pbx, "core show channels concise").output.splitlines()
    assert concise[0] == "SIP/1000-00000001!outgoing!600!2!Up!Playback!demo-echotest"
    assert run(pbx, "core show channels count").output.splitlines()[0] == "2 active channels"
    assert run(pbx, "channel request hangup SIP/1000-00000001").output == (
        "Requested Hangup on channel 'SIP/1000-00000001'"
    )
    assert (a.hung_up, b.hung_up) == (True, False)
    shown = run(pbx, "core show channel SIP/1000-00000001").output.splitlines()
    assert shown[0] == " -- General --"
    assert "           Name: SIP/1000-00000001" in shown
    assert "    Application: Playback" in shown
    assert "           Data: demo-echotest" in shown
    assert "          State: Up (6)" in shown
    missing = run(pbx, "core show channel SIP/9-1")
    assert (missing.ok, missing.output) == (False, "SIP/9-1 is not a known channel")
    assert run(pbx, "core show channel").output.startswith("Usage: core show channel <channel>")
    assert len(run(pbx, "channel request hangup all").output.splitlines()) == 2
    assert b.hung_up


def _sip(peers: dict[str, Any], regs: list[Any] | None = None, general: Any = None) -> Any:
    return SimpleNamespace(peers=peers, registrations=regs or [], general=general)


@dataclass(frozen=True)
class P:
    secret: str
    origin: str = "sip.conf:1"


@dataclass(frozen=True)
class R:
    user: str
    host: str
    origin: str = "sip.conf:1"


@pytest.mark.parametrize(
    ("old", "new", "lines"),
    [
        (_sip({"a": P("x")}), _sip({"a": P("x", origin="sip.conf:9")}), []),
        (_sip({"a": P("x")}), _sip({"a": P("y")}), ["Peer changed: a"]),
        (_sip({"a": P("x")}), _sip({"b": P("x")}), ["Peer added: b", "Peer removed: a"]),
        (
            _sip({}, [R("u", "h")]),
            _sip({}, [R("u", "h2")]),
            ["Registration added: u@h2", "Registration removed: u@h"],
        ),
        (_sip({}, [R("u", "h")]), _sip({}, [R("u", "h", origin="x:2")]), []),
        (_sip({}, general=1), _sip({}, general=2), ["General settings changed"]),
    ],
)
def test_sip_changes(old: Any, new: Any, lines: list[str]) -> None:
    assert sip_changes(old, new) == lines


def test_fanout_filters_each_sink_at_its_level() -> None:
    fan = FanoutHandler()
    low: list[str] = []
    high: list[str] = []
    fan.attach(low.append, 1)
    sink = fan.attach(high.append, 5)
    log = logging.getLogger("pypbx.test.fanout")
    log.addHandler(fan)
    log.setLevel(logging.DEBUG)
    try:
        verbose(log, 3, "three")
        verbose(log, 1, "one")
        log.warning("careful")
        fan.detach(sink)
        verbose(log, 1, "after")
    finally:
        log.removeHandler(fan)
    assert [line.rsplit(": ", 1)[1] for line in low] == ["one", "careful", "after"]
    assert [line.rsplit(": ", 1)[1] for line in high] == ["three", "one", "careful"]


class FakeService:
    name = "fake"

    def __init__(self, fail_reload: bool = False) -> None:
        self.events: list[str] = []
        self.configs: list[ConfigSet] = []
        self.fail_reload = fail_reload

    async def start(self, pbx: Pbx) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")

    def describe(self) -> list[str]:
        return ["SIP listening on udp 127.0.0.1:5999 (fake)"]

    async def reload(self, config: ConfigSet) -> list[str]:
        if self.fail_reload:
            raise PbxError("port 5999 is taken")
        self.configs.append(config)
        return ["fake reloaded"]


def test_pbx_lifecycle_with_a_service(
    cfg_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    svc = FakeService()
    monkeypatch.setattr("pypbx.server.SERVICE_FACTORIES", [lambda pbx: None, lambda pbx: svc])
    monkeypatch.setattr("pypbx.server._load_builtin_services", lambda: None)
    pbx = Pbx(load_config_dir(cfg_dir))

    async def scenario() -> int:
        task = asyncio.create_task(pbx.run())
        while "start" not in svc.events:
            await asyncio.sleep(0.01)
        old_dialplan = pbx.dialplan
        result = await pbx.reload_sip()
        assert result.ok
        assert result.lines[-1] == "fake reloaded"
        assert svc.configs[-1].dialplan is old_dialplan  # only sip/rtp were rebuilt
        pbx.request_stop()
        return await task

    with caplog.at_level(logging.INFO, logger="pypbx"):
        assert asyncio.run(scenario()) == 0
    assert svc.events == ["start", "stop"]
    assert "Listening: SIP listening on udp 127.0.0.1:5999 (fake)" in caplog.text
    assert not (cfg_dir / "run" / "pypbx.ctl").exists()


def test_a_service_refusing_a_reload_keeps_the_old_configuration(cfg_dir: Path) -> None:
    pbx = Pbx(load_config_dir(cfg_dir))
    pbx.services.append(FakeService(fail_reload=True))
    before = pbx.config
    (cfg_dir / "sip.conf").write_text((cfg_dir / "sip.conf").read_text() + "\n[2000]\n")
    result = asyncio.run(pbx.reload_sip())
    assert not result.ok
    assert result.lines[0] == "fake: port 5999 is taken"
    assert pbx.config is before


@dataclass
class Cdr:
    start: float
    src: str
    dst: str
    dcontext: str
    channel: str
    disposition: str
    billsec: int


class CdrStoreFake:
    name = "sqlite3"

    def __init__(self, records: list[Cdr]) -> None:
        self.records = records
        self.asked: list[int] = []

    def last(self, n: int) -> list[Cdr]:
        self.asked.append(n)
        return self.records[:n]


def test_cdr_commands(pbx: Pbx) -> None:
    off = run(pbx, "cdr show last")
    assert (off.ok, off.output) == (False, "CDR logging is not enabled.")
    assert "Logging:                    Disabled" in run(pbx, "cdr show status").output
    when = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1))
    store = CdrStoreFake(
        [
            Cdr(when, "1000", "600", "outgoing", "SIP/1000-00000001", "ANSWERED", 42),
            Cdr(when - 60, "1001", "1000", "outgoing", "SIP/1001-00000002", "NO ANSWER", 0),
        ]
    )
    pbx.cdr_store = store
    out = run(pbx, "cdr show last 1").output.splitlines()
    assert store.asked == [1]
    assert re.fullmatch(
        r"Start +Source +Destination +Context +Channel +Disposition +Billsec", out[0]
    )
    assert re.fullmatch(
        r"2026-01-02 03:04:05 1000 +600 +outgoing +SIP/1000-00000001 +ANSWERED +42", out[1]
    )
    assert out[-1] == "1 call detail record."
    assert run(pbx, "cdr show last").output.splitlines()[-1] == "2 call detail records."
    assert store.asked[-1] == 10
    assert run(pbx, "cdr show last many").output.startswith("Usage: cdr show last")
    status = run(pbx, "cdr show status").output
    assert "Logging:                    Enabled" in status
    assert status.rstrip().endswith("sqlite3")


load_commands()
COMMAND_NAMES = [c.name for c in REGISTRY.commands()]
ARGS = ["1000", "flowroute", "like", "x", "9", "-1", "all", "ip", "peer", "on", "off", '"', "\x00"]
ARGS += ["outgoing", "600@outgoing", "chan_sip.so", "atleast", "seconds", "verbose", "concise"]
ARGS += ["fam", "key", "value", "192.0.2.1", "Dial", "CALLERID", "now", "gracefully", ""]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(COMMAND_NAMES), st.lists(st.sampled_from(ARGS), max_size=4))
def test_no_arguments_crash_a_handler(pbx: Pbx, name: str, args: list[str]) -> None:
    line = " ".join([name, *args])
    outcome = run(pbx, line)  # any exception but CommandError/ShowUsage fails the test
    assert isinstance(outcome.output, str)
    if not outcome.ok:
        assert outcome.output  # a failure always says why


def test_graceful_stop_waits_for_the_last_channel(
    cfg_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no real services: the tutorial's SIP service would bind 0.0.0.0:5060
    monkeypatch.setattr("pypbx.server.SERVICE_FACTORIES", [])
    monkeypatch.setattr("pypbx.server._load_builtin_services", lambda: None)
    pbx = Pbx(load_config_dir(cfg_dir))
    pbx.channels = [Chan("SIP/1000-00000001")]
    order: list[str] = []

    async def scenario() -> int:
        task = asyncio.create_task(pbx.run())
        while not (cfg_dir / "run" / "pypbx.ctl").exists():
            await asyncio.sleep(0.01)
        out = await REGISTRY.execute(pbx, "core stop gracefully")
        assert out.output == (
            "Shutting down pypbx gracefully: 1 active channel to finish; new calls are refused."
        )
        await asyncio.sleep(0.2)
        assert not task.done()  # still waiting for the call
        assert not pbx.accepting_calls  # the SIP layer answers new calls 503 from here on
        order.append("hangup")
        pbx.channels.clear()
        code = await asyncio.wait_for(task, 2)
        order.append("stopped")
        return code

    assert asyncio.run(scenario()) == 0
    assert order == ["hangup", "stopped"]
