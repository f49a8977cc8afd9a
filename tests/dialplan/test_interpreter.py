"""Interpreter semantics (Asterisk main/pbx.c __ast_pbx_run, app_stack.c, app_macro.c,
app_while.c), driven through dry runs with an instant simulated channel."""

from __future__ import annotations

import asyncio
import random
import textwrap
from datetime import UTC

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypbx.config.conf import parse_text
from pypbx.dialplan.channel_api import ChannelApi, RecordingChannel
from pypbx.dialplan.dryrun import DryRunResult, dry_run
from pypbx.dialplan.interpreter import (
    ChannelVars,
    Execution,
    GlobalVars,
    check_condition,
    neutralize,
    reveal,
)
from pypbx.dialplan.model import Dialplan
from pypbx.dialplan.parser import parse_dialplan
from pypbx.dialplan.registry import REGISTRY, AppResult, Registry, application

EPOCH = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC, a Tuesday


def plan(text: str) -> Dialplan:
    return parse_dialplan(parse_text(textwrap.dedent(text), "extensions.conf"))


def run(text: str, context: str = "test", exten: str = "s", **kw: object) -> DryRunResult:
    return dry_run(
        plan(text), context, exten, clock=lambda: EPOCH, rng=random.Random(1), tz=UTC, **kw
    )  # type: ignore[arg-type]


def trace(result: DryRunResult) -> list[str]:
    return [f"{s.app}({s.args})" for s in result.steps]


