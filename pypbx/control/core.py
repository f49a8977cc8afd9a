"""``core ...``, ``help``, ``module reload`` and ``channel request hangup`` (Asterisk main/cli.c).

Output wording follows Asterisk's where an operator or a script looks for it: ``System uptime:``
and ``Last reload:``, ``Verbosity was 3 and is now 5``, the ``core show channels`` columns and
its ``N active channels`` / ``N active calls`` / ``N calls processed`` footer.
"""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from pypbx import __version__
from pypbx.control.commands import (
    REGISTRY,
    CommandError,
    ShowUsage,
    command,
    current_console,
)
from pypbx.server import Shutdown, stricter

if TYPE_CHECKING:
    from pypbx.server import Pbx, ReloadResult

_UNITS = (
    ("year", 365 * 86400),
    ("week", 7 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
)


def ess(n: int) -> str:
    """Asterisk's ``ESS()``: the plural ``s`` unless ``n`` is 1."""
    return "" if n == 1 else "s"


def timestr(seconds: int) -> str:
    """``1 hour, 2 minutes, 3 seconds`` as Asterisk's ``ast_cli_print_timestr_fromseconds``."""
    seconds = max(0, seconds)
    parts: list[str] = []
    for unit, size in _UNITS:
        if seconds >= size:
            n, seconds = divmod(seconds, size)
            parts.append(f"{n} {unit}{ess(n)}")
    if seconds > 0 or not parts:
        parts.append(f"{seconds} second{ess(seconds)}")
    return ", ".join(parts)


@command("core show version", summary="Display version info", usage="Usage: core show version")
async def show_version(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    return (
        f"pypbx {__version__} running on {platform.system()} {platform.machine()}"
        f" (Python {platform.python_version()})"
    )


@command(
    "core show uptime",
    summary="Show uptime information",
    usage="Usage: core show uptime [seconds]\n"
    "       Shows Asterisk-style uptime and time since the last reload.",
)
async def show_uptime(pbx: Pbx, args: list[str]) -> str:
    if args not in ([], ["seconds"]):
        raise ShowUsage
    now = pbx.clock()
    up, rl = int(now - pbx.started_at), int(now - pbx.reloaded_at)
    if args:
        return f"System uptime: {up}\nLast reload: {rl}"
    return f"System uptime: {timestr(up)}\nLast reload: {timestr(rl)}"


@command(
    "core set verbose",
    summary="Set level of verbose chattiness",
    usage="Usage: core set verbose [atleast] <level>\n"
    "       Sets the level of verbose messages shown: on a remote console, that console's;\n"
    "       with -rx, the daemon's own log.",
)
async def set_verbose(pbx: Pbx, args: list[str]) -> str:
    atleast = bool(args) and args[0].lower() == "atleast"
    rest = args[1:] if atleast else args
    if len(rest) != 1:
        raise ShowUsage
    word = rest[0].lower()
    if word == "off":
        new = 0
    elif word.isdigit():
        new = int(word)
    else:
        raise ShowUsage
    session: Any = current_console.get()
    old = session.verbosity if session is not None else pbx.log_filter.level
    if atleast and new < old:
        new = old
    if session is not None:
        session.verbosity = new
    else:
        pbx.log_filter.level = new
    if new == 0 and old > 0:
        return "Verbosity is now OFF"
    if new == old:
        return f"Verbosity is at least {new}"
    return f"Verbosity was {old} and is now {new}"


def _stop(pbx: Pbx, mode: Shutdown) -> Shutdown:
    """Ask for the shutdown after this command's reply went out; the mode that applies."""
    asyncio.get_running_loop().call_soon(pbx.request_shutdown, mode)
    return stricter(pbx.shutdown, mode)


def _channels(n: int) -> str:
    return f"{n} active channel{ess(n)}"


@command(
    "core stop now",
    summary="Shut down pypbx immediately",
    usage="Usage: core stop now\n"
    "       Hangs up every call (BYE), unregisters from the providers and exits.",
)
async def stop_now(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    _stop(pbx, Shutdown.NOW)
    return "Shutting down pypbx now (calls are hung up)."


@command(
    "core stop gracefully",
    summary="Gracefully shut down pypbx",
    usage="Usage: core stop gracefully\n"
    "       Stops accepting new calls and shuts down once the last call has ended.",
)
async def stop_gracefully(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    n = len(pbx.channels)
    if _stop(pbx, Shutdown.GRACEFULLY) is Shutdown.NOW:
        return "Shutting down pypbx now (calls are hung up)."
    return f"Shutting down pypbx gracefully: {_channels(n)} to finish; new calls are refused."


@command(
    "core stop when convenient",
    summary="Shut down pypbx at empty call volume",
    usage="Usage: core stop when convenient\n"
    "       Shuts down once no call is active; new calls are still accepted meanwhile.",
)
async def stop_when_convenient(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    n = len(pbx.channels)
    applies = _stop(pbx, Shutdown.WHEN_CONVENIENT)
    if applies is Shutdown.NOW:
        return "Shutting down pypbx now (calls are hung up)."
    if applies is Shutdown.GRACEFULLY:
        return f"Shutting down pypbx gracefully: {_channels(n)} to finish; new calls are refused."
    return f"Shutting down pypbx when convenient: {_channels(n)} to finish."


@command(
    "core abort shutdown",
    summary="Cancel a running shutdown",
    usage="Usage: core abort shutdown\n"
    "       Cancels a shutdown still waiting for calls to end ('core stop gracefully' or\n"
    "       'when convenient'): pypbx carries on and accepts calls again.",
)
async def abort_shutdown(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    if pbx.abort_shutdown():
        return "Shutdown aborted: pypbx carries on and accepts calls again."
    if pbx.shutdown is None:
        raise CommandError("No shutdown is pending.")
    raise CommandError("The shutdown is already under way: it cannot be aborted.")


_CHAN = "{:<20.20} {:<20.20} {:<7.7} {:<30.30}"
_CHAN_V = (
    "{:<20.20} {:<20.20} {:<16.16} {:>4.4} {:<7.7} {:<12.12} {:<25.25} {:<15.15}"
    " {:>8.8} {:<11.11} {:<11.11} {:<20.20}"
)


def _attr(obj: Any, name: str, default: Any = "") -> Any:
    value = getattr(obj, name, default)
    return default if value is None else value


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _footer(pbx: Pbx) -> list[str]:
    calls = pbx.active_calls
    done = int(pbx.calls_processed)
    return [f"{calls} active call{ess(calls)}", f"{done} call{ess(done)} processed"]


@command(
    "core show channels",
    summary="Display information on channels",
    usage="Usage: core show channels [concise|verbose|count]\n       Lists the active channels.",
)
async def show_channels(pbx: Pbx, args: list[str]) -> str:
    mode = args[0].lower() if args else ""
    if len(args) > 1 or mode not in ("", "concise", "verbose", "count"):
        raise ShowUsage
    chans = list(pbx.channels)
    lines: list[str] = []
    now = pbx.clock()
    if mode == "":
        lines.append(_CHAN.format("Channel", "Location", "State", "Application(Data)"))
    elif mode == "verbose":
        lines.append(
            _CHAN_V.format(
                "Channel",
                "Context",
                "Extension",
                "Prio",
                "State",
                "Application",
                "Data",
                "CallerID",
                "Duration",
                "Accountcode",
                "PeerAccount",
                "BridgeID",
            )
        )
    for ch in chans if mode != "count" else []:
        name, ctx, exten = _attr(ch, "name"), _attr(ch, "context"), _attr(ch, "exten")
        prio, state = _attr(ch, "priority", 1), str(_attr(ch, "state"))
        app, data = _attr(ch, "app"), _attr(ch, "data")
        if mode == "concise":
            lines.append("!".join(str(x) for x in (name, ctx, exten, prio, state, app, data)))
        elif mode == "verbose":
            dur = _hms(now - float(_attr(ch, "created_at", now)))
            lines.append(
                _CHAN_V.format(
                    name,
                    ctx,
                    exten,
                    str(prio),
                    state,
                    app,
                    data,
                    _attr(ch, "callerid"),
                    dur,
                    _attr(ch, "accountcode"),
                    "",
                    _attr(ch, "bridge_id"),
                )
            )
        else:
            where = f"{exten}@{ctx}:{prio}" if ctx else "(None)"
            lines.append(_CHAN.format(name, where, state, f"{app}({data})" if app else "(None)"))
    if mode == "concise":
        return "\n".join(lines)
    n = len(chans)
    lines.append(f"{n} active channel{ess(n)}")
    lines += _footer(pbx)
    return "\n".join(line.rstrip() for line in lines)


@command("core show calls", summary="Display information on calls", usage="Usage: core show calls")
async def show_calls(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    return "\n".join(_footer(pbx))


def _channel_names(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    if args:
        return []
    return ["all", *(str(_attr(c, "name")) for c in pbx.channels)]


@command(
    "channel request hangup",
    summary="Request a hangup on a given channel",
    usage="Usage: channel request hangup <channel>|<all>\n"
    "       Request that a channel be hung up.",
    completer=_channel_names,
)
async def request_hangup(pbx: Pbx, args: list[str]) -> str:
    if len(args) != 1:
        raise ShowUsage
    wanted = args[0]
    targets = [c for c in pbx.channels if wanted == "all" or _attr(c, "name") == wanted]
    if not targets and wanted != "all":
        raise CommandError(f"{wanted} is not a known channel")
    out = []
    for ch in targets:
        hangup: Callable[[], Awaitable[None]] | None = getattr(ch, "request_hangup", None)
        if hangup is not None:
            await hangup()
        out.append(f"Requested Hangup on channel '{_attr(ch, 'name')}'")
    return "\n".join(out)


_MODULES: dict[str, Callable[[Pbx], Awaitable[ReloadResult]]] = {
    "chan_sip": lambda pbx: pbx.reload_sip(),
    "pbx_config": lambda pbx: pbx.reload_dialplan(),
    "res_rtp_asterisk": lambda pbx: pbx.reload_rtp(),
}
"""Reloadable parts under their Asterisk module names (``module reload chan_sip.so``)."""


def _module_names(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    return [f"{m}.so" for m in _MODULES] if not args else []


async def _reload_modules(pbx: Pbx, args: list[str]) -> str:
    names = [a.removesuffix(".so") for a in args] or list(_MODULES)
    unknown = [n for n in names if n not in _MODULES]
    if unknown:
        raise CommandError(f"The module '{unknown[0]}' was not found: cannot reload it")
    out: list[str] = []
    ok = True
    for name in names:
        result = await _MODULES[name](pbx)
        out.append(f"Reloading module '{name}.so'")
        out += result.lines
        ok = ok and result.ok
    if not ok:
        raise CommandError("\n".join(out))
    return "\n".join(out)


@command(
    "module reload",
    summary="Reload configuration for a module",
    usage="Usage: module reload [module ...]\n"
    "       Reloads configuration files for the named modules (chan_sip.so: sip.conf,\n"
    "       pbx_config.so: extensions.conf, res_rtp_asterisk.so: rtp.conf), or for all.",
    completer=_module_names,
)
async def module_reload(pbx: Pbx, args: list[str]) -> str:
    return await _reload_modules(pbx, args)


@command(
    "core reload",
    summary="Global reload",
    usage="Usage: core reload\n       Reloads the configuration of every module.",
)
async def core_reload(pbx: Pbx, args: list[str]) -> str:
    if args:
        raise ShowUsage
    return await _reload_modules(pbx, [])


def _help_words(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    return REGISTRY.complete(pbx, " ".join([*args, word]))


async def _help(pbx: Pbx, args: list[str]) -> str:
    found = REGISTRY.find(args) if args else None
    if found is not None and not found[1]:
        return found[0].usage
    cmds = REGISTRY.matching(args)
    if not cmds:
        raise CommandError(f"No such command '{' '.join(args)}'.")
    return "\n".join(f"{c.name:<30} -- {c.summary}" for c in cmds)


@command(
    "help",
    summary="Display help list, or specific help on a command",
    usage="Usage: help [topic]\n"
    "       When called with a topic as an argument, displays usage information\n"
    "       on the given command. If called without a topic, it provides a list of commands.",
    completer=_help_words,
)
async def help_command(pbx: Pbx, args: list[str]) -> str:
    return await _help(pbx, args)


@command(
    "core show help",
    summary="Display help list, or specific help on a command",
    usage="Usage: core show help [topic]",
    completer=_help_words,
)
async def core_show_help(pbx: Pbx, args: list[str]) -> str:
    return await _help(pbx, args)
