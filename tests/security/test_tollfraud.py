"""Toll-fraud analysis: unauthenticated entries, reach to trunks, catch-all patterns."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.config.conf import Origin, parse_text
from pypbx.config.sipconf import SipConfig, load_sip_conf, parse_sip_conf
from pypbx.dialplan.model import Dialplan
from pypbx.dialplan.parser import load_dialplan, parse_dialplan
from pypbx.security.tollfraud import (
    Finding,
    Severity,
    TrunkKind,
    analyse,
    dial_targets,
    unauthenticated_entries,
)

TUTORIAL = Path(__file__).resolve().parents[2] / "examples" / "tutorial"
ERROR, WARNING = Severity.ERROR, Severity.WARNING

SIP = """\
[general]
context=default
{general}
register => user:pw@sip.provider.example

[trunk]
type=peer
host=sip.provider.example
insecure=port,invite
context=inbound

[other]
type=peer
host=203.0.113.9
secret=x
context=phones

[1000]
type=friend
host=dynamic
secret=s1000
context=phones
{peers}
"""

PLAN = """\
[globals]
TRUNK=trunk

[phones]
exten => _1NXXNXXXXXX,1,Dial(SIP/${{EXTEN}}@${{GLOBAL(TRUNK)}})
exten => 1000,1,Dial(SIP/1000)

