"""Arithmetic functions: MATH, RAND (Asterisk funcs/func_math.c, func_rand.c)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from pypbx.dialplan.args import split_args
from pypbx.dialplan.registry import function

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution

RAND_MAX = 2147483647
_OPS: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "%": lambda a, b: float(int(a) % int(b)),
    "^": lambda a, b: a**b,
    "<<": lambda a, b: float(int(a) << int(b)),
    ">>": lambda a, b: float(int(a) >> int(b)),
    "&": lambda a, b: float(int(a) & int(b)),
    "|": lambda a, b: float(int(a) | int(b)),
    "==": lambda a, b: float(a == b),
    "!=": lambda a, b: float(a != b),
    "<=": lambda a, b: float(a <= b),
    ">=": lambda a, b: float(a >= b),
    "<": lambda a, b: float(a < b),
    ">": lambda a, b: float(a > b),
}
_EXPR = re.compile(
    r"^\s*(-?[0-9.]+(?:[eE][-+]?\d+)?)\s*(==|!=|<=|>=|<<|>>|[-+*/%^&|<>])\s*(-?[0-9.]+)\s*$"
)


def format_result(value: float, kind: str) -> str:
    """Format as MATH's result types: float (default), int, hex, char."""
    k = kind.strip().lower()
    if k in ("i", "int"):
        return str(int(value))
    if k in ("h", "hex"):
        return format(int(value), "x")
    if k in ("c", "char"):
        return chr(int(value) & 0xFF)
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def compute(expression: str) -> float | None:
    """``number1 op number2`` (or a single number), None when malformed."""
    m = _EXPR.match(expression)
    if m is None:
        try:
            return float(expression)
        except ValueError:
            return None
    a, op, b = float(m.group(1)), m.group(2), float(m.group(3))
    if op in ("/", "%") and b == 0:
        return None
    try:
        return _OPS[op](a, b)
    except (OverflowError, ValueError):
        return None


@function("MATH", syntax="MATH(expression[,type])")
def math_func(x: Execution, args: str) -> str | None:
    """Two-operand arithmetic: ``+ - * / % ^ << >> & | == != < > <= >=``."""
    a = split_args(args)
    expr = a[0] if a else ""
    value = compute(expr)
    if value is None or math.isnan(value) or math.isinf(value):
        x.warn(f"Unable to calculate MATH({expr})")
        return None
    return format_result(value, a[1] if len(a) > 1 else "")


@function("RAND", syntax="RAND([min][,max])")
def rand(x: Execution, args: str) -> str:
    """A random integer between min (default 0) and max (default 2147483647), inclusive."""
    a = split_args(args)
    try:
        lo = int(a[0]) if a and a[0].strip() else 0
    except ValueError:
        lo = 0
    try:
        hi = int(a[1]) if len(a) > 1 and a[1].strip() else RAND_MAX
    except ValueError:
        hi = RAND_MAX
    if lo > hi:
        lo, hi = hi, lo
    return str(x.rng.randint(lo, hi))
