"""Run SIPp scenarios on loopback, bounded in time, and read what happened.

A small fixture library for the interop tests: :func:`sipp_command` builds the argument
list (``-i 127.0.0.x``, ``-p``, ``-m``, ``-timeout``, ``-trace_msg`` ...), :func:`run_sipp`
runs it to completion under a subprocess timeout, :func:`start_sipp` starts it in the
background (SIPp as a server), and :class:`SippResult` holds the exit code, the
successful/failed call counts parsed from the final screen and the message trace.

SIPp exit codes: 0 all calls succeeded, 1 at least one failed, 97 stopped by an internal
command, 99 normal exit without any call processed, 255/-1 fatal error.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent / "scenarios"

_COUNT_RE = {
    name: re.compile(rf"^\s*{label}\s*\|[^|]*\|\s*(\d+)", re.M)
    for name, label in (("successful", "Successful call"), ("failed", "Failed call"))
}


def sipp_binary() -> str | None:
    """Path of ``sipp``, or ``None`` when it is not installed."""
    return shutil.which("sipp")


def free_port(host: str, kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    """A port that is free on ``host`` right now, for UDP and TCP both (best effort)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, kind) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(family, other) as check:
                check.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port on {host}")


@dataclass(frozen=True, slots=True)
class SippResult:
    """What one SIPp run left behind."""

    returncode: int
    successful: int | None
    failed: int | None
    output: str
    screen: str
    messages: str
    errors: str
    logs: str

    @property
    def ok(self) -> bool:
        """Exit code 0 and no failed call."""
        return self.returncode == 0 and not self.failed

    def explain(self) -> str:
        """Everything useful for an assertion message."""
        return (
            f"sipp rc={self.returncode} successful={self.successful} failed={self.failed}\n"
            f"--- output\n{self.output[-3000:]}\n--- errors\n{self.errors[-3000:]}\n"
            f"--- messages\n{self.messages[-6000:]}"
        )


def _count(screen: str, name: str) -> int | None:
    found = _COUNT_RE[name].findall(screen)
    return int(found[-1]) if found else None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class SippRun:
    """A prepared SIPp command and where its trace files go."""

    args: list[str]
    workdir: Path
    timeout: float

    @property
    def files(self) -> dict[str, Path]:
        return {n: self.workdir / f"sipp_{n}.log" for n in ("screen", "messages", "errors", "logs")}

    def result(self, returncode: int, output: str) -> SippResult:
        files = {name: _read(path) for name, path in self.files.items()}
        return SippResult(
            returncode=returncode,
            successful=_count(files["screen"], "successful"),
            failed=_count(files["screen"], "failed"),
            output=output,
            screen=files["screen"],
            messages=files["messages"],
            errors=files["errors"],
            logs=files["logs"],
        )


def sipp_command(
    scenario: str | Path,
    target: str | None,
    *,
    workdir: Path,
    local_ip: str,
    local_port: int,
    calls: int = 1,
    timeout: float = 15.0,
    transport: str = "u1",
    keys: Mapping[str, str] = {},
    extra: Iterable[str] = (),
) -> SippRun:
    """The SIPp command for one bounded run of ``scenario`` (a name under
    ``scenarios/`` or a path) towards ``target`` (``host:port``; ``None`` for a server)."""
    binary = sipp_binary()
    if binary is None:
        raise RuntimeError("sipp is not installed")
    path = Path(scenario)
    if not path.is_absolute():
        path = SCENARIOS / (path.name if path.suffix else f"{path.name}.xml")
    run = SippRun([], workdir, timeout)
    files = run.files
    args = [
        binary,
        "-sf",
        str(path),
        "-i",
        local_ip,
        "-p",
        str(local_port),
        "-mi",
        local_ip,
        "-mp",
        str(free_port(local_ip)),
        "-t",
        transport,
        "-m",
        str(calls),
        "-timeout",
        f"{max(1, int(timeout))}s",
        "-timeout_error",
        "-nostdin",
        "-nd",
        "-trace_msg",
        "-message_file",
        str(files["messages"]),
        "-trace_err",
        "-error_file",
        str(files["errors"]),
        "-trace_screen",
        "-screen_file",
        str(files["screen"]),
        "-trace_logs",
        "-log_file",
        str(files["logs"]),
    ]
    for name, value in keys.items():
        args += ["-key", name, value]
    args += list(extra)
    if target is not None:
        args.append(target)
    return SippRun(args, workdir, timeout)


def run_sipp(run: SippRun) -> SippResult:
    """Run to completion; the subprocess is killed 10 s after SIPp's own ``-timeout``."""
    proc = subprocess.run(
        run.args,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=run.timeout + 10,
        cwd=run.workdir,
        check=False,
    )
    return run.result(proc.returncode, proc.stdout + proc.stderr)


class SippProcess:
    """A SIPp started in the background (SIPp as the server side)."""

    def __init__(self, run: SippRun) -> None:
        self.run = run
        self._out = run.workdir / "sipp_output.log"
        with self._out.open("w") as out:
            self.proc = subprocess.Popen(
                run.args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=run.workdir,
            )

    def wait(self) -> SippResult:
        """Wait for SIPp to finish (killed 10 s after its own timeout)."""
        try:
            code = self.proc.wait(timeout=self.run.timeout + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return self.run.result(code, _read(self._out))

    def stop(self) -> None:
        """Kill SIPp if it is still running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_sipp(run: SippRun) -> SippProcess:
    """Start SIPp in the background; call ``wait()`` for its result."""
    return SippProcess(run)