# (name, plan, context, exten, expected "App(args)" steps, expected end)
CASES = [
    (
        "priorities step by one, then autofallthrough ends the call",
        """
        [test]
        exten => s,1,NoOp(a)
        same => n,NoOp(b)
        """,
        "test",
        "s",
        ["NoOp(a)", "NoOp(b)"],
        "fallthrough",
    ),
    (
        "Goto a label in the same extension",
        """
        [test]
        exten => s,1,Goto(there)
        same => n,NoOp(skipped)
        same => n(there),NoOp(here)
        """,
        "test",
        "s",
        ["Goto(there)", "NoOp(here)"],
        "fallthrough",
    ),
    (
        "Goto context,exten,priority",
        """
        [test]
        exten => s,1,Goto(other,100,2)
        [other]
        exten => 100,1,NoOp(no)
        same => n,NoOp(${CONTEXT}/${EXTEN}/${PRIORITY})
        """,
        "test",
        "s",
        ["Goto(other,100,2)", "NoOp(other/100/2)"],
        "fallthrough",
    ),
    (
        "Goto exten,label and relative +2",
        """
        [test]
        exten => s,1,Goto(200,lbl)
        exten => 200,1,NoOp(no)
        same => n(lbl),Goto(+2)
        same => n,NoOp(skipped)
        same => n,NoOp(${PRIORITY})
        """,
        "test",
        "s",
        ["Goto(200,lbl)", "Goto(+2)", "NoOp(4)"],
        "fallthrough",
    ),
    (
        "Goto an unknown label ends the call (ast_parseable_goto returns -1)",
        """
        [test]
        exten => s,1,Goto(nowhere)
        same => n,NoOp(never)
        """,
        "test",
        "s",
        ["Goto(nowhere)"],
        "hangup",
    ),
    (
        "Goto a missing extension goes to i",
        """
        [test]
        exten => s,1,Goto(555,1)
        exten => i,1,NoOp(invalid ${INVALID_EXTEN})
        """,
        "test",
        "s",
        ["Goto(555,1)", "NoOp(invalid 555)"],
        "fallthrough",
    ),
    (
        "GotoIf true, false, and a missing branch",
        """
        [test]
        exten => s,1,GotoIf($[1 = 1]?yes:no)
        same => n(no),NoOp(no)
        same => n(yes),GotoIf(0?no)
        same => n,GotoIf(abc?end:no)
        same => n(end),NoOp(end)
        """,
        "test",
        "s",
        ["GotoIf(1?yes:no)", "GotoIf(0?no)", "GotoIf(abc?end:no)", "NoOp(end)"],
        "fallthrough",
    ),
    (
        "Gosub with arguments and Return with a value; ARGs are local",
        """
        [test]
        exten => s,1,Set(ARG1=outer)
        same => n,Gosub(sub,s,1(x,y))
        same => n,NoOp(${GOSUB_RETVAL} ${ARG1} ${ARGC})
        [sub]
        exten => s,1,NoOp(${ARG1}-${ARG2}-${ARGC})
        same => n,Return(done)
        """,
        "test",
        "s",
        [
            "Set(ARG1=outer)",
            "Gosub(sub,s,1(x,y))",
            "NoOp(x-y-2)",
            "Return(done)",
            "NoOp(done outer )",
        ],
        "fallthrough",
    ),
    (
        "nested Gosub with labels comes back in order",
        """
        [test]
        exten => s,1,Gosub(a)
        same => n,NoOp(back)
        same => n,Hangup()
        same => n(a),Gosub(b)
        same => n,Return()
        same => n(b),NoOp(in b)
        same => n,Return()
        """,
        "test",
        "s",
        ["Gosub(a)", "Gosub(b)", "NoOp(in b)", "Return()", "Return()", "NoOp(back)", "Hangup()"],
        "hangup",
    ),
    (
        "GosubIf picks a branch with arguments",
        """
        [test]
        exten => s,1,GosubIf($[2 > 1]?sub,s,1(a:b):sub,s,1(c))
        [sub]
        exten => s,1,NoOp(${ARG1})
        same => n,Return
        """,
        "test",
        "s",
        ["GosubIf(1?sub,s,1(a:b):sub,s,1(c))", "NoOp(a:b)", "Return()"],
        "fallthrough",
    ),
    (
        "Return without Gosub ends the call",
        """
        [test]
        exten => s,1,Return()
        same => n,NoOp(never)
        """,
        "test",
        "s",
        ["Return()"],
        "hangup",
    ),
    (
        "Gosub to a place that does not exist ends the call",
        """
        [test]
        exten => s,1,Gosub(nowhere,s,1)
        same => n,NoOp(never)
        """,
        "test",
        "s",
        ["Gosub(nowhere,s,1)"],
        "hangup",
    ),
    (
        "Macro with ARGn and MACRO_EXTEN, then the priority after it",
        """
        [macro-greet]
        exten => s,1,NoOp(${ARG1} ${ARG2} ${MACRO_EXTEN} ${MACRO_CONTEXT} ${EXTEN})
        [test]
        exten => 100,1,Macro(greet,hello,world)
        same => n,NoOp(after [${ARG1}] [${MACRO_EXTEN}])
        """,
        "test",
        "100",
        [
            "Macro(greet,hello,world)",
            "NoOp(hello world 100 test s)",
            "NoOp(after [] [])",
        ],
        "fallthrough",
    ),
    (
        "MacroExit leaves the macro early; nested macro",
        """
        [macro-outer]
        exten => s,1,Macro(inner,${ARG1})
        same => n,NoOp(outer ${ARG1} ${MACRO_DEPTH})
        same => n,MacroExit()
        same => n,NoOp(never)
        [macro-inner]
        exten => s,1,NoOp(inner ${ARG1} ${MACRO_DEPTH})
        [test]
        exten => s,1,Macro(outer,z)
        same => n,NoOp(done)
        """,
        "test",
        "s",
        [
            "Macro(outer,z)",
            "Macro(inner,z)",
            "NoOp(inner z 2)",
            "NoOp(outer z 1)",
            "MacroExit()",
            "NoOp(done)",
        ],
        "fallthrough",
    ),
    (
        "a Goto out of a macro context leaves the macro for good",
        """
        [macro-jump]
        exten => s,1,Goto(elsewhere,s,1)
        [elsewhere]
        exten => s,1,NoOp(elsewhere ${ARG1})
        [test]
        exten => s,1,Macro(jump,a)
        same => n,NoOp(never)
        """,
        "test",
        "s",
        ["Macro(jump,a)", "Goto(elsewhere,s,1)", "NoOp(elsewhere )"],
        "fallthrough",
    ),
    (
        "While loop counts to three",
        """
        [test]
        exten => s,1,Set(i=0)
        same => n,While($[${i} < 3])
        same => n,Set(i=$[${i} + 1])
        same => n,EndWhile()
        same => n,NoOp(done ${i})
        """,
        "test",
        "s",
        [
            "Set(i=0)",
            "While(1)",
            "Set(i=1)",
            "EndWhile()",
            "While(1)",
            "Set(i=2)",
            "EndWhile()",
            "While(1)",
            "Set(i=3)",
            "EndWhile()",
            "While(0)",
            "NoOp(done 3)",
        ],
        "fallthrough",
    ),
    (
        "ExitWhile and ContinueWhile; nested While skipped as a block",
        """
        [test]
        exten => s,1,Set(i=0)
        same => n,While(1)
        same => n,Set(i=$[${i} + 1])
        same => n,ExecIf($[${i} < 2]?ContinueWhile())
        same => n,While(0)
        same => n,NoOp(never)
        same => n,EndWhile()
        same => n,ExitWhile()
        same => n,NoOp(never)
        same => n,EndWhile()
        same => n,NoOp(out ${i})
        """,
        "test",
        "s",
        [
            "Set(i=0)",
            "While(1)",
            "Set(i=1)",
            "ExecIf(1?ContinueWhile())",
            "While(1)",
            "Set(i=2)",
            "ExecIf(0?ContinueWhile())",
            "While(0)",
            "ExitWhile()",
            "NoOp(out 2)",
        ],
        "fallthrough",
    ),
    (
        "ExecIf runs the true or the false application",
        """
        [test]
        exten => s,1,ExecIf($["a" = "a"]?Set(X=yes):Set(X=no))
        same => n,ExecIf(0?Set(Y=yes):Set(Y=no))
        same => n,ExecIf(0?Hangup())
        same => n,NoOp(${X} ${Y})
        same => n,ExecIf(1?Hangup())
        same => n,NoOp(never)
        """,
        "test",
        "s",
        [
            "ExecIf(1?Set(X=yes):Set(X=no))",
            "ExecIf(0?Set(Y=yes):Set(Y=no))",
            "ExecIf(0?Hangup())",
            "NoOp(yes no)",
            "ExecIf(1?Hangup())",
        ],
        "hangup",
    ),
    (
        "ExecIf: deprecated comma syntax, empty true branch ends the call",
        """
        [test]
        exten => s,1,ExecIf(1,Set,X=old)
        same => n,ExecIf(0,Set,X=never)
        same => n,NoOp(${X})
        same => n,ExecIf(1?:Set(Y=1))
        same => n,NoOp(never)
        """,
        "test",
        "s",
        ["ExecIf(1,Set,X=old)", "ExecIf(0,Set,X=never)", "NoOp(old)", "ExecIf(1?:Set(Y=1))"],
        "hangup",
    ),
    (
        "a missing start extension goes to i (pbx.c) with INVALID_EXTEN",
        """
        [test]
        exten => i,1,NoOp(${INVALID_EXTEN} ${EXTEN})
        """,
        "test",
        "999",
        ["NoOp(999 i)"],
        "fallthrough",
    ),
    (
        "a missing start extension without i hangs up with no step",
        """
        [test]
        exten => 100,1,NoOp(x)
        """,
        "test",
        "999",
        [],
        "invalid",
    ),
    (
        "h runs after Hangup, with the hangup cause",
        """
        [test]
        exten => s,1,Hangup(17)
        exten => h,1,NoOp(h ${HANGUPCAUSE} ${EXTEN})
        """,
        "test",
        "s",
        ["Hangup(17)", "NoOp(h 17 h)"],
        "hangup",
    ),
    (
        "an unknown application ends the call",
        """
        [test]
        exten => s,1,NoSuchApp(1)
        same => n,NoOp(never)
        """,
        "test",
        "s",
        ["NoSuchApp(1)"],
        "hangup",
    ),
    (
        "application names are case-insensitive",
        """
        [test]
        exten => s,1,noop(a)
        same => n,SET(X=1)
        same => n,NoOp(${X})
        """,
        "test",
        "s",
        ["noop(a)", "SET(X=1)", "NoOp(1)"],
        "fallthrough",
    ),
    (
        "priority fall-through to the next matching extension (Asterisk docs 6410/_641X)",
        """
        [test]
        exten => 6410,1,NoOp(literal 1)
        exten => _641X,1,NoOp(pattern 1)
        exten => _641X,2,NoOp(pattern 2 ${EXTEN})
        """,
        "test",
        "6410",
        ["NoOp(literal 1)", "NoOp(pattern 2 6410)"],
        "fallthrough",
    ),
    (
        "include => searched after the context's own extensions",
        """
        [test]
        include => more
        exten => 100,1,NoOp(own)
        [more]
        exten => 100,1,NoOp(included)
        exten => 200,1,NoOp(from include ${CONTEXT})
        """,
        "test",
        "200",
        ["NoOp(from include test)"],
        "fallthrough",
    ),
]


