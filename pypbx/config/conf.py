"""The Asterisk .conf dialect (Asterisk main/config.c), generic stage: text → sections.

What it reads, as Asterisk does:

* ``[section]`` headers, with options ``[name](!)`` (template), ``[name](tpl1,tpl2)``
  (inherit the variables of earlier sections, in order), ``[name](!,tpl)``, ``[name](+)``
  (append to the earlier section of that name);
* ``key = value`` and ``key => value`` (which one was used is kept), ``key += value``
  (appends to the previous value of ``key`` in the section);
* ``;`` comments, ``\\;`` for a literal semicolon, block comments ``;-- ... --;`` (nestable);
* ``#include`` and ``#tryinclude`` with a file name or a glob, relative to the config dir,
  include loops detected; ``#exec`` is refused with a warning (pypbx runs no programs).

Every value keeps the ``file:line`` it came from. Repeated keys are all kept, in order:
the meaning stage (sipconf, the dial plan parser) chooses "last wins" or "all".
Errors raise :class:`ConfigError` with ``file:line``; oddities Asterisk only warns about
become :class:`ConfWarning` entries.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pypbx.errors import PbxError

__all__ = [
    "ConfFile",
    "ConfWarning",
    "ConfigError",
    "Entry",
    "Origin",
    "Section",
    "load",
    "parse_text",
]

MAX_INCLUDE_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value was written: a file name and a 1-based line number."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class ConfigError(PbxError):
    """A configuration Asterisk would refuse; ``str()`` is ``file:line: message``."""

    def __init__(self, message: str, origin: Origin | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.origin = origin

    def __str__(self) -> str:
        if self.origin is None:
            return self.message
        return f"{self.origin}: {self.message}"


@dataclass(frozen=True, slots=True)
class ConfWarning:
    """Something Asterisk logs a warning for and then ignores or tolerates."""

    origin: Origin
    message: str
    kind: str = "syntax"

    def __str__(self) -> str:
        return f"{self.origin}: {self.message}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``key = value`` (or ``key => value`` when ``arrow``) line."""

    key: str
    value: str
    origin: Origin
    arrow: bool = False
    inherited: bool = False


@dataclass(slots=True)
class Section:
    """A ``[name]`` category with its entries in file order (inherited ones first)."""

    name: str
    origin: Origin
    template: bool = False
    bases: tuple[str, ...] = ()
    entries: list[Entry] = field(default_factory=list)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def entry(self, key: str) -> Entry | None:
        """The last entry named ``key`` (names compare case-insensitively, as in Asterisk)."""
        k = key.lower()
        for e in reversed(self.entries):
            if e.key.lower() == k:
                return e
        return None

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value of ``key``: Asterisk's ``ast_variable_retrieve`` for one key."""
        e = self.entry(key)
        return default if e is None else e.value

    def all(self, key: str) -> list[Entry]:
        """Every entry named ``key``, in order (``allow``, ``register``, ``exten`` ...)."""
        k = key.lower()
        return [e for e in self.entries if e.key.lower() == k]


@dataclass(slots=True)
class ConfFile:
    """A parsed file with its includes: sections in order, warnings, files read."""

    path: str
    sections: list[Section] = field(default_factory=list)
    warnings: list[ConfWarning] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def categories(self) -> list[Section]:
        """Sections that are not templates, as ``ast_category_browse`` yields them."""
        return [s for s in self.sections if not s.template]

    def sections_named(self, name: str) -> list[Section]:
        return [s for s in self.sections if not s.template and s.name == name]

    def section(self, name: str) -> Section | None:
        """The first non-template section called ``name``."""
        for s in self.sections:
            if not s.template and s.name == name:
                return s
        return None


ReadFile = Callable[[str], str]


def _read_file(path: str) -> str:
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


@dataclass(slots=True)
class _State:
    conf: ConfFile
    config_dir: str
    read_file: ReadFile
    stack: list[str]
    current: Section | None = None
    comment_depth: int = 0


def load(
    path: str | os.PathLike[str],
    *,
    config_dir: str | os.PathLike[str] | None = None,
    read_file: ReadFile | None = None,
) -> ConfFile:
    """Read ``path`` and everything it includes. Missing file: :class:`ConfigError`."""
    p = os.fspath(path)
    cdir = os.fspath(config_dir) if config_dir is not None else os.path.dirname(p) or "."
    reader = read_file or _read_file
    try:
        text = reader(p)
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from None
    return parse_text(text, p, config_dir=cdir, read_file=reader)


def parse_text(
    text: str,
    filename: str = "<string>",
    *,
    config_dir: str | None = None,
    read_file: ReadFile | None = None,
) -> ConfFile:
    """Parse ``text`` as if it were the file ``filename``."""
    conf = ConfFile(path=filename)
    state = _State(
        conf=conf,
        config_dir=config_dir if config_dir is not None else os.path.dirname(filename) or ".",
        read_file=read_file or _read_file,
        stack=[],
    )
    _parse_into(state, text, filename)
    return conf


def _parse_into(state: _State, text: str, filename: str, origin: Origin | None = None) -> None:
    key = os.path.normpath(filename)
    if key in state.stack:
        chain = " -> ".join([*state.stack, key])
        raise ConfigError(f"include loop: {chain}", origin)
    if len(state.stack) >= MAX_INCLUDE_DEPTH:
        raise ConfigError(f"includes nested deeper than {MAX_INCLUDE_DEPTH}: {filename}", origin)
    state.stack.append(key)
    state.conf.files.append(filename)
    state.comment_depth = 0
    try:
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = _strip_comments(state, raw)
            if not line:
                continue
            _process_line(state, line, Origin(filename, lineno))
    finally:
        state.stack.pop()


