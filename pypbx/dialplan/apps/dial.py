"""Dial: argument parsing and the DIALSTATUS contract (Asterisk apps/app_dial.c).

``Dial(Technology/Resource[&Technology2/Resource2...][,timeout[,options[,URL]]])``. The calling
itself is the channel's ``dial`` method. After it, ``DIALSTATUS`` is one of ANSWER, BUSY,
NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL; ``DIALEDTIME``/``ANSWEREDTIME`` are seconds. An
answered call that ends hangs up the caller too, unless ``g`` was given and the called party
hung up; any other outcome continues at the next priority.

Injection guard (issue 9 item 2): a target holding characters the caller supplied that are
not allowed in a number (see ``interpreter.neutralize``) is refused: no call is made for it,
a log line says why, and with nothing left to call ``DIALSTATUS`` is CHANUNAVAIL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pypbx.dialplan.args import split_args
from pypbx.dialplan.channel_api import DialStatus, DialTarget
from pypbx.dialplan.interpreter import is_neutralized, reveal
from pypbx.dialplan.registry import AppResult, Flag, application

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution

CONTINUE = AppResult.CONTINUE
HANGUP = AppResult.HANGUP

# Letters app_dial knows (dial_exec_options); ones with an argument in parentheses.
DIAL_OPTIONS = frozenset("AabBCcdDeEfFgGhHiIkKLmMnNoOpPQrRsStTuUwWxXz")
# Letters accepted but not acted on, with the warning line's reason.
_NOT_SUPPORTED = {
    "t": "DTMF blind transfer by the called party",
    "T": "DTMF blind transfer by the calling party",
}


@dataclass(frozen=True, slots=True)
class DurationLimit:
    """``L(x[:y][:z])`` in seconds: end the call ``limit`` after the answer; warn when
    ``warning`` is left, then every ``repeat`` (0: no warning / warn once)."""

    limit: float
    warning: float = 0.0
    repeat: float = 0.0

    def warnings(self) -> list[float]:
        """Seconds after the answer at which a warning is due (at most 100)."""
        if not self.warning:
            return []
        first = self.limit - self.warning
        if not self.repeat:
            return [first]
        count = min(100, int(self.warning / self.repeat) + 1)
        return [t for t in (first + i * self.repeat for i in range(count)) if t < self.limit]


def parse_duration_limit(text: str) -> tuple[DurationLimit | None, str]:
    """app_dial's ``do_timelimit``: ``x[:y][:z]`` in milliseconds → (limit, problem).

    No usable positive ``x`` gives no limit and a problem text. A warning time not below the
    limit, or not a positive number, is dropped with a problem text (the limit stays)."""
    parts = [p.strip() for p in text.split(":")]
    try:
        limit_ms = float(parts[0]) if parts[0] else 0.0
    except ValueError:
        limit_ms = 0.0
    if limit_ms <= 0:
        return None, f"Dial: invalid time limit L({text}): no limit set"
    warning_ms = repeat_ms = 0.0
    problem = ""
    try:
        warning_ms = float(parts[1]) if len(parts) > 1 and parts[1] else 0.0
        repeat_ms = float(parts[2]) if len(parts) > 2 and parts[2] else 0.0
    except ValueError:
        warning_ms = repeat_ms = 0.0
        problem = f"Dial: invalid warning times in L({text}): no warning"
    if warning_ms >= limit_ms or warning_ms < 0:
        problem = f"Dial: warning time {warning_ms:g} ms of L({text}) is not below the limit"
        warning_ms = repeat_ms = 0.0
    repeat_ms = max(0.0, repeat_ms)
    return DurationLimit(limit_ms / 1000, warning_ms / 1000, repeat_ms / 1000), problem


class DialArgsError(ValueError):
    """Dial data that app_dial refuses."""


@dataclass(frozen=True, slots=True)
class DialArgs:
    """Parsed ``Dial`` data."""

    targets: list[DialTarget]
    timeout: float | None
    options: dict[str, str] = field(default_factory=dict)
    url: str = ""
    refused: list[str] = field(default_factory=list)
    unknown_options: str = ""
    error: str = ""


def parse_options(text: str) -> tuple[dict[str, str], str]:
    """``ast_app_parse_options``: letters, each with an optional ``(argument)``.

    Returns (letter → argument, unknown letters). Parentheses nest; a backslash escapes.
    """
    options: dict[str, str] = {}
    unknown = ""
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        arg = ""
        if i < len(text) and text[i] == "(":
            depth = 1
            j = i + 1
            buf: list[str] = []
            while j < len(text) and depth:
                ch = text[j]
                if ch == "\\" and j + 1 < len(text):
                    buf.append(text[j + 1])
                    j += 2
                    continue
                if ch == "(":
                    depth += 1
                elif ch == ")":
                    depth -= 1
                    if not depth:
                        break
                buf.append(ch)
                j += 1
            arg = "".join(buf)
            i = j + 1
        if c in DIAL_OPTIONS:
            options[c] = arg
        elif not c.isspace():
            unknown += c
    return options, unknown


def parse_dial(data: str) -> DialArgs:
    """Split ``Dial`` data into targets, timeout, options and URL (dial_exec_full).

    Raises :class:`DialArgsError` when there is no target at all. A target without a
    resource (``1000``, ``SIP/``, an empty one between ``&&``) makes the whole Dial invalid
    (``error`` set: DIALSTATUS INVALIDARGS). A target without technology cannot be created
    and one holding caller-supplied special characters is refused: both go to ``refused``.
    A target listed twice is dialled once.
    """
    args = split_args(data)
    peers = args[0] if args else ""
    if not peers.strip():
        raise DialArgsError("Dial requires an argument (technology/resource)")
    targets: list[DialTarget] = []
    refused: list[str] = []
    error = ""
    seen: set[str] = set()
    for item in peers.split("&"):
        tech, _, resource = item.partition("/")
        if not resource:
            error = "Dial argument takes format (technology/resource)"
            break
        if not tech:
            refused.append(f"{reveal(item)}: Unable to create channel of type ''")
            continue
        if is_neutralized(item):
            refused.append(
                f"{reveal(item)}: caller-supplied characters not allowed in a dial target"
            )
            continue
        if item.lower() in seen:
            refused.append(
                f"{item}: Skipping dialing interface '{item}' again since it has already "
                "been dialed"
            )
            continue
        seen.add(item.lower())
        targets.append(DialTarget(tech, resource))
    timeout: float | None = None
    if len(args) > 1 and args[1].strip():
        try:
            timeout = float(args[1])
        except ValueError:
            timeout = None
        if timeout is not None and timeout <= 0:
            timeout = None
    options, unknown = parse_options(args[2]) if len(args) > 2 else ({}, "")
    url = args[3] if len(args) > 3 else ""
    return DialArgs(targets, timeout, options, url, refused, unknown, error)


@application(
    "Dial",
    syntax="Dial(Technology/Resource[&Technology2/Resource2[&...]][,timeout[,options[,URL]]])",
    flags=(Flag.NEEDS_CALL,),
)
async def dial(x: Execution, data: str) -> AppResult:
    """Attempt to connect to another device or endpoint and bridge the call.

    Targets are tried at once; the first to answer wins. ``timeout`` is in seconds. Options
    are app_dial's letters (``r``, ``t``, ``T``, ``g``, ``L(...)``, ``m(class)`` ...).
    Sets DIALSTATUS, DIALEDTIME, ANSWEREDTIME, DIALEDPEERNAME.
    """
    try:
        parsed = parse_dial(data)
    except DialArgsError as exc:
        x.warn(str(exc))
        return HANGUP
    go_on = "g" in parsed.options
    if parsed.error:
        x.warn(parsed.error)
        x.vars.set("DIALSTATUS", DialStatus.INVALIDARGS.value)
        return CONTINUE if go_on else HANGUP
    for why in parsed.refused:
        x.warn(f"Dial: {why}")
    if parsed.unknown_options:
        x.warn(f"Dial: unknown options '{parsed.unknown_options}' ignored")
    for letter in parsed.options:
        if letter in _NOT_SUPPORTED:
            x.warn(f"Dial: option '{letter}' ({_NOT_SUPPORTED[letter]}) is not supported; ignored")
    if "L" in parsed.options:
        _limit, problem = parse_duration_limit(parsed.options["L"])
        if problem:
            x.warn(problem)
    if not parsed.targets:
        x.vars.set("DIALSTATUS", DialStatus.CHANUNAVAIL.value)
        x.vars.set("DIALEDTIME", "0")
        x.vars.set("ANSWEREDTIME", "0")
        return CONTINUE
    result = await x.channel.dial(
        parsed.targets, parsed.timeout, parsed.options, inherit=x.vars.inherited()
    )
    x.vars.set("DIALSTATUS", result.status.value)
    x.vars.set("DIALEDTIME", str(result.dialed_time))
    x.vars.set("ANSWEREDTIME", str(result.answered_time))
    if result.peer:
        x.vars.set("DIALEDPEERNAME", result.peer)
    x.note(logging.INFO, f"Dial: {result.status.value}")
    if result.cause:
        x.set_cause(result.cause)
    if result.status is DialStatus.CANCEL or x.channel.hung_up:
        return HANGUP
    if result.status is DialStatus.ANSWER:
        return CONTINUE if go_on and result.peer_hung_up else HANGUP
    return CONTINUE
