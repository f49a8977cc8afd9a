"""Dry run of the dial plan: ``pypbx dialplan run -C DIR CONTEXT EXTEN`` (issue 4 item 6).

A simulated channel (:class:`~pypbx.dialplan.channel_api.RecordingChannel`) walks the plan as
:mod:`pypbx.dialplan.interpreter` would walk a real call: applications that need a call record
what they would do, ``Dial`` takes its outcome from ``dialstatus``. Each executed priority is
a :class:`Step`; the JSON form is ``{"steps": [{"context", "exten", "priority", "app",
"args"}...], "hangup_cause": N}`` (those names are a contract) plus ``end``, ``actions`` and
``log`` for people debugging. No Asterisk has this.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import tzinfo
from pathlib import Path

from pypbx.config.conf import ConfigError
from pypbx.dialplan.astdb import AstDb
from pypbx.dialplan.channel_api import DialStatus, HangupCause, RecordingChannel
from pypbx.dialplan.interpreter import Execution, GlobalVars, Random, RunEnd, Step
from pypbx.dialplan.model import Dialplan
from pypbx.dialplan.parser import load_dialplan

__all__ = ["DEFAULT_MAX_STEPS", "DryRunResult", "dry_run", "dry_run_async", "run_cli"]

DEFAULT_MAX_STEPS = 1000
_QUIET = logging.getLogger("pypbx.dialplan.dryrun")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False  # the dry run prints its log lines itself


@dataclass(frozen=True, slots=True)
class DryRunResult:
    """What a dry run did: the steps, how the call ended, what the channel was asked."""

    steps: list[Step]
    hangup_cause: int
    end: RunEnd
    actions: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    marks: list[int] = field(default_factory=list)  # len(actions) when each step began

    def to_json(self) -> dict[str, object]:
        cause = self.hangup_cause
        try:
            cause_name = HangupCause(cause).name
        except ValueError:
            cause_name = ""
        return {
            "steps": [asdict(s) for s in self.steps],
            "hangup_cause": cause,
            "hangup_cause_name": cause_name,
            "end": self.end,
            "actions": self.actions,
            "log": self.log,
        }

    def to_text(self) -> str:
        lines: list[str] = []
        done = 0
        for i, s in enumerate(self.steps):
            mark = self.marks[i] if i < len(self.marks) else done
            lines += [f"    >> {a}" for a in self.actions[done:mark]]
            done = max(done, mark)
            lines.append(
                f'    -- Executing [{s.exten}@{s.context}:{s.priority}] {s.app}("{s.args}")'
            )
        lines += [f"    >> {a}" for a in self.actions[done:]]
        lines += [f"    !! {m}" for m in self.log if not m.startswith("INFO:")]
        try:
            name = HangupCause(self.hangup_cause).name
        except ValueError:
            name = "?"
        lines.append(f"  == Call ended ({self.end}), hangup cause {self.hangup_cause} ({name})")
        return "\n".join(lines) + "\n"


async def dry_run_async(
    dialplan: Dialplan,
    context: str,
    exten: str,
    *,
    callerid: str | None = None,
    callerid_name: str = "",
    variables: dict[str, str] | None = None,
    dialstatus: str | DialStatus = DialStatus.ANSWER,
    digits: str = "",
    max_steps: int = DEFAULT_MAX_STEPS,
    globals_: GlobalVars | None = None,
    astdb: AstDb | None = None,
    clock: Callable[[], float] | None = None,
    rng: Random | None = None,
    tz: tzinfo | None = None,
) -> DryRunResult:
    """Walk the plan from ``context,exten,1`` with a simulated channel.

    Without ``astdb`` an empty in-memory one is used: a dry run never writes the real one.
    """
    channel = RecordingChannel(dial_status=DialStatus(str(dialstatus).upper()), digits=digits)
    steps: list[Step] = []
    marks: list[int] = []

    def on_step(step: Step) -> None:
        steps.append(step)
        marks.append(len(channel.actions))

    ex = Execution(
        dialplan,
        channel,
        context=context,
        exten=exten,
        callerid_num=callerid or "",
        callerid_name=callerid_name,
        variables=dict(variables or {}),
        globals_=globals_,
        clock=clock or time.time,
        rng=rng or random.Random(0),
        astdb=astdb if astdb is not None else AstDb(":memory:"),
        max_steps=max_steps,
        on_step=on_step,
        tz=tz,
        logger=_QUIET,
    )
    end = await ex.run()
    return DryRunResult(
        steps=steps,
        hangup_cause=ex.hangup_cause,
        end=end,
        actions=list(channel.actions),
        log=list(ex.messages),
        variables=dict(ex.vars.items()),
        marks=marks,
    )


def dry_run(
    dialplan: Dialplan,
    context: str,
    exten: str,
    *,
    callerid: str | None = None,
    variables: dict[str, str] | None = None,
    dialstatus: str | DialStatus = DialStatus.ANSWER,
    digits: str = "",
    max_steps: int = DEFAULT_MAX_STEPS,
    astdb: AstDb | None = None,
    clock: Callable[[], float] | None = None,
    rng: Random | None = None,
    tz: tzinfo | None = None,
) -> DryRunResult:
    """:func:`dry_run_async` from synchronous code (no event loop may be running)."""
    return asyncio.run(
        dry_run_async(
            dialplan,
            context,
            exten,
            callerid=callerid,
            variables=variables,
            dialstatus=dialstatus,
            digits=digits,
            max_steps=max_steps,
            astdb=astdb,
            clock=clock,
            rng=rng,
            tz=tz,
        )
    )


def run_cli(
    config_dir: str,
    context: str,
    exten: str,
    callerid: str | None,
    variables: dict[str, str],
    dialstatus: str,
    as_json: bool,
    digits: str = "",
    max_steps: int = DEFAULT_MAX_STEPS,
) -> tuple[str, int]:
    """``pypbx dialplan run``: (output text, exit code). Exit 2 for bad input, else 0.

    ``digits`` is what the simulated caller keys in (Background, WaitExten, Read ...).
    """
    path = Path(config_dir) / "extensions.conf"
    try:
        plan = load_dialplan(path)
    except ConfigError as exc:
        return f"pypbx: {exc}\n", 2
    if context not in plan.contexts:
        return f"pypbx: there is no context '{context}' in {path}\n", 2
    try:
        status = DialStatus(dialstatus.upper())
    except ValueError:
        allowed = ", ".join(s.value for s in DialStatus)
        return f"pypbx: --dialstatus must be one of {allowed}\n", 2
    result = dry_run(
        plan,
        context,
        exten,
        callerid=callerid,
        variables=variables,
        dialstatus=status,
        digits=digits,
        max_steps=max_steps,
    )
    if as_json:
        return json.dumps(result.to_json(), indent=2) + "\n", 0
    return result.to_text(), 0
