"""The dial plan model and its lookups (Asterisk ``main/pbx.c``: ``pbx_find_extension``).

Values (:class:`Priority`, :class:`Extension`, :class:`Context`, :class:`Include`,
:class:`Dialplan`) are built by :mod:`pypbx.dialplan.parser` and not changed afterwards.

Lookups follow Asterisk's default algorithm (``extenpatternmatchnew = no``), Asterisk
documentation "Configuration / Dialplan / Pattern Matching" and "Include Statements":

* a context's extensions are tried in ``ext_cmp`` order (literals, then patterns from the most
  specific), a caller-id extension (``100/_1XX``) before the same one without;
* the first extension that matches *and has the wanted priority* (or label) wins: when the
  best match lacks the priority, the next matching one is used ("priority fall-through",
  the documented ``6410`` / ``_641X`` example);
* only then are the ``include =>`` contexts searched, in order, recursively; a context is
  searched at most once per lookup (loops), and the depth is bounded (``AST_PBX_MAX_STACK``);
* in MATCHMORE mode a matching ``!`` extension ends the search of that context with no result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from pypbx.config.conf import ConfWarning, Origin
from pypbx.dialplan.pattern import (
    EARLY,
    NO_MATCH,
    MatchMode,
    Pattern,
    PatternIndex,
    compile_pattern,
)

__all__ = [
    "HINT_PRIORITY",
    "MAX_INCLUDE_DEPTH",
    "Context",
    "Dialplan",
    "DialplanGeneral",
    "Extension",
    "Found",
    "GlobalVar",
    "Include",
    "Priority",
    "Switch",
    "TimeSpec",
]

HINT_PRIORITY: Final = -1  # Asterisk's PRIORITY_HINT
MAX_INCLUDE_DEPTH: Final = 128  # Asterisk's AST_PBX_MAX_STACK
_CACHE_LIMIT: Final = 200_000


@dataclass(frozen=True, slots=True)
class Priority:
    """One step: ``exten => name,number(label),app(args)``; ``app``/``args`` are verbatim."""

    number: int
    label: str | None
    app: str
    args: str
    origin: Origin


@dataclass(frozen=True, slots=True, eq=False)
class Extension:
    """An extension (literal or pattern, optionally with a caller-id pattern) and its steps.

    ``priorities`` maps number → :class:`Priority` (in ascending order); ``labels`` maps
    label → number; ``hint`` is the device text of ``exten => name,hint,...``.
    """

    name: str
    cid: str | None
    priorities: dict[int, Priority]
    labels: dict[str, int]
    origin: Origin
    hint: str | None = None
    hint_origin: Origin | None = None
    pattern: Pattern = field(init=False, repr=False)
    cid_pattern: Pattern | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", compile_pattern(self.name))
        cp = None if self.cid is None else compile_pattern(self.cid)
        object.__setattr__(self, "cid_pattern", cp)

    @property
    def is_pattern(self) -> bool:
        return self.pattern.is_pattern

    def cid_matches(self, callerid: str | None) -> bool:
        """Asterisk ``matchcid``: a caller-id extension needs a matching caller number."""
        if self.cid_pattern is None:
            return True
        if not callerid:
            return self.cid == ""
        return self.cid_pattern.match_core(callerid, MatchMode.MATCH) != NO_MATCH


_DAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS: Final = (
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
)  # fmt: skip


def _range_mask(text: str, size: int, names: tuple[str, ...] | None) -> int:
    """Asterisk ``get_range``: ``*``, ``a-b`` (wrapping), ``x&y``; bit i = item i (0-based)."""
    text = text.strip()
    if not text or text == "*":
        return (1 << size) - 1
    mask = 0
    for part in text.split("&"):
        lo_s, dash, hi_s = part.partition("-")
        lo = _range_item(lo_s, size, names)
        hi = _range_item(hi_s, size, names) if dash else lo
        if lo is None or hi is None:
            raise ValueError(f"invalid range {part!r}")
        i = lo
        while True:
            mask |= 1 << i
            if i == hi:
                break
            i = (i + 1) % size
    return mask


def _range_item(text: str, size: int, names: tuple[str, ...] | None) -> int | None:
    t = text.strip().lower()
    if names is not None and t[:1].isalpha():
        return names.index(t) if t in names else None
    if not t.isdigit():
        return None
    n = int(t)  # numbers count from 1, for days of the week too ("1" is Sunday)
    return n - 1 if 1 <= n <= size else None


def _minutes(text: str) -> int | None:
    h, colon, m = text.strip().partition(":")
    if not colon or not h.isdigit() or not m.isdigit():
        return None
    hh, mm = int(h), int(m)
    if hh > 23 or mm > 59:
        return None
    return hh * 60 + mm


@dataclass(frozen=True, slots=True)
class TimeSpec:
    """``times,weekdays,mdays,months[,tz]`` (Asterisk ``ast_build_timing``/``ast_check_timing``).

    Times are ``HH:MM-HH:MM`` (both ends included, wrapping past midnight) or ``*``; the other
    fields are ``*``, names or numbers, ranges ``a-b`` and ``&`` lists. ``now`` is taken in the
    time zone it carries; a ``tz`` field is kept but not applied (pure code reads no zone db).
    """

    minutes: frozenset[int] | None  # None: all day
    weekdays: int
    mdays: int
    months: int
    timezone: str | None = None

    @classmethod
    def parse(cls, text: str) -> TimeSpec:
        """Parse the fields; ``ValueError`` on a malformed one."""
        fields = [f.strip() for f in text.replace("|", ",").split(",")]
        tz = fields[4] if len(fields) >= 5 else None
        fields += ["*"] * (4 - len(fields))
        times = fields[0]
        minutes: frozenset[int] | None = None
        if times and times != "*":
            start_s, dash, end_s = times.partition("-")
            start = _minutes(start_s)
            end = _minutes(end_s) if dash else start
            if start is None or end is None:
                raise ValueError(f"invalid time range {times!r}")
            span = {start}
            i = start
            while i != end:
                i = (i + 1) % 1440
                span.add(i)
            minutes = frozenset(span)
        return cls(
            minutes=minutes,
            weekdays=_range_mask(fields[1], 7, _DAYS),
            mdays=_range_mask(fields[2], 31, None),
            months=_range_mask(fields[3], 12, _MONTHS),
            timezone=tz,
        )

    def matches(self, now: datetime) -> bool:
        if not self.months >> (now.month - 1) & 1:
            return False
        if not self.mdays >> (now.day - 1) & 1:
            return False
        if not self.weekdays >> ((now.weekday() + 1) % 7) & 1:
            return False
        return self.minutes is None or now.hour * 60 + now.minute in self.minutes


@dataclass(frozen=True, slots=True)
class Include:
    """``include => name[,timespec]``: search ``name`` after this context's own extensions."""

    name: str
    timespec: str | None
    origin: Origin
    timing: TimeSpec | None = field(default=None, compare=False, repr=False)

    def valid_at(self, now: datetime | None) -> bool:
        """Asterisk ``include_valid``; without ``now`` a timed include counts as valid."""
        if self.timing is None or now is None:
            return True
        return self.timing.matches(now)


