"""Start real pypbx processes on temporary copies of examples/tutorial (glue-test helper)."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "examples" / "tutorial"
READY = re.compile(r"pypbx \S+ ready")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(dest: Path) -> Path:
    """Copy the tutorial to ``dest`` with SIP on 127.0.0.1 and a free port."""
    shutil.copytree(TUTORIAL, dest)
    sip = dest / "sip.conf"
    text = sip.read_text()
    text = re.sub(r"(?m)^bindport=\d+", f"bindport={free_udp_port()}", text)
    text = re.sub(r"(?m)^bindaddr=\S+", "bindaddr=127.0.0.1", text)
    sip.write_text(text)
    return dest


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("PYPBX_HISTORY", None)
    return e


def pypbx(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pypbx ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "pypbx", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
        cwd=ROOT,
        check=False,
    )


class PbxProcess:
    """A ``pypbx run`` child; its combined output is collected line by line."""

    def __init__(self, config_dir: Path, *extra: str) -> None:
        self.config_dir = config_dir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pypbx", "run", "-C", str(config_dir), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env(),
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 15.0) -> str:
        """Wait until an output line matches; fail with the output so far if it does not."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no line matching {rx.pattern!r} in:\n" + "\n".join(self.lines)
                )
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"pypbx exited ({self.proc.wait()}) before {rx.pattern!r}:\n"
                    + "\n".join(self.lines)
                )
            self.lines.append(line)
            if rx.search(line):
                return line

    def wait_ready(self) -> PbxProcess:
        self.wait_for(READY)
        return self

    def output(self) -> str:
        """All output, after the process ended."""
        self._reader.join(timeout=5)
        while True:
            try:
                line = self._q.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
