"""``pypbx -r`` through a pseudo-terminal: completion, history, output, live log lines."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pypbx import __version__
from tests.control.pbxproc import ROOT, PbxProcess, env, make_config

pytest.importorskip("readline")

PROMPT = "pypbx*CLI> "


class Terminal:
    """A child process on the slave side of a pty; we read and type on the master side."""

    def __init__(self, argv: list[str], environ: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=environ, cwd=ROOT,
            start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self.seen = ""
        self.pending = ""

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, pattern: str, timeout: float = 10.0) -> str:
        """Read until ``pattern`` (a regex) appears after the previous match; return up to it."""
        rx = re.compile(pattern)
        buf, self.pending = self.pending, ""
        deadline = time.monotonic() + timeout
        while (m := rx.search(buf)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} not seen; got {buf!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    chunk = ""
                if not chunk:
                    raise AssertionError(f"{pattern!r} not seen before EOF; got {buf!r}")
                buf += chunk
        self.pending = buf[m.end() :]
        self.seen += buf[: m.end()]
        return buf[: m.end()]

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=5)
        finally:
            os.close(self.master)


@pytest.fixture
def pbx(tmp_path: Path) -> Iterator[PbxProcess]:
    proc = PbxProcess(make_config(tmp_path / "cfg")).wait_ready()
    yield proc
    proc.kill()


def console(pbx: PbxProcess, history: Path, *extra: str) -> Terminal:
    e = env()
    e["PYPBX_HISTORY"] = str(history)
    e["TERM"] = "dumb"
    e["INPUTRC"] = "/dev/null"
    argv = [sys.executable, "-m", "pypbx", "-C", str(pbx.config_dir), "-r", *extra]
    return Terminal(argv, e)


def test_console_completion_history_and_output(pbx: PbxProcess, tmp_path: Path) -> None:
    history = tmp_path / "history"
    term = console(pbx, history)
    term.expect(rf"Connected to pypbx {re.escape(__version__)} .*\(pid = {pbx.proc.pid}\)")
    term.expect(re.escape(PROMPT))
    # command words complete with a tab
    term.type("core show vers\t")
    term.expect("ion")
    term.type("\r")
    term.expect(rf"pypbx {re.escape(__version__)} running on")
    term.expect(re.escape(PROMPT))
    # peer names complete too
    term.type("sip show peer flo\t")
    term.expect("wroute")
    term.type("\r")
    term.expect(r"\* Name       : flowroute")
    term.expect(re.escape(PROMPT))
    # an ambiguous word lists the candidates on a second tab
    term.type("sip show peer 100\t\t")
    out = term.expect(r"1000\s+1001")
    assert "1000" in out
    term.type("\x15")  # ctrl-U: clear the line
    term.type("\r")
    term.expect(re.escape(PROMPT))
    # history: up-arrow brings back the last command, twice the one before
    term.type("\x1b[A\r")
    term.expect(r"\* Name       : flowroute")
    term.expect(re.escape(PROMPT))
    term.type("\x1b[A\x1b[A\x1b[A\r")
    term.expect(rf"pypbx {re.escape(__version__)} running on")
    term.expect(re.escape(PROMPT))
    term.type("\x04")  # ctrl-D leaves like exit
    assert term.close() == 0
    saved = history.read_text()
    assert "core show version" in saved
    assert "sip show peer flowroute" in saved


def test_console_shows_live_log_lines_at_its_verbosity(pbx: PbxProcess, tmp_path: Path) -> None:
    term = console(pbx, tmp_path / "h")
    term.expect(re.escape(PROMPT))
    term.type("core set verbose 0\r")
    term.expect(r"Verbosity (is now OFF|is at least 0)")
    term.type("dialplan reload\r")
    out = term.expect(r"Dialplan reloaded\.")
    assert "Reloaded extensions.conf" not in out
    term.type("core set verbose 5\r")
    term.expect(r"Verbosity was 0 and is now 5")
    term.type("dialplan reload\r")
    term.expect(r"Reloaded extensions\.conf")  # the log record, streamed to this console
    term.type("exit\r")
    assert term.close() == 0


def test_console_exits_when_pypbx_stops(pbx: PbxProcess, tmp_path: Path) -> None:
    term = console(pbx, tmp_path / "h")
    term.expect(re.escape(PROMPT))
    term.type("core stop now\r")
    term.expect("Disconnected from pypbx")
    assert term.close() == 1
    assert pbx.proc.wait(timeout=5) == 0


def test_console_when_not_running(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "idle")
    done = subprocess.run(
        [sys.executable, "-m", "pypbx", "-C", str(cfg), "-r"],
        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"pypbx is not running for {cfg}" in done.stderr
