"""Condition functions: IF, IFTIME, ISNULL, EXISTS, SET (Asterisk funcs/func_logic.c)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pypbx.dialplan.apps.flow import time_condition
from pypbx.dialplan.args import split_args
from pypbx.dialplan.interpreter import check_condition
from pypbx.dialplan.registry import function

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution


def _branches(text: str) -> tuple[str, str]:
    parts = split_args(text, ":", max_args=2)
    return (parts[0] if parts else ""), (parts[1] if len(parts) > 1 else "")


@function("IF", syntax="IF(expression?[true][:false])")
def if_func(x: Execution, args: str) -> str | None:
    """The ``true`` text when the expression is true, else the ``false`` text."""
    parts = split_args(args, "?", max_args=2)
    if len(parts) < 2:
        x.warn(
            "Syntax IF(<expr>?[<true>][:<false>])  (expr must be non-null, and either <true> "
            "or <false> must be non-null)"
        )
        return None
    iftrue, iffalse = _branches(parts[1])
    return (iftrue if check_condition(parts[0]) else iffalse).strip()


@function("IFTIME", syntax="IFTIME(timespec?[true][:false])")
def iftime(x: Execution, args: str) -> str | None:
    """The ``true`` text when the time matches ``times,weekdays,mdays,months``, else ``false``."""
    spec, sep, rest = args.partition("?")
    if not sep:
        x.warn("IFTIME requires an argument: IFTIME(<timespec>?[<true>][:<false>])")
        return None
    iftrue, iffalse = _branches(rest)
    return (iftrue if time_condition(x, spec) else iffalse).strip()


@function("ISNULL", syntax="ISNULL(data)")
def isnull(x: Execution, args: str) -> str:
    """1 if the argument is empty, else 0."""
    return "0" if args else "1"


@function("EXISTS", syntax="EXISTS(data)")
def exists(x: Execution, args: str) -> str:
    """1 if the argument is not empty, else 0."""
    return "1" if args else "0"


@function("SET", syntax="SET(varname=[value])")
def set_func(x: Execution, args: str) -> str | None:
    """Set a variable and return the value (usable inside other expressions)."""
    name, sep, value = args.partition("=")
    if not sep or not name.strip():
        x.warn("SET requires an argument: SET(<varname>=<value>)")
        return None
    x.set_var(name.strip(), value)
    return value
