"""The control socket client: ``pypbx -rx 'COMMAND'`` and the requests of ``pypbx -r``.

The wire format (shared with :mod:`pypbx.control.server`) is one JSON object per line on a
UNIX socket in the PBX's run directory, like Asterisk's ``asterisk.ctl``:

* ``{"cmd": "sip show peers"}`` → ``{"ok": true, "output": "..."}``, then the server closes;
* ``{"complete": "sip show pe"}`` → ``{"ok": true, "matches": ["peer", "peers"]}``;
* ``{"subscribe": true, "verbose": 3}`` → ``{"ok": true, "console": 7}`` then one
  ``{"log": "line"}`` per log record until either side closes (the live log of ``-r``).
  Commands sent with ``"console": 7`` act on that console (``core set verbose``).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pypbx.errors import PbxError

__all__ = [
    "AccessDenied",
    "NotRunning",
    "ProtocolError",
    "connect",
    "request",
    "run_command",
    "socket_address",
]

MAX_LINE = 16 * 1024 * 1024
MAX_SUN_PATH = 100


class NotRunning(PbxError):
    """Nothing answers on the control socket."""


class AccessDenied(NotRunning):
    """The control socket exists but this user may not use it (mode 0660: owner and group)."""


class ProtocolError(PbxError):
    """The control socket answered something that is not a reply."""


@contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """An address for ``path`` that fits a UNIX socket's 108-byte limit (Linux ``/proc`` trick)."""
    text = str(path)
    if len(text.encode()) < MAX_SUN_PATH or not Path("/proc/self/fd").is_dir():
        yield text
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def connect(path: Path, *, timeout: float | None = 10.0) -> socket.socket:
    """Connect to the control socket at ``path`` or raise :class:`NotRunning`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with socket_address(path) as addr:
            sock.connect(addr)
    except PermissionError as exc:
        sock.close()
        raise AccessDenied(
            f"permission denied on {path}: run as its owner or a member of its group"
        ) from exc
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        raise NotRunning(f"cannot connect to {path}: {exc.strerror}") from exc
    except OSError as exc:
        sock.close()
        raise NotRunning(f"cannot connect to {path}: {exc.strerror or exc}") from exc
    return sock


def read_reply(stream: Any) -> dict[str, Any]:
    """Read one JSON line from a socket file object."""
    raw = stream.readline(MAX_LINE)
    if not raw:
        raise ProtocolError("the control socket closed without a reply")
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"bad reply from the control socket: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("bad reply from the control socket: not an object")
    return obj


def request(path: Path, obj: dict[str, Any], *, timeout: float | None = 60.0) -> dict[str, Any]:
    """Send one request and return its reply."""
    with connect(path, timeout=timeout) as sock, sock.makefile("rb") as stream:
        sock.sendall(json.dumps(obj).encode() + b"\n")
        return read_reply(stream)


def run_command(path: Path, line: str, *, console: int | None = None) -> tuple[bool, str]:
    """Run one CLI command on the PBX behind ``path``: ``(ok, output)``."""
    req: dict[str, Any] = {"cmd": line}
    if console is not None:
        req["console"] = console
    reply = request(path, req)
    return bool(reply.get("ok")), str(reply.get("output", ""))
