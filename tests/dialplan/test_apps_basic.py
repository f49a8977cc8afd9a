"""Basic applications (Asterisk main/pbx_builtins.c, pbx_variables.c): Answer, Hangup,
NoOp, Verbose, Log, Set, MSet, Wait, WaitExten, Busy, Congestion, Progress, Ringing,
GotoIfTime."""

from __future__ import annotations

import random
import textwrap
from datetime import UTC

import pytest

from pypbx.config.conf import parse_text
from pypbx.dialplan.dryrun import DryRunResult, dry_run
from pypbx.dialplan.parser import parse_dialplan

EPOCH = 1_700_000_000.0  # Tue 2023-11-14 22:13:20 UTC


def run(lines: str, *, exten: str = "s", **kw: object) -> DryRunResult:
    text = "[test]\n" + textwrap.dedent(lines)
    dp = parse_dialplan(parse_text(text, "extensions.conf"))
    return dry_run(  # type: ignore[arg-type]
        dp, "test", exten, clock=lambda: EPOCH, rng=random.Random(0), tz=UTC, **kw
    )


def noops(result: DryRunResult) -> list[str]:
    return [s.args for s in result.steps if s.app.lower() == "noop"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("", 16),  # no cause: normal clearing when the call ends
        ("17", 17),
        ("21abc", 21),  # sscanf("%d")
        ("USER_BUSY", 17),
        ("user_busy", 17),  # ast_str2cause: case-insensitive
        ("NORMAL_CIRCUIT_CONGESTION", 34),
        ("no_answer_please", 19),  # ... and a prefix compare
        ("busy", 16),  # AST_CAUSE_BUSY is a C alias, not a name in the table: invalid
        ("CONGESTION", 16),
        ("AST_CAUSE_NO_ANSWER", 16),
        ("nonsense", 16),  # warned about, ignored
        ("0", 16),
    ],
)
def test_hangup_cause(data: str, expected: int) -> None:
    result = run(
        f"""
        exten => s,1,Hangup({data})
        same => n,NoOp(never)
        """
    )
    assert result.hangup_cause == expected
    assert result.end == "hangup"
    assert noops(result) == []


def test_hangup_with_bad_cause_logs() -> None:
    result = run("exten => s,1,Hangup(nonsense)\n")
    assert any("Invalid cause given to Hangup()" in m for m in result.log)


@pytest.mark.parametrize(
    ("app", "cause", "action"),
    [("Busy", 17, "indicate busy"), ("Congestion", 34, "indicate congestion")],
)
def test_busy_and_congestion_end_the_call(app: str, cause: int, action: str) -> None:
    result = run(
        f"""
        exten => s,1,{app}(3)
        same => n,NoOp(never)
        """
    )
    assert result.hangup_cause == cause
    assert result.actions[:2] == [action, "wait 3"]
    assert noops(result) == []


def test_progress_ringing_answer() -> None:
    result = run(
        """
        exten => s,1,Progress()
        same => n,Ringing()
        same => n,Answer(500)
        same => n,Answer()
        """
    )
    assert result.actions[:4] == ["indicate progress", "indicate ringing", "answer", "wait 0.5"]
    assert result.actions.count("answer") == 1  # a second Answer does nothing


@pytest.mark.parametrize(
    ("assignment", "name", "value"),
    [
        ("X=1", "X", "1"),
        ("X=a,b,c", "X", "a,b,c"),  # 1.6+: the value keeps commas
        ("X=a=b", "X", "a=b"),
        ("X=", "X", ""),
        ('X="quoted"', "X", '"quoted"'),
    ],
)
def test_set(assignment: str, name: str, value: str) -> None:
    result = run(f"exten => s,1,Set({assignment})\n")
    assert result.variables[name] == value


def test_set_without_equals_warns_and_sets_nothing() -> None:
    result = run("exten => s,1,Set(novalue)\n")
    assert "novalue" not in result.variables
    assert any("Set requires" in m for m in result.log)


def test_set_inheritance_markers_are_kept() -> None:
    result = run(
        """
        exten => s,1,Set(_ONE=1)
        same => n,Set(__ALL=2)
        same => n,NoOp(${ONE} ${ALL} ${_ONE})
        """
    )
    assert result.variables["_ONE"] == "1"
    assert result.variables["__ALL"] == "2"
    assert noops(result) == ["1 2 1"]


