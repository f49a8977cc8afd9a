"""A real pypbx process: start-up, -rx for every command, reloads, signals, side-by-side runs."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pypbx import __version__
from pypbx.check import load_one
from pypbx.cli import main
from tests.control.pbxproc import PbxProcess, make_config, pypbx


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PbxProcess]:
    cfg = make_config(tmp_path_factory.mktemp("shared") / "tutorial")
    pbx = PbxProcess(cfg).wait_ready()
    yield pbx
    pbx.stop()


@pytest.fixture
def own(tmp_path: Path) -> Iterator[PbxProcess]:
    """A PBX of the test's own (its configuration may be edited)."""
    pbx = PbxProcess(make_config(tmp_path / "tutorial")).wait_ready()
    yield pbx
    pbx.kill()


def rx(capsys: pytest.CaptureFixture[str], cfg: Path, command: str) -> tuple[int, str, str]:
    code = main(["-C", str(cfg), "-rx", command])
    out, err = capsys.readouterr()
    return code, out, err


def test_startup_prints_listeners_and_writes_pid(running: PbxProcess) -> None:
    text = "\n".join(running.lines)
    sock = running.config_dir / "run" / "pypbx.ctl"
    assert f"Listening: Control socket {sock.resolve()}" in text
    assert stat.S_IMODE(sock.stat().st_mode) == 0o660
    assert (running.config_dir / "run" / "pypbx.pid").read_text().strip() == str(running.proc.pid)
    for d in ("data", "log"):
        assert (running.config_dir / d).is_dir()


COMMANDS = [
    ("core show version", [f"pypbx {__version__} running on"]),
    ("core show uptime", [r"^System uptime: \d+ seconds?$", r"^Last reload: \d+ seconds?$"]),
    ("core show uptime seconds", [r"^System uptime: \d+$", r"^Last reload: \d+$"]),
    (
        "sip show peers",
        [
            r"^Name/username             Host                                    Dyn Forcerport"
            r" Comedia    ACL Port     Status      Description$",
            r"^flowroute/PROVIDER_USER\s+\(Unspecified\)",
            r"^1000 +\(Unspecified\) +D  Yes +Yes +0 +UNKNOWN$",
            r"^3 sip peers \[Monitored: 0 online, 3 offline Unmonitored: 0 online, 0 offline\]$",
        ],
    ),
    (
        "sip show peer 1000",
        [r"\* Name       : 1000", r"Context      : outgoing", r"Secret .*<Set>"],
    ),
    (
        "sip show registry",
        [
            r"^Host                                    dnsmgr Username       Refresh State"
            r"                Reg\.Time$",
            r"^sip\.provider\.example:5060 +N +PROVIDER_USE +120 Unregistered$",
            r"^1 SIP registrations\.$",
        ],
    ),
    (
        "sip show users",
        [r"^Username +Secret +Accountcode +Def\.Context +ACL +Forcerport$", "^1001 "],
    ),
    ("sip show channels", [r"^Peer +User/ANR +Call ID", r"^0 active SIP dialogs$"]),
    ("sip set debug on", ["^SIP Debugging enabled$"]),
    ("sip set debug off", ["^SIP Debugging Disabled$"]),
    (
        "core show channels",
        [
            r"^Channel +Location +State +Application\(Data\)$",
            "^0 active channels$",
            "^0 active calls$",
            "^0 calls processed$",
        ],
    ),
    ("core show channels verbose", [r"^Channel +Context +Extension +Prio", "^0 active channels$"]),
    ("core show calls", ["^0 active calls$", "^0 calls processed$"]),
    (
        "core show applications",
        [
            r"-= Registered pypbx Applications =-",
            r"^ +Dial: ",
            r"-= \d+ Applications Registered =-",
        ],
    ),
    ("core show application dial", [r"-= Info about application 'Dial' =-", r"\[Synopsis\]"]),
    (
        "core show functions",
        [r"^Installed Custom Functions:$", r"^\d+ custom functions installed\.$"],
    ),
    ("dialplan reload", [r"^Dialplan reloaded\.$"]),
    ("sip reload", [r"^SIP reloaded: no changes\.$"]),
    (
        "module reload",
        [
            r"^Reloading module 'chan_sip\.so'$",
            r"^Dialplan reloaded\.$",
            r"^RTP configuration reloaded\.$",
        ],
    ),
    ("core reload", [r"^Reloading module 'res_rtp_asterisk\.so'$"]),
    ("core show function CALLERID", [r"-= Info about function 'CALLERID' =-", r"\[Syntax\]"]),
    ("module reload pbx_config.so", [r"^Reloading module 'pbx_config\.so'$"]),
    ("help", [r"^sip show peers +-- List defined SIP peers$", r"^core stop now +-- "]),
    ("help sip show", [r"^sip show registry +-- ", r"^sip show peer +-- "]),
    ("help sip show peers", [r"^Usage: sip show peers"]),
    ("core show help core stop", [r"^core stop gracefully +-- "]),
]


