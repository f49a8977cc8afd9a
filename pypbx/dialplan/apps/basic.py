"""Basic applications: Answer, Hangup, NoOp, Verbose, Log, Set, MSet, Wait, WaitExten, Busy,
Congestion, Progress, Ringing (Asterisk main/pbx_builtins.c, main/pbx_variables.c).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pypbx.dialplan.args import split_args, split_assignment
from pypbx.dialplan.channel_api import HangupCause, Indication, cause_from_text
from pypbx.dialplan.registry import AppResult, Flag, application

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution

CONTINUE = AppResult.CONTINUE
HANGUP = AppResult.HANGUP

_LOG_LEVELS = {
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "NOTICE": logging.INFO,
    "VERBOSE": logging.INFO,
    "DEBUG": logging.DEBUG,
    "DTMF": logging.DEBUG,
    "SECURITY": logging.WARNING,
}


def parse_seconds(text: str) -> float | None:
    """A non-negative number of seconds (``1``, ``0.5``), or None when absent/invalid."""
    t = text.strip()
    if not t:
        return None
    try:
        value = float(t)
    except ValueError:
        return None
    return value if value >= 0 else None


@application("Answer", syntax="Answer([delay[,nocdr]])", flags=(Flag.NEEDS_CALL,))
async def answer(x: Execution, data: str) -> AppResult:
    """Answer a channel if ringing.

    The optional delay (milliseconds) is waited after answering.
    """
    args = split_args(data)
    if not x.channel.answered:
        await x.channel.answer()
        delay = parse_seconds(args[0]) if args else None
        if delay:
            await x.channel.sleep(delay / 1000)
    return CONTINUE


@application("Hangup", syntax="Hangup([causecode])")
async def hangup(x: Execution, data: str) -> AppResult:
    """Hang up the calling channel.

    The cause is a Q.850 number or an Asterisk cause name (NORMAL_CLEARING, USER_BUSY ...).
    """
    if data.strip():
        cause = cause_from_text(data)
        if cause is None or cause <= 0:
            x.warn(f'Invalid cause given to Hangup(): "{data}"')
        else:
            x.set_cause(cause)
    return HANGUP


@application("NoOp", syntax="NoOp([text])")
async def noop(x: Execution, data: str) -> AppResult:
    """Do nothing (its substituted argument shows in the log)."""
    return CONTINUE


@application("Verbose", syntax="Verbose([level,]message)")
async def verbose(x: Execution, data: str) -> AppResult:
    """Send arbitrary text to verbose output.

    With two arguments the first is the verbosity level (a number); the message is the rest.
    """
    args = split_args(data, max_args=2)
    if len(args) < 2:
        x.note(logging.INFO, args[0] if args else "")
        return CONTINUE
    if not args[0].strip().isdigit():
        x.warn(f"'{args[0]}' is not a verboser number")
    x.note(logging.INFO, args[1])
    return CONTINUE


@application("Log", syntax="Log(level,message)")
async def log_app(x: Execution, data: str) -> AppResult:
    """Send arbitrary text to a selected log level (ERROR, WARNING, NOTICE, DEBUG, VERBOSE)."""
    args = split_args(data, max_args=2)
    if len(args) < 2:
        x.warn("Log requires a level and a message")
        return CONTINUE
    level = _LOG_LEVELS.get(args[0].strip().upper())
    if level is None:
        x.warn(f"Unknown log level: {args[0]}")
        return CONTINUE
    x.note(level, args[1])
    return CONTINUE


@application("Set", syntax="Set(name=value)")
async def set_app(x: Execution, data: str) -> AppResult:
    """Set a channel variable or function value.

    ``_name`` is inherited by one generation of channels this one creates, ``__name`` by all.
    ``Set(FUNC(args)=value)`` writes a function (GLOBAL, CALLERID, DB ...). The value keeps
    commas and everything after the first ``=``.
    """
    pair = split_assignment(data, warn=x.warn)
    if pair is not None:
        x.set_var(pair[0], pair[1])
    return CONTINUE


@application("MSet", syntax="MSet(name1=value1,name2=value2,...)")
async def mset(x: Execution, data: str) -> AppResult:
    """Set several channel variables; values are unquoted as application arguments are."""
    if not data:
        x.warn("MSet requires at least one variable name/value pair.")
        return CONTINUE
    for item in split_args(data):
        name, eq, value = item.partition("=")
        if not eq:
            x.warn(f"MSet: ignoring entry '{item}' with no '='")
            continue
        x.set_var(name, value)
    return CONTINUE


@application("Wait", syntax="Wait(seconds)", flags=(Flag.NEEDS_CALL,))
async def wait(x: Execution, data: str) -> AppResult:
    """Wait for a number of seconds (fractions allowed)."""
    seconds = parse_seconds(data)
    if seconds is None:
        x.warn(f"Wait: invalid time '{data}'")
        return CONTINUE
    await x.channel.sleep(seconds)
    return HANGUP if x.channel.hung_up else CONTINUE


@application("WaitExten", syntax="WaitExten([seconds[,options]])", flags=(Flag.NEEDS_CALL,))
async def wait_exten(x: Execution, data: str) -> AppResult:
    """Wait for the caller to dial an extension.

    Digits go to that extension (or ``i``); a timeout continues at the next priority if
    there is one, else goes to ``t`` (or ``e``), else ends the call.
    """
    args = split_args(data)
    seconds = parse_seconds(args[0]) if args else None
    digits = await x.collect_extension("", seconds or x.response_timeout)
    if x.channel.hung_up:
        return HANGUP
    if not digits and x.exists(x.context, x.exten, x.priority + 1):
        x.note(logging.INFO, f"Timeout on {x.channel.name}, continuing...")
        return CONTINUE
    pos = x.route_digits(digits)
    if pos is None:
        return HANGUP
    x.goto(pos.context, pos.exten, pos.priority)
    return CONTINUE


async def _indicate_and_hang(x: Execution, data: str, what: Indication, cause: int) -> AppResult:
    await x.channel.indicate(what)
    if not x.channel.answered:  # an answered channel only hears the tone
        x.set_cause(cause)
    seconds = parse_seconds(data)
    if seconds:
        await x.channel.sleep(seconds)
    return HANGUP


@application("Busy", syntax="Busy([timeout])", flags=(Flag.NEEDS_CALL,))
async def busy(x: Execution, data: str) -> AppResult:
    """Indicate the Busy condition, then end the call (after ``timeout`` seconds if given)."""
    return await _indicate_and_hang(x, data, Indication.BUSY, int(HangupCause.USER_BUSY))


@application("Congestion", syntax="Congestion([timeout])", flags=(Flag.NEEDS_CALL,))
async def congestion(x: Execution, data: str) -> AppResult:
    """Indicate the Congestion condition, then end the call."""
    cause = int(HangupCause.NORMAL_CIRCUIT_CONGESTION)
    return await _indicate_and_hang(x, data, Indication.CONGESTION, cause)


@application("Progress", syntax="Progress()", flags=(Flag.NEEDS_CALL,))
async def progress(x: Execution, data: str) -> AppResult:
    """Indicate progress (early media, 183)."""
    await x.channel.indicate(Indication.PROGRESS)
    return CONTINUE


@application("Proceeding", syntax="Proceeding()", flags=(Flag.NEEDS_CALL,))
async def proceeding(x: Execution, data: str) -> AppResult:
    """Indicate that the call is proceeding (100 Trying)."""
    await x.channel.indicate(Indication.PROCEEDING)
    return CONTINUE


@application("RaiseException", syntax="RaiseException(reason)")
async def raise_exception(x: Execution, data: str) -> AppResult:
    """Go to the ``e`` extension with ``${EXCEPTION(reason)}`` set."""
    pos = x.raise_exception(data)
    x.goto(pos.context, pos.exten, pos.priority)
    return CONTINUE


@application("Ringing", syntax="Ringing()", flags=(Flag.NEEDS_CALL,))
async def ringing(x: Execution, data: str) -> AppResult:
    """Indicate ringing tone (180)."""
    await x.channel.indicate(Indication.RINGING)
    return CONTINUE


@application("ClearHash", syntax="ClearHash(hashname)")
async def clear_hash(x: Execution, data: str) -> AppResult:
    """Remove every key of a HASH() from the channel."""
    prefix = f"~HASH~{data.strip() or 'null'}~".lower()
    for name, _ in x.vars.items():
        if name.lstrip("_").lower().startswith(prefix):
            x.vars.set(name, None)
    return CONTINUE
