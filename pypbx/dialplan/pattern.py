"""Extension patterns: compile, match modes and Asterisk's sort order.

Implements the semantics of Asterisk ``main/pbx.c`` (``_extension_match_core``, ``ext_cmp``,
``ext_cmp_pattern_pos``) as described in the Asterisk documentation, "Configuration / Dialplan /
Pattern Matching":

* a name not starting with ``_`` is a literal; it compares case-sensitively and ``-`` is
  ignored ("eye candy") in both the name and the dialled string;
* after ``_``: ``X`` (0-9), ``Z`` (1-9), ``N`` (2-9) in either case, ``[...]`` sets with
  ranges (``[1-5a-c]``, an empty set is skipped), ``.`` (one or more of anything, and the rest
  of the pattern is ignored), ``!`` (zero or more, "early match"), every other character
  literal;
* three modes: MATCH (``ast_extension_match``), CANMATCH and MATCHMORE
  (``ast_extension_close``): can the string still become a match / can it become a longer one;
* the order when several extensions match (``ext_cmp``): literals first, then patterns compared
  position by position; the position that admits fewer characters wins, equal sizes are
  ordered by their lowest character, then by the full character set; ``.`` comes after any
  set, ``!`` after ``.``, and the end of a pattern after ``!``. ``[0-9]`` is the same as ``X``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

__all__ = [
    "EARLY",
    "MATCHED",
    "NO_MATCH",
    "MatchMode",
    "Pattern",
    "PatternIndex",
    "SortKey",
    "Token",
    "Wildcard",
    "compile_pattern",
    "extension_close",
    "extension_match",
    "sort_key",
    "strip_dashes",
]


class MatchMode(Enum):
    """The lookup modes of ``pbx_find_extension`` (``E_MATCH``, ``E_CANMATCH``, ``E_MATCHMORE``)."""

    MATCH = "match"
    CANMATCH = "canmatch"
    MATCHMORE = "matchmore"


# Results of the core matcher, as Asterisk's ``_extension_match_core`` returns them.
NO_MATCH = 0
MATCHED = 1
EARLY = 2  # matched through a '!' ("early match")

# Special positions in the sort key: (rank, lowest char); a real set has rank = its size
# (at most 256), so these sort after every set, in this order (Asterisk: 0x18000 '.',
# 0x28000 '!', 0x30000 end of pattern, 0x40000 unterminated '[').
_DOT_RANK = 0x180
_BANG_RANK = 0x280
_END_RANK = 0x300
_BAD_RANK = 0x400

_DIGITS = frozenset("0123456789")
_Z_SET = frozenset("123456789")
_N_SET = frozenset("23456789")
_LETTER_SETS = {"x": _DIGITS, "z": _Z_SET, "n": _N_SET}

Position = tuple[int, int, tuple[int, ...]]
SortKey = tuple[int, str, tuple[Position, ...]]


class Wildcard(Enum):
    """Pattern positions that are not character sets."""

    DOT = "."
    BANG = "!"
    BAD = "["


Token = frozenset[str] | Wildcard


def strip_dashes(text: str) -> str:
    """Remove ``-`` separators, which Asterisk ignores in dialled strings and literals."""
    return text.replace("-", "") if "-" in text else text


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled extension name (literal or ``_`` pattern)."""

    text: str
    is_pattern: bool
    literal: str  # a literal name without '-'; "" for a pattern
    tokens: tuple[Token, ...]
    key: SortKey
    regex: re.Pattern[str] | None = field(compare=False, repr=False)
    min_len: int = 0
    max_len: int | None = 0  # None: unbounded ('.' or '!')
    first: frozenset[str] | None = None  # characters a first dialled digit may be; None: any

    def match_core(self, data: str, mode: MatchMode = MatchMode.MATCH) -> int:
        """Asterisk's ``_extension_match_core``: 0 no, 1 match, 2 match through ``!``."""
        if not self.is_pattern:
            return _literal_core(self.literal, strip_dashes(data), mode)
        if (
            mode is MatchMode.MATCH
            and data.startswith("_")
            and compile_pattern(data).key == self.key
        ):
            return MATCHED  # pbx.c: "if this test is left out, then _x. will not match _x. !!!"
        data = strip_dashes(data)
        if mode is MatchMode.MATCH and self.regex is not None:
            m = self.regex.fullmatch(data)
            if m is None:
                return NO_MATCH
            return EARLY if m.lastgroup == "bang" else MATCHED
        return _pattern_core(self.tokens, data, mode)

    def matches(self, data: str, mode: MatchMode = MatchMode.MATCH) -> bool:
        return self.match_core(data, mode) != NO_MATCH