@pytest.mark.parametrize(
    ("text", "context", "exten", "steps", "end"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_semantics(text: str, context: str, exten: str, steps: list[str], end: str) -> None:
    result = run(text, context, exten)
    assert trace(result) == steps
    assert result.end == end


def test_autofallthrough_yes_ends_at_the_last_priority() -> None:
    result = run(
        """
        [test]
        exten => s,1,NoOp(1)
        exten => t,1,NoOp(t)
        """
    )
    assert trace(result) == ["NoOp(1)"]
    assert result.end == "fallthrough"


def test_autofallthrough_no_waits_then_goes_to_t_again_and_again() -> None:
    # pbx.c: with autofallthrough=no a channel past its last priority waits for digits;
    # a timeout goes to t, and t's own end waits again: only the caller (or the guard) ends it.
    result = run(
        """
        [general]
        autofallthrough=no
        [test]
        exten => s,1,NoOp(1)
        exten => t,1,NoOp(t)
        """,
        max_steps=5,
    )
    assert trace(result) == ["NoOp(1)", "NoOp(t)", "NoOp(t)", "NoOp(t)", "NoOp(t)"]
    assert result.end == "loop"


def test_autofallthrough_no_without_t_times_out() -> None:
    result = run(
        """
        [general]
        autofallthrough=no
        [test]
        exten => s,1,NoOp(1)
        """
    )
    assert result.end == "timeout"
    assert any("no rule 't'" in m for m in result.log)
    assert any(a.startswith("read") for a in result.actions)


def test_autofallthrough_no_routes_dialled_digits() -> None:
    result = run(
        """
        [general]
        autofallthrough=no
        [test]
        exten => s,1,NoOp(1)
        exten => 42,1,Hangup()
        """,
        digits="42",
    )
    assert trace(result) == ["NoOp(1)", "Hangup()"]


@pytest.mark.parametrize(
    ("dialstatus", "cause", "indication"),
    [
        ("BUSY", 17, "indicate busy"),
        ("CONGESTION", 34, "indicate congestion"),
        ("CHANUNAVAIL", 34, "indicate congestion"),
        ("NOANSWER", 16, None),
    ],
)
def test_autofallthrough_signals_by_dialstatus(
    dialstatus: str, cause: int, indication: str | None
) -> None:
    result = run(
        """
        [test]
        exten => s,1,Dial(SIP/1000,20)
        """,
        dialstatus=dialstatus,
    )
    assert result.end == "fallthrough"
    assert result.hangup_cause == cause
    if indication:
        assert indication in result.actions
    assert any(f"status is '{dialstatus}'" in m for m in result.log)


def test_loop_guard_bounds_a_runaway_plan() -> None:
    result = run(
        """
        [test]
        exten => s,1,NoOp(spin)
        same => n,Goto(1)
        """,
        max_steps=50,
    )
    assert result.end == "loop"
    assert len(result.steps) == 50
    assert any("loop guard" in m for m in result.log)


def test_h_extension_is_bounded_too() -> None:
    result = run(
        """
        [test]
        exten => s,1,Hangup()
        exten => h,1,Goto(1)
        """,
        max_steps=20,
    )
    assert len(result.steps) == 20


def test_builtin_variables() -> None:
    result = run(
        """
        [test]
        exten => 100,1,NoOp(${EXTEN}|${CONTEXT}|${PRIORITY}|${CHANNEL}|${UNIQUEID}|${EPOCH})
        same => n,NoOp(${CALLERID(num)}|${CALLERID(name)}|${HANGUPCAUSE}|${DIALSTATUS})
        """,
        "test",
        "100",
        callerid="2000",
    )
    first, second = (s.args for s in result.steps)
    assert first == f"100|test|1|Local/dryrun-00000001|1.1|{int(EPOCH)}"
    assert second == "2000||0|"


def test_channel_then_global_variables_and_globals_substituted() -> None:
    result = run(
        """
        [globals]
        A=one
        B=${A}-two
        [test]
        exten => s,1,NoOp(${A} ${B})
        same => n,Set(A=chan)
        same => n,NoOp(${A} ${GLOBAL(A)})
        same => n,Set(GLOBAL(C)=new)
        same => n,NoOp(${C})
        """
    )
    assert [s.args for s in result.steps if s.app == "NoOp"] == ["one one-two", "chan one", "new"]


@pytest.mark.parametrize(("clear", "kept"), [("no", "kept"), ("yes", "")])
def test_reload_keeps_or_clears_globals(clear: str, kept: str) -> None:
    text = f"""
    [general]
    clearglobalvars={clear}
    [globals]
    A=1
    """
    store = GlobalVars()
    store.load(plan(text))
    store.values["RUNTIME"] = "kept"
    store.load(plan(text))
    assert store.values.get("RUNTIME", "") == kept
    assert store.values["A"] == "1"


def test_channel_variable_inheritance_markers() -> None:
    v = ChannelVars()
    v.set("_ONE", "1")
    v.set("__ALL", "2")
    v.set("MINE", "3")
    assert v.get("ONE") == "1"
    assert v.get("ALL") == "2"
    assert v.inherited() == {"ONE": "1", "__ALL": "2"}
    child = ChannelVars(v.inherited())
    assert child.inherited() == {"__ALL": "2"}
    v.set("ONE", "plain")  # setting without marker replaces and stops inheritance
    assert v.inherited() == {"__ALL": "2"}
    assert sorted(v.items()) == [("MINE", "3"), ("ONE", "plain"), ("__ALL", "2")]


def test_variables_passed_in_are_visible() -> None:
    result = run(
        """
        [test]
        exten => s,1,NoOp(${FOO})
        """,
        variables={"FOO": "bar"},
    )
    assert result.steps[0].args == "bar"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", False),
        ("0", False),
        ("1", True),
        ("-1", True),
        ("abc", True),
        ("00", False),
        (" 2", True),
        ("0.5", False),
        ("1abc", True),
    ],
)
def test_check_condition_is_pbx_checkcondition(text: str, expected: bool) -> None:
    assert check_condition(text) is expected