@pytest.mark.parametrize(("command", "patterns"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_rx_command(
    running: PbxProcess, capsys: pytest.CaptureFixture[str], command: str, patterns: list[str]
) -> None:
    code, out, err = rx(capsys, running.config_dir, command)
    assert (code, err) == (0, ""), out
    for pattern in patterns:
        assert re.search(pattern, out, re.MULTILINE), f"{pattern!r} not in:\n{out}"


def test_database_commands(running: PbxProcess, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = running.config_dir
    assert rx(capsys, cfg, "database put cidname 1000 Alice")[1].strip() == (
        "Updated database successfully"
    )
    assert rx(capsys, cfg, "database put cidname 1001 Bob")[0] == 0
    assert rx(capsys, cfg, "database get cidname 1000")[1].strip() == "Value: Alice"
    out = rx(capsys, cfg, "database show cidname")[1]
    assert re.search(r"^/cidname/1000 {37}: Alice$", out, re.MULTILINE)
    assert out.rstrip().endswith("2 results found.")
    assert rx(capsys, cfg, "database del cidname 1000")[1].strip() == "Database entry removed."
    code, _, err = rx(capsys, cfg, "database get cidname 1000")
    assert (code, err.strip()) == (1, "Database entry not found.")
    code, _, err = rx(capsys, cfg, "database del cidname 1000")
    assert (code, err.strip()) == (1, "Database entry does not exist.")
    assert rx(capsys, cfg, "database deltree cidname")[1].strip() == "1 database entries removed."
    assert (cfg / "data" / "astdb.sqlite3").exists()


def test_dialplan_show(running: PbxProcess, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = rx(capsys, running.config_dir, "dialplan show outgoing")
    assert code == 0
    assert "outgoing" in out
    assert "Dial(SIP/1000,30)" in out
    code, _, err = rx(capsys, running.config_dir, "dialplan show nosuchcontext")
    assert code == 1
    assert "There is no existence of 'nosuchcontext' context" in err
    code, out, _ = rx(capsys, running.config_dir, "dialplan show 600@outgoing")
    assert code == 0
    assert "Echo()" in out
    assert "1000" not in out


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("bogus command", "No such command 'bogus command'"),
        ("sip show peer nobody", "Peer nobody not found."),
        ("core show application NoSuchApp", "Your application(s) is (are) not registered"),
        ("core show uptime forever", "Usage: core show uptime"),
        ("core set verbose loud", "Usage: core set verbose"),
        ("module reload chan_foo.so", "The module 'chan_foo' was not found"),
        ("channel request hangup SIP/9-0001", "SIP/9-0001 is not a known channel"),
        ("core show function NOPE", "No function by that name registered: NOPE"),
    ],
)
def test_rx_failure_exits_1(
    running: PbxProcess, capsys: pytest.CaptureFixture[str], command: str, message: str
) -> None:
    code, out, err = rx(capsys, running.config_dir, command)
    assert code == 1
    assert message in err
    assert out == ""


def test_rx_in_a_subprocess(running: PbxProcess) -> None:
    done = pypbx("-C", str(running.config_dir), "-rx", "core show version")
    assert done.returncode == 0
    assert done.stdout.startswith(f"pypbx {__version__}")
    bad = pypbx("-C", str(running.config_dir), "-rx", "no such thing")
    assert bad.returncode == 1
    assert "No such command 'no such thing'" in bad.stderr


def test_rx_when_not_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path / "idle")
    code, out, err = rx(capsys, cfg, "core show version")
    assert code == 1
    assert out == ""
    assert f"pypbx is not running for {cfg}" in err
    assert "pypbx.ctl" in err


def test_core_set_verbose_on_the_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path / "v")
    settings, _ = load_one(cfg, "pypbx.conf")
    base = getattr(settings, "verbose", 0) if settings is not None else 0
    pbx = PbxProcess(cfg, "-vv").wait_ready()
    try:
        assert rx(capsys, cfg, "core set verbose 9")[1].strip() == (
            f"Verbosity was {base + 2} and is now 9"
        )
        assert rx(capsys, cfg, "core set verbose 9")[1].strip() == "Verbosity is at least 9"
        assert rx(capsys, cfg, "core set verbose atleast 4")[1].strip() == (
            "Verbosity is at least 9"
        )
        assert rx(capsys, cfg, "core set verbose off")[1].strip() == "Verbosity is now OFF"
    finally:
        pbx.kill()