def _literal_core(literal: str, data: str, mode: MatchMode) -> int:
    lp = len(literal)
    ld = len(data)
    if lp < ld:
        return NO_MATCH
    if mode is MatchMode.MATCH:
        return MATCHED if literal == data else NO_MATCH
    if ld == 0 or literal.startswith(data):
        if mode is MatchMode.MATCHMORE:
            return MATCHED if lp > ld else NO_MATCH
        return MATCHED
    return NO_MATCH


def _pattern_core(tokens: tuple[Token, ...], data: str, mode: MatchMode) -> int:
    n = len(data)
    i = 0
    for tok in tokens:
        if i == n:
            # Ran off the end of the data: decide on what comes next in the pattern.
            if tok is Wildcard.BANG:
                return EARLY
            return NO_MATCH if mode is MatchMode.MATCH else MATCHED
        if tok is Wildcard.DOT:
            return MATCHED
        if tok is Wildcard.BANG:
            return EARLY
        if tok is Wildcard.BAD or data[i] not in tok:
            return NO_MATCH
        i += 1
    if i < n:
        return NO_MATCH  # data longer than pattern
    return NO_MATCH if mode is MatchMode.MATCHMORE else MATCHED


def _parse_set(body: str) -> frozenset[str]:
    chars: set[str] = set()
    i = 0
    end = len(body)
    while i < end:
        c1 = body[i]
        if i + 2 < end and body[i + 1] == "-":
            c2 = body[i + 2]
            chars.update(chr(o) for o in range(ord(c1), ord(c2) + 1))
            i += 3
        else:
            chars.add(c1)
            i += 1
    return frozenset(chars)


def _tokenize(body: str) -> tuple[Token, ...]:
    """Tokens of a pattern body (after ``_``), stopping at a ``/`` caller-id separator."""
    out: list[Token] = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c == "/":
            break
        if c == "-":
            i += 1
            continue
        if c == "[":
            end = body.find("]", i + 1)
            if end < 0:
                out.append(Wildcard.BAD)
                break
            chars = _parse_set(body[i + 1 : end])
            i = end + 1
            if chars:
                out.append(chars)
            continue
        low = c.lower()
        if low in _LETTER_SETS:
            out.append(_LETTER_SETS[low])
        elif c == ".":
            out.append(Wildcard.DOT)
        elif c == "!":
            out.append(Wildcard.BANG)
        else:
            out.append(frozenset(c))
        i += 1
    return tuple(out)


def _positions(tokens: tuple[Token, ...]) -> tuple[Position, ...]:
    pos: list[Position] = []
    for tok in tokens:
        if tok is Wildcard.DOT:
            pos.append((_DOT_RANK, 0, ()))
        elif tok is Wildcard.BANG:
            pos.append((_BANG_RANK, 0, ()))
        elif tok is Wildcard.BAD:
            pos.append((_BAD_RANK, 0, ()))
            return tuple(pos)
        else:
            codes = tuple(sorted(ord(c) for c in tok))
            pos.append((len(codes), codes[0], codes))
    pos.append((_END_RANK, 0, ()))
    return tuple(pos)


def _regex(tokens: tuple[Token, ...]) -> re.Pattern[str] | None:
    """A regex equivalent to MATCH mode (None when a bad set makes it awkward)."""
    parts: list[str] = []
    for tok in tokens:
        if tok is Wildcard.DOT:
            parts.append("(?s:.+)")
            break
        if tok is Wildcard.BANG:
            parts.append("(?P<bang>(?s:.*))")
            break
        if tok is Wildcard.BAD:
            return None
        if len(tok) == 1:
            parts.append(re.escape(next(iter(tok))))
        else:
            parts.append("[" + "".join(re.escape(c) for c in sorted(tok)) + "]")
    return re.compile("".join(parts))


def _lengths(tokens: tuple[Token, ...]) -> tuple[int, int | None]:
    n = 0
    for tok in tokens:
        if tok is Wildcard.DOT:
            return n + 1, None
        if tok is Wildcard.BANG:
            return n, None
        if tok is Wildcard.BAD:
            return n, n
        n += 1
    return n, n