def test_neutralize_round_trip_keeps_safe_text() -> None:
    assert neutralize("18002223333") == "18002223333"
    hostile = "123&SIP/900@evil,r"
    n = neutralize(hostile)
    assert len(n) == len(hostile)
    assert not any(c in n for c in "&/@,")
    assert reveal(n) == hostile


def _registry_with(name: str, handler: object) -> Registry:
    reg = Registry(apps=dict(REGISTRY.apps), functions=dict(REGISTRY.functions))
    application(name, registry=reg)(handler)  # type: ignore[arg-type]
    return reg


def test_an_application_raising_never_escapes_run() -> None:
    async def boom(x: Execution, data: str) -> AppResult:
        raise RuntimeError("bug in an app")

    reg = _registry_with("Boom", boom)
    channel = RecordingChannel()
    dp = plan(
        """
        [test]
        exten => s,1,Boom()
        same => n,NoOp(never)
        exten => h,1,NoOp(h runs)
        """
    )
    steps: list[str] = []
    ex = Execution(
        dp,
        channel,
        context="test",
        exten="s",
        registry=reg,
        clock=lambda: EPOCH,
        rng=random.Random(0),
        on_step=lambda s: steps.append(s.app),
    )
    end = asyncio.run(ex.run())
    assert end == "hangup"
    assert steps == ["Boom", "NoOp"]
    assert any("bug in an app" in m for m in ex.messages)
    assert channel.hung_up


