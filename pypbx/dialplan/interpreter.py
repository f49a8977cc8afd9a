"""Run a channel through the dial plan, as Asterisk's main/pbx.c ``__ast_pbx_run`` does.

The loop: start at (context, exten, 1) — an extension that does not exist goes to ``i``
(``INVALID_EXTEN`` set) or hangs up; each priority's data is substituted and handed to its
application; priorities step by one; an application may jump (Goto, Gosub, Macro ...) or end
the call (-1 in Asterisk, :attr:`AppResult.HANGUP` here). When an extension runs out of
priorities, ``autofallthrough=yes`` ends the call (busy or congestion as ``DIALSTATUS`` says);
``autofallthrough=no`` waits for digits and then goes to ``t`` (``e`` catches what ``i``/``t``
do not). After the call ends the ``h`` extension of the current context runs, then the hangup
handlers (``CHANNEL(hangup_handler_push)``). Unknown applications end the call with a log line.
Gosub/Macro frames, While loops and their variables follow app_stack.c, app_macro.c and
app_while.c.

pypbx additions: a bound on the number of steps (a runaway plan cannot hold a call forever),
no exception ever leaves :meth:`Execution.run`, and the dialled extension is *neutralised*:
characters outside ``[0-9A-Za-z*#+._-]`` that came from the caller are mapped to private-use
code points, so ``Dial(SIP/${EXTEN}@trunk)`` cannot be turned into two destinations by an
``EXTEN`` holding ``&``, ``,``, ``/`` or ``@`` (issue 9 item 2); ``reveal`` maps them back
for display.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Protocol

from pypbx.dialplan.channel_api import (
    ChannelApi,
    ChannelVars,
    HangupCause,
    Indication,
    is_neutralized,
    neutralize,
    reveal,
)
from pypbx.dialplan.registry import AppResult, Registry, check_dialplan, load_builtins
from pypbx.dialplan.variables import substitute

if TYPE_CHECKING:
    from pypbx.dialplan.astdb import AstDb
    from pypbx.dialplan.model import Dialplan, Found

__all__ = [
    "ChannelVars",
    "Execution",
    "Frame",
    "FrameKind",
    "GlobalVars",
    "Position",
    "Random",
    "RunEnd",
    "Step",
    "check_condition",
    "check_dialplan",
    "is_neutralized",
    "load_builtins",
    "neutralize",
    "reveal",
]

log = logging.getLogger("pypbx.dialplan")

DEFAULT_MAX_STEPS = 100_000
MACRO_MAX_DEPTH = 7  # app_macro MAX_RECURSION default (${MACRO_RECURSION} changes it)
MACRO_HARD_LIMIT = 100  # however high MACRO_RECURSION is set
GOSUB_MAX_DEPTH = 1000
MAX_MESSAGES = 10_000


def check_condition(text: str) -> bool:
    """``pbx_checkcondition``: empty is false, a leading integer is its truth, else true."""
    s = text.lstrip()
    if not s:
        return False
    i = 1 if s[0] in "+-" else 0
    j = i
    while j < len(s) and s[j].isdigit():
        j += 1
    if j == i:
        return True
    return int(s[:j]) != 0


class Random(Protocol):
    """The part of ``random.Random`` the functions use (injected, never the module)."""

    def randint(self, a: int, b: int) -> int: ...


@dataclass(frozen=True, slots=True)
class Position:
    """Where a channel is in the dial plan."""

    context: str
    exten: str
    priority: int


@dataclass(frozen=True, slots=True)
class Step:
    """One executed priority: what ``pypbx dialplan run`` prints."""

    context: str
    exten: str
    priority: int
    app: str
    args: str


class FrameKind(Enum):
    GOSUB = "gosub"
    MACRO = "macro"


@dataclass(slots=True)
class Frame:
    """A Gosub or Macro call: where to come back to and the variables to restore."""

    kind: FrameKind
    caller: Position
    saved: dict[str, str | None] = field(default_factory=dict)
    macro_context: str = ""
    whiles: list[Position] = field(default_factory=list)
    argc: int = 0  # ARGn this Gosub set, masked by the next one (app_stack max_argc)


class GlobalVars:
    """The shared ``[globals]`` store; ``load`` applies ``clearglobalvars`` on reload."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def load(self, dialplan: Dialplan, *, warn: Callable[[str], None] | None = None) -> None:
        """(Re)load from a dial plan: clear first when ``clearglobalvars=yes``."""
        if dialplan.general.clearglobalvars:
            self.values.clear()
        resolver = _GlobalsOnly(self)
        for name, value in dialplan.global_vars().items():
            self.values[name] = substitute(value, resolver, warn=warn)


