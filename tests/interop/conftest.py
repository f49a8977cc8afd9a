"""Markers and skip logic for the interop tests, and the stack endpoint process fixture.

``interop`` tests are skipped only when a tool they need is truly absent (``shutil.which``
on each name in the test module's ``INTEROP_TOOLS``);
``netns`` tests only when we are not root or ``ip`` is missing. CI installs both.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.sipp import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ENDPOINT = HERE / "stack_endpoint.py"
READY_RE = re.compile(r"READY udp=(\S+):(\d+) tcp=(\S+)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip an ``interop`` test only when a tool its module lists in ``INTEROP_TOOLS`` is
    truly absent; skip a ``netns`` test only when not root or without ``ip``."""
    no_netns = pytest.mark.skip(reason="network namespaces need root and iproute2 (ip)")
    netns_ok = hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("ip") is not None
    for item in items:
        if "interop" in item.keywords:
            module = getattr(item, "module", None)
            tools: tuple[str, ...] = getattr(module, "INTEROP_TOOLS", ())
            missing = [tool for tool in tools if shutil.which(tool) is None]
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"not installed: {', '.join(missing)}"))
        if "netns" in item.keywords and not netns_ok:
            item.add_marker(no_netns)


class EndpointProcess:
    """``stack_endpoint.py`` running as a child process (optionally under a prefix such
    as ``ip netns exec NS``); its log goes to ``log``."""

    def __init__(
        self,
        log: Path,
        *,
        bind: str = "127.0.0.60",
        port: int = 0,
        tcp: bool = False,
        prefix: tuple[str, ...] = (),
        timeout: float = 10.0,
    ) -> None:
        self.log = log
        args = [*prefix, sys.executable, str(ENDPOINT), "--bind", bind, "--port", str(port)]
        if tcp:
            args.append("--tcp")
        args += ["--log", str(log)]
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self._ready_line(timeout)
        match = READY_RE.search(line)
        if match is None:
            self.stop()
            raise RuntimeError(f"stack endpoint did not start: {line!r}\n{self.log_text()}")
        self.host = match.group(1).strip("[]")
        self.port = int(match.group(2))

    def _ready_line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return "(no READY line within the timeout)"
        return self.proc.stdout.readline()

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 5 s; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


@pytest.fixture
def stack_endpoint(tmp_path: Path) -> Iterator[EndpointProcess]:
    """A stack endpoint on 127.0.0.60 with UDP and TCP on a free port."""
    proc = EndpointProcess(tmp_path / "endpoint.log", port=free_port("127.0.0.60"), tcp=True)
    try:
        yield proc
    finally:
        proc.stop()