def test_wait_goes_through_the_channel_sleep() -> None:
    result = run(
        """
        [test]
        exten => s,1,Wait(2.5)
        same => n,Wait(bad)
        same => n,Answer()
        """
    )
    assert result.actions[:2] == ["wait 2.5", "answer"]


# --- property: any plan built from the built-in applications terminates without raising ------

_APPS = [
    "NoOp",
    "Set",
    "Goto",
    "GotoIf",
    "Gosub",
    "GosubIf",
    "Return",
    "Macro",
    "MacroExit",
    "ExecIf",
    "While",
    "EndWhile",
    "ExitWhile",
    "ContinueWhile",
    "Wait",
    "WaitExten",
    "Hangup",
    "Dial",
    "Playback",
    "Background",
    "Read",
    "SayNumber",
    "Busy",
    "Verbose",
    "MSet",
    "GotoIfTime",
    "Answer",
    "NoSuchApp",
    "Exec",
    "TryExec",
    "ExecIfTime",
    "MacroIf",
    "RaiseException",
    "ClearHash",
]
_ARGS = st.sampled_from(
    [
        "",
        "1",
        "s,1",
        "x,s,1",
        "lbl",
        "+1",
        "-1",
        "$[1+1]",
        "${X}",
        "X=${LEN(${X})}1",
        "1?lbl:2",
        "0?s,1",
        "macro-m",
        "m,a,b",
        "sub,s,1(a,b)",
        "1?Set(X=1)",
        "SIP/1&SIP/2,5",
        "${CUT(X,,1)}",
        "${NOSUCH(",
        "$[",
        "(",
        ")",
        "x&y",
        "*,*,*,*?lbl",
    ]
)


