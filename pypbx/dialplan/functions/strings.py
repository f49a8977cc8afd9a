"""String functions: LEN, CUT, FIELDQTY, FILTER, STRREPLACE, TOUPPER, TOLOWER, REGEX, SHIFT,
POP, PUSH, UNSHIFT (Asterisk funcs/func_strings.c, func_cut.c).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pypbx.dialplan.args import split_args
from pypbx.dialplan.registry import function

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution


def _arg(args: list[str], i: int, default: str = "") -> str:
    return args[i] if len(args) > i else default


def encoded_char(text: str) -> tuple[str, int]:
    r"""``ast_get_encoded_char``: the first character of ``text`` with ``\n``, ``\r``, ``\t``,
    ``\xHH`` and ``\0ooo`` escapes decoded; returns (char, characters consumed)."""
    if not text:
        return "", 0
    if text[0] != "\\" or len(text) == 1:
        return text[0], 1
    c = text[1]
    if c in "nrt":
        return {"n": "\n", "r": "\r", "t": "\t"}[c], 2
    if c == "x":
        digits = ""
        for d in text[2:4]:
            if d not in "0123456789abcdefABCDEF":
                break
            digits += d
        return (chr(int(digits, 16)) if digits else "\0"), 2 + len(digits)
    if c == "0":
        digits = ""
        for d in text[2:5]:
            if d not in "01234567":
                break
            digits += d
        return (chr(int(digits, 8) & 0xFF) if digits else "\0"), 2 + len(digits)
    return c, 2


def _delimiter(text: str, default: str = ",") -> str:
    r"""A one-character delimiter, escapes decoded (``\t``, ``\x2C`` ...)."""
    return encoded_char(text)[0] if text else default


@function("LEN", syntax="LEN(string)")
def len_func(x: Execution, args: str) -> str:
    """The length of the argument."""
    return str(len(args))


def cut_fields(value: str, delim: str, spec: str) -> str | None:
    """``CUT`` field selection: ``2``, ``1-3``, ``2-``, ``-3``, ``1&3`` (1-based)."""
    fields = value.split(delim)
    out: list[str] = []
    for part in spec.split("&"):
        part = part.strip()
        if not part:
            continue
        lo_s, dash, hi_s = part.partition("-")
        try:
            lo = int(lo_s) if lo_s else 1
            hi = (int(hi_s) if hi_s else len(fields)) if dash else lo
        except ValueError:
            return None
        out.extend(fields[max(lo, 1) - 1 : hi])
    return delim.join(out)


@function("CUT", syntax="CUT(varname,char-delim,range-spec)")
def cut(x: Execution, args: str) -> str | None:
    """Slice a variable's value into fields by a delimiter and keep some of them."""
    a = split_args(args)
    if len(a) < 3 or not a[0]:
        x.warn("Syntax: CUT(<varname>,<char-delim>,<range-spec>) - missing argument!")
        return None
    value = x.get_var(a[0].strip()) or ""
    result = cut_fields(value, _delimiter(a[1], "-"), a[2])
    if result is None:
        x.warn(f"CUT: invalid field specification '{a[2]}'")
    return result


@function("FIELDQTY", syntax="FIELDQTY(varname,delim)")
def fieldqty(x: Execution, args: str) -> str:
    """The number of fields in a variable's value (1 when no delimiter is given)."""
    a = split_args(args)
    if len(a) < 2:
        return "1"
    value = x.get_var(_arg(a, 0).strip()) or ""
    if not value:
        return "0"
    delim = _delimiter(a[1], "")
    return str(len(value.split(delim))) if delim else "1"


def filter_charset(spec: str) -> set[str]:
    """FILTER's allowed characters: escapes decoded, ``a-z`` ranges (wrapping past 255)."""
    allowed: set[str] = set()
    i = 0
    while i < len(spec):
        c1, used = encoded_char(spec[i:])
        i += used
        if i < len(spec) and spec[i] == "-":
            c2, used2 = encoded_char(spec[i + 1 :])
            i += used2 + 1
            start = ord(c1) & 0xFF
            end = (ord(c2) & 0xFF) if c2 else (start - 1) & 0xFF
            code = start
            while code != end:
                allowed.add(chr(code))
                code = (code + 1) & 0xFF
            allowed.add(chr(end))
        else:
            allowed.add(c1)
    allowed.discard("\0")
    return allowed


