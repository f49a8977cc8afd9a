"""Arithmetic functions: MATH, INC, DEC, MIN, MAX, ABS, RAND (Asterisk funcs/func_math.c,
func_rand.c).

MATH takes one binary operation ``number1 op number2`` (``* / % ^ AND XOR OR > >= >> < <= <<
== + -``, the first operator found in that order), and prints its result like C: ``%f`` for the
default float type (``${MATH(3*2)}`` is ``6.000000``), ``TRUE``/``FALSE`` for comparisons.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from pypbx.dialplan.args import split_args
from pypbx.dialplan.registry import function

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution

RAND_MAX = 2147483647
_FLOAT = re.compile(
    r"\s*[+-]?(?:inf(?:inity)?|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", re.IGNORECASE
)
# (operator text, name) in the order func_math.c looks for them
_OPERATORS = (
    ("*", "mul"),
    ("/", "div"),
    ("%", "mod"),
    ("^", "pow"),
    ("AND", "and"),
    ("XOR", "xor"),
    ("OR", "or"),
    (">", "gt"),
    ("<", "lt"),
    ("=", "eq"),
    ("+", "add"),
    ("-", "sub"),
)
_TYPES = {"float": "f", "f": "f", "int": "i", "i": "i", "hex": "h", "h": "h", "char": "c", "c": "c"}


def scan_double(text: str) -> float | None:
    """``sscanf("%lf")``: the leading floating-point number of ``text``, or None."""
    m = _FLOAT.match(text)
    return None if m is None else float(m.group(0))


def _c_int(value: float) -> int:
    """C's ``(int)`` conversion: truncation toward zero, wrapped to 32 bits."""
    if math.isnan(value) or math.isinf(value):
        return 0
    n = int(value) & 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


def split_operation(expression: str) -> tuple[bool, str, str, str] | None:
    """(first number negated, number1, operator name, number2), or None without operator."""
    text = expression
    negative = text.startswith("-")
    if negative:
        text = text[1:]
    for op, name in _OPERATORS:
        at = text.find(op)
        if at < 0:
            continue
        left, right = text[:at], text[at + len(op) :]
        if name in ("gt", "lt") and right[:1] in ("=", op):
            name = {"gt": {"=": "ge", ">": "shr"}, "lt": {"=": "le", "<": "shl"}}[name][right[0]]
            right = right[1:]
        elif name == "eq":
            if not right.startswith("="):
                return None
            right = right[1:]
        return negative, left, name, right
    return None


def compute(expression: str) -> float | bool | None:
    """MATH's value of ``expression`` (a bool for comparisons), None when malformed."""
    parts = split_operation(expression)
    if parts is None:
        return None
    negative, left, name, right = parts
    a, b = scan_double(left), scan_double(right)
    if a is None or b is None:
        return None
    if negative:
        a = -a
    ia, ib = _c_int(a), _c_int(b)
    try:
        match name:
            case "add":
                return a + b
            case "sub":
                return a - b
            case "mul":
                return a * b
            case "div":
                return 0.0 if b <= 0 else a / b  # func_math.c: "can't do a divide by 0"
            case "mod":
                return 0.0 if ib == 0 else float(int(math.fmod(ia, ib)))
            case "pow":
                return math.pow(a, b)
            case "shl":
                return float(_c_int(float(ia << (ib & 31))))
            case "shr":
                return float(ia >> (ib & 31))
            case "and":
                return float(ia & ib)
            case "xor":
                return float(ia ^ ib)
            case "or":
                return float(ia | ib)
            case "gt":
                return a > b
            case "lt":
                return a < b
            case "ge":
                return a >= b
            case "le":
                return a <= b
            case _:
                return a == b
    except (OverflowError, ValueError):
        return math.inf


