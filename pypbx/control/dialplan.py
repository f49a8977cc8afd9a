"""``dialplan show|reload`` and ``core show applications|application|functions`` (pbx/pbx_config.c,
main/pbx_app.c, main/pbx_functions.c).

The applications and functions come from the dial plan registry
(:mod:`pypbx.dialplan.registry`); the plan shown is the one the PBX runs now. The listing
commands take Asterisk's ``like <text>`` filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pypbx.control.commands import CommandError, ShowUsage, command, reload_output
from pypbx.dialplan.interpreter import load_builtins
from pypbx.dialplan.show import show_dialplan

if TYPE_CHECKING:
    from pypbx.server import Pbx


def _entries(kind: str) -> list[Any]:
    """Registered applications (``kind="application"``) or functions, sorted by name."""
    reg = load_builtins()
    items = reg.iter_apps() if kind == "application" else reg.iter_functions()
    return sorted(items, key=lambda e: e.name.lower())


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
    return [e.name for e in _entries("application")]


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


def _function_names(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    return [e.name for e in _entries("function")] if not args else []


@command(
    "core show function",
    summary="Describe a specific dialplan function",
    usage="Usage: core show function <function>\n       Describe a particular dialplan function.",
    completer=_function_names,
)
async def show_function(pbx: Pbx, args: list[str]) -> str:
    if len(args) != 1:
        raise ShowUsage
    for f in _entries("function"):
        if f.name == args[0]:
            block = [f"  -= Info about function '{f.name}' =- ", "", "[Synopsis]", _synopsis(f)]
            desc = _text(f, "description", "doc")
            if desc:
                block += ["", "[Description]", desc]
            syntax = _text(f, "syntax", "usage")
            if syntax:
                block += ["", "[Syntax]", syntax]
            return "\n".join(block)
    raise CommandError(f"No function by that name registered: {args[0]}")


def _context_names(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    if pbx.dialplan is None or args:
        return []
    return list(pbx.dialplan.contexts)


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
    text = show_dialplan(dp, args[0] if args else None).rstrip("\n")
    if text.startswith("There is no existence"):
        raise CommandError(text)
    return text


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
    return reload_output(await pbx.reload_dialplan())