@lru_cache(maxsize=65536)
def compile_pattern(text: str) -> Pattern:
    """Compile an extension name; ``_`` starts a pattern, anything else is a literal."""
    if not text.startswith("_"):
        lit = strip_dashes(text)
        return Pattern(
            text=text,
            is_pattern=False,
            literal=lit,
            tokens=(),
            key=(0, lit, ()),
            regex=None,
            min_len=len(lit),
            max_len=len(lit),
            first=frozenset(lit[0]) if lit else frozenset(),
        )
    tokens = _tokenize(text[1:])
    lo, hi = _lengths(tokens)
    first: frozenset[str] | None
    if not tokens:
        first = frozenset()
    else:
        t0 = tokens[0]
        first = None if isinstance(t0, Wildcard) else t0
    return Pattern(
        text=text,
        is_pattern=True,
        literal="",
        tokens=tokens,
        key=(1, "", _positions(tokens)),
        regex=_regex(tokens),
        min_len=lo,
        max_len=hi,
        first=first,
    )


def sort_key(name: str) -> SortKey:
    """Key that sorts extension names as Asterisk's ``ext_cmp`` does (most specific first)."""
    return compile_pattern(name).key


def extension_match(pattern: str, data: str) -> bool:
    """``ast_extension_match``: does ``data`` match ``pattern`` completely?"""
    return compile_pattern(pattern).match_core(data, MatchMode.MATCH) != NO_MATCH


def extension_close(pattern: str, data: str, *, needmore: bool = False) -> bool:
    """``ast_extension_close``: CANMATCH, or MATCHMORE when ``needmore``."""
    mode = MatchMode.MATCHMORE if needmore else MatchMode.CANMATCH
    return compile_pattern(pattern).match_core(data, mode) != NO_MATCH


class _TrieNode:
    """One position of a :class:`PatternIndex` trie."""

    __slots__ = ("bang", "chars", "dot", "ends", "sets")

    def __init__(self) -> None:
        self.chars: dict[str, _TrieNode] = {}
        self.sets: dict[frozenset[str], _TrieNode] = {}
        self.dot: list[int] = []
        self.bang: list[int] = []
        self.ends: list[int] = []


class PatternIndex:
    """Many extension names, each with a number; finds all that MATCH a string at once.

    Literals go to a dict, patterns to a trie of their positions, so a lookup costs about
    the length of the dialled string rather than the number of patterns. :meth:`matches`
    returns the numbers of every name that matches, in ascending order; number the names in
    Asterisk's order (:func:`sort_key`) and the first one is the best match.
    """

    __slots__ = ("_literals", "_max_len", "_min_len", "_root")

    def __init__(self) -> None:
        self._literals: dict[str, list[int]] = {}
        self._root = _TrieNode()
        self._min_len = 1 << 30
        self._max_len = -1

    def add(self, pattern: Pattern, number: int) -> None:
        if not pattern.is_pattern:
            self._literals.setdefault(pattern.literal, []).append(number)
            return
        self._min_len = min(self._min_len, pattern.min_len)
        self._max_len = max(self._max_len, 1 << 30 if pattern.max_len is None else pattern.max_len)
        node = self._root
        for tok in pattern.tokens:
            if tok is Wildcard.DOT:
                node.dot.append(number)
                return
            if tok is Wildcard.BANG:
                node.bang.append(number)
                return
            if tok is Wildcard.BAD:
                return  # an unterminated '[' never matches in MATCH mode
            if len(tok) == 1:
                (c,) = tok
                node = node.chars.setdefault(c, _TrieNode())
            else:
                node = node.sets.setdefault(tok, _TrieNode())
        node.ends.append(number)

    def matches(self, data: str) -> list[int]:
        """Numbers of the names that MATCH ``data`` (``-`` already removed), ascending."""
        lits = self._literals.get(data)
        n = len(data)
        if not self._min_len <= n <= self._max_len:
            return list(lits) if lits else []
        out: list[int] = list(lits) if lits else []
        stack: list[tuple[_TrieNode, int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            if node.bang:
                out.extend(node.bang)
            if i == n:
                if node.ends:
                    out.extend(node.ends)
                continue
            if node.dot:
                out.extend(node.dot)
            c = data[i]
            child = node.chars.get(c)
            if child is not None:
                stack.append((child, i + 1))
            if node.sets:
                for chars, sub in node.sets.items():
                    if c in chars:
                        stack.append((sub, i + 1))
        if len(out) > 1:
            out.sort()
        return out
