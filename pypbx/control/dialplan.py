"""``dialplan show|reload`` and ``core show applications|application|functions`` (pbx/pbx_config.c,
main/pbx_app.c, main/pbx_functions.c).

The applications and functions come from the dial plan registry
(:mod:`pypbx.dialplan.registry`); the plan shown is the one the PBX runs now.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pypbx.control.commands import CommandError, ShowUsage, command

if TYPE_CHECKING:
    from pypbx.server import Pbx

_PLUGIN_PACKAGES = ("pypbx.dialplan.apps", "pypbx.dialplan.functions")


def _registry() -> Any:
    """The dial plan registry with every built-in application and function module imported."""
    try:
        mod = importlib.import_module("pypbx.dialplan.registry")
    except ImportError as exc:
        raise CommandError("No dial plan registry in this pypbx yet.") from exc
    for pkg_name in _PLUGIN_PACKAGES:
        try:
            pkg = importlib.import_module(pkg_name)
        except ImportError:
            continue
        for info in pkgutil.iter_modules(pkg.__path__, pkg_name + "."):
            importlib.import_module(info.name)
    return getattr(mod, "REGISTRY", mod)


_LISTERS = {
    "application": ("iter_apps", "apps", "applications"),
    "function": ("iter_functions", "functions"),
}


def _entries(kind: str) -> list[Any]:
    """Registered applications (``kind="application"``) or functions, sorted by name."""
    reg = _registry()
    items: Any = None
    for name in _LISTERS[kind]:
        obj = getattr(reg, name, None)
        if obj is not None:
            items = obj() if callable(obj) else obj
            break
    if items is None:
        raise CommandError(f"The dial plan registry lists no {kind}s.")
    values = list(items.values()) if isinstance(items, dict) else list(items)
    return sorted(values, key=lambda e: str(getattr(e, "name", e)).lower())


def _text(entry: Any, *names: str) -> str:
    for n in names:
        value = getattr(entry, n, None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _synopsis(entry: Any) -> str:
    syn = _text(entry, "synopsis", "summary")
    if not syn:
        doc = _text(entry, "description", "doc", "__doc__")
        syn = doc.splitlines()[0] if doc else ""
    return syn or "<Synopsis not available>"


def _app_names(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    try:
        return [str(getattr(e, "name", e)) for e in _entries("application")]
    except CommandError:
        return []


@command(
    "core show applications",
    summary="Shows registered dialplan applications",
    usage="Usage: core show applications [like <text>]\n"
    "       List applications which are currently available.",
)
async def show_applications(pbx: Pbx, args: list[str]) -> str:
    like: str | None = None
    if args:
        if len(args) != 2 or args[0].lower() != "like":
            raise ShowUsage
        like = args[1].lower()
    apps = [a for a in _entries("application") if like is None or like in a.name.lower()]
    head = "Matching" if like is not None else "Registered"
    lines = [f"    -= {head} pypbx Applications =-"]
    lines += [f"  {a.name:>20}: {_synopsis(a)}" for a in apps]
    tail = "Matching" if like is not None else "Registered"
    lines.append(f"    -= {len(apps)} Applications {tail} =-")
    return "\n".join(lines)


@command(
    "core show application",
    summary="Describe a specific dialplan application",
    usage="Usage: core show application <application> [<application> [<application> [...]]]\n"
    "       Describes a particular application.",
    completer=_app_names,
)
async def show_application(pbx: Pbx, args: list[str]) -> str:
    if not args:
        raise ShowUsage
    wanted = {a.lower() for a in args}
    blocks = []
    for app in _entries("application"):
        if app.name.lower() not in wanted:
            continue
        block = [f"  -= Info about application '{app.name}' =- ", "", "[Synopsis]", _synopsis(app)]
        desc = _text(app, "description", "doc")
        if desc:
            block += ["", "[Description]", desc]
        syntax = _text(app, "syntax", "usage")
        if syntax:
            block += ["", "[Syntax]", syntax]
        blocks.append("\n".join(block))
    if not blocks:
        raise CommandError("Your application(s) is (are) not registered")
    return "\n\n".join(blocks)


@command(
    "core show functions",
    summary="Shows registered dialplan functions",
    usage="Usage: core show functions [like <text>]\n"
    "       List builtin functions, optionally only those matching a given string",
)
async def show_functions(pbx: Pbx, args: list[str]) -> str:
    like: str | None = None
    if args:
        if len(args) != 2 or args[0].lower() != "like":
            raise ShowUsage
        like = args[1].lower()
    funcs = [f for f in _entries("function") if like is None or like in f.name.lower()]
    lines = [
        f"{'Matching' if like is not None else 'Installed'} Custom Functions:",
        "-" * 80,
    ]
    for f in funcs:
        syntax = _text(f, "syntax", "usage") or f"{f.name}()"
        lines.append(f"{f.name:<20.20}  {syntax:<35.35}  {_synopsis(f)}".rstrip())
    lines.append(
        f"{len(funcs)} {'matching ' if like is not None else ''}custom functions installed."
    )
    return "\n".join(lines)


def _context_names(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    contexts = getattr(pbx.dialplan, "contexts", None) or {}
    return list(contexts) if not args else []


@command(
    "dialplan show",
    summary="Show dialplan",
    usage="Usage: dialplan show [[exten@]context]\n       Show dialplan",
    completer=_context_names,
)
async def dialplan_show(pbx: Pbx, args: list[str]) -> str:
    if len(args) > 1:
        raise ShowUsage
    dp = pbx.dialplan
    if dp is None:
        raise CommandError("No dial plan loaded (extensions.conf is missing).")
    context = args[0] if args else None
    if context is not None and "@" in context:
        context = context.split("@", 1)[1] or None
    contexts = getattr(dp, "contexts", None) or {}
    if context is not None and context not in contexts:
        raise CommandError(f"There is no existence of '{context}' context")
    try:
        show = importlib.import_module("pypbx.dialplan.show")
    except ImportError as exc:
        raise CommandError("'dialplan show' is not available in this pypbx yet.") from exc
    return str(show.show_dialplan(dp, context)).rstrip("\n")


@command(
    "dialplan reload",
    summary="Reload extensions and *only* extensions",
    usage="Usage: dialplan reload\n"
    "       Reload extensions.conf without reloading any other modules.\n"
    "       A configuration with an error is refused and the running one kept.",
)
async def dialplan_reload(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    result = await pbx.reload_dialplan()
    text = "\n".join(result.lines)
    if not result.ok:
        raise CommandError(text)
    return text
