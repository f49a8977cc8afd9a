"""extensions.conf parsing (Asterisk pbx/pbx_config.c behaviour)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.config.conf import ConfigError, parse_text
from pypbx.dialplan.model import Dialplan
from pypbx.dialplan.parser import load_dialplan, parse_dialplan, split_application
from pypbx.dialplan.show import show_dialplan


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


def numbers(dp: Dialplan, context: str, name: str) -> dict[int, str]:
    (ext,) = [e for e in dp.contexts[context].extensions if e.name == name]
    return {n: f"{p.app}({p.args})" for n, p in ext.priorities.items()}


# (extensions.conf body of [c], extension name, priority number -> step), per pbx_config.c
PRIORITY_CASES = [
    ("exten => 1,1,A()\nexten => 1,2,B()", "1", {1: "A()", 2: "B()"}),
    ("exten => 1,1,A()\nexten => 1,n,B()\nexten => 1,n,C()", "1", {1: "A()", 2: "B()", 3: "C()"}),
    ("exten => 1,1,A()\nsame => n,B()", "1", {1: "A()", 2: "B()"}),
    ("exten = 1,1,A()\nsame = n,B()", "1", {1: "A()", 2: "B()"}),  # '=' works like '=>'
    ("exten => 1,1,A()\nexten => 1,n+2,B()", "1", {1: "A()", 4: "B()"}),
    ("exten => 1,5,A()\nexten => 1,s,B()\nexten => 1,n,C()", "1", {5: "A()", 6: "C()"}),
    ("exten => 1,1(top),A()\nexten => 1,top+3,B()", "1", {1: "A()", 4: "B()"}),
    ("exten => 1,1,A()\nexten => 1,next,B()", "1", {1: "A()", 2: "B()"}),
    ("exten => 1 , 1 , A(x) ", "1", {1: "A(x)"}),
    ("exten => 1,1,Set(a=(1,2))", "1", {1: "Set(a=(1,2))"}),
    ("exten => 1,1,Answer", "1", {1: "Answer()"}),
    ("exten => 1,1,Dial,SIP/1|20", "1", {1: "Dial(SIP/1|20)"}),
    # 'n' counts on from the last priority of the context, whatever the extension
    ("exten => 1,1,A()\nexten => 2,n,B()", "2", {2: "B()"}),
    # the first definition of a priority wins
    ("exten => 1,1,A()\nexten => 1,1,B()", "1", {1: "A()"}),
    ("exten => _[1,2]X,1,A()", "_[1,2]X", {1: "A()"}),
]


@pytest.mark.parametrize(("body", "name", "expected"), PRIORITY_CASES)
def test_priorities(body: str, name: str, expected: dict[int, str]) -> None:
    assert numbers(plan(f"[c]\n{body}\n"), "c", name) == expected


def test_labels_are_recorded() -> None:
    dp = plan("[c]\nexten => s,1(start),A()\nsame => n(loop),B()\nsame => n,C()\n")
    (ext,) = dp.contexts["c"].extensions
    assert ext.labels == {"start": 1, "loop": 2}
    assert [p.label for p in ext.priorities.values()] == ["start", "loop", None]


# (body, warning kind, words of the message, line) - the line is skipped, a warning says why
WARNING_CASES = [
    ("exten => 1,n,A()", "priority", "Can't use 'next' priority on the first entry", 2),
    ("exten => 1,1,A()\nexten => 2,n,B()", "priority", "continues from priority 1 of '1'", 3),
    ("exten => 1,s,A()", "priority", "Can't use 'same' priority on the first entry", 2),
    ("same => 1,A()", "syntax", "No previous pattern in the first entry of context 'c'", 2),
    ("exten => 1,0,A()", "priority", "Invalid priority '0'", 2),
    ("exten => 1,-1,A()", "priority", "Invalid priority '-1'", 2),
    ("exten => 1,abc,A()", "priority", "Invalid priority/label 'abc'", 2),
    ("exten => 1,,A()", "priority", "Invalid priority/label ''", 2),
    ("exten => 1,1(lbl,A()", "syntax", "Label missing trailing ')'", 2),
    ("exten => 1,1", "syntax", "No application for '1' priority 1", 2),
    ("exten => 1,1,A()\nexten => 1,1,B()", "duplicate", "priority 1 in 'c', already in use", 3),
    ("frobnicate => 1", "unknown", "Unknown directive: frobnicate", 2),
    ("exten => _.,1,A()", "pattern", "Please use '_X.' instead", 2),
    ("exten => 1,1,A(x", "syntax", "No closing parenthesis found? 'A(x'", 2),
    ("exten => 1,1,Wait,1", "deprecated", "pre-1.6 application syntax", 2),
    ("switch => DUNDi/e164", "switch", "not supported", 2),
    ("include => nowhere", "include", "tries to include nonexistent context 'nowhere'", 2),
    ("include => c\ninclude => c", "duplicate", "Context 'c' already included in 'c'", 3),
    ("include => d\ninclude => D,*,*,*,*", "duplicate", "Context 'D' already included", 3),
    ("exten => 1,hint,SIP/1\nsame => n,A()", "priority", "after a hint is 0", 3),
    ("exten => 1,1(a),A()\nexten => 1,2(a),B()", "duplicate", "label 'a' in 'c' already", 3),
    ("ignorepat => 9\nignorepat => 9", "duplicate", "Unable to include ignorepat '9'", 3),
]


@pytest.mark.parametrize(("body", "kind", "words", "line"), WARNING_CASES)
def test_warnings(body: str, kind: str, words: str, line: int) -> None:
    dp = plan(f"[c]\n{body}\n")
    hits = [w for w in dp.warnings if w.kind == kind and words in w.message]
    assert hits, dp.warnings
    assert hits[0].origin.line == line
    assert str(hits[0]).startswith(f"extensions.conf:{line}: ")


def test_skipped_lines_do_not_register() -> None:
    dp = plan("[c]\nexten => 1,n,A()\nexten => 1,0,B()\nexten => 1,1,C()\nexten => 1,1,D()\n")
    assert numbers(dp, "c", "1") == {1: "C()"}


def test_hint_and_callerid() -> None:
    dp = plan(
        "[c]\n"
        "exten => 100,hint,SIP/100,CustomPresence:100\n"
        "exten => 100,1,Dial(SIP/100)\n"
        "exten => 100/(555) 123-4567,1,NoOp(vip)\n"
        "exten => 100/_1XX,1,NoOp(internal)\n"
        "same => n,NoOp(same keeps the caller id)\n"
    )
    exts = {(e.name, e.cid): e for e in dp.contexts["c"].extensions}
    assert set(exts) == {("100", None), ("100", "5551234567"), ("100", "_1XX")}
    assert exts["100", None].hint == "SIP/100,CustomPresence:100"
    assert exts["100", None].priorities[1].app == "Dial"
    assert len(exts["100", "_1XX"].priorities) == 2
    assert exts["100", "5551234567"].hint is None


def test_sections_general_globals_and_merging() -> None:
    dp = plan(
        "[General]\nstatic=yes\nwriteprotect=yes\nautofallthrough=no\nclearglobalvars=yes\n"
        "extenpatternmatchnew=true\nuserscontext=users\n"
        "[globals]\nTRUNK=one\nOC1=9\nTRUNK=two\n"
        "[a]\nexten => 1,1,A()\nsame => n,B()\n"
        "[b]\nexten => ${OC1}11,1,Z()\ninclude => a\n"
        "[a]\nexten => 1,n,C()\nexten => 2,1,D()\n"
    )
    g = dp.general
    assert (g.static, g.writeprotect, g.autofallthrough, g.clearglobalvars) == (
        True,
        True,
        False,
        True,
    )
    assert g.extenpatternmatchnew
    assert g.userscontext == "users"
    assert dp.context_names() == ["a", "b"]
    assert [(v.name, v.value) for v in dp.globals] == [
        ("TRUNK", "one"),
        ("OC1", "9"),
        ("TRUNK", "two"),
    ]
    assert dp.global_vars() == {"TRUNK": "two", "OC1": "9"}
    assert numbers(dp, "a", "1") == {1: "A()", 2: "B()"}
    assert numbers(dp, "a", "2") == {1: "D()"}
    assert dp.warnings[0].message.startswith("Can't use 'next'")  # lastpri resets per section
    assert [e.name for e in dp.contexts["b"].extensions] == ["911"]  # ${OC1} from [globals]


def test_defaults_without_general() -> None:
    g = plan("[c]\nexten => 1,1,A()\n").general
    assert (g.static, g.writeprotect, g.autofallthrough, g.extenpatternmatchnew) == (
        False,
        False,
        True,
        False,
    )


def test_includes_ignorepats_switches() -> None:
    dp = plan(
        "[c]\ninclude => d,09:00-17:00,mon-fri,*,*\ninclude => e|*|sat-sun|*|*\n"
        "ignorepat => 9\nswitch => DUNDi/e164\neswitch => IAX2/${X}\nlswitch => Loopback/${X}\n"
        "[d]\n[e]\n[globals]\nX=host\n"
    )
    c = dp.contexts["c"]
    assert [(i.name, i.timespec) for i in c.includes] == [
        ("d", "09:00-17:00,mon-fri,*,*"),
        ("e", "*|sat-sun|*|*"),
    ]
    assert c.ignorepats == ["9"]
    assert [(s.kind, s.module, s.data) for s in c.switches] == [
        ("switch", "DUNDi", "e164"),
        ("eswitch", "IAX2", "${X}"),
        ("lswitch", "Loopback", "${X}"),
    ]


def test_templates_and_equal_names() -> None:
    dp = plan(
        "[tpl](!)\nexten => 1,1,FromTemplate()\n"
        "[c](tpl)\nexten => 2,1,Own()\nexten => 1-00,1,A()\nexten => 100,2,B()\n"
        "exten => _[0-9],1,X()\nexten => _X,2,Y()\n"
    )
    assert dp.context_names() == ["c"]
    names = [e.name for e in dp.contexts["c"].extensions]
    assert names == ["1", "2", "1-00", "_[0-9]"]  # "100" is "1-00", "_X" is "_[0-9]"
    assert numbers(dp, "c", "1-00") == {1: "A()", 2: "B()"}
    assert numbers(dp, "c", "_[0-9]") == {1: "X()", 2: "Y()"}


def test_load_dialplan_reads_includes(tmp_path: Path) -> None:
    (tmp_path / "extensions.conf").write_text(
        "[general]\nstatic=yes\n#include users.conf\n[from-internal]\ninclude => users\n"
    )
    (tmp_path / "users.conf").write_text("[users]\nexten => 1000,1,Dial(SIP/1000)\n")
    dp = load_dialplan(tmp_path / "extensions.conf")
    found = dp.find("from-internal", "1000", 1)
    assert found is not None
    assert found.priority.origin.file.endswith("users.conf")
    assert found.priority.origin.line == 2


SHOW_PLAN = """
[default]
exten => 1000,hint,SIP/1000
exten => 1000,1,Dial(SIP/1000)
same => n(vm),VoiceMail(1000)
exten => _X.,1,NoOp()
exten => 100/200,1,NoOp(cid)
include => other
ignorepat => 9
switch => DUNDi/e164
[other]
exten => s,1,Answer()
"""

SHOW_DEFAULT = """\
[ Context 'default' created by 'pbx_config' ]
  '100' (CID match '200') =>  1. NoOp(cid)                                  [extensions.conf:7]
  '1000' =>         hint: SIP/1000                                [extensions.conf:3]
                    1. Dial(SIP/1000)                             [extensions.conf:4]
     [vm]           2. VoiceMail(1000)                            [extensions.conf:5]
  '_X.' =>          1. NoOp()                                     [extensions.conf:6]
  Include =>        'other'                                       [pbx_config]
  Ignore pattern => '9'                                           [pbx_config]
  Alt. Switch =>    'DUNDi/e164'                                  [pbx_config]