@function("FILTER", syntax="FILTER(allowed-chars,string)")
def filter_func(x: Execution, args: str) -> str | None:
    r"""Keep only the allowed characters (ranges such as ``0-9A-F``, escapes such as ``\x41``)."""
    parts = split_args(args, remove_chars=False, max_args=2)
    if len(parts) < 2:
        x.note(40, "Usage: FILTER(<allowed-chars>,<string>)")
        return None
    if parts[0].startswith('"'):
        x.warn(
            'FILTER allowed characters includes the quote (") character.  '
            "This may not be what you want."
        )
    chars = filter_charset(parts[0])
    return "".join(c for c in parts[1] if c in chars)


@function("STRREPLACE", syntax="STRREPLACE(varname,find-string[,replace-string[,max]])")
def strreplace(x: Execution, args: str) -> str | None:
    """Replace occurrences of a string in a variable's value."""
    a = split_args(args)
    if len(a) < 2 or not a[1]:
        x.warn("STRREPLACE requires a variable name and a find string")
        return None
    value = x.get_var(a[0].strip()) or ""
    count = -1
    if len(a) > 3 and a[3].strip():
        try:
            count = int(a[3])
        except ValueError:
            x.warn(f"STRREPLACE: invalid max replacements '{a[3]}'")
            return None
    return value.replace(a[1], _arg(a, 2), count)


@function("TOUPPER", syntax="TOUPPER(string)")
def toupper(x: Execution, args: str) -> str:
    """The argument in upper case."""
    return args.upper()


@function("TOLOWER", syntax="TOLOWER(string)")
def tolower(x: Execution, args: str) -> str:
    """The argument in lower case."""
    return args.lower()


@function("REGEX", syntax='REGEX("regular expression" string)')
def regex(x: Execution, args: str) -> str | None:
    """1 if the string matches the (extended) regular expression anywhere, else 0."""
    parts = split_args(args, '"', max_args=3)
    if len(parts) != 3:
        x.note(40, "Unexpected arguments: should have been in the form '\"<regex>\" <string>'")
        return None
    pattern, subject = parts[1], parts[2]
    if subject[:1] in (" ", "\t"):
        subject = subject[1:]
    try:
        return "1" if re.search(pattern, subject) else "0"
    except re.error as exc:
        x.warn(f"Malformed input REGEX({args}): {exc}")
        return None


def _list_args(x: Execution, args: str) -> tuple[str, str]:
    a = split_args(args)
    return _arg(a, 0).strip(), _delimiter(_arg(a, 1))


@function("SHIFT", syntax="SHIFT(varname[,delimiter])")
def shift(x: Execution, args: str) -> str:
    """Remove and return the first field of a variable's value."""
    name, delim = _list_args(x, args)
    value = x.get_var(name) or ""
    first, sep, rest = value.partition(delim)
    x.set_var(name, rest if sep else "")
    return first


@function("POP", syntax="POP(varname[,delimiter])")
def pop(x: Execution, args: str) -> str:
    """Remove and return the last field of a variable's value."""
    name, delim = _list_args(x, args)
    value = x.get_var(name) or ""
    rest, sep, last = value.rpartition(delim)
    x.set_var(name, rest if sep else "")
    return last


@function("PUSH", syntax="PUSH(varname[,delimiter])", write_only=True)
def push(x: Execution, args: str) -> str | None:
    """Append a value to a variable as a new field: ``Set(PUSH(list)=value)``."""
    return None


def _insert(x: Execution, args: str, value: str, *, front: bool) -> None:
    name, delim = _list_args(x, args)
    old = x.get_var(name) or ""
    if not old:
        x.set_var(name, value)
    else:
        x.set_var(name, f"{value}{delim}{old}" if front else f"{old}{delim}{value}")


@push.writer
def _push_write(x: Execution, args: str, value: str) -> None:
    _insert(x, args, value, front=False)


@function("UNSHIFT", syntax="UNSHIFT(varname[,delimiter])", write_only=True)
def unshift(x: Execution, args: str) -> str | None:
    """Insert a value at the front of a variable: ``Set(UNSHIFT(list)=value)``."""
    return None


@unshift.writer
def _unshift_write(x: Execution, args: str, value: str) -> None:
    _insert(x, args, value, front=True)
