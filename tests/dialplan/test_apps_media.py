"""Media applications parse their arguments, answer when Asterisk would, ask the channel for
the right sounds and set their status variables (app_playback.c, Background in
pbx_builtins.c, app_read.c, app_echo.c, say.c English rules, indications)."""

from __future__ import annotations

import random
import textwrap
from datetime import UTC, datetime

import pytest

from pypbx.config.conf import parse_text
from pypbx.dialplan.apps.say import digit_files, number_files, time_files
from pypbx.dialplan.dryrun import DryRunResult, dry_run
from pypbx.dialplan.parser import parse_dialplan

EPOCH = 1_700_000_000.0  # Tue 2023-11-14 22:13:20 UTC


def run(lines: str, **kw: object) -> DryRunResult:
    text = "[test]\n" + textwrap.dedent(lines)
    dp = parse_dialplan(parse_text(text, "extensions.conf"))
    return dry_run(  # type: ignore[arg-type]
        dp, "test", "s", clock=lambda: EPOCH, rng=random.Random(0), tz=UTC, **kw
    )


@pytest.mark.parametrize(
    ("line", "actions"),
    [
        ("Playback(hello-world)", ["answer", "play hello-world"]),
        ("Playback(a&b&c)", ["answer", "play a&b&c"]),
        ("Playback(tt-monkeys,noanswer)", ["play tt-monkeys"]),
        ("Playback(tt-monkeys,skip)", []),
        ("Echo()", ["echo"]),
        ("PlayTones(busy)", ["tones busy"]),
        ("PlayTones(440+480/2000,0/4000)", ["tones 440+480/2000,0/4000"]),
        ("StopPlayTones()", ["tones off"]),
        ("SayDigits(12#)", ["play digits/1&digits/2&digits/pound"]),
        ("SayNumber(123)", ["play digits/1&digits/hundred&digits/20&digits/3"]),
        ("SayAlpha(ab1)", ["play letters/a&letters/b&digits/1"]),
    ],
)
def test_media_actions(line: str, actions: list[str]) -> None:
    result = run(f"exten => s,1,{line}\n")
    assert result.actions[: len(actions)] == actions
    assert result.actions[len(actions)].startswith("hangup")


def test_playback_sets_status_and_requires_a_file() -> None:
    ok = run("exten => s,1,Playback(x)\nsame => n,NoOp(${PLAYBACKSTATUS})\n")
    assert ok.steps[-1].args == "SUCCESS"
    bad = run("exten => s,1,Playback()\nsame => n,NoOp(never)\n")
    assert bad.end == "hangup"
    assert len(bad.steps) == 1


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("", ["Background(menu)", "NoOp(no choice)"]),
        ("1", ["Background(menu)", "NoOp(one)"]),
        ("12", ["Background(menu)", "NoOp(twelve)"]),
        ("7", ["Background(menu)", "NoOp(bad 7)"]),
    ],
)
def test_background_dials_an_extension(digits: str, expected: list[str]) -> None:
    result = run(
        """
        exten => s,1,Background(menu)
        same => n,NoOp(no choice)
        exten => 1,1,NoOp(one)
        exten => 12,1,NoOp(twelve)
        exten => i,1,NoOp(bad ${INVALID_EXTEN})
        """,
        digits=digits,
    )
    assert [f"{s.app}({s.args})" for s in result.steps] == expected


@pytest.mark.parametrize(
    ("data", "digits", "value", "status"),
    [
        ("PIN,enter-pin,4", "1234", "1234", "OK"),
        ("PIN,enter-pin,4", "123456", "1234", "OK"),
        ("PIN,,", "55#9", "55", "OK"),
        ("PIN,enter-pin", "", "", "TIMEOUT"),
        ("PIN,,,t(*)", "12*3", "12", "OK"),
        ("PIN,,,t()", "12#3", "12#3", "OK"),
    ],
)
def test_read(data: str, digits: str, value: str, status: str) -> None:
    result = run(
        f"""
        exten => s,1,Read({data})
        same => n,NoOp([${{PIN}}] ${{READSTATUS}})
        """,
        digits=digits,
    )
    assert result.steps[-1].args == f"[{value}] {status}"


@pytest.mark.parametrize(
    ("n", "files"),
    [
        (0, ["digits/0"]),
        (7, ["digits/7"]),
        (15, ["digits/15"]),
        (40, ["digits/40"]),
        (-21, ["digits/minus", "digits/20", "digits/1"]),
        (1005, ["digits/1", "digits/thousand", "digits/5"]),
        (2_000_000, ["digits/2", "digits/million"]),
    ],
)
def test_number_files(n: int, files: list[str]) -> None:
    assert number_files(n) == files


def test_digit_files_skip_unknown_characters() -> None:
    assert digit_files("1*a-") == ["digits/1", "digits/star", "digits/minus"]


def test_time_files_default_format() -> None:
    when = datetime(2023, 11, 14, 22, 5, tzinfo=UTC)
    assert time_files(when, "ABdY 'digits/at' IMp") == [
        "digits/day-2",
        "digits/mon-10",
        "digits/h-14",
        "digits/2",
        "digits/thousand",
        "digits/20",
        "digits/3",
        "digits/at",
        "digits/10",
        "digits/oh",
        "digits/5",
        "digits/p-m",
    ]


def test_sayunixtime_uses_injected_clock() -> None:
    result = run("exten => s,1,SayUnixTime(,UTC,HM)\n")
    assert result.actions[0] == "play digits/20&digits/2&digits/13"


@pytest.mark.parametrize(
    ("line", "actions", "end"),
    [
        ("Background(x,noanswer)", ["play x"], "fallthrough"),  # "noanswer" is not "s"
        ("Background(x,skip)", [], "fallthrough"),
        ("Background(x,n)", ["play x"], "fallthrough"),
        ("SayNumber(12abc)", ["play digits/12"], "fallthrough"),
        ("SayNumber(3,f)", ["play digits/3"], "fallthrough"),
        ("SayNumber(3,x)", [], "hangup"),
        ("SayNumber(abc)", [], "fallthrough"),
        ("SayNumber()", [], "hangup"),
        ("SayDigits(1,2)", ["play digits/1&digits/2"], "fallthrough"),
    ],
)
def test_argument_edge_cases(line: str, actions: list[str], end: str) -> None:
    result = run(f"exten => s,1,{line}\n")
    assert [a for a in result.actions if not a.startswith("hangup")] == actions
    assert result.end == end


def test_background_in_a_macro_dials_in_the_callers_context() -> None:
    result = run(
        """
        exten => s,1,Macro(menu)
        exten => 5,1,NoOp(caller's five)
        [macro-menu]
        exten => s,1,Background(menu)
        exten => 5,1,NoOp(macro's five)
        """,
        digits="5",
    )
    assert result.steps[-1].args == "caller's five"


@pytest.mark.parametrize(
    ("options", "status", "answered"),
    [("s", "SKIPPED", False), ("n", "TIMEOUT", False), ("", "TIMEOUT", True)],
)
def test_read_answers_unless_told(options: str, status: str, answered: bool) -> None:
    result = run(
        f"""
        exten => s,1,Read(PIN,,4,{options})
        same => n,NoOp(${{READSTATUS}})
        """
    )
    assert result.steps[-1].args == status
    assert ("answer" in result.actions) is answered