-= 3 extensions (5 priorities) in 1 context. =-
"""


def test_show_context() -> None:
    assert show_dialplan(plan(SHOW_PLAN), "default") == SHOW_DEFAULT


def test_show_all_and_filters() -> None:
    dp = plan(SHOW_PLAN)
    text = show_dialplan(dp)
    assert text.endswith("-= 4 extensions (6 priorities) in 2 contexts. =-\n")
    assert "[ Context 'other' created by 'pbx_config' ]" in text
    assert show_dialplan(dp, "nope") == "There is no existence of 'nope' context\n"
    found = show_dialplan(dp, "s@default")
    assert "[ Included context 'other' created by 'pbx_config' ]" in found
    assert found.endswith("-= 1 extension (1 priority) in 1 context. =-\n")
    assert show_dialplan(dp, "#@other") == "There is no existence of #@other extension\n"


_LINES = st.sampled_from(
    [
        "[c]",
        "[d](!)",
        "[general]",
        "[globals]",
        "X=1",
        "exten => ",
        "exten = ",
        "same => ",
        "include => ",
        "ignorepat => ",
        "switch => ",
        "hint",
    ]
)
_TEXT = st.text(alphabet="_XN.!1s,()[]-/|$}{n+ hint=>", max_size=24)


@given(st.lists(st.tuples(_LINES, _TEXT), max_size=12))
def test_any_text_gives_a_plan_or_a_config_error(lines: list[tuple[str, str]]) -> None:
    text = "\n".join(a + b if not a.startswith("[") else a for a, b in lines)
    try:
        conf = parse_text(text, "fuzz.conf")
    except ConfigError as exc:
        assert exc.origin is not None
        return
    dp = parse_dialplan(conf)
    for name in dp.context_names():
        dp.find(name, "1", 1)
        dp.can_match(name, "1")
        show_dialplan(dp, name)
    for w in dp.warnings:
        assert w.origin.file == "fuzz.conf"


@pytest.mark.parametrize(
    ("written", "name", "warning"),
    [
        ("${OC1}11", "911", None),
        ("${GLOBAL(OC1)}11", "911", None),
        ("_${PFX}X.", "_912X.", None),  # PFX=${OC1}12: globals see the ones before them
        ("${UNDEFINED}123", "123", "no global variable 'UNDEFINED': substituted as empty"),
        ("${LEN(abc)}5", "${LEN(abc)}5", "'${LEN(abc)}' is not evaluated at load time"),
    ],
)
def test_load_time_substitution(written: str, name: str, warning: str | None) -> None:
    dp = plan(f"[globals]\nOC1=9\nPFX=${{OC1}}12\n[c]\nexten => {written},1,NoOp()\n")
    assert [e.name for e in dp.contexts["c"].extensions] == [name]
    assert [w.message for w in dp.warnings] == ([] if warning is None else [warning])
    assert dp.global_vars()["PFX"] == "${OC1}12"  # values are kept verbatim