@st.composite
def _plans(draw: st.DrawFn) -> str:
    lines = ["[test]"]
    for ctx in ("test", "sub", "macro-m", "x"):
        if ctx != "test":
            lines.append(f"[{ctx}]")
        for n in range(draw(st.integers(0, 6))):
            app = draw(st.sampled_from(_APPS))
            label = "(lbl)" if draw(st.booleans()) else ""
            prio = "1" if n == 0 else "n"
            lines.append(f"exten => s,{prio}{label},{app}({draw(_ARGS)})")
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_plans(), digits=st.sampled_from(["", "1", "s#"]))
def test_any_plan_terminates_without_raising(text: str, digits: str) -> None:
    result = run(text, digits=digits, max_steps=200)
    assert result.end in {"hangup", "invalid", "fallthrough", "timeout", "loop"}
    assert len(result.steps) <= 201 + 200  # main run and h are each bounded
    assert not [m for m in result.log if "failed: " in m]


def test_goto_ignores_fields_after_a_third_comma() -> None:
    result = run(
        """
        [test]
        exten => s,1,Goto(test,100,1,ignored)
        exten => 100,1,NoOp(there)
        """
    )
    assert trace(result) == ["Goto(test,100,1,ignored)", "NoOp(there)"]


class _HangsUpDuringWait(RecordingChannel):
    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        self.hung_up = True  # the caller hung up while we waited
        self.hangup_cause = 17  # ... with USER_BUSY


