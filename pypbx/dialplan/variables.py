"""``${VAR}``, ``${VAR:offset:length}``, ``${FUNC(args)}`` and ``$[expr]`` substitution.

Follows Asterisk main/pbx_variables.c ``pbx_substitute_variables_helper_full``:

* The text is scanned for ``$``; ``${`` starts a variable, ``$[`` an expression; any other
  ``$`` is copied. A backslash is *not* an escape here: ``\\${X}`` gives a backslash followed by
  the value of X (backslashes are removed later, by argument splitting).
* The end of ``${...}`` is found by counting braces (``$[`` inside it is skipped over); the
  end of ``$[...]`` by counting brackets (``${`` inside it is skipped over). An unmatched opening
  takes the rest of the text, with Asterisk's "missing '}'" / "missing ']'" warning.
* Text inside is substituted first when it holds ``${`` or ``$[`` (``${${X}}``, ``${A${B}}``,
  ``$[${X} + 1]``, ``${LEN($[1+1])}``). Values are never rescanned, so substitution ends.
* ``NAME(args)`` (a ``(`` before the first top-level ``:``) is a function call, anything else a
  variable; unknown ones give nothing. ``:offset:length`` then cuts the value with Asterisk's
  rules for negative offsets and lengths.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from pypbx.dialplan.expr import evaluate

__all__ = ["INT_MAX", "Resolver", "Warn", "parse_variable_name", "substitute", "substring"]

Warn = Callable[[str], None]
INT_MAX = 2**31 - 1


class Resolver(Protocol):
    """Where substitution gets values from; the interpreter implements it per channel."""

    def get_variable(self, name: str) -> str | None:
        """The value of a variable (channel, then global, then built-in), ``None`` when unset."""

    def call_function(self, name: str, args: str) -> str | None:
        """Read a dial plan function: ``name`` as written, ``args`` raw (already substituted).

        ``None`` means the function does not exist or failed (nothing is substituted).
        """


def _ignore(_message: str) -> None:
    """The default warning sink: drop the message."""


_SSCANF_INT = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def _scan_int(text: str, pos: int) -> tuple[int, int] | None:
    """``sscanf("%30d")`` at ``pos``: the value (wrapped to a C int) and the end, or ``None``."""
    m = _SSCANF_INT.match(text, pos)
    if not m:
        return None
    start = m.start(1)
    digits = text[start : min(m.end(1), start + 30)]
    if not digits.lstrip("+-"):
        return None
    value = max(-(2**63), min(2**63 - 1, int(digits)))
    value = (value + 2**31) % 2**32 - 2**31
    return value, start + len(digits)


def parse_variable_name(text: str) -> tuple[str, int, int, bool]:
    """Split ``NAME:offset:length`` as ``parse_variable_name`` does.

    Returns the name part, the offset (default 0), the length (default ``INT_MAX``) and whether
    the name is a function call (holds ``(`` before the first top-level ``:``).
    """
    parens = 0
    is_function = False
    for i, c in enumerate(text):
        if c == "(":
            is_function = True
            parens += 1
        elif c == ")":
            parens -= 1
        elif c == ":" and parens == 0:
            offset, length = 0, INT_MAX
            first = _scan_int(text, i + 1)
            if first is not None:
                offset, end = first
                if text[end : end + 1] == ":":
                    second = _scan_int(text, end + 1)
                    if second is not None:
                        length = second[0]
            return text[:i], offset, length, is_function
    return text, 0, INT_MAX, is_function


def substring(value: str, offset: int, length: int) -> str:
    """Asterisk's ``substring``: negative offset counts from the end, negative length leaves
    that many characters off the end; an offset past the end gives ``""``."""
    size = len(value)
    if offset == 0 and length >= size:
        return value
    if offset < 0:
        offset = max(0, size + offset)
    if offset >= size:
        return ""
    if 0 <= length < size - offset:
        return value[offset : offset + length]
    if length < 0:
        return value[offset : size + length] if size > offset - length else ""
    return value[offset:]


def _split_function(call: str, warn: Warn) -> tuple[str, str]:
    """``func_args``: name up to the first ``(``, arguments up to the last ``)``."""
    name, _, rest = call.partition("(")
    end = rest.rfind(")")
    if end < 0:
        warn(f"Can't find trailing parenthesis for function '{name}({rest}'?")
        return name, rest
    return name, rest[:end]


def _scan_end(text: str, start: int, opening: str) -> tuple[int, bool, bool]:
    """Find the end of a ``${`` (``opening='{'``) or ``$[`` construct whose body starts at
    ``start``. Returns (index just past the closing char or end of text, closed, needs_sub)."""
    closing = "}" if opening == "{" else "]"
    other = "[" if opening == "{" else "{"
    n = len(text)
    depth = 1
    needsub = False
    i = start
    while depth and i < n:
        c = text[i]
        nxt = text[i + 1 : i + 2]
        if c == "$" and nxt == opening:
            needsub = True
            depth += 1
            i += 1
        elif c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
        elif c == "$" and nxt == other:
            needsub = True
            i += 1
        i += 1
    return min(i, n), depth == 0, needsub


class _Substituter:
    def __init__(self, resolver: Resolver, warn: Warn, max_depth: int) -> None:
        self.resolver = resolver
        self.warn = warn
        self.max_depth = max_depth

    def run(self, text: str, depth: int) -> str:
        out: list[str] = []
        n = len(text)
        i = 0
        while i < n:
            j = text.find("$", i)
            if j < 0:
                out.append(text[i:])
                break
            kind = text[j + 1 : j + 2]
            if kind not in ("{", "["):
                out.append(text[i : j + 1])
                i = j + 1
                continue
            out.append(text[i:j])
            end, closed, needsub = _scan_end(text, j + 2, kind)
            if closed:
                body = text[j + 2 : end - 1]
            else:
                body = text[j + 2 : end]
                self.warn(f"Error in extension logic (missing '{'}' if kind == '{' else ']'}')")
            i = end
            if needsub:
                if depth >= self.max_depth:
                    self.warn(f"Substitution nested deeper than {self.max_depth}: '{body}'")
                    continue
                body = self.run(body, depth + 1)
            if kind == "{":
                out.append(self.reference(body))
            else:
                out.append(self.expression(body))
        return "".join(out)

    def reference(self, body: str) -> str:
        name, offset, length, is_function = parse_variable_name(body)
        if is_function:
            fname, fargs = _split_function(name, self.warn)
            value = self.resolver.call_function(fname, fargs)
        else:
            value = self.resolver.get_variable(name)
        if value is None:
            return ""
        return substring(value, offset, length)

    def expression(self, body: str) -> str:
        return evaluate(body, warn=self.warn, call_function=self.resolver.call_function)


def substitute(
    text: str,
    resolver: Resolver,
    *,
    max_depth: int = 32,
    warn: Warn | None = None,
) -> str:
    """Substitute every ``${...}`` and ``$[...]`` in ``text`` as Asterisk does.

    ``max_depth`` bounds how deeply constructs may nest inside one another (Asterisk is bounded
    only by its stack); deeper ones are warned about and give nothing. Never raises for any
    text, as long as the resolver does not.
    """
    return _Substituter(resolver, warn or _ignore, max_depth).run(text, 0)