[inbound]
{inbound}
"""


def configs(
    inbound: str, *, general: str = "", peers: str = "", extra: str = ""
) -> tuple[SipConfig, Dialplan]:
    sip = parse_sip_conf(parse_text(SIP.format(general=general, peers=peers), "sip.conf"))
    plan = PLAN.format(inbound=inbound) + extra
    return sip, parse_dialplan(parse_text(plan, "extensions.conf"))


def summary(findings: list[Finding]) -> list[tuple[Severity, str]]:
    return [(f.severity, str(f)) for f in findings]


def test_tutorial_has_no_findings() -> None:
    """[inbound] (insecure=invite trunk) only dials SIP/1000; [outgoing] needs a password."""
    sip = load_sip_conf(TUTORIAL / "sip.conf")
    dp = load_dialplan(TUTORIAL / "extensions.conf")
    entries = unauthenticated_entries(sip)
    assert [e.context for e in entries] == ["inbound"]
    assert "insecure=invite" in entries[0].reason
    assert analyse(sip, dp) == []


def test_tutorial_with_guest_calls_into_outgoing_is_flagged() -> None:
    text = (TUTORIAL / "sip.conf").read_text()
    text = text.replace("allowguest=no", "allowguest=yes").replace(
        "context=default", "context=outgoing"
    )
    sip = parse_sip_conf(parse_text(text, "sip.conf"))
    dp = load_dialplan(TUTORIAL / "extensions.conf")
    findings = analyse(sip, dp)
    errors = [f for f in findings if f.severity is ERROR]
    assert len(errors) == 1
    error = str(errors[0])
    assert error.startswith(f"{TUTORIAL / 'extensions.conf'}:11: context 'outgoing' takes calls")
    assert "allowguest=yes, sip.conf:5" in error
    assert "trunk 'flowroute'" in error
    assert "toll-fraud hole" in error
    assert f"at {TUTORIAL / 'extensions.conf'}:13" in error  # the Dial's file:line
    guests = [f for f in findings if "relies on guest calls" in f.message]
    assert len(guests) == 1
    assert guests[0].severity is WARNING
    assert guests[0].origin == Origin("sip.conf", 5)
    assert "chan_sip defaulted to yes but pypbx defaults to no" in guests[0].message


@pytest.mark.parametrize(
    ("inbound", "extra", "expected"),
    [
        # dials a phone only: fine
        ("exten => 5551234,1,Dial(SIP/1000)", "", []),
        # open dialling through the trunk from the unauthenticated context
        ("exten => _X.,1,Dial(SIP/${EXTEN}@trunk)", "", [ERROR, WARNING]),
        # the same through an include of the authenticated context
        ("include => phones", "", [ERROR]),
        # through a Goto whose extension comes from the caller
        ("exten => _X.,1,Goto(phones,${EXTEN},1)", "", [ERROR]),
        # through a Goto to a literal number that matches the trunk pattern
        ("exten => 1,1,Goto(phones,18005550100,1)", "", [ERROR]),
        # a Goto to a literal extension that dials a phone is fine
        ("exten => 1,1,Goto(phones,1000,1)", "", []),
        # GotoIf, Gosub, GosubIf, Macro, Local channels, ExecIf
        ("exten => 1,1,GotoIf($[1]?phones,${EXTEN},1:2)", "", [ERROR]),
        ("exten => _X.,1,Gosub(phones,${EXTEN},1(a,b))", "", [ERROR]),
        ("exten => _X.,1,GosubIf($[0]?1:phones,${EXTEN},1)", "", [ERROR]),
        ("exten => _X.,1,Dial(Local/${EXTEN}@phones)", "", [ERROR]),
        (
            "exten => _X.,1,Macro(out,${EXTEN})",
            "[macro-out]\nexten => s,1,Dial(SIP/${ARG1}@trunk)\n",
            [ERROR],
        ),
        ("exten => _X.,1,ExecIf($[1]?Goto(phones,${EXTEN},1))", "", [ERROR]),
        ("exten => 7,1,ExecIf($[1]?Dial(SIP/${ARG1}@trunk))", "", [ERROR]),
        # a fixed forward to one number through the trunk: a warning, not an error
        ("exten => 5551234,1,Dial(SIP/18005550100@trunk)", "", [WARNING]),
        # the caller picks the peer
        ("exten => _X.,1,Dial(SIP/${EXTEN})", "", [ERROR, WARNING]),
        # a host that is no peer, and a PSTN line
        ("exten => 9,1,Dial(SIP/${ARG1}@sip.example.com)", "", [ERROR]),
        ("exten => 9,1,Dial(DAHDI/g0/${ARG1})", "", [ERROR]),
        # a peer with a fixed host is a trunk
        ("exten => 9,1,Dial(SIP/${ARG1}@other)", "", [ERROR]),
        # a literal Set() value is followed
        ("exten => 9,1,Set(T=trunk)\n same => n,Dial(SIP/${ARG1}@${T})", "", [ERROR]),
        # an unknown variable: cannot tell
        ("exten => 9,1,Dial(SIP/${ARG1}@${WHO})", "", [WARNING]),
        ("exten => 9,1,Goto(${WHERE},s,1)", "", [WARNING]),
        # includes and Gotos that loop terminate
        ("include => inbound\nexten => 1,1,Goto(inbound,1,1)", "", []),
    ],
)
def test_reach_from_insecure_invite_trunk(
    inbound: str, extra: str, expected: list[Severity]
) -> None:
    sip, dp = configs(inbound, extra=extra)
    findings = analyse(sip, dp)
    assert [f.severity for f in findings] == expected, summary(findings)
    for f in findings:
        if f.severity is ERROR:
            assert f.origin is not None
            assert f.origin.file == "extensions.conf"
            assert "context 'inbound' takes calls without authentication" in f.message
            assert "peer [trunk] with insecure=invite" in f.message
            assert "at extensions.conf:" in f.message


@pytest.mark.parametrize(
    ("peers", "general", "entry"),
    [
        ("", "allowguest=yes\ncontext=phones", "allowguest=yes"),
        (
            "[nopw]\ntype=friend\nhost=dynamic\ncontext=phones",
            "",
            "peer [nopw] without secret: any caller with From user 'nopw'",
        ),
        (
            "[pbx2]\ntype=peer\nhost=198.51.100.2\ncontext=phones",
            "",
            "peer [pbx2] without secret, matched by host 198.51.100.2",
        ),
        (
            "[roam]\ntype=friend\nhost=dynamic\nsecret=x\ninsecure=invite\ncontext=phones",
            "",
            "peer [roam] with insecure=invite, matched by its registered address",
        ),
    ],
)
def test_ways_in_without_authentication(peers: str, general: str, entry: str) -> None:
    sip, dp = configs("", general=general, peers=peers)
    reasons = [e.reason for e in unauthenticated_entries(sip) if e.context == "phones"]
    assert reasons == [entry]
    errors = [f for f in analyse(sip, dp) if f.severity is ERROR]
    assert len(errors) == 1
    assert entry in errors[0].message
    assert errors[0].origin == Origin("extensions.conf", 4)  # the [phones] line


@pytest.mark.parametrize(
    "peers",
    [
        "[u]\ntype=user\nsecret=x\ninsecure=invite\ncontext=phones",  # matched by name: challenged
        "[p]\ntype=peer\nhost=dynamic\nsecret=x\ncontext=phones",
    ],
)
def test_authenticated_peers_are_no_way_in(peers: str) -> None:
    sip, dp = configs("", peers=peers)
    assert [e.context for e in unauthenticated_entries(sip)] == ["inbound"]
    assert analyse(sip, dp) == []


def test_allowguest_into_missing_context_only_warns() -> None:
    sip, dp = configs("", general="allowguest=yes\ncontext=nowhere")
    assert [f.severity for f in analyse(sip, dp)] == [WARNING]


def test_alwaysauthreject_no_is_a_warning() -> None:
    sip, dp = configs("", general="alwaysauthreject=no")
    findings = analyse(sip, dp)
    assert len(findings) == 1
    assert "alwaysauthreject=no" in str(findings[0])
    assert str(findings[0]).startswith("sip.conf:1: ")


@pytest.mark.parametrize(
    ("extension", "severity", "text"),
    [
        ("_X.", WARNING, "catch-all pattern '_X.' feeds ${EXTEN}"),
        ("_.", WARNING, "catch-all pattern '_.'"),
        ("_!", WARNING, "catch-all pattern '_!'"),
        ("_9X!", WARNING, "catch-all pattern '_9X!'"),
        ("_[0-9a-c]XX", WARNING, "characters other than 0-9*#+ ('abc')"),
        ("_[&@]XX", WARNING, "('&@')"),
        ("_NXXNXXXXXX", None, ""),
        ("_[*#+0-9]XX", None, ""),
        ("12345", None, ""),  # a literal: EXTEN is fixed
    ],
)
def test_patterns_feeding_exten_into_dial(
    extension: str, severity: Severity | None, text: str
) -> None:
    extra = f"[auth]\nexten => {extension},1,Dial(SIP/${{EXTEN}}@trunk,30)\n"
    sip, dp = configs("", extra=extra)
    findings = analyse(sip, dp)
    if severity is None:
        assert findings == []
        return
    assert len(findings) == 1
    finding = findings[0]
    assert finding.severity is severity
    assert text in finding.message
    assert "Dial(SIP/${EXTEN}@trunk)" in finding.message
    assert "(trunk 'trunk')" in finding.message
    assert str(finding).startswith("extensions.conf:11: ")


def test_catch_all_into_local_channel_is_left_to_the_dial_plan() -> None:
    extra = "[auth]\nexten => _X.,1,Dial(Local/${EXTEN}@phones)\n"
    sip, dp = configs("", extra=extra)
    assert analyse(sip, dp) == []


def test_caller_text_in_a_dial_target_warns() -> None:
    extra = "[auth]\nexten => 1,1,Dial(SIP/${CALLERID(num)}@trunk)\n"
    sip, dp = configs("", extra=extra)
    (finding,) = analyse(sip, dp)
    assert finding.severity is WARNING
    assert "caller-supplied text" in finding.message


@pytest.mark.parametrize(
    ("args", "kinds"),
    [
        ("SIP/1000", [(TrunkKind.LOCAL, "1000", "")]),
        ("SIP/1000,30,tT", [(TrunkKind.LOCAL, "1000", "")]),
        ("SIP/555@trunk", [(TrunkKind.TRUNK, "trunk", "555")]),
        ("SIP/trunk/555", [(TrunkKind.TRUNK, "trunk", "555")]),
        ("SIP/555@TRUNK:5070", [(TrunkKind.TRUNK, "trunk", "555")]),
        ("SIP/555@sip.provider.example", [(TrunkKind.TRUNK, "trunk", "555")]),
        ("SIP/555@[2001:db8::1]:5060", [(TrunkKind.TRUNK, "2001:db8::1", "555")]),
        ("SIP/${EXTEN}", [(TrunkKind.CALLER_CHOSEN, "${EXTEN}", "")]),
        ("SIP/1@${X}", [(TrunkKind.UNKNOWN, "${X}", "1")]),
        ("SIP/1@${GLOBAL(TRUNK)}", [(TrunkKind.TRUNK, "trunk", "1")]),
        ("SIP/1000&SIP/1@trunk", [(TrunkKind.LOCAL, "1000", ""), (TrunkKind.TRUNK, "trunk", "1")]),
        ("IAX2/x", [(TrunkKind.OTHER, "x", "x")]),
        ("", []),
    ],
)
def test_dial_targets(args: str, kinds: list[tuple[TrunkKind, str, str]]) -> None:
    sip, _ = configs("")
    targets = dial_targets(sip, args, {"TRUNK": ("trunk",)})
    assert [(t.kind, t.peer, t.number) for t in targets] == kinds


def test_expansion_is_bounded() -> None:
    sip, _ = configs("")
    known = {"A": tuple(f"a{i}" for i in range(50)), "B": ("${B}",)}
    assert len(dial_targets(sip, "SIP/1@${A}${A}", known)) <= 16
    assert len(dial_targets(sip, "SIP/1@${B}", known)) == 1  # self-reference ends


def test_findings_are_sorted_and_unique() -> None:
    extra = "[auth]\nexten => _X.,1,Dial(SIP/${EXTEN}@trunk)\nexten => _X.,2,Dial(SIP/${EXTEN})\n"
    sip, dp = configs("include => auth", general="alwaysauthreject=no", extra=extra)
    findings = analyse(sip, dp)
    assert len(findings) == len(set(findings))
    keys = [(f.origin.file, f.origin.line) for f in findings if f.origin is not None]
    assert keys == sorted(keys)
    assert [f.severity for f in findings].count(ERROR) == 2


_APPS = st.sampled_from(
    ["Dial", "Goto", "GotoIf", "Gosub", "GosubIf", "Macro", "ExecIf", "Exec", "Set", "NoOp"]
)
_ARG_TEXT = st.text(alphabet='()[]{}$?:,&@/|\\"_-.!XN1029abinoudphes', max_size=30)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["_X.", "1", "s", "_[a-c]!"]), _APPS, _ARG_TEXT), max_size=8
    ),
    st.sampled_from(["", "allowguest=yes\ncontext=inbound", "alwaysauthreject=no"]),
)
def test_analyse_never_raises(lines: list[tuple[str, str, str]], general: str) -> None:
    inbound = "\n".join(
        f"exten => {name},{i + 1},{app}({args})" for i, (name, app, args) in enumerate(lines)
    )
    sip, dp = configs(inbound, general=general)
    findings = analyse(sip, dp)
    assert all(isinstance(f, Finding) for f in findings)
    assert all("\n" not in str(f) for f in findings)
