"""extensions.conf parsing (Asterisk pbx/pbx_config.c behaviour)."""

from __future__ import annotations

import pytest

from pypbx.config.conf import parse_text
from pypbx.dialplan.model import Dialplan
from pypbx.dialplan.parser import parse_dialplan, split_application


def plan(text: str) -> Dialplan:
    return parse_dialplan(parse_text(text, "extensions.conf"))


def steps(dp: Dialplan, context: str, name: str) -> list[tuple[int, str, str]]:
    (ext,) = [e for e in dp.contexts[context].extensions if e.name == name]
    return [(p.number, p.app, p.args) for p in ext.priorities.values()]


def test_tutorial_plan_loads() -> None:
    dp = plan(
        "[outgoing]\n"
        "exten => _1NXXNXXXXXX,1,Dial(SIP/${EXTEN}@${GLOBAL(TRUNK)})\n"
        "[inbound]\n"
        "exten => 18182223333,1,Dial(SIP/1000)\n"
    )
    assert dp.context_names() == ["outgoing", "inbound"]
    assert steps(dp, "outgoing", "_1NXXNXXXXXX") == [(1, "Dial", "SIP/${EXTEN}@${GLOBAL(TRUNK)}")]
    assert dp.warnings == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dial(SIP/1000,20)", ("Dial", "SIP/1000,20", False)),
        ("Answer()", ("Answer", "", False)),
        ("Answer", ("Answer", "", False)),
        ("Dial,SIP/1000|20", ("Dial", "SIP/1000|20", True)),
        ("Set(X=$[(1+2)*3])", ("Set", "X=$[(1+2)*3]", False)),
        ("NoOp(a) b)", ("NoOp", "a) b", False)),
        ("NoOp(unclosed", ("NoOp", "unclosed", False)),
        ("SIP/${GLOBAL(X)}", ("SIP/${GLOBAL(X)}", "", False)),
    ],
)
def test_split_application(text: str, expected: tuple[str, str, bool]) -> None:
    assert split_application(text) == expected