class _GlobalsOnly:
    """Resolver for ``[globals]`` values: earlier globals only, no functions."""

    def __init__(self, store: GlobalVars) -> None:
        self.store = store

    def get_variable(self, name: str) -> str | None:
        return self.store.values.get(name)

    def call_function(self, name: str, args: str) -> str | None:
        return None


class RunEnd(StrEnum):
    """Why a run of the dial plan ended."""

    HANGUP = "hangup"  # an application ended the call, or the caller hung up
    INVALID = "invalid"  # no such extension and no 'i'
    FALLTHROUGH = "fallthrough"  # ran out of priorities with autofallthrough=yes
    TIMEOUT = "timeout"  # waited for an extension, none came, no 't'
    LOOP = "loop"  # the step bound was reached
    ERROR = "error"  # an internal error (logged)


class Execution:
    """One channel's walk through the dial plan; the resolver for ``${...}``.

    Applications receive it and use :meth:`goto`, :meth:`set_var`, :meth:`substitute` and the
    channel in :attr:`channel`. ``clock`` returns epoch seconds; ``rng`` is injected.
    """

    def __init__(
        self,
        dialplan: Dialplan,
        channel: ChannelApi,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        callerid_num: str = "",
        callerid_name: str = "",
        variables: dict[str, str] | ChannelVars | None = None,
        globals_: GlobalVars | None = None,
        registry: Registry | None = None,
        clock: Callable[[], float],
        rng: Random,
        astdb: AstDb | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        on_step: Callable[[Step], None] | None = None,
        response_timeout: float = 10.0,
        digit_timeout: float = 5.0,
        tz: tzinfo | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.tz = tz
        self.dialplan = dialplan
        self.channel = channel
        self.context = context
        self.exten = neutralize(exten)
        self.priority = priority
        self.callerid_num = neutralize(callerid_num)
        self.callerid_name = callerid_name
        # a ChannelVars is shared (the call's own store); a dict seeds a new one
        self.vars = variables if isinstance(variables, ChannelVars) else ChannelVars(variables)
        if globals_ is None:
            globals_ = GlobalVars()
            globals_.load(dialplan)
        self.globals = globals_
        self.registry = registry if registry is not None else load_builtins()
        self.clock = clock
        self.rng = rng
        self.astdb = astdb
        self.max_steps = max_steps
        self.on_step = on_step
        self.response_timeout = response_timeout
        self.digit_timeout = digit_timeout
        self.hangup_cause = 0
        self.callerid_extra: dict[str, str] = {"dnid": self.exten}
        self.cdr: dict[str, str] = {}
        self.exception: dict[str, str] = {}
        self.hangup_handlers: list[str] = []  # Gosub targets, CHANNEL(hangup_handler_push)
        self.absolute_timeout: float | None = None
        self.frames: list[Frame] = []
        self.whiles: list[Position] = []
        self.steps = 0
        self.messages: deque[str] = deque(maxlen=MAX_MESSAGES)  # the latest log lines
        self.end_reason = RunEnd.HANGUP
        self._jump: Position | None = None
        self._log = logging.LoggerAdapter(logger or log, {"channel": channel.name})

    # ----------------------------------------------------------------- logging
    def note(self, level: int, message: str) -> None:
        """Log one operator line (channel name first) and keep it for the dry run."""
        text = reveal(message)
        self.messages.append(f"{logging.getLevelName(level)}: {text}")
        self._log.log(level, "%s: %s", self.channel.name, text)

    def warn(self, message: str) -> None:
        self.note(logging.WARNING, message)

    # ---------------------------------------------------------------- resolver
    @property
    def callerid(self) -> str | None:
        """The caller-id used for ``exten => 100/_1XX`` matching."""
        return self.callerid_num or None

    def get_variable(self, name: str) -> str | None:
        """``pbx_retrieve_variable``: built-ins first, then channel, then global variables."""
        builtin = self._builtin(name)
        if builtin is not None:
            return builtin
        value = self.vars.get(name)
        if value is not None:
            return value
        return self.globals.values.get(name)

    def _builtin(self, name: str) -> str | None:
        match name:
            case "EXTEN":
                return self.exten
            case "CONTEXT":
                return self.context
            case "PRIORITY":
                return str(self.priority)
            case "CHANNEL":
                return self.channel.name
            case "UNIQUEID":
                return self.channel.uniqueid
            case "HANGUPCAUSE":
                if not self.hangup_cause and self.channel.hung_up:
                    return str(self.channel.hangup_cause)
                return str(self.hangup_cause)
            case "EPOCH":
                return str(int(self.clock()))
        return None

    def call_function(self, name: str, args: str) -> str | None:
        entry = self.registry.function(name)
        if entry is None or entry.reader is None:
            self.note(logging.ERROR, f"Function {name} not registered")
            return None
        try:
            return entry.reader(self, args)
        except Exception as exc:  # a function bug must not end the call
            self.note(logging.ERROR, f"Function {name}({args}) failed: {exc!r}")
            return None

    def substitute(self, text: str) -> str:
        """Expand ``${...}`` and ``$[...]`` in ``text`` for this channel."""
        return substitute(text, self, warn=self.warn)

    def set_var(self, name: str, value: str | None) -> None:
        """``pbx_builtin_setvar_helper`` / a function write for ``NAME(args)``."""
        if name.endswith(")") and "(" in name:
            fname, _, fargs = name[:-1].partition("(")
            entry = self.registry.function(fname)
            if entry is None or entry.writer_fn is None:
                self.note(logging.ERROR, f"Function {fname} not registered (or not writable)")
                return
            try:
                entry.writer_fn(self, fargs, value or "")
            except Exception as exc:
                self.note(logging.ERROR, f"Function {fname}({fargs}) write failed: {exc!r}")
            return
        self.vars.set(name, value)

    def get_var(self, name: str) -> str | None:
        return self.get_variable(name)

    # ------------------------------------------------------------- navigation
    def now(self, zone: tzinfo | None = None) -> datetime:
        """The injected clock as a datetime in ``zone`` (default: ``tz``, else local time)."""
        return datetime.fromtimestamp(self.clock(), zone or self.tz)

    def find(self, context: str, exten: str, priority: int) -> Found | None:
        return self.dialplan.find(context, exten, priority, callerid=self.callerid, now=self.now())

    def exists(self, context: str, exten: str, priority: int = 1) -> bool:
        return self.find(context, exten, priority) is not None

    def goto(self, context: str | None, exten: str | None, priority: int) -> None:
        """Continue at this place after the current application (ast_explicit_goto)."""
        self._jump = Position(context or self.context, exten or self.exten, priority)

    def resolve_goto(self, spec: str) -> Position | None:
        """``ast_parseable_goto``: ``[[context,]exten,]priority`` with labels and ``+N``/``-N``."""
        # strsep three times: anything after a third comma is ignored; nothing is trimmed
        # (a priority number may have leading blanks: sscanf skips them)
        parts = spec.split(",")[:3]
        if not spec.strip():
            self.warn(f"Goto requires [[context,]exten,]priority, got '{spec}'")
            return None
        pri = parts[-1]
        exten = parts[-2] if len(parts) >= 2 else None
        context = parts[0] if len(parts) == 3 else None
        if exten is not None and exten.upper() == "BYEXTENSION":
            exten = None
        context = context or self.context
        exten = exten or self.exten
        mode = 0
        if pri[:1] in "+-" and pri[:1]:
            mode = 1 if pri[0] == "+" else -1
            pri = pri[1:]
        number = _leading_int(pri)
        if number is None:
            label = self.dialplan.find_label(
                context, exten, pri, callerid=self.callerid, now=self.now()
            )
            if label is None or label < 1:
                self.warn(f"Priority '{pri}' must be a number > 0, or valid label")
                return None
            return Position(context, exten, label)
        if mode:
            number = self.priority + number * mode
        return Position(context, exten, number)

    def push_frame(self, frame: Frame) -> bool:
        limit = GOSUB_MAX_DEPTH if frame.kind is FrameKind.GOSUB else MACRO_HARD_LIMIT
        if sum(1 for f in self.frames if f.kind is frame.kind) >= limit:
            return False
        frame.whiles, self.whiles = self.whiles, []
        self.frames.append(frame)
        return True

    def pop_frame(self, kind: FrameKind) -> Frame | None:
        """Remove the innermost frame of ``kind`` (and any above it), restoring variables."""
        for i in range(len(self.frames) - 1, -1, -1):
            if self.frames[i].kind is kind:
                popped = self.frames[i:]
                del self.frames[i:]
                for f in reversed(popped):
                    for name, old in f.saved.items():
                        self.vars.set(name, old)
                self.whiles = popped[0].whiles
                return popped[0]
        return None

    def save_and_set(self, frame: Frame, name: str, value: str) -> None:
        """Set a variable that the frame restores when it ends (ARGn, LOCAL())."""
        if name not in frame.saved:
            frame.saved[name] = self.vars.get(name)
        self.vars.set(name, value)

    async def exec_app(self, name: str, data: str) -> AppResult:
        """Run one application by name with already-substituted data (ExecIf, Exec)."""
        entry = self.registry.app(name)
        if entry is None:
            self.warn(
                f"No application '{name}' for extension "
                f"({self.context}, {self.exten}, {self.priority})"
            )
            return AppResult.HANGUP
        try:
            return await entry.handler(self, data)
        except Exception as exc:
            self.note(logging.ERROR, f"Application {entry.name}({data}) failed: {exc!r}")
            return AppResult.HANGUP

    def set_cause(self, cause: int) -> None:
        self.hangup_cause = cause

    # ---------------------------------------------------------------- the loop
    async def run(self) -> RunEnd:
        """Run until the call ends (then the ``h`` extension); returns why it ended."""
        try:
            reason = await self._main()
        except Exception as exc:
            self.note(logging.ERROR, f"dial plan run failed: {exc!r}")
            reason = RunEnd.ERROR
        self.end_reason = reason
        try:
            if not self.hangup_cause:
                remote = self.channel.hangup_cause if self.channel.hung_up else 0
                self.hangup_cause = remote or int(HangupCause.NORMAL_CLEARING)
            await self.channel.hangup(self.hangup_cause)
            await self._run_h()
            while self.hangup_handlers:  # pushed last, run first (pbx_hangup_handler.c)
                await self.run_subroutine(self.hangup_handlers.pop())
        except Exception as exc:
            self.note(logging.ERROR, f"h extension failed: {exc!r}")
        return self.end_reason

    async def run_subroutine(self, spec: str) -> None:
        """``ast_app_exec_sub``: run ``Gosub(spec)`` until it Returns (hangup handlers)."""
        depth = len(self.frames)
        self._jump = None
        if await self.exec_app("Gosub", spec) is AppResult.HANGUP or self._jump is None:
            return
        self._advance()
        while len(self.frames) > depth and self._tick():
            found = self.find(self.context, self.exten, self.priority)
            if found is None:
                break
            if await self._execute(found.priority.app, found.priority.args) is AppResult.HANGUP:
                break
            self._advance()
        while len(self.frames) > depth:
            self.pop_frame(self.frames[-1].kind)

    def _tick(self) -> bool:
        self.steps += 1
        if self.steps > self.max_steps:
            self.warn(
                f"Dial plan exceeded {self.max_steps} steps at "
                f"{self.context},{self.exten},{self.priority}: ending the call (loop guard)"
            )
            return False
        return True

    async def _execute(self, app: str, raw: str) -> AppResult:
        data = self.substitute(raw)
        if self.on_step is not None:
            self.on_step(Step(self.context, reveal(self.exten), self.priority, app, reveal(data)))
        self._jump = None
        return await self.exec_app(app, data)

    def _advance(self) -> None:
        if self._jump is not None:
            self.context, self.exten, self.priority = (
                self._jump.context,
                self._jump.exten,
                self._jump.priority,
            )
            self._jump = None
        else:
            self.priority += 1

    async def _main(self) -> RunEnd:
        if not self.exists(self.context, self.exten, self.priority):
            end = self._invalid()
            if end is not None:
                return end
        while True:
            top = self.frames[-1] if self.frames else None
            if (
                top is not None
                and top.kind is FrameKind.MACRO
                and self.context != top.macro_context
            ):
                self.note(logging.INFO, f"Channel jumping out of macro '{top.macro_context}'")
                self.pop_frame(FrameKind.MACRO)
                continue
            found = self.find(self.context, self.exten, self.priority)
            if found is None:
                if top is not None and top.kind is FrameKind.MACRO:
                    back = self.end_macro()
                    if back is not None:
                        self._moveto(back)
                    continue
                end = await self._no_priority()
                if end is not None:
                    return end
                continue
            if not self._tick():
                self.set_cause(int(HangupCause.NORMAL_CLEARING))
                return RunEnd.LOOP
            prio = found.priority
            result = await self._execute(prio.app, prio.args)
            if result is AppResult.HANGUP or self.channel.hung_up:
                return RunEnd.HANGUP
            self._advance()

    def end_macro(self) -> Position | None:
        """Leave the innermost Macro: where to continue (after it, MACRO_OFFSET aware)."""
        offset = _leading_int(self.vars.get("MACRO_OFFSET") or "") or 0
        frame = self.pop_frame(FrameKind.MACRO)
        if frame is None:
            return None
        c = frame.caller
        nxt = c.priority + 1
        if offset and self.exists(c.context, c.exten, c.priority + offset + 1):
            nxt = c.priority + offset + 1
        return Position(c.context, c.exten, nxt)

    def _moveto(self, pos: Position) -> None:
        self.context, self.exten, self.priority = pos.context, pos.exten, pos.priority

    def _invalid(self) -> RunEnd | None:
        """The extension does not exist: ``i`` if present, else hang up (pbx.c)."""
        pos = self.invalid_target()
        if pos is None:
            return RunEnd.INVALID
        self._moveto(pos)
        return None

    def invalid_target(self) -> Position | None:
        """Where a channel at a non-existent extension goes: ``i``, ``e``, or None (hang up)."""
        if self.exten != "i" and self.exists(self.context, "i", 1):
            self.note(
                logging.INFO,
                f"Channel '{self.channel.name}' sent to invalid extension: "
                f"context,exten,priority={self.context},{self.exten},{self.priority}",
            )
            self.vars.set("INVALID_EXTEN", self.exten)
            return Position(self.context, "i", 1)
        if self.exten != "e" and self.exists(self.context, "e", 1):
            return self.raise_exception("INVALID")
        self.warn(
            f"Channel '{self.channel.name}' sent to invalid extension but no invalid handler: "
            f"context,exten,priority={self.context},{self.exten},{self.priority}"
        )
        self.set_cause(int(HangupCause.UNALLOCATED))
        return None

    async def _no_priority(self) -> RunEnd | None:
        """Ran off the end of an extension, or sits at a place that does not exist."""
        if not self.exists(self.context, self.exten, 1):
            return self._invalid()
        if self.dialplan.general.autofallthrough:
            status = self.vars.get("DIALSTATUS") or "UNKNOWN"
            self.note(
                logging.INFO,
                f"Auto fallthrough, channel '{self.channel.name}' status is '{status}'",
            )
            if status.upper() in ("CONGESTION", "CHANUNAVAIL"):
                await self.channel.indicate(Indication.CONGESTION)
                self.set_cause(int(HangupCause.NORMAL_CIRCUIT_CONGESTION))
            elif status.upper() == "BUSY":
                await self.channel.indicate(Indication.BUSY)
                self.set_cause(int(HangupCause.USER_BUSY))
            return RunEnd.FALLTHROUGH
        digits = await self.collect_extension("", self.response_timeout)
        pos = self.route_digits(digits)
        if pos is None:
            return RunEnd.INVALID if digits else RunEnd.TIMEOUT
        self._moveto(pos)
        return None

    async def collect_extension(
        self, first: str, timeout: float, context: str | None = None
    ) -> str:
        """Collect dialled digits the way pbx.c does: wait ``timeout`` for the first one, then
        take more (``digit_timeout`` each) while a longer extension could still match."""
        ctx = context or self.context
        digits = first
        if not digits:
            digits = await self.channel.read_digits(1, timeout, terminator="")
        while digits and len(digits) < 256:
            if not self.dialplan.match_more(ctx, digits, callerid=self.callerid, now=self.now()):
                break
            more = await self.channel.read_digits(1, self.digit_timeout, terminator="")
            if not more:
                break
            digits += more
        return digits

    def route_digits(self, digits: str, context: str | None = None) -> Position | None:
        """After waiting for an extension: the digits' extension, ``i``, ``t``, ``e``, or None."""
        ctx = context or self.context
        if digits:
            if self.exists(ctx, digits, 1):
                return Position(ctx, digits, 1)
            self.context, self.exten = ctx, digits
            return self.invalid_target()
        if self.exists(self.context, "t", 1):
            self.note(logging.INFO, f"Timeout on {self.channel.name}, going to 't'")
            return Position(self.context, "t", 1)
        if self.exists(self.context, "e", 1):
            return self.raise_exception("RESPONSETIMEOUT")
        self.warn(f"Timeout, but no rule 't' in context '{self.context}'")
        return None

    def raise_exception(self, reason: str) -> Position:
        """pbx.c ``raise_exception``: remember where and why, continue at ``e``."""
        self.exception = {
            "reason": reason,
            "context": self.context,
            "exten": self.exten,
            "priority": str(self.priority),
        }
        self.note(logging.INFO, f"Exception {reason}: going to 'e' in '{self.context}'")
        return Position(self.context, "e", 1)

    async def _run_h(self) -> None:
        while self.frames:
            frame = self.frames[-1]
            if frame.kind is FrameKind.MACRO and self.context == frame.macro_context:
                self.pop_frame(FrameKind.MACRO)
                self.context, self.exten = frame.caller.context, frame.caller.exten
            else:
                self.pop_frame(frame.kind)
        if self.exten == "h" or not self.exists(self.context, "h", 1):
            return
        self.exten, self.priority = "h", 1
        while True:
            # A Goto out of h is followed while priorities exist, as Asterisk does.
            found = self.find(self.context, self.exten, self.priority)
            if found is None or not self._tick():
                return
            result = await self._execute(found.priority.app, found.priority.args)
            if result is AppResult.HANGUP:
                return
            self._advance()


def _leading_int(text: str) -> int | None:
    """``sscanf("%d")``: the leading integer of ``text`` or None."""
    s = text.strip()
    i = 1 if s[:1] in ("+", "-") and s[:1] else 0
    j = i
    while j < len(s) and s[j].isdigit():
        j += 1
    if j == i:
        return None
    return int(s[:j])
