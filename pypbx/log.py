"""Logging for the operator: Asterisk-like verbosity, one line per event, call ids first.

Asterisk prints ``VERBOSE`` messages only up to the console's verbosity level (``core set
verbose N``). pypbx maps that onto :mod:`logging`: ``verbose(logger, level, msg)`` logs at
INFO with a ``verbosity`` attribute, and :class:`VerbosityFilter` drops lines above the level.
Warnings and errors always pass. SIP traces go to the ``pypbx.sip.trace`` logger, which is
silent until ``sip set debug on``.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

ROOT = "pypbx"
TRACE = "pypbx.sip.trace"


class VerbosityFilter(logging.Filter):
    """Pass a record when its ``verbosity`` is at most ``level`` (records without one pass)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        v = getattr(record, "verbosity", 0)
        return isinstance(v, int) and v <= self.level


class TraceFilter(logging.Filter):
    """``sip set debug ip A`` / ``peer X``: pass SIP trace records to or from these hosts only.

    The transport logs each message with ``extra={"peer_ip": host}``.
    """

    def __init__(self, hosts: set[str]) -> None:
        super().__init__()
        self.hosts = hosts

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "peer_ip", None) in self.hosts


class CallAdapter(logging.LoggerAdapter[logging.Logger]):
    """Puts a call id or channel name in front of every message: ``[SIP/1000-0001] ...``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        tag = (self.extra or {}).get("call", "")
        return (f"[{tag}] {msg}" if tag else msg), kwargs


def verbose(logger: logging.Logger | CallAdapter, level: int, msg: str, *args: object) -> None:
    """Asterisk's ``ast_verb(level, ...)``."""
    logger.info(msg, *args, extra={"verbosity": level})


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for machines."""

    def format(self, record: logging.LogRecord) -> str:
        obj = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "verbosity": getattr(record, "verbosity", 0),
            "message": record.getMessage(),
        }
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj)


_TEXT = logging.Formatter("[%(asctime)s] %(levelname)s[%(process)d] %(name)s: %(message)s")


class LogSink:
    """One receiver of log lines (a remote console) with its own verbosity level."""

    __slots__ = ("level", "write")

    def __init__(self, write: Callable[[str], None], level: int) -> None:
        self.write = write
        self.level = level


class FanoutHandler(logging.Handler):
    """Copies every record to the attached sinks, each filtered at its own verbosity.

    The control server attaches one sink per connected ``pypbx -r`` console, so a console
    shows live log lines at the level its user chose (``core set verbose N``), whatever the
    daemon's own stderr level is.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._sinks: list[LogSink] = []
        self.setFormatter(_TEXT)

    def attach(self, write: Callable[[str], None], level: int) -> LogSink:
        sink = LogSink(write, level)
        self._sinks.append(sink)
        return sink

    def detach(self, sink: LogSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    @property
    def sinks(self) -> list[LogSink]:
        return list(self._sinks)

    def reaches(self, verbosity: int) -> bool:
        """Whether a line of ``verbosity`` would reach an attached sink (no copy made: the
        registrar asks this for every binding change)."""
        return any(sink.level >= verbosity for sink in self._sinks) if self._sinks else False

    def emit(self, record: logging.LogRecord) -> None:
        if not self._sinks:
            return
        v = getattr(record, "verbosity", 0)
        wanted = [s for s in self._sinks if isinstance(v, int) and v <= s.level]
        if not wanted:
            return
        line = self.format(record)
        for sink in wanted:
            sink.write(line)


def setup(
    *,
    verbosity: int = 3,
    json_logs: bool = False,
    logdir: Path | None = None,
    fanout: FanoutHandler | None = None,
) -> VerbosityFilter:
    """Configure the ``pypbx`` logger for a daemon: stderr, and ``logdir/messages`` if given.

    ``fanout``, when given, is attached too (remote consoles). Returns the filter so
    ``core set verbose N`` can change the level at run time.
    """
    root = logging.getLogger(ROOT)
    root.setLevel(logging.DEBUG)
    for h in list(root.handlers):
        root.removeHandler(h)
    flt = VerbosityFilter(verbosity)
    fmt: logging.Formatter = JsonFormatter() if json_logs else _TEXT
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(fmt)
    err.addFilter(flt)
    root.addHandler(err)
    if logdir is not None:
        logdir.mkdir(parents=True, exist_ok=True)
        # reopens the file when logrotate has moved it away (no copytruncate needed)
        fh = logging.handlers.WatchedFileHandler(logdir / "messages", encoding="utf-8")
        fh.setFormatter(fmt)
        fh.addFilter(flt)
        root.addHandler(fh)
    if fanout is not None:
        root.addHandler(fanout)
    trace = logging.getLogger(TRACE)
    trace.propagate = False
    trace.setLevel(logging.CRITICAL)
    return flt
