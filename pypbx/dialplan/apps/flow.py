"""Flow control: Goto, GotoIf, GotoIfTime, Gosub, GosubIf, Return, Macro, MacroExit, ExecIf
(Asterisk main/pbx_builtins.c, apps/app_stack.c, apps/app_macro.c, apps/app_exec.c).

Loops (While/EndWhile/ExitWhile/ContinueWhile, apps/app_while.c) are in ``loops.py``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from pypbx.dialplan.apps.say import zone
from pypbx.dialplan.args import split_args
from pypbx.dialplan.interpreter import (
    MACRO_MAX_DEPTH,
    Frame,
    FrameKind,
    Position,
    check_condition,
)
from pypbx.dialplan.model import TimeSpec
from pypbx.dialplan.registry import AppResult, application

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution

CONTINUE = AppResult.CONTINUE
HANGUP = AppResult.HANGUP


def split_condition(data: str) -> tuple[str, str, str]:
    """``cond?a:b`` → (cond, a, b), with ``(...)`` protecting ``:`` and ``?`` in a and b."""
    parts = split_args(data, "?", remove_chars=False, max_args=2)
    cond = parts[0] if parts else ""
    rest = parts[1] if len(parts) > 1 else ""
    branches = split_args(rest, ":", remove_chars=False, max_args=2)
    iftrue = branches[0] if branches else ""
    iffalse = branches[1] if len(branches) > 1 else ""
    return cond, iftrue, iffalse


def do_goto(x: Execution, spec: str) -> AppResult:
    """``pbx_builtin_goto``: jump, or end the call when the place is malformed."""
    pos = x.resolve_goto(spec)
    if pos is None:
        return HANGUP
    x.note(logging.INFO, f"Goto ({pos.context},{pos.exten},{pos.priority})")
    x.goto(pos.context, pos.exten, pos.priority)
    return CONTINUE


@application("Goto", syntax="Goto([[context,]extension,]priority)")
async def goto(x: Execution, data: str) -> AppResult:
    """Jump to a particular priority, extension, or context.

    The priority may be a label, or ``+N``/``-N`` relative to the current one.
    """
    if not data.strip():
        x.warn("Goto requires an argument ([[context,]extension,]priority)")
        return HANGUP
    return do_goto(x, data)


@application("GotoIf", syntax="GotoIf(condition?[labeliftrue][:labeliffalse])")
async def goto_if(x: Execution, data: str) -> AppResult:
    """Conditional goto: to ``labeliftrue`` when the condition is true, else ``labeliffalse``.

    A missing branch continues at the next priority.
    """
    if not data:
        x.warn("Ignoring, since there is no variable to check")
        return CONTINUE
    # pbx_builtin_gotoif: strsep at the first '?' and then the first ':' (no nesting)
    cond, _, rest = data.partition("?")
    a, _, b = rest.partition(":")
    branch = a if check_condition(cond) else b
    if not branch.strip():
        return CONTINUE
    return do_goto(x, branch)


def time_condition(x: Execution, spec: str) -> bool:
    """Whether now (or ``${TESTTIME}``, epoch seconds) falls in ``spec``; a spec Asterisk
    cannot build counts as not matching."""
    try:
        timing = TimeSpec.parse(spec)
    except ValueError as exc:
        x.warn(f"Invalid time specification '{spec}': {exc}")
        return False
    tz = zone(timing.timezone or "") or x.tz
    test = (x.vars.get("TESTTIME") or "").strip()
    if test:
        if test.lstrip("-").isdigit():
            return timing.matches(datetime.fromtimestamp(int(test), tz))
        x.warn("Using current time to evaluate")
        x.vars.set("TESTTIME", None)
    return timing.matches(x.now(tz))


@application(
    "GotoIfTime",
    syntax="GotoIfTime(times,weekdays,mdays,months[,timezone]?[labeliftrue][:labeliffalse])",
)
async def goto_if_time(x: Execution, data: str) -> AppResult:
    """Conditional goto on the current time (``09:00-17:00,mon-fri,*,*``).

    ``${TESTTIME}`` (epoch seconds), when set, is used instead of the current time.
    """
    if not data:
        x.warn(
            "GotoIfTime requires an argument:\n  <time range>,<days of week>,<days of month>,"
            "<months>[,<timezone>]?'labeliftrue':'labeliffalse'"
        )
        return HANGUP
    spec, _, branches = data.partition("?")
    a, _, b = branches.partition(":")
    branch = a if time_condition(x, spec) else b
    if not branch.strip():
        return CONTINUE
    return do_goto(x, branch)


@application(
    "ExecIfTime",
    syntax="ExecIfTime(times,weekdays,mdays,months[,timezone]?appname[(appargs)])",
)
async def exec_if_time(x: Execution, data: str) -> AppResult:
    """Run an application only within a time window."""
    spec, question, app = data.partition("?")
    if not data or not question:
        x.warn("ExecIfTime requires an argument: <time range>,...?<appname>[(<appargs>)]")
        return HANGUP
    try:
        TimeSpec.parse(spec)
    except ValueError:
        x.warn(f"Invalid Time Spec: {spec}")
        return HANGUP
    if not time_condition(x, spec):
        return CONTINUE
    name, args = _app_and_data(app)
    if x.registry.app(name) is None:
        x.warn(f"Cannot locate application {name}")
        return HANGUP
    return await x.exec_app(name.strip(), args or "")


def _split_label_args(x: Execution, text: str) -> tuple[str, list[str]]:
    label, paren, rest = text.partition("(")
    if not paren:
        return label, []
    end = rest.rfind(")")
    if end >= 0:
        rest = rest[:end]
    else:
        x.warn(f"Ouch.  No closing paren: '{text}'?")
    return label, split_args(rest, remove_chars=False)


async def do_gosub(x: Execution, data: str, app: str = "Gosub") -> AppResult:
    """``gosub_exec``: push a return address, set ARG1..ARGn/ARGC locally, jump."""
    label, args = _split_label_args(x, data)
    if not data:
        x.warn(f"{app} requires an argument: {app}([[context,]exten,]priority[(arg1[,...])])")
        return HANGUP
    target = x.resolve_goto(label)
    if target is None:
        x.note(logging.ERROR, f"{app} address is invalid: '{data}'")
        return HANGUP
    if not x.exists(target.context, target.exten, target.priority):
        x.note(
            logging.ERROR,
            f"{x.channel.name} attempted to reach non-existent destination "
            f"'{target.context},{target.exten},{target.priority}' from "
            f"'{x.context},{x.exten},{x.priority}'.",
        )
        return HANGUP
    previous = next((f for f in reversed(x.frames) if f.kind is FrameKind.GOSUB), None)
    # the caller's own ARGs beyond this call's count read as empty ("masked")
    argc = max(len(args), previous.argc if previous is not None else 0)
    frame = Frame(FrameKind.GOSUB, Position(x.context, x.exten, x.priority), argc=argc)
    if not x.push_frame(frame):
        x.note(logging.ERROR, f"{app}: stack is too deep")
        return HANGUP
    for i in range(argc):
        x.save_and_set(frame, f"ARG{i + 1}", args[i] if i < len(args) else "")
    x.save_and_set(frame, "ARGC", str(len(args)))
    x.goto(target.context, target.exten, target.priority)
    return CONTINUE


@application("Gosub", syntax="Gosub([[context,]exten,]priority[(arg1[,...][,argN])])")
async def gosub(x: Execution, data: str) -> AppResult:
    """Jump to a subroutine; Return comes back to the priority after this one.

    Arguments are available as ``${ARG1}``..``${ARGn}`` and ``${ARGC}``, local to the call.
    """
    return await do_gosub(x, data)


@application(
    "GosubIf",
    syntax="GosubIf(condition?labeliftrue[(args)][:labeliffalse[(args)]])",
)
async def gosub_if(x: Execution, data: str) -> AppResult:
    """Conditionally jump to a subroutine."""
    if not data:
        x.warn("GosubIf requires an argument: GosubIf(cond?label1(args):label2(args)")
        return CONTINUE
    cond, a, b = split_condition(data)
    branch = a if check_condition(cond) else b
    if not branch.strip():
        return CONTINUE
    return await do_gosub(x, branch, "GosubIf")


@application("Return", syntax="Return([return-value])")
async def return_app(x: Execution, data: str) -> AppResult:
    """Return from a Gosub; the value is left in ``${GOSUB_RETVAL}``."""
    frame = x.pop_frame(FrameKind.GOSUB)
    if frame is None:
        x.note(logging.ERROR, "Return without Gosub: stack is empty")
        return HANGUP
    x.vars.set("GOSUB_RETVAL", data)
    c = frame.caller
    x.goto(c.context, c.exten, c.priority + 1)
    return CONTINUE


@application("Macro", syntax="Macro(name[,arg1[,arg2[,...]]])")
async def macro(x: Execution, data: str) -> AppResult:
    """Run the ``[macro-name]`` context's ``s`` extension, then continue after Macro.

    ``${ARGn}``, ``${MACRO_EXTEN}``, ``${MACRO_CONTEXT}``, ``${MACRO_PRIORITY}`` and
    ``${MACRO_DEPTH}`` are set for the macro and restored afterwards. Arguments are split at
    every comma (no quoting), as app_macro does. ``${MACRO_RECURSION}`` (default 7) bounds
    nesting. Deprecated in Asterisk in favour of Gosub, still everywhere in real dial plans.
    """
    depth = _int_var(x, "MACRO_DEPTH", 0)
    if depth >= _int_var(x, "MACRO_RECURSION", MACRO_MAX_DEPTH):
        x.note(logging.ERROR, "Macro():  possible infinite loop detected.  Returning early.")
        return CONTINUE
    name, *args = data.split(",")
    if not name:
        x.warn("Invalid macro name specified")
        return CONTINUE
    context = f"macro-{name}"
    if not x.exists(context, "s", 1):
        if context not in x.dialplan.contexts:
            x.warn(
                f"No such context '{context}' for macro '{name}'. "
                f"Was called by {x.exten}@{x.context}"
            )
        else:
            x.warn(f"Context '{context}' for macro '{name}' lacks 's' extension, priority 1")
        return CONTINUE
    frame = Frame(FrameKind.MACRO, Position(x.context, x.exten, x.priority), macro_context=context)
    if not x.push_frame(frame):
        x.note(logging.ERROR, "Macro():  possible infinite loop detected.  Returning early.")
        return CONTINUE
    x.save_and_set(frame, "MACRO_EXTEN", x.exten)
    x.save_and_set(frame, "MACRO_CONTEXT", x.context)
    x.save_and_set(frame, "MACRO_PRIORITY", str(x.priority))
    x.vars.set("MACRO_DEPTH", str(depth + 1))
    frame.saved["MACRO_DEPTH"] = str(depth)  # app_macro puts the old depth back, even 0
    frame.saved.setdefault("MACRO_OFFSET", x.vars.get("MACRO_OFFSET"))
    x.vars.set("MACRO_OFFSET", None)
    # ARGs beyond this call's count pass through to the macro unchanged (app_macro)
    for i, value in enumerate(args, start=1):
        x.save_and_set(frame, f"ARG{i}", value)
    x.goto(context, "s", 1)
    return CONTINUE


def _int_var(x: Execution, name: str, default: int) -> int:
    text = (x.vars.get(name) or "").strip()
    return int(text) if text.isdigit() else default


@application("MacroExclusive", syntax="MacroExclusive(name[,arg1[,arg2[,...]]])")
async def macro_exclusive(x: Execution, data: str) -> AppResult:
    """Macro, one channel at a time (pypbx runs each channel's plan alone: same as Macro)."""
    return await macro(x, data)


@application("MacroIf", syntax="MacroIf(expr?macroiftrue[,args][:macroiffalse[,args]])")
async def macro_if(x: Execution, data: str) -> AppResult:
    """Run one macro or another depending on a condition."""
    expr, question, rest = data.partition("?")
    if not question:
        x.warn("Invalid Syntax.")
        return CONTINUE
    iftrue, colon, iffalse = rest.partition(":")
    if check_condition(expr):
        return await macro(x, iftrue)
    if colon:
        return await macro(x, iffalse)
    return CONTINUE


@application("MacroExit", syntax="MacroExit()")
async def macro_exit(x: Execution, data: str) -> AppResult:
    """Leave the current Macro and continue after it."""
    back = x.end_macro()
    if back is None:
        x.warn("MacroExit outside of a Macro: ending the call")
        return HANGUP
    x.goto(back.context, back.exten, back.priority)
    return CONTINUE


def _app_and_data(text: str) -> tuple[str, str | None]:
    """``App(args)`` → ("App", "args"); without parentheses the data is None."""
    name, paren, rest = text.partition("(")
    if not paren:
        return name, None
    end = rest.rfind(")")
    return name, (rest[:end] if end >= 0 else rest)


async def _run_named(x: Execution, name: str, data: str | None) -> AppResult:
    if not name.strip() or x.registry.app(name) is None:
        x.warn(f"Could not find application! ({name})")
        return HANGUP
    return await x.exec_app(name.strip(), data or "")


@application("ExecIf", syntax="ExecIf(expression?appiftrue(args)[:appiffalse(args)])")
async def exec_if(x: Execution, data: str) -> AppResult:
    """Run an application when the expression is true (another one when false).

    The deprecated ``ExecIf(expr,app,args)`` form is still understood, with a warning.
    """
    comma, question = data.find(","), data.find("?")
    if question < 0 or 0 <= comma < question:
        depr = split_args(data, max_args=3)
        expr = depr[0] if depr else ""
        app = depr[1] if len(depr) > 1 else ""
        args = depr[2] if len(depr) > 2 else ""
        x.warn(f"Deprecated syntax found.  Please upgrade to using ExecIf(<expr>?{app}({args}))")
        if check_condition(expr):
            return await _run_named(x, app, args)
        return CONTINUE
    parts = split_args(data, "?", remove_chars=False, max_args=2)
    if len(parts) < 2 or not parts[1]:
        x.note(logging.ERROR, "Usage: ExecIf(<expr>?<appiftrue>(<args>)[:<appiffalse>(<args)])")
        return HANGUP
    branches = split_args(parts[1], ":", remove_chars=False, max_args=2)
    iftrue = branches[0] if branches else ""
    iffalse = branches[1] if len(branches) > 1 else ""
    if check_condition(parts[0]):
        return await _run_named(x, *_app_and_data(iftrue))
    if iffalse:
        return await _run_named(x, *_app_and_data(iffalse))
    return CONTINUE


@application("Exec", syntax="Exec(appname(arguments))")
async def exec_app(x: Execution, data: str) -> AppResult:
    """Run an application named at run time; its arguments are substituted once more."""
    if not data.strip():
        return CONTINUE
    name, args = _app_and_data(data)
    return await _run_named(x, name, None if args is None else x.substitute(args))


@application("TryExec", syntax="TryExec(appname(arguments))")
async def try_exec(x: Execution, data: str) -> AppResult:
    """Like Exec, but never ends the call; ``TRYSTATUS`` is SUCCESS, FAILED or NOAPP."""
    if not data.strip():
        return CONTINUE
    name, args = _app_and_data(data)
    if not name.strip() or x.registry.app(name) is None:
        x.warn(f"Could not find application ({name})")
        x.vars.set("TRYSTATUS", "NOAPP")
        return CONTINUE
    result = await x.exec_app(name.strip(), "" if args is None else x.substitute(args))
    x.vars.set("TRYSTATUS", "FAILED" if result is HANGUP else "SUCCESS")
    return CONTINUE