def test_caller_hangup_stops_the_plan_and_runs_h() -> None:
    channel = _HangsUpDuringWait()
    steps: list[str] = []
    dp = plan(
        """
        [test]
        exten => s,1,Answer()
        same => n,Wait(10)
        same => n,NoOp(never)
        exten => h,1,NoOp(cleanup ${HANGUPCAUSE})
        """
    )
    ex = Execution(
        dp,
        channel,
        context="test",
        exten="s",
        clock=lambda: EPOCH,
        rng=random.Random(0),
        on_step=lambda s: steps.append(f"{s.exten}:{s.app}({s.args})"),
    )
    assert asyncio.run(ex.run()) == "hangup"
    assert steps == ["s:Answer()", "s:Wait(10)", "h:NoOp(cleanup 17)"]


@pytest.mark.parametrize(
    ("start", "digits", "expected"),
    [
        ("999", "", "NoOp(INVALID 999 test)"),  # invalid extension, no i: e
        ("s", "", "NoOp(RESPONSETIMEOUT s test)"),  # WaitExten timed out, no t: e
    ],
)
def test_e_extension_catches_exceptions(start: str, digits: str, expected: str) -> None:
    result = run(
        """
        [test]
        exten => s,1,WaitExten(1)
        exten => e,1,NoOp(${EXCEPTION(reason)} ${EXCEPTION(exten)} ${EXCEPTION(context)})
        """,
        "test",
        start,
        digits=digits,
    )
    assert trace(result)[-1] == expected


def test_exec_substitutes_again_and_tryexec_never_ends_the_call() -> None:
    result = run(
        """
        [test]
        exten => s,1,Exec(Set(X=${INNER}))
        same => n,TryExec(NoSuchApp(1))
        same => n,NoOp(${TRYSTATUS})
        same => n,TryExec(Set(Y=2))
        same => n,NoOp(${X} ${Y} ${TRYSTATUS})
        """,
        variables={"INNER": "${EXTEN}"},
    )
    assert trace(result) == [
        "Exec(Set(X=${EXTEN}))",
        "TryExec(NoSuchApp(1))",
        "NoOp(NOAPP)",
        "TryExec(Set(Y=2))",
        "NoOp(s 2 SUCCESS)",
    ]


def test_recording_channel_offers_the_channel_api() -> None:
    assert isinstance(RecordingChannel(), ChannelApi)


def test_macro_details_follow_app_macro() -> None:
    result = run(
        """
        [macro-show]
        exten => s,1,NoOp([${ARG1}] [${ARG2}] [${ARG3}] depth=${MACRO_DEPTH})
        same => n,Set(MACRO_OFFSET=10)
        [macro-loop]
        exten => s,1,Macro(loop)
        [test]
        exten => s,1,Set(ARG3=outer3)
        same => n,Macro(show,"a,b")
        same => n,NoOp(not skipped: offset target missing)
        same => n,MacroIf(1?show,t:show,f)
        same => n,MacroIf(0?show,t)
        same => n,Macro(nosuch)
        same => n,Set(MACRO_RECURSION=3)
        same => n,Macro(loop)
        same => n,NoOp(${ARG3} depth=${MACRO_DEPTH})
        """
    )
    noop_args = [s.args for s in result.steps if s.app == "NoOp"]
    assert noop_args == [
        '["a] [b"] [outer3] depth=1',  # split at every comma; ARG3 passes through
        "not skipped: offset target missing",
        "[t] [] [outer3] depth=1",
        "outer3 depth=0",
    ]
    assert [s.app for s in result.steps].count("Macro") == 2 + 1 + 3  # show, nosuch, loop x3
    assert any("No such context 'macro-nosuch'" in m for m in result.log)
    assert any("possible infinite loop" in m for m in result.log)