@dataclass(frozen=True, slots=True)
class Switch:
    """``switch``/``lswitch``/``eswitch => Module/data``; kept but not run by pypbx."""

    kind: str
    module: str
    data: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class GlobalVar:
    """A ``[globals]`` entry, value verbatim (not substituted)."""

    name: str
    value: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class Context:
    """A ``[context]``: extensions in file order, includes, ignore patterns, switches."""

    name: str
    extensions: list[Extension]
    includes: list[Include]
    ignorepats: list[str]
    switches: list[Switch]
    origin: Origin


@dataclass(frozen=True, slots=True)
class DialplanGeneral:
    """The ``[general]`` section of extensions.conf, with Asterisk's defaults."""

    static: bool = False
    writeprotect: bool = False
    clearglobalvars: bool = False
    autofallthrough: bool = True
    extenpatternmatchnew: bool = False
    priorityjumping: bool = False
    userscontext: str = "default"


@dataclass(frozen=True, slots=True)
class Found:
    """The result of :meth:`Dialplan.find`: where the step is and what it runs."""

    context: str
    extension: Extension
    priority: Priority


@dataclass(frozen=True, slots=True)
class _Flat:
    """MATCH-mode index of a context and everything it includes, in search order.

    Asterisk searches a context's own extensions and then its includes depth-first, each
    context once; without MATCHMORE's early stop that is a fixed sequence of
    (context, extension) pairs, numbered here and indexed by :class:`PatternIndex`.
    """

    entries: tuple[tuple[str, Extension], ...]
    index: PatternIndex

    @classmethod
    def build(cls, contexts: list[tuple[str, tuple[Extension, ...]]]) -> _Flat:
        entries: list[tuple[str, Extension]] = []
        index = PatternIndex()
        for name, ordered in contexts:
            for e in ordered:
                index.add(e.pattern, len(entries))
                entries.append((name, e))
        return cls(tuple(entries), index)


