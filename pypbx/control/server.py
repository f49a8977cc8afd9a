"""The control socket: Asterisk's ``asterisk.ctl`` for pypbx (main/asterisk.c remote consoles).

A UNIX stream socket ``pypbx.ctl`` in the PBX's run directory, mode 0660, nothing on the
network. One request per connection, one JSON object per line (see
:mod:`pypbx.control.client` for the format). Consoles (``pypbx -r``) keep a subscription
connection open and receive live log lines at their own verbosity.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pypbx import __version__
from pypbx.control import load_commands
from pypbx.control.client import socket_address
from pypbx.control.commands import REGISTRY, CommandRegistry, current_console
from pypbx.log import LogSink

if TYPE_CHECKING:
    from pypbx.server import Pbx

__all__ = ["ConsoleSession", "ControlServer"]

log = logging.getLogger("pypbx.control")

MAX_REQUEST = 64 * 1024
REQUEST_TIMEOUT = 30.0
"""A client that sends no complete request line within this many seconds is dropped."""
MAX_BUFFERED = 1024 * 1024
"""A console that reads slower than this many bytes of backlog loses log lines, not memory."""


class ConsoleSession:
    """A connected ``pypbx -r`` console: its id and its log sink (which holds its verbosity)."""

    def __init__(self, ident: int, sink: LogSink) -> None:
        self.ident = ident
        self.sink = sink

    @property
    def verbosity(self) -> int:
        return self.sink.level

    @verbosity.setter
    def verbosity(self, level: int) -> None:
        self.sink.level = level


def _alive(path: Path) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(1.0)
    try:
        with socket_address(path) as addr:
            sock.connect(addr)
    except OSError:
        return False
    finally:
        sock.close()
    return True


class ControlServer:
    """Serves CLI commands, completions and live logs on ``path`` for one :class:`Pbx`."""

    def __init__(self, pbx: Pbx, path: Path, registry: CommandRegistry = REGISTRY) -> None:
        self.pbx = pbx
        self.path = path
        self.registry = registry
        self.consoles: dict[int, ConsoleSession] = {}
        self._ids = itertools.count(1)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen; raises AlreadyRunning when another PBX answers on the same socket."""
        from pypbx.server import AlreadyRunning

        load_commands()
        if self.path.exists() or self.path.is_symlink():
            if _alive(self.path):
                raise AlreadyRunning(
                    f"another pypbx is running with the control socket {self.path}"
                )
            self.path.unlink()
        old_umask = os.umask(0o117)  # the socket is born 0660, never wider
        try:
            with socket_address(self.path) as addr:
                self._server = await asyncio.start_unix_server(
                    self._serve, path=addr, limit=MAX_REQUEST
                )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o660)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        for sess in list(self.consoles.values()):
            self.pbx.fanout.detach(sess.sink)
        self.consoles.clear()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            try:
                raw = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
                req = json.loads(raw) if raw else None
            except TimeoutError:
                return
            except (ValueError, UnicodeDecodeError) as exc:
                await self._reply(writer, {"ok": False, "output": f"bad request: {exc}"})
                return
            if not isinstance(req, dict):
                await self._reply(writer, {"ok": False, "output": "bad request"})
                return
            if req.get("subscribe"):
                await self._console(req, reader, writer)
            elif isinstance(req.get("cmd"), str):
                await self._reply(writer, await self._command(req))
            elif isinstance(req.get("complete"), str):
                matches = self.registry.complete(self.pbx, req["complete"])
                await self._reply(writer, {"ok": True, "matches": matches})
            else:
                await self._reply(writer, {"ok": False, "output": "bad request"})
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _command(self, req: dict[str, Any]) -> dict[str, Any]:
        session = self.consoles.get(req["console"]) if isinstance(req.get("console"), int) else None
        token = current_console.set(session)
        try:
            outcome = await self.registry.execute(self.pbx, req["cmd"])
        except Exception as exc:  # the control boundary: one line, the daemon carries on
            log.exception("command %r failed", req["cmd"])
            return {"ok": False, "output": f"Internal error in '{req['cmd']}': {exc!r}"}
        finally:
            current_console.reset(token)
        return {"ok": outcome.ok, "output": outcome.output}

    async def _reply(self, writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
        writer.write(json.dumps(obj).encode() + b"\n")
        await writer.drain()

    async def _console(
        self, req: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        level = req.get("verbose")
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def send(line: str) -> None:
            if writer.is_closing() or writer.transport.get_write_buffer_size() > MAX_BUFFERED:
                return
            data = json.dumps({"log": line}).encode() + b"\n"
            if threading.get_ident() == loop_thread:
                writer.write(data)
            else:
                loop.call_soon_threadsafe(writer.write, data)

        sink = self.pbx.fanout.attach(send, level if isinstance(level, int) else self.pbx.verbosity)
        session = ConsoleSession(next(self._ids), sink)
        self.consoles[session.ident] = session
        try:
            hello: dict[str, Any] = {"ok": True, "console": session.ident, "pid": os.getpid()}
            hello |= {"version": __version__, "verbose": sink.level}
            await self._reply(writer, hello)
            while await reader.read(4096):
                pass
        finally:
            self.pbx.fanout.detach(sink)
            self.consoles.pop(session.ident, None)
