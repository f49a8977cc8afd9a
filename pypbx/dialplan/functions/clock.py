"""STRFTIME (Asterisk funcs/func_strings.c ``acf_strftime``), on the injected clock."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pypbx.dialplan.apps.say import zone
from pypbx.dialplan.args import split_args
from pypbx.dialplan.registry import function

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution


@function("STRFTIME", syntax="STRFTIME([epoch][,timezone[,format]])")
def strftime(x: Execution, args: str) -> str | None:
    """Format a time (now when no epoch is given) with strftime; default format ``%c``."""
    a = split_args(args)
    stamp = a[0].strip() if a else ""
    try:
        epoch = float(stamp) if stamp else x.clock()
    except ValueError:
        x.warn(f"STRFTIME: invalid epoch '{stamp}'")
        epoch = x.clock()
    tz = zone(a[1]) if len(a) > 1 else None
    fmt = a[2] if len(a) > 2 and a[2] else "%c"
    try:
        return datetime.fromtimestamp(epoch, tz or x.tz).strftime(fmt)
    except (ValueError, OverflowError, OSError) as exc:
        x.warn(f"STRFTIME failed: {exc}")
        return None
