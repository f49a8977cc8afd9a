"""``pypbx -r``: the interactive remote console (Asterisk's ``asterisk -r``, main/asterisk.c).

A readline prompt with a history file and tab completion (command words from the registry,
peer and context names from the command completers, asked of the running PBX), plus live log
lines: a subscription connection streams the PBX's log records filtered at this console's own
verbosity (``core set verbose N`` typed here changes this console's level only).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from pypbx.control.client import ProtocolError, connect, read_reply, request, run_command

__all__ = ["PROMPT", "history_path", "run_console"]

PROMPT = "pypbx*CLI> "
HISTORY_LENGTH = 1000
QUIT_WORDS = ("exit", "quit")


def history_path() -> Path | None:
    """``$PYPBX_HISTORY``, else ``~/.pypbx_history`` (None when there is no home)."""
    env = os.environ.get("PYPBX_HISTORY")
    if env:
        return Path(env)
    home = os.environ.get("HOME")
    return Path(home) / ".pypbx_history" if home else None


class _LogReader(threading.Thread):
    """Prints the subscription's log lines above the prompt until the PBX goes away."""

    def __init__(self, stream: BinaryIO, out: TextIO, prompt: str) -> None:
        super().__init__(name="pypbx-console-log", daemon=True)
        self.stream = stream
        self.out = out
        self.prompt = prompt
        self.disconnected = threading.Event()
        self.closing = threading.Event()

    def run(self) -> None:
        try:
            for raw in self.stream:
                try:
                    line = json.loads(raw).get("log")
                except (ValueError, AttributeError):
                    continue
                if isinstance(line, str):
                    self._show(line)
        except OSError:
            pass
        if not self.closing.is_set():
            self.disconnected.set()
            os.kill(os.getpid(), signal.SIGINT)

    def _show(self, line: str) -> None:
        buf = ""
        with contextlib.suppress(ImportError):
            import readline

            buf = readline.get_line_buffer()
        self.out.write(f"\r\x1b[K{line}\n{self.prompt}{buf}")
        self.out.flush()


def _setup_readline(path: Path, history: Path | None) -> Any:
    try:
        import readline
    except ImportError:
        return None

    cache: list[str] = []

    def complete(text: str, state: int) -> str | None:
        if state == 0:
            line = readline.get_line_buffer()[: readline.get_endidx()]
            try:
                reply = request(path, {"complete": line}, timeout=5.0)
            except (OSError, ProtocolError):
                reply = {}
            matches = reply.get("matches")
            cache[:] = (
                [m for m in matches if isinstance(m, str)] if isinstance(matches, list) else []
            )
        return cache[state] if state < len(cache) else None

    readline.set_completer_delims(" \t\n")
    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")
    readline.set_history_length(HISTORY_LENGTH)
    if history is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(history)
    return readline


def run_console(
    path: Path, *, verbosity: int | None = None, out: TextIO | None = None, prompt: str = PROMPT
) -> int:
    """Run the console against the control socket ``path`` until ``exit`` or end of input."""
    out = out or sys.stdout
    sub = connect(path, timeout=10.0)
    hello: dict[str, Any] = {"subscribe": True}
    if verbosity is not None:
        hello["verbose"] = verbosity
    sub.sendall(json.dumps(hello).encode() + b"\n")
    stream = sub.makefile("rb")
    reply = read_reply(stream)
    console = reply.get("console")
    if not isinstance(console, int):
        sub.close()
        raise ProtocolError("the PBX refused the console")
    sub.settimeout(None)
    out.write(
        f"Connected to pypbx {reply.get('version', '?')} currently running on "
        f"{socket.gethostname()} (pid = {reply.get('pid', '?')})\n"
    )
    out.flush()
    history = history_path()
    rl = _setup_readline(path, history)
    reader = _LogReader(stream, out, prompt)
    reader.start()
    code = 0
    try:
        while True:
            try:
                line = input(prompt).strip()
            except EOFError:
                out.write("\n")
                break
            except KeyboardInterrupt:
                if reader.disconnected.is_set():
                    out.write("\nDisconnected from pypbx\n")
                    code = 1
                    break
                out.write("\n")
                continue
            if not line:
                continue
            if line.lower() in QUIT_WORDS:
                break
            try:
                _ok, text = run_command(path, line, console=console)
            except (OSError, ProtocolError) as exc:
                out.write(f"Disconnected from pypbx: {exc}\n")
                code = 1
                break
            if text:
                out.write(text.rstrip("\n") + "\n")
            out.flush()
    finally:
        reader.closing.set()
        with contextlib.suppress(OSError):
            sub.shutdown(socket.SHUT_RDWR)
        sub.close()
        stream.close()
        if rl is not None and history is not None:
            with contextlib.suppress(OSError):
                rl.write_history_file(history)
        out.flush()
    return code