def _strip_comments(state: _State, raw: str) -> str:
    """Remove ``;`` comments and ``;-- --;`` blocks; turn ``\\;`` into ``;``."""
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        if state.comment_depth:
            if raw.startswith("--;", i):
                state.comment_depth -= 1
                i += 3
            elif raw.startswith(";--", i):
                state.comment_depth += 1
                i += 3
            else:
                i += 1
            continue
        c = raw[i]
        if c == "\\" and i + 1 < n and raw[i + 1] == ";":
            out.append(";")
            i += 2
        elif c == ";":
            if raw.startswith(";--", i):
                state.comment_depth += 1
                i += 3
            else:
                break
        else:
            out.append(c)
            i += 1
    return "".join(out).strip()


def _process_line(state: _State, line: str, origin: Origin) -> None:
    if line[0] == "[":
        _section_header(state, line, origin)
    elif line[0] == "#":
        _directive(state, line, origin)
    else:
        _variable(state, line, origin)


def _section_header(state: _State, line: str, origin: Origin) -> None:
    end = line.find("]")
    if end < 0:
        raise ConfigError("no closing ']' in section header", origin)
    name = line[1:end].strip()
    rest = line[end + 1 :].strip()
    if not name:
        raise ConfigError("empty section name", origin)
    template = False
    append = False
    bases: list[str] = []
    if rest:
        if not rest.startswith("("):
            state.conf.warnings.append(
                ConfWarning(origin, f"text after section header ignored: {rest!r}")
            )
        else:
            close = rest.find(")")
            if close < 0:
                raise ConfigError("no closing ')' in section options", origin)
            for opt in rest[1:close].split(","):
                opt = opt.strip()
                if opt == "!":
                    template = True
                elif opt == "+":
                    append = True
                elif opt:
                    bases.append(opt)
    if append:
        target = None
        for s in reversed(state.conf.sections):
            if s.name == name:
                target = s
                break
        if target is None:
            raise ConfigError(
                f"section addition requested, but section '{name}' does not exist", origin
            )
        state.current = target
        return
    section = Section(name=name, origin=origin, template=template, bases=tuple(bases))
    for base_name in bases:
        base = None
        for s in reversed(state.conf.sections):
            if s.name == base_name:
                base = s
                break
        if base is None:
            raise ConfigError(
                f"inheritance requested, but section '{base_name}' does not exist", origin
            )
        section.entries.extend(
            Entry(e.key, e.value, e.origin, e.arrow, inherited=True) for e in base.entries
        )
    state.conf.sections.append(section)
    state.current = section


def _directive(state: _State, line: str, origin: Origin) -> None:
    word, _, arg = line[1:].partition(" ")
    if not arg:
        word, _, arg = line[1:].partition("\t")
    word = word.strip().lower()
    arg = arg.strip()
    if word in ("include", "tryinclude"):
        if len(arg) >= 2 and arg[0] in '"<' and arg[-1] in '">':
            arg = arg[1:-1].strip()
        if not arg:
            raise ConfigError(f"#{word} needs a file name", origin)
        _include(state, arg, origin, required=(word == "include"))
    elif word == "exec":
        state.conf.warnings.append(
            ConfWarning(origin, "#exec is not supported (pypbx runs no programs)", "unsupported")
        )
    else:
        state.conf.warnings.append(ConfWarning(origin, f"unknown directive #{word}"))


def _include(state: _State, name: str, origin: Origin, *, required: bool) -> None:
    path = name if os.path.isabs(name) else os.path.join(state.config_dir, name)
    if glob.has_magic(path):
        paths = sorted(glob.glob(path))
    else:
        paths = [path]
    if not paths:
        if required:
            raise ConfigError(f"#include {name}: no file matches", origin)
        return
    for p in paths:
        try:
            text = state.read_file(p)
        except (OSError, UnicodeError) as exc:
            if required:
                detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise ConfigError(f"#include {name}: cannot read {p}: {detail}", origin) from None
            continue
        depth = state.comment_depth
        _parse_into(state, text, p, origin)
        state.comment_depth = depth


def _variable(state: _State, line: str, origin: Origin) -> None:
    eq = line.find("=")
    if eq < 0:
        state.conf.warnings.append(ConfWarning(origin, f"no '=' (equal sign) in line: {line!r}"))
        return
    if state.current is None:
        raise ConfigError("no section for this line (missing [section] header?)", origin)
    key = line[:eq]
    value = line[eq + 1 :]
    arrow = False
    if value.startswith(">"):
        arrow = True
        value = value[1:]
    append = False
    if key.endswith("+") and not arrow:
        append = True
        key = key[:-1]
    key = key.strip()
    value = value.strip()
    if not key:
        state.conf.warnings.append(ConfWarning(origin, f"missing name before '=': {line!r}"))
        return
    section = state.current
    if append:
        for i in range(len(section.entries) - 1, -1, -1):
            old = section.entries[i]
            if old.key.lower() == key.lower():
                section.entries[i] = Entry(old.key, old.value + value, old.origin, old.arrow)
                return
    section.entries.append(Entry(key, value, origin, arrow))
