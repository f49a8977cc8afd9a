"""POSIX extended regular expressions as glibc ``regcomp(REG_EXTENDED)`` reads them.

Used by ``$[...]``'s ``:`` and ``=~`` operators (Asterisk main/ast_expr2.y). Python's
backtracking ``re`` can take exponential time (``(a+)+b``), so patterns are parsed here and run
on a small Thompson NFA (Pike VM): linear in the subject, leftmost-longest like POSIX, with
capture of the first group (all Asterisk reads). Only patterns with back-references use ``re``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# --------------------------------------------------------------------------- POSIX regex
#
# ``:`` and ``=~`` use glibc ``regcomp(REG_EXTENDED)``/``regexec``. Python's backtracking ``re``
# can take exponential time (``(a+)+b``), so patterns are parsed here and run on a small
# Thompson NFA (Pike VM): linear in the subject, leftmost-longest like POSIX, with capture of
# the first group (all Asterisk reads). Only patterns with back-references use ``re``.


class RegexError(Exception):
    """What ``regcomp`` reports for a pattern it rejects."""


@dataclass(frozen=True, slots=True)
class _Char:
    pattern: str  # a one-character Python regex: literal, '.', class or escape
    literal: str | None = None  # the character itself, when it is one


@dataclass(frozen=True, slots=True)
class _Assert:
    kind: str  # one of ^ $ b B < > ` '


@dataclass(frozen=True, slots=True)
class _Group:
    index: int
    node: _Node


@dataclass(frozen=True, slots=True)
class _Concat:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Alt:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Repeat:
    node: _Node
    low: int
    high: int | None


@dataclass(frozen=True, slots=True)
class _Backref:
    index: int


_Node = _Char | _Assert | _Group | _Concat | _Alt | _Repeat | _Backref

_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "0-9a-zA-Z",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "punct": "".join("\\" + c if c in "\\]^-[" else c for c in _PUNCT),
    "print": "\\x20-\\x7e",
    "graph": "\\x21-\\x7e",
    "cntrl": "\\x00-\\x1f\\x7f",
    "xdigit": "0-9A-Fa-f",
}
_GNU_CLASSES = {"w": "\\w", "W": "\\W", "s": "\\s", "S": "\\S"}
_INTERVAL = re.compile(r"\{([0-9]*)(,([0-9]*))?\}")
_DUP_MAX = 32767  # RE_DUP_MAX
_PROGRAM_MAX = 20000  # instructions; glibc answers REG_ESIZE for patterns that grow too big


def _repeat(node: _Node, low: int, high: int | None) -> _Node:
    """Quantify ``node``; stacked ``* + ?`` fold into one (``a**``, ``a+?``: POSIX allows them)."""
    simple = {(0, None), (1, None), (0, 1)}
    if isinstance(node, _Repeat) and (node.low, node.high) in simple and (low, high) in simple:
        if (node.low, node.high) == (low, high):
            return node
        return _Repeat(node.node, 0, None)
    return _Repeat(node, low, high)


def _class_char(c: str) -> str:
    # | & ~ too: Python warns that doubled ones may become set operations in a future version
    return "\\" + c if c in "\\]^-[|&~" else c


class _EreParser:
    """Parse a POSIX extended regular expression as glibc reads it (GNU escapes included)."""

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.depth = 0
        self.groups = 0
        self.backrefs = False

    def parse(self) -> _Node:
        return self.alternation()

    def alternation(self) -> _Node:
        branches = [self.branch()]
        while self.i < len(self.p) and self.p[self.i] == "|":
            self.i += 1
            branches.append(self.branch())
        return branches[0] if len(branches) == 1 else _Alt(tuple(branches))

    def branch(self) -> _Node:
        pieces: list[_Node] = []
        p = self.p
        while self.i < len(p) and p[self.i] != "|" and not (p[self.i] == ")" and self.depth):
            if p[self.i] in "*+?{":
                low, high = self.quantifier()
                if not pieces or isinstance(pieces[-1], _Assert):
                    raise RegexError("Invalid preceding regular expression")
                pieces[-1] = _repeat(pieces[-1], low, high)
            else:
                pieces.append(self.atom())
        return pieces[0] if len(pieces) == 1 else _Concat(tuple(pieces))

    def quantifier(self) -> tuple[int, int | None]:
        c = self.p[self.i]
        if c != "{":
            self.i += 1
            return {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        m = _INTERVAL.match(self.p, self.i)
        if not m or (m.group(1) == "" and m.group(2) is None):
            raise RegexError("Invalid content of \\{\\}")
        low = int(m.group(1) or "0")
        high = None if m.group(2) and not m.group(3) else int(m.group(3) or low)
        if low > _DUP_MAX or (high is not None and (high > _DUP_MAX or high < low)):
            raise RegexError("Invalid content of \\{\\}")
        self.i = m.end()
        return low, high

    def atom(self) -> _Node:
        p = self.p
        c = p[self.i]
        self.i += 1
        if c == "(":
            self.depth += 1
            self.groups += 1
            index = self.groups
            if self.depth > 50:
                raise RegexError("Regular expression too big")
            inner = _Concat(()) if p[self.i : self.i + 1] == ")" else self.alternation()
            if self.i >= len(p):
                raise RegexError("Unmatched ( or \\(")
            self.i += 1
            self.depth -= 1
            return _Group(index, inner)
        if c == "[":
            return _Char(self.bracket())
        if c == "\\":
            if self.i >= len(p):
                raise RegexError("Trailing backslash")
            e = p[self.i]
            self.i += 1
            if e in _GNU_CLASSES:
                return _Char(_GNU_CLASSES[e])
            if e in "bB<>`'":
                return _Assert(e)
            if e in "123456789":
                if int(e) > self.groups:
                    raise RegexError("Invalid back reference")
                self.backrefs = True
                return _Backref(int(e))
            return _Char(re.escape(e), e)
        if c in "^$":
            return _Assert(c)
        if c == ".":
            return _Char(".")
        return _Char(re.escape(c), c)

    def bracket(self) -> str:
        p = self.p
        out = ["["]
        if self.i < len(p) and p[self.i] == "^":
            out.append("^")
            self.i += 1
        first = True
        while True:
            if self.i >= len(p):
                raise RegexError("Unmatched [, [^, [:, [., or [=")
            c = p[self.i]
            if c == "]" and not first:
                self.i += 1
                return "".join(out) + "]"
            first = False
            if c == "[" and p[self.i + 1 : self.i + 2] in (":", "=", "."):
                kind = p[self.i + 1]
                end = p.find(kind + "]", self.i + 2)
                if end < 0:
                    raise RegexError("Unmatched [, [^, [:, [., or [=")
                name = p[self.i + 2 : end]
                self.i = end + 2
                if kind == ":":
                    if name not in _CLASSES:
                        raise RegexError("Invalid character class name")
                    out.append(_CLASSES[name])
                elif len(name) == 1:
                    out.append(_class_char(name))
                else:
                    raise RegexError("Invalid collation character")
                continue
            self.i += 1
            if p[self.i : self.i + 1] == "-" and p[self.i + 1 : self.i + 2] not in ("]", ""):
                high = p[self.i + 1]
                self.i += 2
                if ord(high) < ord(c):
                    raise RegexError("Invalid range end")
                out.append(f"{_class_char(c)}-{_class_char(high)}")
            else:
                out.append(_class_char(c))


_PY_ASSERT = {"^": "^", "$": "\\Z", "b": "\\b", "B": "\\B", "`": "\\A", "'": "\\Z"}
_PY_ASSERT |= {"<": "\\b(?=\\w)", ">": "\\b(?<=\\w)"}


def _to_python(node: _Node) -> str:
    """The node as Python ``re`` syntax (used only for patterns with back-references)."""
    if isinstance(node, _Char):
        return node.pattern
    if isinstance(node, _Assert):
        return _PY_ASSERT[node.kind]
    if isinstance(node, _Group):
        return f"({_to_python(node.node)})"
    if isinstance(node, _Concat):
        return "".join(_to_python(n) for n in node.items)
    if isinstance(node, _Alt):
        return "(?:" + "|".join(_to_python(n) for n in node.items) + ")"
    if isinstance(node, _Repeat):
        high = "" if node.high is None else str(node.high)
        return f"(?:{_to_python(node.node)}){{{node.low},{high}}}"
    return f"(?:\\{node.index})"


# Pike VM instructions: (opcode, a, b)
_OP_CHAR, _OP_SPLIT, _OP_JMP, _OP_SAVE, _OP_ASSERT, _OP_MATCH = range(6)
_Instr = tuple[int, Any, Any]
_Match = tuple[int, int, int, int]  # start, end, group-1 start, group-1 end


def _is_word(text: str, i: int) -> bool:
    return 0 <= i < len(text) and (text[i].isalnum() or text[i] == "_")


def _assertion_holds(kind: str, text: str, pos: int) -> bool:
    before, after = _is_word(text, pos - 1), _is_word(text, pos)
    if kind in "^`":
        return pos == 0
    if kind in "$'":
        return pos == len(text)
    if kind == "b":
        return before != after
    if kind == "B":
        return before == after
    if kind == "<":
        return after and not before
    return before and not after


class _Regex:
    """A compiled pattern: ``search(text, anchored)`` gives the POSIX match or ``None``."""

    def __init__(self, node: _Node, groups: int, backrefs: bool) -> None:
        self.groups = groups
        self.program: list[_Instr] = []
        self.fallback = re.compile(_to_python(node), re.DOTALL) if backrefs else None
        if not backrefs:
            self.emit(node)
            self.program.append((_OP_MATCH, None, None))

    def add(self, instr: _Instr) -> int:
        if len(self.program) >= _PROGRAM_MAX:
            raise RegexError("Regular expression too big")
        self.program.append(instr)
        return len(self.program) - 1

    def patch(self, at: int, a: Any, b: Any = None) -> None:
        self.program[at] = (self.program[at][0], a, b)

    def emit(self, node: _Node) -> None:
        if isinstance(node, _Char):
            test = (
                node.literal.__eq__ if node.literal else re.compile(node.pattern, re.DOTALL).match
            )
            self.add((_OP_CHAR, test, None))
        elif isinstance(node, _Assert):
            self.add((_OP_ASSERT, node.kind, None))
        elif isinstance(node, _Group):
            if node.index == 1:
                self.add((_OP_SAVE, 0, None))
            self.emit(node.node)
            if node.index == 1:
                self.add((_OP_SAVE, 1, None))
        elif isinstance(node, _Concat):
            for item in node.items:
                self.emit(item)
        elif isinstance(node, _Alt):
            jumps = []
            for item in node.items[:-1]:
                split = self.add((_OP_SPLIT, None, None))
                self.emit(item)
                jumps.append(self.add((_OP_JMP, None, None)))
                self.patch(split, split + 1, len(self.program))
            self.emit(node.items[-1])
            for jump in jumps:
                self.patch(jump, len(self.program))
        elif isinstance(node, _Repeat):
            self.emit_repeat(node)

    def emit_repeat(self, node: _Repeat) -> None:
        for _ in range(node.low):
            self.emit(node.node)
        if node.high is None:
            split = self.add((_OP_SPLIT, None, None))
            self.emit(node.node)
            self.add((_OP_JMP, split, None))
            self.patch(split, split + 1, len(self.program))
            return
        for _ in range(node.high - node.low):
            split = self.add((_OP_SPLIT, None, None))
            self.emit(node.node)
            self.patch(split, split + 1, len(self.program))

    def search(self, text: str, *, anchored: bool) -> _Match | None:
        if self.fallback is not None:
            m = self.fallback.match(text) if anchored else self.fallback.search(text)
            if m is None:
                return None
            return m.start(), m.end(), m.start(1), m.end(1)
        best: list[_Match] = []
        threads: list[tuple[int, int, int, int]] = []
        seen: set[int] = set()
        self.follow(threads, seen, 0, 0, text, best)
        for pos, ch in enumerate(text):
            following: list[tuple[int, int, int, int]] = []
            seen = set()
            for pc, start, g1s, g1e in threads:
                if best and start > best[0][0]:
                    continue
                if self.program[pc][1](ch):
                    self.follow(following, seen, pc + 1, start, text, best, g1s, g1e, pos + 1)
            if not best and not anchored:
                self.follow(following, seen, 0, pos + 1, text, best, pos=pos + 1)
            threads = following
            if not threads and (best or anchored):
                break
        return best[0] if best else None

    def follow(
        self,
        out: list[tuple[int, int, int, int]],
        seen: set[int],
        pc: int,
        start: int,
        text: str,
        best: list[_Match],
        g1s: int = -1,
        g1e: int = -1,
        pos: int = 0,
    ) -> None:
        """Add the thread at ``pc`` and everything reachable without reading a character."""
        stack = [(pc, g1s, g1e)]
        while stack:
            pc, g1s, g1e = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            op, a, b = self.program[pc]
            if op == _OP_JMP:
                stack.append((a, g1s, g1e))
            elif op == _OP_SPLIT:
                stack.append((b, g1s, g1e))
                stack.append((a, g1s, g1e))
            elif op == _OP_SAVE:
                stack.append((pc + 1, pos, g1e) if a == 0 else (pc + 1, g1s, pos))
            elif op == _OP_ASSERT:
                if _assertion_holds(a, text, pos):
                    stack.append((pc + 1, g1s, g1e))
            elif op == _OP_MATCH:
                if not best or start < best[0][0] or (start == best[0][0] and pos > best[0][1]):
                    best[:] = [(start, pos, g1s, g1e)]
            else:
                out.append((pc, start, g1s, g1e))


@lru_cache(maxsize=256)
def compile_ere(pattern: str) -> _Regex:
    parser = _EreParser(pattern)
    node = parser.parse()
    try:
        return _Regex(node, parser.groups, parser.backrefs)
    except RecursionError:
        raise RegexError("Regular expression too big") from None
    except (re.error, OverflowError) as e:
        raise RegexError(str(e)) from None
