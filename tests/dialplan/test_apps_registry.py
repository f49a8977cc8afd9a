"""The application/function registries and what ``core show applications``/``functions``
read from them (Asterisk pbx_app.c, pbx_functions.c)."""

from __future__ import annotations

import textwrap

import pytest

from pypbx.config.conf import parse_text
from pypbx.dialplan.interpreter import Execution, check_dialplan, load_builtins
from pypbx.dialplan.parser import parse_dialplan
from pypbx.dialplan.registry import AppResult, Flag, Registry, application, function

ISSUE4_APPS = [
    "Answer",
    "Hangup",
    "NoOp",
    "Verbose",
    "Log",
    "Set",
    "MSet",
    "Goto",
    "GotoIf",
    "GotoIfTime",
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
    "Busy",
    "Congestion",
    "Progress",
    "Ringing",
    "Playback",
    "Background",
    "Echo",
    "Read",
    "SayDigits",
    "SayNumber",
    "SayUnixTime",
    "PlayTones",
    "StopPlayTones",
    "Dial",
]
ISSUE4_FUNCTIONS = [
    "GLOBAL",
    "CALLERID",
    "LEN",
    "CUT",
    "IF",
    "IFTIME",
    "ISNULL",
    "EXISTS",
    "SET",
    "STRFTIME",
    "RAND",
    "REGEX",
    "FIELDQTY",
    "FILTER",
    "STRREPLACE",
    "SHIFT",
    "POP",
    "PUSH",
    "TOUPPER",
    "TOLOWER",
    "MATH",
    "HASH",
    "DIALPLAN_EXISTS",
    "DB",
    "DB_EXISTS",
    "DB_DELETE",
    "CHANNEL",
    "HANGUPCAUSE",
]


@pytest.mark.parametrize("name", ISSUE4_APPS)
def test_every_issue4_application_is_registered_with_a_synopsis(name: str) -> None:
    reg = load_builtins()
    entry = reg.app(name)
    assert entry is not None
    assert entry.name == name
    assert entry.synopsis
    assert entry.syntax.startswith(name + "(")


@pytest.mark.parametrize("name", ISSUE4_FUNCTIONS)
def test_every_issue4_function_is_registered(name: str) -> None:
    entry = load_builtins().function(name)
    assert entry is not None
    assert entry.synopsis


@pytest.mark.parametrize("name", ["GLOBAL", "CALLERID", "DB", "HASH", "CHANNEL", "PUSH", "LOCAL"])
def test_settable_functions_have_writers(name: str) -> None:
    entry = load_builtins().function(name)
    assert entry is not None
    assert entry.writer_fn is not None


@pytest.mark.parametrize("spelling", ["dial", "DIAL", "Dial", " goto "])
def test_application_lookup_is_case_insensitive(spelling: str) -> None:
    assert load_builtins().app(spelling) is not None


def test_function_lookup_is_case_sensitive() -> None:
    reg = load_builtins()
    assert reg.function("LEN") is not None
    assert reg.function("len") is None


def test_flags_mark_applications_that_need_a_call() -> None:
    reg = load_builtins()
    dial = reg.app("Dial")
    noop = reg.app("NoOp")
    assert dial is not None
    assert noop is not None
    assert Flag.NEEDS_CALL in dial.flags
    assert Flag.NEEDS_CALL not in noop.flags


def test_show_texts() -> None:
    reg = load_builtins()
    apps = reg.show_applications()
    assert apps.splitlines()[0] == "    -= Registered Asterisk Applications =-"
    assert f"-= {len(reg.apps)} Applications Registered =-" in apps
    assert "                  Dial: Attempt to connect to another device" in apps
    one = reg.show_application("dial")
    assert one is not None
    assert "[Synopsis]" in one
    assert "[Syntax]\nDial(Technology/Resource" in one
    assert reg.show_application("NoSuchApp") is None
    funcs = reg.show_functions()
    assert "CALLERID              CALLERID(datatype)                   Caller id" in funcs
    assert f"{len(reg.functions)} custom functions installed." in funcs
    gl = reg.show_function("GLOBAL")
    assert gl is not None
    assert "read/write" in gl
    assert reg.show_function("nope") is None


def test_a_private_registry_and_duplicate_names() -> None:
    reg = Registry()

    @application("Hello", registry=reg)
    async def hello(x: Execution, data: str) -> AppResult:
        """Say hello.

        Longer text."""
        return AppResult.CONTINUE

    entry = reg.app("HELLO")
    assert entry is not None
    assert entry.synopsis == "Say hello."
    assert entry.description == "Longer text."
    with pytest.raises(ValueError, match="registered twice"):
        application("hello", registry=reg)(hello)

    @function("F", registry=reg)
    def f(x: Execution, args: str) -> str:
        """F."""
        return args

    with pytest.raises(ValueError, match="registered twice"):
        function("F", registry=reg)(f.reader)  # type: ignore[arg-type]


def test_check_dialplan_warns_about_unknown_applications() -> None:
    dp = parse_dialplan(
        parse_text(
            textwrap.dedent(
                """
                [test]
                exten => s,1,Answer()
                same => n,VoiceMail(100@default)
                same => n,AGI(script.agi)
                """
            ),
            "extensions.conf",
        )
    )
    warnings = check_dialplan(dp)
    assert [w.kind for w in warnings] == ["unknown-application"] * 2
    assert "VoiceMail" in warnings[0].message
    assert str(warnings[0].origin).endswith(":4")
