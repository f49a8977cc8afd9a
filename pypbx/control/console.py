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
KNOCK = signal.SIGUSR1
"""Sent to the main thread to leave ``input()`` when the PBX goes away."""


class _Disconnected(Exception):
    """Raised in the main thread by the KNOCK handler."""


def _knocked(signum: int, frame: object) -> None:
    raise _Disconnected


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
        self.lock = threading.Lock()
        self.busy = False
        """True while the main thread waits for a command's reply (no SIGINT then)."""

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
        self.disconnected.set()
        # Wake the prompt with KNOCK until the main thread notices; a signal that lands just
        # before readline starts waiting is not seen, so keep knocking (not while a command
        # is in flight: the main thread checks the flag after it).
        while not self.closing.wait(0.2 if self._knock() else 0.05):
            pass

    def _knock(self) -> bool:
        with self.lock:
            if self.closing.is_set() or self.busy:
                return False
            signal.pthread_kill(threading.main_thread().ident or 0, KNOCK)
            return True

    def set_busy(self, busy: bool) -> None:
        with self.lock:
            self.busy = busy

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


def _one_line(path: Path, console: int, prompt: str, reader: _LogReader, out: TextIO) -> bool:
    """Read and run one command line; False when the user leaves."""
    try:
        line = input(prompt).strip()
    except EOFError:
        out.write("\n")
        return False
    if not line:
        return True
    if line.lower() in QUIT_WORDS:
        return False
    reader.set_busy(True)
    try:
        _ok, text = run_command(path, line, console=console)
    except (OSError, ProtocolError):
        reader.disconnected.set()  # the loop says "Disconnected from pypbx"
        return True
    finally:
        reader.set_busy(False)
    if text:
        out.write(text.rstrip("\n") + "\n")
    out.flush()
    return True


def _loop(path: Path, console: int, prompt: str, reader: _LogReader, out: TextIO) -> int:
    while True:
        if reader.disconnected.is_set():
            reader.closing.set()
            out.write("\nDisconnected from pypbx\n")
            return 1
        try:
            if not _one_line(path, console, prompt, reader, out):
                return 0
        except _Disconnected:
            pass
        except KeyboardInterrupt:  # ^C at the prompt: a fresh line, as Asterisk's console
            out.write("\n")


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
    old_knock = signal.signal(KNOCK, _knocked)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = _loop(path, console, prompt, reader, out)
    except _Disconnected:  # a second knock while leaving
        code = 1
    finally:
        with reader.lock:
            reader.closing.set()
        with contextlib.suppress(OSError):
            sub.shutdown(socket.SHUT_RDWR)
        reader.join(timeout=1.0)
        if not reader.is_alive():
            stream.close()
            sub.close()
        if rl is not None and history is not None:
            with contextlib.suppress(OSError):
                rl.write_history_file(history)
        signal.signal(KNOCK, old_knock)
        signal.signal(signal.SIGINT, old_int)
        out.flush()
    return code
