"""While/EndWhile/ExitWhile/ContinueWhile (Asterisk apps/app_while.c).

A While remembers its place on the channel's loop stack; EndWhile and ContinueWhile jump
back to it (the condition is evaluated again); a false condition or ExitWhile continues after
the matching EndWhile, found by scanning the extension's following priorities with nesting.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pypbx.dialplan.interpreter import Position, check_condition
from pypbx.dialplan.registry import AppResult, application

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution

CONTINUE = AppResult.CONTINUE
HANGUP = AppResult.HANGUP
_SCAN_LIMIT = 10_000


def find_end_while(x: Execution, start: Position) -> int | None:
    """The priority of the EndWhile matching the While at ``start``, or None."""
    depth = 0
    for prio in range(start.priority + 1, start.priority + _SCAN_LIMIT):
        found = x.find(start.context, start.exten, prio)
        if found is None:
            return None
        app = found.priority.app.strip().lower()
        if app == "while":
            depth += 1
        elif app == "endwhile":
            if depth == 0:
                return prio
            depth -= 1
    return None


def _leave(x: Execution, start: Position) -> AppResult:
    end = find_end_while(x, start)
    if end is None:  # app_while warns and carries on at the next priority
        x.note(
            logging.WARNING,
            f"Couldn't find matching EndWhile? (While at {start.context}@{start.exten} "
            f"priority {start.priority})",
        )
        return CONTINUE
    x.goto(start.context, start.exten, end + 1)
    return CONTINUE


@application("While", syntax="While(expr)")
async def while_app(x: Execution, data: str) -> AppResult:
    """Start a while loop: run up to the matching EndWhile as long as ``expr`` is true."""
    here = Position(x.context, x.exten, x.priority)
    if not x.whiles or x.whiles[-1] != here:
        x.whiles.append(here)
    if check_condition(data):
        return CONTINUE
    x.whiles.pop()
    return _leave(x, here)


def _back_to_while(x: Execution, app: str) -> AppResult:
    if not x.whiles:
        x.warn(f"{app} without While: continuing")
        return CONTINUE
    top = x.whiles[-1]
    x.goto(top.context, top.exten, top.priority)
    return CONTINUE


@application("EndWhile", syntax="EndWhile()")
async def end_while(x: Execution, data: str) -> AppResult:
    """End a while loop: go back to its While, which tests the condition again."""
    return _back_to_while(x, "EndWhile")


@application("ExitWhile", syntax="ExitWhile()")
async def exit_while(x: Execution, data: str) -> AppResult:
    """Leave the innermost while loop: continue after its EndWhile."""
    if not x.whiles:
        x.warn("ExitWhile without While: continuing")
        return CONTINUE
    return _leave(x, x.whiles.pop())


@application("ContinueWhile", syntax="ContinueWhile()")
async def continue_while(x: Execution, data: str) -> AppResult:
    """Go back to the innermost While now (its condition is tested again)."""
    return _back_to_while(x, "ContinueWhile")
