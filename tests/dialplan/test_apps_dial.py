"""Dial: argument parsing, the DIALSTATUS contract, and the EXTEN injection guard
(Asterisk apps/app_dial.c; pypbx issue 9 item 2)."""

from __future__ import annotations

import asyncio
import random
import textwrap
from datetime import UTC

import pytest

from pypbx.config.conf import parse_text
from pypbx.dialplan.apps.dial import DialArgsError, parse_dial, parse_options
from pypbx.dialplan.channel_api import DialTarget, RecordingChannel
from pypbx.dialplan.dryrun import DryRunResult, dry_run
from pypbx.dialplan.interpreter import Execution, neutralize
from pypbx.dialplan.parser import parse_dialplan


def run(text: str, exten: str = "s", **kw: object) -> DryRunResult:
    dp = parse_dialplan(parse_text(textwrap.dedent(text), "extensions.conf"))
    return dry_run(dp, "test", exten, clock=lambda: 0.0, rng=random.Random(0), tz=UTC, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "targets", "timeout", "options", "url"),
    [
        ("SIP/1000", [("SIP", "1000")], None, {}, ""),
        ("SIP/1000,20", [("SIP", "1000")], 20.0, {}, ""),
        (
            "SIP/1000&SIP/1001,30,tT",
            [("SIP", "1000"), ("SIP", "1001")],
            30.0,
            {"t": "", "T": ""},
            "",
        ),
        ("SIP/18002223333@flowroute,,r", [("SIP", "18002223333@flowroute")], None, {"r": ""}, ""),
        (
            "SIP/1000,20,gL(60000:30000:5000)m(default),http://x",
            [("SIP", "1000")],
            20.0,
            {"g": "", "L": "60000:30000:5000", "m": "default"},
            "http://x",
        ),
        ("SIP/trunk/18005551234,2.5", [("SIP", "trunk/18005551234")], 2.5, {}, ""),
        ("SIP/1000,0", [("SIP", "1000")], None, {}, ""),  # <= 0: no timeout
        ("SIP/1000,abc", [("SIP", "1000")], None, {}, ""),
        ('SIP/1000,20,"U(sub^a^b)"', [("SIP", "1000")], 20.0, {"U": "sub^a^b"}, ""),
    ],
)
def test_parse_dial(
    data: str,
    targets: list[tuple[str, str]],
    timeout: float | None,
    options: dict[str, str],
    url: str,
) -> None:
    parsed = parse_dial(data)
    assert parsed.targets == [DialTarget(t, r) for t, r in targets]
    assert parsed.timeout == timeout
    assert parsed.options == options
    assert parsed.url == url
    assert parsed.refused == []


def test_parse_dial_without_target_raises() -> None:
    with pytest.raises(DialArgsError):
        parse_dial(",20")


@pytest.mark.parametrize("peers", ["1000&SIP/1001", "SIP/1000&&SIP/1001", "SIP/", "SIP/1&"])
def test_parse_dial_target_without_resource_invalidates_the_dial(peers: str) -> None:
    assert parse_dial(peers).error == "Dial argument takes format (technology/resource)"


def test_parse_dial_refuses_targets_without_technology_and_duplicates() -> None:
    parsed = parse_dial("/1000&SIP/1001&sip/1001")
    assert parsed.targets == [DialTarget("SIP", "1001")]
    assert len(parsed.refused) == 2
    assert parsed.error == ""


@pytest.mark.parametrize(("options", "continues"), [("", False), ("g", True)])
def test_invalid_dial_args_set_invalidargs(options: str, continues: bool) -> None:
    result = run(
        f"""
        [test]
        exten => s,1,Dial(SIP/1000&&SIP/1001,20,{options})
        same => n,NoOp(${{DIALSTATUS}})
        """
    )
    assert result.variables["DIALSTATUS"] == "INVALIDARGS"
    assert ("NoOp" in [s.app for s in result.steps]) is continues
    assert not any(a.startswith("dial") for a in result.actions)


@pytest.mark.parametrize(
    ("text", "options", "unknown"),
    [
        ("", {}, ""),
        ("tTr", {"t": "", "T": "", "r": ""}, ""),
        ("M(mac^a(b))", {"M": "mac^a(b)"}, ""),
        ("D(:1\\)2)", {"D": ":1)2"}, ""),
        ("t%j", {"t": ""}, "%j"),
    ],
)
def test_parse_options(text: str, options: dict[str, str], unknown: str) -> None:
    assert parse_options(text) == (options, unknown)


@pytest.mark.parametrize(
    ("status", "continues"),
    [
        ("ANSWER", False),  # the bridged call ended: the caller is hung up too
        ("BUSY", True),
        ("NOANSWER", True),
        ("CONGESTION", True),
        ("CHANUNAVAIL", True),
        ("CANCEL", False),  # the caller hung up while we dialled
    ],
)
def test_dialstatus_contract(status: str, continues: bool) -> None:
    result = run(
        """
        [test]
        exten => s,1,Dial(SIP/1000,20)
        same => n,NoOp(${DIALSTATUS} ${DIALEDTIME} ${ANSWEREDTIME})
        """,
        dialstatus=status,
    )
    assert result.variables["DIALSTATUS"] == status
    assert ("NoOp" in [s.app for s in result.steps]) is continues
    if continues:
        assert result.steps[-1].args.startswith(status + " 1 0")


