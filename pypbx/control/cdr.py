"""``cdr show last [N]`` and ``cdr show status`` (Asterisk main/cdr.c) on the PBX's CDR store.

The store is ``pbx.cdr_store`` (the SQLite backend of :mod:`pypbx.cdr`, set by the call layer);
each record carries Asterisk's CDR columns (start, src, dst, dcontext, channel, dstchannel,
lastapp, disposition, duration, billsec ...).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pypbx.control.commands import CommandError, ShowUsage, command

if TYPE_CHECKING:
    from pypbx.server import Pbx

DEFAULT_LAST = 10


class CdrStore(Protocol):
    """What the commands need of a CDR backend."""

    name: str

    def last(self, n: int) -> Sequence[Any]:
        """The ``n`` most recent records, newest first."""
        ...


_ROW = "{:<19.19} {:<15.15} {:<15.15} {:<15.15} {:<24.24} {:<11.11} {:>8.8}"


def _when(value: Any) -> str:
    if isinstance(value, int | float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    return str(value or "")


def _field(rec: Any, *names: str) -> Any:
    for n in names:
        value = getattr(rec, n, None)
        if value is not None:
            return value
    return ""


@command(
    "cdr show last",
    summary="Show the most recent call detail records",
    usage="Usage: cdr show last [N]\n"
    "       Shows the N (default 10) most recent CDRs, newest first.",
)
async def show_last(pbx: Pbx, args: list[str]) -> str:
    if len(args) > 1 or (args and not args[0].isdigit()):
        raise ShowUsage
    store: CdrStore | None = getattr(pbx, "cdr_store", None)
    if store is None:
        raise CommandError("CDR logging is not enabled.")
    records = store.last(int(args[0]) if args else DEFAULT_LAST)
    lines = [
        _ROW.format(
            "Start", "Source", "Destination", "Context", "Channel", "Disposition", "Billsec"
        )
    ]
    for rec in records:
        lines.append(
            _ROW.format(
                _when(_field(rec, "start", "calldate")),
                str(_field(rec, "src")),
                str(_field(rec, "dst")),
                str(_field(rec, "dcontext")),
                str(_field(rec, "channel")),
                str(_field(rec, "disposition")),
                str(_field(rec, "billsec")),
            )
        )
    lines.append(f"{len(records)} call detail record{'' if len(records) == 1 else 's'}.")
    return "\n".join(line.rstrip() for line in lines)


@command(
    "cdr show status",
    summary="Display the CDR status",
    usage="Usage: cdr show status\n       Displays the Call Detail Record engine status.",
)
async def show_status(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    store: CdrStore | None = getattr(pbx, "cdr_store", None)
    lines = [
        "",
        "Call Detail Record (CDR) settings",
        "----------------------------------",
        f"  Logging:                    {'Enabled' if store is not None else 'Disabled'}",
        "  Mode:                       Simple",
    ]
    if store is not None:
        lines += ["", "* Registered Backends", "  -------------------", f"    {store.name}"]
    return "\n".join(lines)
