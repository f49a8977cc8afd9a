"""extensions.conf → :class:`~pypbx.dialplan.model.Dialplan` (Asterisk ``pbx/pbx_config.c``).

The second stage after :mod:`pypbx.config.conf`: ``[general]`` settings, ``[globals]``
variables, and every other section is a context (sections of the same name merge, as Asterisk
merges them). In a context:

* ``exten => name[/cid],priority[(label)][+n],App(args)``: the priority is a number, ``n``
  (``next``), ``s`` (``same``), ``hint`` or an existing label; ``same => ...`` continues the
  last ``exten``'s name; ``=`` works as well as ``=>``. ``App(args)``, the old ``App,args`` and
  a bare ``App`` are accepted; the name and the argument text are kept verbatim.
* ``include => ctx[,times,weekdays,mdays,months[,tz]]`` (``|`` works as a separator too),
  ``ignorepat => pattern``, ``switch``/``lswitch``/``eswitch => Module/data`` (kept, unsupported).

What Asterisk only warns about (duplicate priority: the first wins; ``n`` with no previous
priority; ``same`` with no previous ``exten``; a bad priority; a missing application; unknown
keys) becomes a :class:`~pypbx.config.conf.ConfWarning` with ``file:line`` and the line is
skipped. ``${NAME}`` in extension names and include/ignorepat/switch values is replaced with
the ``[globals]`` value, as Asterisk substitutes at load time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from pypbx.config.conf import ConfFile, ConfWarning, Entry, Origin, ReadFile, load
from pypbx.dialplan.model import (
    HINT_PRIORITY,
    Context,
    Dialplan,
    DialplanGeneral,
    Extension,
    GlobalVar,
    Include,
    Priority,
    Switch,
    TimeSpec,
)
from pypbx.dialplan.pattern import compile_pattern

__all__ = ["load_dialplan", "parse_dialplan", "split_application"]

_NOT_CONTEXTS = frozenset({"general", "globals"})
_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_INT_PREFIX = re.compile(r"\s*[+-]?\d+")
_VAR = re.compile(r"\$\{([^${}]+)\}")
_NAME = re.compile(r"[A-Za-z0-9_]+")
_GLOBAL_FN = re.compile(r"GLOBAL\(([^()]*)\)")
_NEVER = TimeSpec(minutes=frozenset(), weekdays=0, mdays=0, months=0)


def load_dialplan(path: str | os.PathLike[str], *, read_file: ReadFile | None = None) -> Dialplan:
    """Read extensions.conf (with its ``#include`` files) into a dial plan."""
    return parse_dialplan(load(path, read_file=read_file))


def _true(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in _TRUE


def _int_prefix(text: str) -> int | None:
    """C ``sscanf("%d")``: the leading integer of ``text``, if any."""
    m = _INT_PREFIX.match(text)
    return int(m.group()) if m else None


def split_application(text: str) -> tuple[str, str, bool]:
    """``App(args)`` / ``App,args`` / ``App`` → (app, args, old_syntax) as pbx_config does.

    The argument text is what lies between the first ``(`` and the last ``)``; when the part
    before ``(`` holds ``${`` or ``$[`` the whole text is the application (a hint-like value).
    """
    paren = text.find("(")
    comma = text.find(",")
    if comma >= 0 and (paren < 0 or comma < paren):
        return text[:comma].strip(), text[comma + 1 :], True
    if paren < 0:
        return text.strip(), "", False
    app = text[:paren]
    if "${" in app or "$[" in app:
        return text.strip(), "", False
    rest = text[paren + 1 :]
    close = rest.rfind(")")
    return app.strip(), rest if close < 0 else rest[:close], False


def _split_first(value: str) -> tuple[str, str | None]:
    """``pbx_strsep(value, ",")``: commas inside ``[...]`` and after ``\\`` do not split."""
    square = 0
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == "[":
            square += 1
        elif c == "]":
            square = max(0, square - 1)
        elif c == "\\":
            i += 1
        elif c == "," and not square:
            return value[:i], value[i + 1 :]
        i += 1
    return value, None


def _shrink_phone_number(text: str) -> str:
    """Asterisk ``ast_shrink_phone_number`` for a caller-id match: drop ``( )-`` and spaces."""
    out: list[str] = []
    bracketed = 0
    for i, c in enumerate(text):
        if c == "[":
            bracketed += 1
            out.append(c)
        elif c == "]":
            bracketed -= 1
            out.append(c)
        elif c == "-":
            if bracketed:
                out.append(c)
        elif c == ".":
            if i == len(text) - 1:
                out.append(c)
        elif c not in "( )":
            out.append(c)
    return "".join(out)


def _strip_spaces(name: str) -> str:
    """Asterisk ``ext_strncpy``: spaces outside ``[...]`` are not part of an extension name."""
    if " " not in name and "\t" not in name:
        return name
    out: list[str] = []
    square = False
    for c in name:
        if c == "[":
            square = True
        elif c == "]":
            square = False
        elif c in " \t" and not square:
            continue
        out.append(c)
    return "".join(out)


@dataclass(slots=True)
class _ExtBuilder:
    name: str
    cid: str | None
    origin: Origin
    priorities: dict[int, Priority] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    hint: str | None = None
    hint_origin: Origin | None = None

    def build(self) -> Extension:
        prios = dict(sorted(self.priorities.items()))
        return Extension(
            self.name, self.cid, prios, self.labels, self.origin, self.hint, self.hint_origin
        )


@dataclass(slots=True)
class _CtxBuilder:
    name: str
    origin: Origin
    extensions: dict[tuple[object, ...], _ExtBuilder] = field(default_factory=dict)
    includes: list[Include] = field(default_factory=list)
    ignorepats: list[str] = field(default_factory=list)
    switches: list[Switch] = field(default_factory=list)

    def build(self) -> Context:
        exts = [b.build() for b in self.extensions.values()]
        return Context(
            self.name, exts, list(self.includes), list(self.ignorepats), list(self.switches),
            self.origin,
        )  # fmt: skip


def _ext_key(name: str, cid: str | None) -> tuple[object, ...]:
    # Asterisk merges names that ext_cmp calls equal ("1-00" and "100"; "_X" and "_[0-9]").
    return (compile_pattern(name).key, None if cid is None else compile_pattern(cid).key)


@dataclass(slots=True)
class _Loader:
    globals_raw: dict[str, str]
    warnings: list[ConfWarning]
    contexts: dict[str, _CtxBuilder] = field(default_factory=dict)
    last_name: str = ""  # the extension whose priority set ``lastpri``

    def warn(self, origin: Origin, message: str, kind: str) -> None:
        self.warnings.append(ConfWarning(origin, message, kind))

    def substitute(self, text: str, origin: Origin, *, quiet: bool = False) -> str:
        """``pbx_substitute_variables_helper(NULL, ...)`` at load time, for the forms that
        need no channel: ``${NAME}`` and ``${GLOBAL(NAME)}`` take the ``[globals]`` value, or
        nothing when there is none (as Asterisk does); other expressions stay as written."""
        if "${" not in text:
            return text

        def one(m: re.Match[str]) -> str:
            expr = m.group(1)
            inner = _GLOBAL_FN.fullmatch(expr)
            name = inner.group(1) if inner else expr
            if not _NAME.fullmatch(name):
                if not quiet:
                    msg = f"'${{{expr}}}' is not evaluated at load time"
                    self.warn(origin, msg, "variable")
                return f"\0{expr}\1"  # protected from further rounds, restored below
            if name not in self.globals_raw:
                if not quiet:
                    msg = f"no global variable '{name}': substituted as empty"
                    self.warn(origin, msg, "variable")
                return ""
            return self.globals_raw[name]

        for _ in range(8):
            new = _VAR.sub(one, text)
            if new == text:
                break
            text = new
        return text.replace("\0", "${").replace("\1", "}")

    # -- one context section -----------------------------------------------------------------

    def context_section(self, name: str, origin: Origin, entries: list[Entry]) -> None:
        ctx = self.contexts.get(name)
        if ctx is None:
            ctx = self.contexts[name] = _CtxBuilder(name, origin)
        last_exten = ""
        lastpri = -2
        self.last_name = ""
        for e in entries:
            key = e.key.lower()
            if key.startswith("same"):
                if not last_exten:
                    self.warn(
                        e.origin,
                        f"No previous pattern in the first entry of context '{name}' to match "
                        f"'{e.key}'",
                        "syntax",
                    )
                    continue
                lastpri = self.exten(ctx, last_exten, e.value, e.origin, lastpri)
            elif key == "exten":
                first, rest = _split_first(e.value)
                last_exten = self.substitute(first, e.origin)
                lastpri = self.exten(ctx, last_exten, rest or "", e.origin, lastpri)
            elif key == "include":
                self.include(ctx, e)
            elif key == "ignorepat":
                pat = self.substitute(e.value, e.origin)
                if pat.lower() in (p.lower() for p in ctx.ignorepats):
                    self.warn(
                        e.origin,
                        f"Unable to include ignorepat '{e.value}' in context '{name}'",
                        "duplicate",
                    )
                else:
                    ctx.ignorepats.append(pat)
            elif key in ("switch", "lswitch", "eswitch"):
                value = self.substitute(e.value, e.origin) if key == "switch" else e.value
                module, _, data = value.partition("/")
                ctx.switches.append(Switch(key, module, data, e.origin))
                self.warn(
                    e.origin, f"{key} => {value}: alternative switches are not supported", "switch"
                )
            else:
                self.warn(e.origin, f"Unknown directive: {e.key} -- IGNORING", "unknown")

    def include(self, ctx: _CtxBuilder, e: Entry) -> None:
        value = self.substitute(e.value, e.origin).strip()
        m = re.search(r"[,|]", value)
        name = value if m is None else value[: m.start()].strip()
        spec = None if m is None else value[m.end() :].strip()
        timing = None
        if spec:
            try:
                timing = TimeSpec.parse(spec)
            except ValueError as exc:
                self.warn(
                    e.origin, f"include '{name}': {exc}; Asterisk never matches it", "include"
                )
                timing = _NEVER
        if any(i.name.lower() == name.lower() for i in ctx.includes):
            self.warn(
                e.origin,
                f"Context '{name}' already included in '{ctx.name}' context",
                "duplicate",
            )
            return
        ctx.includes.append(Include(name, spec or None, e.origin, timing))

    def exten(
        self, ctx: _CtxBuilder, realext: str, value: str, origin: Origin, lastpri: int
    ) -> int:
        """Add one priority; returns the new ``lastpri`` (unchanged when the line is skipped)."""
        cid: str | None = None
        ext, slash, cidtext = realext.partition("/")
        if slash:
            cid = _shrink_phone_number(cidtext)
        ext = _strip_spaces(ext)
        pri_text, appl_rest = _split_plain(value)
        pri = pri_text.strip()
        label: str | None = None
        if "(" in pri:
            pri, _, label = pri.partition("(")
            if ")" not in label:
                self.warn(origin, "Label missing trailing ')'", "syntax")
                return lastpri
            label = label[: label.index(")")]
        pri, plus_sign, plus = pri.partition("+")
        pri = pri.strip()
        if pri == "hint":
            ipri = HINT_PRIORITY
        elif pri in ("n", "next"):
            if lastpri <= -2:
                self.warn(origin, "Can't use 'next' priority on the first entry!", "priority")
                return lastpri
            ipri = lastpri + 1
            if self.last_name and self.last_name != realext:
                self.warn(
                    origin,
                    f"'{pri}' on '{realext}' continues from priority {lastpri} of "
                    f"'{self.last_name}': it is priority {ipri}, as in Asterisk",
                    "priority",
                )
        elif pri in ("s", "same"):
            if lastpri <= -2:
                self.warn(origin, "Can't use 'same' priority on the first entry!", "priority")
                return lastpri
            ipri = lastpri
        else:
            num = _int_prefix(pri)
            if num is None:
                num = self.find_label(ctx, ext, cid, pri)
                if num is None:
                    self.warn(origin, f"Invalid priority/label '{pri}'", "priority")
                    return lastpri
            elif num < 1:
                self.warn(origin, f"Invalid priority '{pri}'", "priority")
                return lastpri
            ipri = num
        appl = appl_rest or ""
        if ipri == 0:
            # 'n' right after a hint: Asterisk computes priority 0 and silently drops the line.
            self.warn(
                origin, f"priority '{pri_text.strip()}' after a hint is 0: ignored", "priority"
            )
            return lastpri
        if plus_sign:
            ipri += _int_prefix(plus) or 0
        lastpri = ipri
        self.last_name = realext
        if ext in ("_.", "_!"):
            self.warn(
                origin,
                f"The use of '{ext}' for an extension is strongly discouraged and can have "
                f"unexpected behavior.  Please use '_X{ext[1]}' instead",
                "pattern",
            )
        key = _ext_key(ext, cid)
        builder = ctx.extensions.get(key)
        if builder is None:
            builder = ctx.extensions[key] = _ExtBuilder(ext, cid, origin)
        if ipri == HINT_PRIORITY:
            if builder.hint is not None:
                self.warn(
                    origin,
                    f"Unable to register extension '{ext}' hint in '{ctx.name}', already in use "
                    f"(at {builder.hint_origin})",
                    "duplicate",
                )
            else:
                builder.hint, builder.hint_origin = appl.strip(), origin
            return lastpri
        app, args, old = split_application(appl)
        if not app:
            self.warn(origin, f"No application for '{ext}' priority {ipri}: skipped", "syntax")
            return lastpri
        if old:
            self.warn(
                origin,
                f"'{app},...' is the pre-1.6 application syntax; write {app}(...)",
                "deprecated",
            )
        elif "(" in appl and ")" not in appl[appl.index("(") :]:
            self.warn(origin, f"No closing parenthesis found? '{app}({args}'", "syntax")
        old_step = builder.priorities.get(ipri)
        if old_step is not None:
            self.warn(
                origin,
                f"Unable to register extension '{ext}' priority {ipri} in '{ctx.name}', "
                f"already in use (at {old_step.origin})",
                "duplicate",
            )
            return lastpri
        if label:
            if label in builder.labels:
                self.warn(
                    origin,
                    f"Extension '{ext}' label '{label}' in '{ctx.name}' already in use at "
                    f"priority {builder.labels[label]}",
                    "duplicate",
                )
            else:
                builder.labels[label] = ipri
        builder.priorities[ipri] = Priority(ipri, label or None, app, args, origin)
        return lastpri

    def find_label(self, ctx: _CtxBuilder, ext: str, cid: str | None, label: str) -> int | None:
        b = ctx.extensions.get(_ext_key(ext, cid))
        if b is None:
            return None
        return b.labels.get(label)


def _split_plain(value: str) -> tuple[str, str | None]:
    head, sep, tail = value.partition(",")
    return head, tail if sep else None


def parse_dialplan(conf: ConfFile) -> Dialplan:
    """Give meaning to a parsed extensions.conf."""
    warnings = list(conf.warnings)
    general: dict[str, str] = {}
    globals_: list[GlobalVar] = []
    for sec in conf.categories():
        low = sec.name.lower()
        if low == "general":
            for e in sec.entries:
                general[e.key.lower()] = e.value
        elif low == "globals":
            globals_.extend(GlobalVar(e.key, e.value, e.origin) for e in sec.entries)
    loader = _Loader({}, warnings)
    for g in globals_:  # Asterisk sets each global with the ones before it substituted
        loader.globals_raw[g.name] = loader.substitute(g.value, g.origin, quiet=True)
    for sec in conf.categories():
        if sec.name.lower() in _NOT_CONTEXTS:
            continue
        loader.context_section(sec.name, sec.origin, sec.entries)
    contexts = {name: b.build() for name, b in loader.contexts.items()}
    for ctx in contexts.values():
        for inc in ctx.includes:
            if inc.name not in contexts:
                warnings.append(
                    ConfWarning(
                        inc.origin,
                        f"Context '{ctx.name}' tries to include nonexistent context '{inc.name}'",
                        "include",
                    )
                )
    settings = DialplanGeneral(
        static=_true(general.get("static"), False),
        writeprotect=_true(general.get("writeprotect"), False),
        clearglobalvars=_true(general.get("clearglobalvars"), False),
        autofallthrough=_true(general.get("autofallthrough"), True),
        extenpatternmatchnew=_true(general.get("extenpatternmatchnew"), False),
        priorityjumping=_true(general.get("priorityjumping"), False),
        userscontext=general.get("userscontext") or "default",
    )
    return Dialplan(general=settings, globals=globals_, contexts=contexts, warnings=warnings)