def test_mset_unquotes_like_application_arguments() -> None:
    result = run('exten => s,1,MSet(A=1,B="two, three",C)\n')
    assert result.variables["A"] == "1"
    assert result.variables["B"] == "two, three"
    assert "C" not in result.variables


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("Verbose(hello)", "INFO: hello"),
        ("Verbose(2,hello)", "INFO: hello"),
        ("Verbose(2,a,b)", "INFO: a,b"),  # the message is the unsplit rest
        ("Verbose(a,b)", "WARNING: 'a' is not a verboser number"),
        ("Log(LOUD,x)", "WARNING: Unknown log level: LOUD"),
        ("Log(WARNING,disk)", "WARNING: disk"),
        ("Log(ERROR,bad thing)", "ERROR: bad thing"),
        ("Log(NOTICE,fyi)", "INFO: fyi"),
    ],
)
def test_verbose_and_log(line: str, text: str) -> None:
    result = run(f"exten => s,1,{line}\n")
    assert text in result.log


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("42", ["WaitExten(5)", "NoOp(42)"]),
        ("43", ["WaitExten(5)", "NoOp(invalid 43)"]),
        ("99", ["WaitExten(5)", "NoOp(invalid 9)"]),  # no extension starts with 9: stop at once
        ("", ["WaitExten(5)", "NoOp(timeout)"]),
    ],
)
def test_waitexten_routes_digits_i_and_t(digits: str, expected: list[str]) -> None:
    result = run(
        """
        exten => s,1,WaitExten(5)
        exten => 42,1,NoOp(42)
        exten => i,1,NoOp(invalid ${INVALID_EXTEN})
        exten => t,1,NoOp(timeout)
        """,
        digits=digits,
    )
    assert [f"{s.app}({s.args})" for s in result.steps] == expected
    assert result.actions[0] == "read max=1 timeout=5"


def test_waitexten_timeout_continues_when_a_next_priority_exists() -> None:
    result = run(
        """
        exten => s,1,WaitExten(1)
        same => n,NoOp(next)
        exten => t,1,NoOp(t)
        """
    )
    assert [s.args for s in result.steps] == ["1", "next"]
    assert any("continuing..." in m for m in result.log)


def test_waitexten_timeout_without_t_hangs_up() -> None:
    result = run(
        """
        exten => s,1,WaitExten(1)
        """
    )
    assert result.end == "hangup"
    assert any("no rule 't'" in m for m in result.log)


@pytest.mark.parametrize(
    ("spec", "branch"),
    [
        ("22:00-23:59,*,*,*", "in"),
        ("09:00-17:00,mon-fri,*,*", "out"),
        ("*,tue,*,*", "in"),
        ("*,*,1-13,*", "out"),
        ("*,*,14,nov", "in"),
        ("*,*,*,dec", "out"),
        ("17:00-17:30,*,*,*,America/New_York", "in"),  # 22:13 UTC is 17:13 in New York
        ("22:00-23:00,*,*,*,America/New_York", "out"),
    ],
)
def test_gotoiftime(spec: str, branch: str) -> None:
    result = run(
        f"""
        exten => s,1,GotoIfTime({spec}?in:out)
        same => n(in),NoOp(in)
        same => n,Hangup()
        same => n(out),NoOp(out)
        """
    )
    assert noops(result)[0] == branch


def test_gotoiftime_bad_spec_takes_the_false_branch() -> None:
    result = run(
        """
        exten => s,1,GotoIfTime(25:99-xx,*,*,*?in)
        same => n,NoOp(next)
        same => n(in),NoOp(in)
        """
    )
    assert noops(result) == ["next", "in"]  # a spec Asterisk cannot build: the false branch
    assert any("Invalid time specification" in m for m in result.log)


def test_clearhash_removes_only_that_hash() -> None:
    result = run(
        """
        exten => s,1,Set(HASH(a,x)=1)
        same => n,Set(HASH(a,y)=2)
        same => n,Set(HASH(b,x)=3)
        same => n,ClearHash(a)
        same => n,NoOp([${HASHKEYS(a)}] [${HASH(b,x)}])
        """
    )
    assert noops(result) == ["[] [3]"]


@pytest.mark.parametrize(("testtime", "branch"), [("1700000000", "in"), ("1700006400", "out")])
def test_gotoiftime_uses_testtime(testtime: str, branch: str) -> None:
    result = run(
        f"""
        exten => s,1,Set(TESTTIME={testtime})
        same => n,GotoIfTime(22:00-22:59,*,*,*?in:out)
        same => n(in),NoOp(in)
        same => n,Hangup()
        same => n(out),NoOp(out)
        """
    )
    assert noops(result) == [branch]


def test_execiftime_raiseexception_proceeding() -> None:
    result = run(
        """
        exten => s,1,ExecIfTime(*,*,*,*?Set(A=yes))
        same => n,ExecIfTime(*,*,*,dec?Set(B=yes))
        same => n,Proceeding()
        same => n,RaiseException(CUSTOM)
        exten => e,1,NoOp(${A} [${B}] ${EXCEPTION(reason)})
        """
    )
    assert noops(result) == ["yes [] CUSTOM"]
    assert "indicate proceeding" in result.actions


def test_busy_on_an_answered_channel_keeps_the_cause() -> None:
    result = run(
        """
        exten => s,1,Answer()
        same => n,Busy()
        """
    )
    assert result.hangup_cause == 16