def test_answered_dial_with_g_continues() -> None:
    result = run(
        """
        [test]
        exten => s,1,Dial(SIP/1000,20,g)
        same => n,NoOp(after)
        """
    )
    assert [s.app for s in result.steps] == ["Dial", "NoOp"]


def test_dial_actions_show_targets_timeout_and_options() -> None:
    result = run(
        """
        [test]
        exten => s,1,Dial(SIP/1000&SIP/1001,20,tr)
        """
    )
    assert result.actions[0] == "dial SIP/1000&SIP/1001 timeout=20 options=tr"


def test_tutorial_outgoing_dial() -> None:
    result = run(
        """
        [globals]
        TRUNK=flowroute
        [test]
        exten => _1NXXNXXXXXX,1,Dial(SIP/${EXTEN}@${GLOBAL(TRUNK)})
        """,
        "18002223333",
    )
    assert [(s.app, s.args) for s in result.steps] == [("Dial", "SIP/18002223333@flowroute")]
    assert result.actions[0] == "dial SIP/18002223333@flowroute"


INJECTIONS = [
    "123&SIP/900@evil",  # a second destination
    "123@evil",  # another trunk
    "123,30,D(999)",  # extra Dial arguments
    "1/../evil",  # another technology path
    "123)&(x",
]


@pytest.mark.parametrize("exten", INJECTIONS)
def test_exten_cannot_inject_dial_targets(exten: str) -> None:
    """issue 9 item 2: ``Dial(SIP/${EXTEN}@trunk)`` with hostile EXTEN dials nothing."""
    result = run(
        """
        [test]
        exten => _X.,1,Dial(SIP/${EXTEN}@trunk,30)
        same => n,NoOp(${DIALSTATUS})
        """,
        exten,
    )
    assert not any(a.startswith("dial") for a in result.actions), result.actions
    assert result.variables["DIALSTATUS"] == "CHANUNAVAIL"
    assert any("caller-supplied characters" in m for m in result.log)
    # the dry run shows what the caller sent, readable
    assert result.steps[0].args == f"SIP/{exten}@trunk,30"


def test_injected_exten_copied_through_variables_and_macro_args_stays_defused() -> None:
    result = run(
        """
        [macro-out]
        exten => s,1,Dial(SIP/${ARG1}@trunk)
        [test]
        exten => _X.,1,Set(NUM=${EXTEN})
        same => n,Macro(out,${NUM})
        """,
        "123&SIP/900",
    )
    assert not any(a.startswith("dial") for a in result.actions)


def test_injected_exten_cannot_forge_gotoif_branches() -> None:
    result = run(
        """
        [test]
        exten => _X.,1,GotoIf($[${EXTEN} = 1]?yes:no)
        same => n(no),NoOp(no)
        same => n,Hangup()
        same => n(yes),NoOp(yes)
        """,
        "1?yes:",
    )
    assert [s.args for s in result.steps][1:] == ["no", ""]


def test_globals_may_still_hold_several_targets() -> None:
    """Trusted configuration (globals) keeps Asterisk's meaning of ``&``."""
    result = run(
        """
        [globals]
        PHONES=SIP/100&SIP/101
        [test]
        exten => s,1,Dial(${PHONES},20)
        """
    )
    assert result.actions[0] == "dial SIP/100&SIP/101 timeout=20"


def test_neutralized_exten_still_fails_digit_patterns() -> None:
    result = run(
        """
        [test]
        exten => _1NXXNXXXXXX,1,Dial(SIP/${EXTEN}@trunk)
        """,
        "1800222333&",
    )
    assert result.steps == []
    assert neutralize("1800222333&") != "1800222333&"


def test_dial_passes_inheritable_variables_to_the_new_channels() -> None:
    dp = parse_dialplan(
        parse_text(
            "[test]\nexten => s,1,MSet(_ONE=1,__ALL=2,MINE=3)\nsame => n,Dial(SIP/100)\n",
            "extensions.conf",
        )
    )
    channel = RecordingChannel()
    ex = Execution(dp, channel, context="test", exten="s", clock=lambda: 0.0, rng=random.Random())
    asyncio.run(ex.run())
    assert channel.inherited == {"ONE": "1", "__ALL": "2"}


@pytest.mark.parametrize(
    ("options", "expected", "absent"),
    [
        ("tT", ["option 't'", "option 'T'"], []),
        ("L(0)", ["invalid time limit L(0)"], ["not supported"]),
        ("L(1000:2000)", ["is not below the limit"], ["invalid time limit"]),
        ("rgL(60000:30000:10000)", [], ["not supported", "invalid", "not below"]),
    ],
)
def test_dial_option_warnings(options: str, expected: list[str], absent: list[str]) -> None:
    result = run(
        f"""
        [test]
        exten => s,1,Dial(SIP/1000,20,{options})
        """
    )
    text = "\n".join(result.log)
    for needle in expected:
        assert needle in text, text
    for needle in absent:
        assert needle not in text, text
    assert result.actions[0].startswith("dial SIP/1000")  # the call is still attempted