def test_sigterm_stops_within_5s_with_exit_0(own: PbxProcess) -> None:
    started = time.monotonic()
    assert own.stop(signal.SIGTERM, timeout=5) == 0
    assert time.monotonic() - started < 5
    assert "pypbx stopped" in own.output()
    assert not (own.config_dir / "run" / "pypbx.ctl").exists()
    assert not (own.config_dir / "run" / "pypbx.pid").exists()


def test_sigint_stops_with_exit_0(own: PbxProcess) -> None:
    assert own.stop(signal.SIGINT, timeout=5) == 0


@pytest.mark.parametrize("how", ["now", "gracefully"])
def test_core_stop(own: PbxProcess, capsys: pytest.CaptureFixture[str], how: str) -> None:
    code, out, _ = rx(capsys, own.config_dir, f"core stop {how}")
    assert code == 0
    assert out.startswith("Shutting down pypbx")
    assert own.proc.wait(timeout=5) == 0


def test_two_instances_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = make_config(tmp_path / "a"), make_config(tmp_path / "b")
    with (b / "sip.conf").open("a") as f:
        f.write("\n[2000]\ntype=friend\nhost=dynamic\nsecret=x\n")
    pa, pb = PbxProcess(a).wait_ready(), PbxProcess(b).wait_ready()
    try:
        out_a = rx(capsys, a, "sip show peers")[1]
        out_b = rx(capsys, b, "sip show peers")[1]
        assert "3 sip peers" in out_a
        assert "4 sip peers" in out_b
        assert re.search("^2000 ", out_b, re.MULTILINE)
        assert pa.stop() == 0
        assert rx(capsys, b, "core show version")[0] == 0
        assert pb.stop() == 0
    finally:
        pa.kill()
        pb.kill()


def test_second_instance_on_the_same_dir_is_refused(own: PbxProcess) -> None:
    second = PbxProcess(own.config_dir)
    assert second.proc.wait(timeout=10) == 1
    assert "another pypbx is running with the control socket" in second.output()
    done = pypbx("-C", str(own.config_dir), "-rx", "core show version")
    assert done.returncode == 0


def test_stale_socket_is_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path / "stale")
    pbx = PbxProcess(cfg).wait_ready()
    pbx.kill()  # SIGKILL leaves the socket file behind
    assert (cfg / "run" / "pypbx.ctl").exists()
    again = PbxProcess(cfg).wait_ready()
    try:
        assert rx(capsys, cfg, "core show version")[0] == 0
    finally:
        assert again.stop() == 0


