"""Registries of dial plan applications and functions (Asterisk ast_register_application,
ast_custom_function_register; ``core show applications``/``functions``).

An application is one ``async def`` decorated with :func:`application`; a function is one
``def`` decorated with :func:`function` (its write side, for ``Set(FUNC(args)=value)``, is
registered with ``@entry.writer``). The docstring's first line is the synopsis shown by
``core show applications``; the rest is the description of ``core show application X``.

Application names are looked up case-insensitively (pbx_findapp uses strcasecmp); function
names case-sensitively, as ast_custom_function_find does.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from pypbx.config.conf import ConfWarning

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution
    from pypbx.dialplan.model import Dialplan

__all__ = [
    "REGISTRY",
    "AppEntry",
    "AppResult",
    "Flag",
    "FunctionEntry",
    "Registry",
    "application",
    "check_dialplan",
    "function",
    "load_builtins",
]


class AppResult(Enum):
    """What an application tells the dial plan loop: go on, or end the call (-1 in Asterisk)."""

    CONTINUE = 0
    HANGUP = -1


class Flag(StrEnum):
    """Properties shown by ``core show application(s)``."""

    NEEDS_CALL = "needs_call"  # does media/signalling: simulated in dry runs
    DANGEROUS = "dangerous"  # must not run from untrusted input (Asterisk live_dangerously)
    DEPRECATED = "deprecated"


AppHandler = Callable[["Execution", str], Awaitable[AppResult]]
FuncReader = Callable[["Execution", str], str | None]
FuncWriter = Callable[["Execution", str, str], None]


def _doc_parts(obj: Any) -> tuple[str, str]:
    doc = inspect.getdoc(obj) or ""
    first, _, rest = doc.partition("\n")
    return first.strip(), rest.strip()


@dataclass(frozen=True, slots=True)
class AppEntry:
    """A registered application."""

    name: str
    handler: AppHandler
    synopsis: str
    description: str
    syntax: str
    flags: frozenset[Flag]


@dataclass(slots=True)
class FunctionEntry:
    """A registered function: a reader and, for SET-able functions, a writer."""

    name: str
    reader: FuncReader | None
    synopsis: str
    description: str
    syntax: str
    flags: frozenset[Flag]
    writer_fn: FuncWriter | None = None

    def writer(self, fn: FuncWriter) -> FuncWriter:
        """Decorator registering the write side (``Set(NAME(args)=value)``)."""
        self.writer_fn = fn
        return fn


@dataclass(slots=True)
class Registry:
    """Applications and functions by name."""

    apps: dict[str, AppEntry] = field(default_factory=dict)
    functions: dict[str, FunctionEntry] = field(default_factory=dict)

    def add_app(self, entry: AppEntry) -> None:
        key = entry.name.lower()
        if key in self.apps:
            raise ValueError(f"application {entry.name} registered twice")
        self.apps[key] = entry

    def add_function(self, entry: FunctionEntry) -> None:
        if entry.name in self.functions:
            raise ValueError(f"function {entry.name} registered twice")
        self.functions[entry.name] = entry

    def app(self, name: str) -> AppEntry | None:
        return self.apps.get(name.strip().lower())

    def function(self, name: str) -> FunctionEntry | None:
        return self.functions.get(name.strip())

    def iter_apps(self) -> Iterator[AppEntry]:
        return iter(sorted(self.apps.values(), key=lambda e: e.name.lower()))

    def iter_functions(self) -> Iterator[FunctionEntry]:
        return iter(sorted(self.functions.values(), key=lambda e: e.name))

    def show_applications(self) -> str:
        """Text of ``core show applications``."""
        lines = ["    -= Registered Asterisk Applications =-"]
        lines += [f"  {e.name:>20}: {e.synopsis}" for e in self.iter_apps()]
        lines.append(f"    -= {len(self.apps)} Applications Registered =-")
        return "\n".join(lines) + "\n"

    def show_application(self, name: str) -> str | None:
        """Text of ``core show application NAME``, or None if there is none."""
        e = self.app(name)
        if e is None:
            return None
        flags = ", ".join(sorted(f.value for f in e.flags)) or "none"
        return (
            f"  -= Info about application '{e.name}' =- \n\n"
            f"[Synopsis]\n{e.synopsis}\n\n[Description]\n{e.description}\n\n"
            f"[Syntax]\n{e.syntax}\n\n[Flags]\n{flags}\n"
        )

    def show_functions(self) -> str:
        """Text of ``core show functions``."""
        lines = ["Installed Custom Functions:", "-" * 80]
        lines += [
            f"{e.name:<20.20}  {e.syntax:<35.35}  {e.synopsis}" for e in self.iter_functions()
        ]
        lines.append(f"{len(self.functions)} custom functions installed.")
        return "\n".join(lines) + "\n"

    def show_function(self, name: str) -> str | None:
        """Text of ``core show function NAME``, or None."""
        e = self.function(name)
        if e is None:
            return None
        rw = "read/write" if e.writer_fn is not None else "read-only"
        if e.reader is None:
            rw = "write-only"
        return (
            f"  -= Info about function '{e.name}' =- \n\n"
            f"[Synopsis]\n{e.synopsis}\n\n[Description]\n{e.description}\n\n"
            f"[Syntax]\n{e.syntax}\n\n[Access]\n{rw}\n"
        )


REGISTRY = Registry()
"""The process-wide registry the built-in modules register into on import."""


def application(
    name: str,
    *,
    syntax: str = "",
    flags: tuple[Flag, ...] = (),
    registry: Registry | None = None,
) -> Callable[[AppHandler], AppHandler]:
    """Register ``async def app(execution, data) -> AppResult`` under ``name``."""

    def deco(fn: AppHandler) -> AppHandler:
        synopsis, description = _doc_parts(fn)
        entry = AppEntry(
            name=name,
            handler=fn,
            synopsis=synopsis,
            description=description,
            syntax=syntax or f"{name}()",
            flags=frozenset(flags),
        )
        (registry or REGISTRY).add_app(entry)
        return fn

    return deco


def function(
    name: str,
    *,
    syntax: str = "",
    flags: tuple[Flag, ...] = (),
    registry: Registry | None = None,
    write_only: bool = False,
) -> Callable[[FuncReader], FunctionEntry]:
    """Register ``def func(execution, args) -> str | None`` under ``name``.

    The decorated name becomes the :class:`FunctionEntry`, so a writer can be added with
    ``@NAME.writer``. ``write_only`` functions (PUSH, UNSHIFT) have no reader.
    """

    def deco(fn: FuncReader) -> FunctionEntry:
        synopsis, description = _doc_parts(fn)
        entry = FunctionEntry(
            name=name,
            reader=None if write_only else fn,
            synopsis=synopsis,
            description=description,
            syntax=syntax or f"{name}()",
            flags=frozenset(flags),
        )
        (registry or REGISTRY).add_function(entry)
        return entry

    return deco


def check_dialplan(dialplan: Dialplan, registry: Registry | None = None) -> list[ConfWarning]:
    """Warnings for applications no module provides (Asterisk warns at load, then hangs up
    a call that reaches one)."""
    reg = registry if registry is not None else load_builtins()
    out: list[ConfWarning] = []
    for ctx in dialplan.contexts.values():
        for ext in ctx.extensions:
            for prio in ext.priorities.values():
                if prio.app.strip() and reg.app(prio.app) is None:
                    out.append(
                        ConfWarning(
                            prio.origin,
                            f"application '{prio.app.strip()}' is not available in pypbx: "
                            f"a call reaching {ctx.name},{ext.name},{prio.number} hangs up",
                            "unknown-application",
                        )
                    )
    return out


def load_builtins() -> Registry:
    """Import the built-in application and function modules; returns the global registry."""
    importlib.import_module("pypbx.dialplan.apps")
    importlib.import_module("pypbx.dialplan.functions")
    return REGISTRY