def _order_key(e: Extension) -> tuple[object, ...]:
    # Asterisk ast_add_extension2: same name → caller-id ones first, ordered by ext_cmp(cid).
    if e.cid_pattern is None:
        return (e.pattern.key, 1, (0, "", ()))
    return (e.pattern.key, 0, e.cid_pattern.key)


_MISS: Final = object()


@dataclass(frozen=True, slots=True)
class Dialplan:
    """A loaded extensions.conf: settings, globals, contexts and warnings; answers lookups.

    Lookups without a clock (or in a plan without timed includes) are cached; the plan must
    not be changed after it is built (a reload builds a new one).
    """

    general: DialplanGeneral = field(default_factory=DialplanGeneral)
    globals: list[GlobalVar] = field(default_factory=list)
    contexts: dict[str, Context] = field(default_factory=dict)
    warnings: list[ConfWarning] = field(default_factory=list)
    _ordered: dict[str, tuple[Extension, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _flat: dict[str, _Flat] = field(default_factory=dict, init=False, repr=False, compare=False)
    _found: dict[tuple[object, ...], Found | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _timed: list[bool] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        timed = any(i.timing is not None for c in self.contexts.values() for i in c.includes)
        self._timed.append(timed)

    # -- plain accessors -------------------------------------------------------------------

    def context_names(self) -> list[str]:
        return list(self.contexts)

    def global_vars(self) -> dict[str, str]:
        """``[globals]`` as name → value, in file order; a repeated name keeps its last value."""
        out: dict[str, str] = {}
        for g in self.globals:
            out[g.name] = g.value
        return out

    def ordered_extensions(self, context: str) -> tuple[Extension, ...]:
        """A context's extensions in Asterisk's match order (empty if no such context)."""
        ordered = self._ordered.get(context)
        if ordered is None:
            ctx = self.contexts.get(context)
            if ctx is None:
                return ()
            ordered = self._ordered[context] = tuple(sorted(ctx.extensions, key=_order_key))
        return ordered

    def search_order(self, context: str, now: datetime | None = None) -> list[str]:
        """Contexts searched for ``context``: itself, then its includes depth-first, each once
        (names compared case-insensitively, as Asterisk's include stack does), at most
        :data:`MAX_INCLUDE_DEPTH` of them; missing contexts and closed timed includes skipped.
        """
        seen: set[str] = set()
        order: list[str] = []

        def visit(name: str) -> None:
            if len(seen) >= MAX_INCLUDE_DEPTH or name.lower() in seen:
                return
            ctx = self.contexts.get(name)
            if ctx is None:
                return
            order.append(name)
            seen.add(name.lower())
            for inc in ctx.includes:
                if inc.valid_at(now):
                    visit(inc.name)

        visit(context)
        return order

    # -- lookups ---------------------------------------------------------------------------

    def find(
        self,
        context: str,
        exten: str,
        priority: int,
        *,
        callerid: str | None = None,
        now: datetime | None = None,
    ) -> Found | None:
        """The step run for ``exten`` at ``priority`` in ``context`` (``ast_exists_extension``)."""
        if now is None or not self._timed[0]:
            key = (context, exten, priority, callerid)
            hit = self._found.get(key, _MISS)
            if hit is not _MISS:
                return hit  # type: ignore[return-value]
            found = self._find_match(context, exten, priority, None, callerid, None)
            if len(self._found) >= _CACHE_LIMIT:
                self._found.clear()
            self._found[key] = found
            return found
        return self._find_match(context, exten, priority, None, callerid, now)

    def find_label(
        self,
        context: str,
        exten: str,
        label: str,
        *,
        callerid: str | None = None,
        now: datetime | None = None,
    ) -> int | None:
        """The priority number of ``label`` (``ast_findlabel_extension``), or None."""
        found = self._find_match(context, exten, 0, label, callerid, now)
        return None if found is None else found.priority.number

    def exists(
        self,
        context: str,
        exten: str,
        priority: int = 1,
        *,
        callerid: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        return self.find(context, exten, priority, callerid=callerid, now=now) is not None

    def can_match(
        self, context: str, exten: str, *, callerid: str | None = None, now: datetime | None = None
    ) -> bool:
        """``ast_canmatch_extension``: ``exten`` is, or may become, an extension."""
        return self._close(MatchMode.CANMATCH, context, exten, callerid, now) is not None

    def match_more(
        self, context: str, exten: str, *, callerid: str | None = None, now: datetime | None = None
    ) -> bool:
        """``ast_matchmore_extension``: more digits could still match an extension."""
        return self._close(MatchMode.MATCHMORE, context, exten, callerid, now) is not None

    def find_hint(
        self, context: str, exten: str, *, callerid: str | None = None
    ) -> tuple[str, Extension] | None:
        """The hint device text for ``exten`` (``ast_get_hint``) and its extension."""
        for name in self.search_order(context):
            for e in self.ordered_extensions(name):
                if e.hint is not None and e.pattern.matches(exten) and e.cid_matches(callerid):
                    return e.hint, e
        return None

    # -- internals -------------------------------------------------------------------------

    def _flat_index(self, context: str, now: datetime | None) -> _Flat:
        if now is not None and self._timed[0]:
            order = self.search_order(context, now)
            return _Flat.build([(n, self.ordered_extensions(n)) for n in order])
        flat = self._flat.get(context)
        if flat is None:
            order = self.search_order(context)
            flat = _Flat.build([(n, self.ordered_extensions(n)) for n in order])
            self._flat[context] = flat
        return flat

    def _find_match(
        self,
        context: str,
        exten: str,
        priority: int,
        label: str | None,
        callerid: str | None,
        now: datetime | None,
    ) -> Found | None:
        """MATCH mode: the first matching extension, in search order, that has the step."""
        flat = self._flat_index(context, now)
        if exten.startswith("_"):  # a pattern named as itself (Goto(_X.,1)): compare patterns
            numbers: list[int] = [
                i for i, (_, e) in enumerate(flat.entries) if e.pattern.matches(exten)
            ]
        else:
            numbers = flat.index.matches(exten.replace("-", "") if "-" in exten else exten)
        for i in numbers:
            name, e = flat.entries[i]
            if e.cid_pattern is not None and not e.cid_matches(callerid):
                continue
            step = _step(e, priority, label)
            if step is not None:
                return Found(name, e, step)
        return None

    def _close(
        self,
        mode: MatchMode,
        context: str,
        exten: str,
        callerid: str | None,
        now: datetime | None,
    ) -> Found | None:
        if now is not None and self._timed[0]:
            return self._search(mode, context, exten, callerid, now, set())
        key = (mode.value, context, exten, callerid, None)
        hit = self._found.get(key, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        found = self._search(mode, context, exten, callerid, None, set())
        if len(self._found) >= _CACHE_LIMIT:
            self._found.clear()
        self._found[key] = found
        return found

    def _search(
        self,
        mode: MatchMode,
        name: str,
        data: str,
        callerid: str | None,
        now: datetime | None,
        seen: set[str],
    ) -> Found | None:
        """CANMATCH/MATCHMORE (priority 1), recursive as ``pbx_find_extension``: a ``!`` match
        in MATCHMORE mode ends the search of that context (and its includes) with nothing."""
        if len(seen) >= MAX_INCLUDE_DEPTH or name.lower() in seen:
            return None
        ctx = self.contexts.get(name)
        if ctx is None:
            return None
        for e in self.ordered_extensions(name):
            m = e.pattern.match_core(data, mode)
            if m == NO_MATCH or not e.cid_matches(callerid):
                continue
            if m == EARLY and mode is MatchMode.MATCHMORE:
                return None
            step = e.priorities.get(1)
            if step is not None:
                return Found(name, e, step)
        seen.add(name.lower())
        for inc in ctx.includes:
            if inc.valid_at(now):
                found = self._search(mode, inc.name, data, callerid, now, seen)
                if found is not None:
                    return found
        return None


def _step(e: Extension, priority: int, label: str | None) -> Priority | None:
    if label is None:
        return e.priorities.get(priority)
    num = e.labels.get(label)
    return None if num is None else e.priorities.get(num)