def test_sip_reload_reports_changes_and_refuses_errors(
    own: PbxProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    sip = own.config_dir / "sip.conf"
    original = sip.read_text()
    sip.write_text(original.replace("[1001]", "[1002]") + "\n[1000](+)\ncallerid=Alice <1000>\n")
    code, out, _ = rx(capsys, own.config_dir, "sip reload")
    assert code == 0
    assert "Peer added: 1002" in out
    assert "Peer removed: 1001" in out
    assert "Peer changed: 1000" in out
    assert "SIP reloaded: 3 changes." in out
    sip.write_text(original + "\n[broken\n")
    code, out, err = rx(capsys, own.config_dir, "sip reload")
    assert code == 1
    lines = original.count("\n") + 2
    assert f"{sip}:{lines}: no closing ']' in section header" in err
    assert "keeping the running configuration" in err
    peers = rx(capsys, own.config_dir, "sip show peers")[1]
    assert re.search("^1002 ", peers, re.MULTILINE)  # the last good configuration still runs


def test_reload_prints_the_lines_it_skipped(
    own: PbxProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line Asterisk would skip with a warning is skipped, and ``-rx`` shows it as
    ``file:line: message`` (the rest of the file is adopted)."""
    sip = own.config_dir / "sip.conf"
    original = sip.read_text()
    sip.write_text(original + "\n[1003]\ntype=friend\nthis line is broken\n")
    code, out, _ = rx(capsys, own.config_dir, "sip reload")
    assert code == 0
    line = original.count("\n") + 4
    assert f"WARNING: {sip}:{line}: no '=' (equal sign) in line: 'this line is broken'" in out
    assert "Peer added: 1003" in out
    ext = own.config_dir / "extensions.conf"
    ext.write_text(ext.read_text() + "\n[late]\nexten => 5000\n")
    code, out, _ = rx(capsys, own.config_dir, "dialplan reload")
    assert code == 0
    assert re.search(rf"WARNING: {re.escape(str(ext))}:\d+: Invalid priority/label ''", out), out
    assert out.rstrip().endswith("Dialplan reloaded.")


def test_reload_refuses_a_missing_file(own: PbxProcess, capsys: pytest.CaptureFixture[str]) -> None:
    sip = own.config_dir / "sip.conf"
    sip.rename(own.config_dir / "sip.conf.away")
    code, _, err = rx(capsys, own.config_dir, "sip reload")
    assert code == 1
    assert f"{sip}: file not found" in err
    assert "3 sip peers" in rx(capsys, own.config_dir, "sip show peers")[1]


def test_dialplan_reload_refuses_a_broken_file(
    own: PbxProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    ext = own.config_dir / "extensions.conf"
    ext.write_text(ext.read_text() + '\n#include "missing.conf"\n')
    code, _, err = rx(capsys, own.config_dir, "dialplan reload")
    assert code == 1
    assert re.search(rf"^{re.escape(str(ext))}:\d+: #include", err, re.MULTILINE)
    before = rx(capsys, own.config_dir, "core show uptime seconds")[1]
    assert re.search(r"^Last reload: \d+$", before, re.MULTILINE)


def test_json_logs(tmp_path: Path) -> None:
    pbx = PbxProcess(make_config(tmp_path / "j"), "--json-logs")
    try:
        line = pbx.wait_for(r'"message": "pypbx \S+ ready')
        obj = json.loads(line)
        assert obj["logger"] == "pypbx.server"
        assert obj["level"] == "INFO"
    finally:
        assert pbx.stop() == 0


def test_log_file_in_logdir(running: PbxProcess) -> None:
    text = (running.config_dir / "log" / "messages").read_text()
    assert "ready (configuration" in text


def test_log_file_reopened_after_rotation(
    own: PbxProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    log = own.config_dir / "log" / "messages"
    log.rename(log.with_name("messages.1"))
    assert rx(capsys, own.config_dir, "dialplan reload")[0] == 0
    assert "Reloaded extensions.conf" in log.read_text()
    assert "Reloaded extensions.conf" not in log.with_name("messages.1").read_text()


def test_broken_configuration_does_not_start(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "bad")
    with (cfg / "sip.conf").open("a") as f:
        f.write("\n[oops\n")
    pbx = PbxProcess(cfg)
    assert pbx.proc.wait(timeout=10) == 1
    assert re.search(r"sip\.conf:\d+: no closing", pbx.output())


def test_long_run_directory_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    cfg = make_config(deep / "cfg")
    assert len(str(cfg / "run" / "pypbx.ctl")) > 108
    pbx = PbxProcess(cfg).wait_ready()
    try:
        assert rx(capsys, cfg, "core show version")[0] == 0
    finally:
        assert pbx.stop() == 0
    assert os.path.exists(cfg / "run")