def test_macro_offset_skips_priorities_when_the_target_exists() -> None:
    result = run(
        """
        [macro-skip]
        exten => s,1,Set(MACRO_OFFSET=2)
        [test]
        exten => s,1,Macro(skip)
        same => n,NoOp(skipped 1)
        same => n,NoOp(skipped 2)
        same => n,NoOp(landed ${MACRO_OFFSET})
        """
    )
    assert [s.args for s in result.steps if s.app == "NoOp"] == ["landed "]


def test_gosub_masks_the_callers_args_and_local_is_frame_scoped() -> None:
    result = run(
        """
        [test]
        exten => s,1,Set(LOCAL(X)=outside)
        same => n,Gosub(one,s,1(a,b,c))
        same => n,NoOp(back [${ARG1}] [${X}] [${Y}])
        [one]
        exten => s,1,Set(LOCAL(Y)=mine)
        same => n,Gosub(two,s,1(z))
        same => n,Return()
        [two]
        exten => s,1,NoOp([${ARG1}] [${ARG2}] [${ARG3}] ${ARGC} [${LOCAL(Y)}] [${Y}])
        same => n,Return()
        """
    )
    assert [s.args for s in result.steps if s.app == "NoOp"] == [
        "[z] [] [] 1 [] [mine]",  # ARG2/ARG3 of the caller are masked; Y is one's local
        "back [] [] []",
    ]
    assert any("aren't within a Gosub routine" in m for m in result.log)


def test_execution_can_share_the_channels_variable_store() -> None:
    store = ChannelVars({"_FROM": "call"})
    dp = plan("[test]\nexten => s,1,Set(NEW=${FROM})\n")
    ex = Execution(
        dp,
        RecordingChannel(),
        context="test",
        exten="s",
        variables=store,
        clock=lambda: EPOCH,
        rng=random.Random(0),
    )
    asyncio.run(ex.run())
    assert store.get("NEW") == "call"


def test_while_without_endwhile_warns_and_goes_on() -> None:
    result = run(
        """
        [test]
        exten => s,1,While(0)
        same => n,NoOp(next)
        """
    )
    assert trace(result) == ["While(0)", "NoOp(next)"]
    assert any("Couldn't find matching EndWhile" in m for m in result.log)


def test_hangup_handlers_run_after_h_last_pushed_first() -> None:
    result = run(
        """
        [test]
        exten => s,1,Set(CHANNEL(hangup_handler_push)=hh,s,1(first))
        same => n,Set(CHANNEL(hangup_handler_push)=hh,s,1(second))
        same => n,Set(CHANNEL(hangup_handler_push)=hh,s,1(dropped))
        same => n,Set(CHANNEL(hangup_handler_pop)=)
        same => n,Hangup(17)
        exten => h,1,NoOp(h)
        [hh]
        exten => s,1,NoOp(handler ${ARG1} ${HANGUPCAUSE})
        same => n,Return()
        """
    )
    assert [s.args for s in result.steps if s.app == "NoOp"] == [
        "h",
        "handler second 17",
        "handler first 17",
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("s, 2", "NoOp(two)"),  # sscanf skips the blank before a priority number
        ("s ,2", None),  # but "s " is another extension: invalid, no i, hang up
        ("s,two", "NoOp(two)"),
        ("s, two", None),  # " two" is not the label
    ],
)
def test_goto_parts_are_not_trimmed(spec: str, expected: str | None) -> None:
    result = run(
        f"""
        [test]
        exten => s,1,Goto({spec})
        same => n(two),NoOp(two)
        """
    )
    after = trace(result)[1:]
    assert after == ([expected] if expected else [])