def format_result(value: float | bool, kind: str = "f") -> str:
    """Print as func_math.c: ``%f``, ``%i``, ``%x`` (unsigned), ``%c``; TRUE/FALSE."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if kind == "i":
        return str(_c_int(value))
    if kind == "h":
        return format(_c_int(value) & 0xFFFFFFFF, "x")
    if kind == "c":
        return chr(_c_int(value) & 0xFF)
    if math.isnan(value):
        return "nan" if math.copysign(1.0, value) > 0 else "-nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:f}"


@function("MATH", syntax="MATH(expression[,type])")
def math_func(x: Execution, args: str) -> str | None:
    """Perform one calculation: ``number1 op number2``; type float (default), int, hex, char.

    Operators: ``+ - * / % ^ << >> AND XOR OR``; ``< > <= >= ==`` give TRUE or FALSE.
    """
    if not args:
        x.warn("Syntax: MATH(<number1><op><number 2>[,<type_of_result>]) - missing argument!")
        return None
    a = split_args(args)
    expression = a[0] if a else ""
    kind = "f"
    if len(a) > 1:
        wanted = _TYPES.get(a[1].lower())
        if wanted is None:
            x.warn(f"Unknown type of result requested '{a[1]}'.")
            return None
        kind = wanted
    if split_operation(expression) is None:
        x.warn("Supply all the parameters - just this once, please")
        return None
    value = compute(expression)
    if value is None:
        x.warn(f"'{expression}' is not a valid number")
        return None
    return format_result(value, kind)


def _integer_of(x: Execution, name: str) -> int | None:
    value = x.get_var(name.strip())
    if not value:
        x.note(20, f"Variable {name} doesn't exist - are you sure you wrote it correctly?")
        return None
    m = re.fullmatch(r"\s*([+-]?\d+)", value)
    if m is None:
        x.note(20, f"The content of ${{{name}}} is not a numeric value - bailing out!")
        return None
    return int(m.group(1))


@function("INC", syntax="INC(variable)")
def inc(x: Execution, args: str) -> str | None:
    """Add one to a variable (give its name) and return the new value."""
    n = _integer_of(x, args)
    if n is None:
        return None
    x.set_var(args.strip(), str(n + 1))
    return str(n + 1)


@function("DEC", syntax="DEC(variable)")
def dec(x: Execution, args: str) -> str | None:
    """Subtract one from a variable (give its name) and return the new value."""
    n = _integer_of(x, args)
    if n is None:
        return None
    x.set_var(args.strip(), str(n - 1))
    return str(n - 1)


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:f}"


def _pair(x: Execution, args: str, *, smallest: bool) -> str | None:
    a = split_args(args)
    texts = [t for t in a[:2] if t]
    if not texts:
        x.note(40, "Missing argument for number(s).")
        return None
    values = [scan_double(t) for t in texts]
    for t, v in zip(texts, values, strict=True):
        if v is None:
            x.warn(f"'{t}' is not a valid number")
            return None
    found = [v for v in values if v is not None]
    return _number_text(min(found) if smallest else max(found))


@function("MIN", syntax="MIN(num1,num2)")
def min_func(x: Execution, args: str) -> str | None:
    """The smaller of two numbers."""
    return _pair(x, args, smallest=True)


@function("MAX", syntax="MAX(num1,num2)")
def max_func(x: Execution, args: str) -> str | None:
    """The larger of two numbers."""
    return _pair(x, args, smallest=False)


@function("ABS", syntax="ABS(num)")
def abs_func(x: Execution, args: str) -> str | None:
    """The absolute value of a number."""
    value = scan_double(args)
    if value is None or math.isnan(value) or math.isinf(value):
        x.warn(f"Bad or missing argument for number: {args}")
        return None
    return _number_text(abs(value))


@function("RAND", syntax="RAND([min][,max])")
def rand(x: Execution, args: str) -> str:
    """A random integer between min (default 0) and max (default 2147483647), inclusive."""
    a = split_args(args)
    lo = _c_int(scan_double(a[0]) or 0) if a and a[0].strip() else 0
    hi = _c_int(scan_double(a[1]) or 0) if len(a) > 1 and a[1].strip() else RAND_MAX
    if lo > hi:
        lo, hi = hi, lo
    return str(x.rng.randint(lo, hi))
