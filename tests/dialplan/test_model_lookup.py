"""Dial plan lookups: order, priority fall-through, includes, caller id, overlap dialling.

Cases follow the Asterisk documentation ("Configuration / Dialplan / Pattern Matching",
"Include Statements", "Matching on Caller ID") and ``pbx_find_extension`` in main/pbx.c.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.config.conf import parse_text
from pypbx.dialplan.model import MAX_INCLUDE_DEPTH, Dialplan, TimeSpec
from pypbx.dialplan.parser import parse_dialplan


def plan(text: str) -> Dialplan:
    return parse_dialplan(parse_text(text, "extensions.conf"))


def which(dp: Dialplan, context: str, exten: str, priority: int = 1, **kw: str) -> str | None:
    """``context/extension:args`` of the step found, or None."""
    found = dp.find(context, exten, priority, **kw)  # type: ignore[arg-type]
    if found is None:
        return None
    return f"{found.context}/{found.extension.name}:{found.priority.args}"


TUTORIAL = """
[globals]
TRUNK=flowroute
[outgoing]
exten => _1NXXNXXXXXX,1,Dial(SIP/${EXTEN}@${GLOBAL(TRUNK)})
[inbound]
exten => 18182223333,1,Dial(SIP/1000)
"""


@pytest.mark.parametrize(
    ("context", "exten", "expected"),
    [
        ("outgoing", "18002223333", "outgoing/_1NXXNXXXXXX:SIP/${EXTEN}@${GLOBAL(TRUNK)}"),
        ("outgoing", "911", None),
        ("outgoing", "18182223333", "outgoing/_1NXXNXXXXXX:SIP/${EXTEN}@${GLOBAL(TRUNK)}"),
        ("outgoing", "1800222333", None),  # one digit short
        ("outgoing", "10002223333", None),  # N excludes 0
        ("inbound", "18182223333", "inbound/18182223333:SIP/1000"),
        ("inbound", "18002223333", None),
        ("nosuchcontext", "18002223333", None),
    ],
)
def test_tutorial(context: str, exten: str, expected: str | None) -> None:
    dp = plan(TUTORIAL)
    assert which(dp, context, exten) == expected
    assert dp.global_vars() == {"TRUNK": "flowroute"}


ORDER_PLAN = """
[docs]
exten => _6XX1,1,NoOp(_6XX1)
exten => _64XX,1,NoOp(_64XX)
exten => _640X,1,NoOp(_640X)
exten => _6.,1,NoOp(_6.)
exten => _64NX,1,NoOp(_64NX)
exten => _6[45]NX,1,NoOp(_6[45]NX)
exten => _6[34]NX,1,NoOp(_6[34]NX)
exten => 6401,1,NoOp(literal)
"""


@pytest.mark.parametrize(
    ("exten", "expected"),
    [
        ("6401", "literal"),  # a literal beats every pattern
        ("6402", "_640X"),
        ("6421", "_64NX"),  # _64NX before _64XX and _6XX1
        ("6411", "_64XX"),
        ("6331", "_6[34]NX"),
        ("6521", "_6[45]NX"),
        ("6011", "_6XX1"),
        ("6", None),  # '.' needs one more character
        ("60", "_6."),
        ("6-4-0-2", "_640X"),  # '-' in the dialled string is ignored
    ],
)
def test_docs_order(exten: str, expected: str | None) -> None:
    dp = plan(ORDER_PLAN)
    found = dp.find("docs", exten, 1)
    assert (None if found is None else found.priority.args) == expected
    names = [e.name for e in dp.ordered_extensions("docs")]
    assert names == ["6401", "_640X", "_64NX", "_64XX", "_6[34]NX", "_6[45]NX", "_6XX1", "_6."]


# docs "Pattern Matching": with 6410 having only priority 1, priority 2 comes from _641X.
FALLTHROUGH = """
[ft]
exten => 6410,1,NoOp(6410-1)
exten => _641X,1,NoOp(641X-1)
exten => _641X,2,NoOp(641X-2)
exten => _64XX,3,NoOp(64XX-3)
exten => _X.,4,NoOp(X.-4)
"""


@pytest.mark.parametrize(
    ("exten", "priority", "expected"),
    [
        ("6410", 1, "6410-1"),
        ("6410", 2, "641X-2"),
        ("6410", 3, "64XX-3"),
        ("6410", 4, "X.-4"),
        ("6410", 5, None),
        ("6411", 1, "641X-1"),
        ("6499", 2, None),
        ("6499", 3, "64XX-3"),
    ],
)
def test_priority_fall_through(exten: str, priority: int, expected: str | None) -> None:
    dp = plan(FALLTHROUGH)
    found = dp.find("ft", exten, priority)
    assert (None if found is None else found.priority.args) == expected


INCLUDES = """
[a]
exten => _X.,1,NoOp(a-pattern)
include => b
include => c
[b]
exten => 100,1,NoOp(b-100)
exten => 200,1,NoOp(b-200)
include => a
[c]
exten => 200,1,NoOp(c-200)
exten => 300,1,NoOp(c-300)
exten => *98,1,NoOp(c-voicemail)
include => c
include => missing
[d]
include => c
include => b
"""


@pytest.mark.parametrize(
    ("context", "exten", "priority", "expected"),
    [
        ("a", "100", 1, "a/_X.:a-pattern"),  # own extensions before any include
        ("a", "*98", 1, "c/*98:c-voicemail"),  # not matched by _X.: found in c
        ("b", "100", 1, "b/100:b-100"),
        ("b", "555", 1, "a/_X.:a-pattern"),  # b includes a
        ("b", "*98", 1, "c/*98:c-voicemail"),  # b -> a -> c
        ("d", "200", 1, "c/200:c-200"),  # includes in order: c before b
        ("d", "100", 1, "b/100:b-100"),
        ("d", "555", 1, "a/_X.:a-pattern"),  # d -> b -> a
        ("c", "#", 1, None),  # self include and missing include: no loop, nothing found
        ("a", "#", 1, None),  # a <-> b loop terminates
    ],
)
def test_includes(context: str, exten: str, priority: int, expected: str | None) -> None:
    dp = plan(INCLUDES)
    assert which(dp, context, exten, priority) == expected


def test_include_warning_for_missing_context() -> None:
    dp = plan(INCLUDES)
    kinds = [(w.kind, w.origin.line) for w in dp.warnings]
    assert ("include", 15) in kinds


def test_include_depth_is_bounded() -> None:
    n = MAX_INCLUDE_DEPTH + 20
    text = "".join(f"[c{i}]\ninclude => c{i + 1}\n" for i in range(n))
    text += f"[c{n}]\nexten => 1,1,NoOp(deep)\n"
    text += "[c60x]\nexten => 2,1,NoOp(shallow)\n"
    text = text.replace("[c60]\n", "[c60]\ninclude => c60x\n")
    dp = plan(text)
    assert which(dp, "c0", "2") == "c60x/2:shallow"
    assert dp.find("c0", "1", 1) is None  # past Asterisk's AST_PBX_MAX_STACK
    assert which(dp, f"c{n - 10}", "1") == f"c{n}/1:deep"


CALLERID = """
[cid]
exten => 100,1,NoOp(anyone)
exten => 100,2,NoOp(anyone-2)
exten => 100/200,1,NoOp(from-200)
exten => 100/_3XX,1,NoOp(from-3xx)
exten => 100/(555) 123-4567,1,NoOp(shrunk)
exten => 500/_2XX,1,NoOp(only-2xx)
"""


@pytest.mark.parametrize(
    ("exten", "priority", "callerid", "expected"),
    [
        ("100", 1, "200", "from-200"),
        ("100", 1, "301", "from-3xx"),
        ("100", 1, "5551234567", "shrunk"),
        ("100", 1, "400", "anyone"),
        ("100", 1, None, "anyone"),
        ("100", 1, "", "anyone"),
        ("100", 2, "200", "anyone-2"),  # fall-through from the caller-id extension
        ("500", 1, "250", "only-2xx"),
        ("500", 1, "350", None),
        ("500", 1, None, None),
    ],
)
def test_callerid_match(
    exten: str, priority: int, callerid: str | None, expected: str | None
) -> None:
    dp = plan(CALLERID)
    found = dp.find("cid", exten, priority, callerid=callerid)
    assert (None if found is None else found.priority.args) == expected


def test_callerid_extension_sorts_first() -> None:
    names = [(e.name, e.cid) for e in plan(CALLERID).ordered_extensions("cid")]
    assert names[:4] == [("100", "200"), ("100", "5551234567"), ("100", "_3XX"), ("100", None)]


OVERLAP = """
[od]
exten => _1NXXNXXXXXX,1,Dial(SIP/${EXTEN}@trunk)
exten => 911,1,Dial(SIP/911@trunk)
exten => 9111,1,NoOp(longer)
exten => _8!,1,NoOp(early)
exten => _7X.,1,NoOp(dot)
[od2]
exten => _8!,1,NoOp(early)
exten => _[0-8]X,1,NoOp(after _8! in order: not reached in match-more mode)
[od3]
include => od2
exten => _8XXX,1,NoOp(own)
[od4]
exten => _[0-8]X,1,NoOp(alone)
[od5]
include => od2
include => od4
"""


@pytest.mark.parametrize(
    ("context", "exten", "can_match", "match_more"),
    [
        ("od", "", True, True),
        ("od", "1", True, True),
        ("od", "1800", True, True),
        ("od", "18002223333", True, False),
        ("od", "180022233334", False, False),
        ("od", "91", True, True),
        ("od", "911", True, True),  # 9111 could still follow
        ("od", "9111", True, False),
        ("od", "2", False, False),
        ("od", "8", True, False),  # '!': match-more is final and negative
        ("od", "8123", True, False),
        ("od", "7", True, True),
        ("od", "7123", True, True),  # '.' always wants more
        ("od2", "8", True, False),
        ("od4", "8", True, True),
        ("od5", "8", True, True),  # the '!' ends the search of od2 only; od4 is still searched
        ("od3", "81", True, True),  # own _8XXX can take more before od2's '!' is consulted
    ],
)
def test_overlap_dialling(context: str, exten: str, can_match: bool, match_more: bool) -> None:
    dp = plan(OVERLAP)
    assert dp.can_match(context, exten) is can_match
    assert dp.match_more(context, exten) is match_more


LABELS = """
[lab]
exten => s,1(start),Answer()
same => n(loop),NoOp(x)
same => n,Goto(loop)
exten => _X,1,NoOp(digit)
exten => _X,n(digitlabel),NoOp(y)
exten => _[0-4],1(low),NoOp(low)
"""


@pytest.mark.parametrize(
    ("exten", "label", "expected"),
    [
        ("s", "start", 1),
        ("s", "loop", 2),
        ("s", "nope", None),
        ("3", "low", 1),
        ("3", "digitlabel", 2),  # _[0-4] lacks it: falls through to _X
        ("7", "low", None),
    ],
)
def test_find_label(exten: str, label: str, expected: int | None) -> None:
    assert plan(LABELS).find_label("lab", exten, label) == expected


def test_exists_and_pattern_as_name() -> None:
    dp = plan(LABELS)
    assert dp.exists("lab", "s")
    assert dp.exists("lab", "s", 3)
    assert not dp.exists("lab", "s", 4)
    assert not dp.exists("lab", "S")  # literal names are case-sensitive
    assert dp.exists("lab", "_X", 2)  # Goto(_X,2): a pattern named as a pattern


def test_hints() -> None:
    dp = plan(
        "[h]\nexten => 1000,hint,SIP/1000\nexten => 1000,1,Dial(SIP/1000)\n"
        "exten => _20XX,hint,SIP/${EXTEN}\n[i]\ninclude => h\n"
    )
    assert dp.find_hint("h", "1000") is not None
    assert dp.find_hint("i", "1000") == ("SIP/1000", dp.contexts["h"].extensions[0])
    hint = dp.find_hint("h", "2001")
    assert hint is not None
    assert hint[0] == "SIP/${EXTEN}"
    assert dp.find_hint("h", "3000") is None
    assert dp.find("h", "1000", 1) is not None


TIMED = """
[office]
include => daytime,09:00-17:00,mon-fri,*,*
include => night
[daytime]
exten => 0,1,Dial(SIP/reception)
[night]
exten => 0,1,VoiceMail(100)
"""


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2024, 1, 8, 10, 0), "Dial"),  # Monday 10:00
        (datetime(2024, 1, 8, 17, 0), "Dial"),  # the end minute is included
        (datetime(2024, 1, 8, 17, 1), "VoiceMail"),
        (datetime(2024, 1, 8, 8, 59), "VoiceMail"),
        (datetime(2024, 1, 6, 10, 0), "VoiceMail"),  # Saturday
        (None, "Dial"),  # no clock given: timed includes count as valid
    ],
)
def test_timed_include(now: datetime | None, expected: str) -> None:
    dp = plan(TIMED)
    found = dp.find("office", "0", 1, now=now)
    assert found is not None
    assert found.priority.app == expected


@pytest.mark.parametrize(
    ("spec", "when", "expected"),
    [
        ("*,*,*,*", datetime(2024, 2, 29, 23, 59), True),
        ("22:00-06:00,*,*,*", datetime(2024, 2, 29, 23, 59), True),  # wraps past midnight
        ("22:00-06:00,*,*,*", datetime(2024, 2, 29, 12, 0), False),
        ("*,sat-mon,*,*", datetime(2024, 1, 7, 12, 0), True),  # Sunday, wrapping range
        ("*,sat-mon,*,*", datetime(2024, 1, 9, 12, 0), False),
        ("*,*,1&15,*", datetime(2024, 3, 15, 1, 0), True),
        ("*,*,1&15,*", datetime(2024, 3, 16, 1, 0), False),
        ("*,*,25,dec", datetime(2024, 12, 25, 1, 0), True),
        ("*|*|25|dec", datetime(2024, 11, 25, 1, 0), False),  # old '|' separators
        ("*,1,*,*", datetime(2024, 1, 7, 12, 0), True),  # day numbers count from 1 = Sunday
    ],
)
def test_timespec(spec: str, when: datetime, expected: bool) -> None:
    assert TimeSpec.parse(spec).matches(when) is expected


@pytest.mark.parametrize("spec", ["25:00-26:00", "*,funday", "*,*,40", "9-5"])
def test_bad_timespec(spec: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        TimeSpec.parse(spec)


def test_repeated_lookups_are_stable() -> None:
    dp = plan(FALLTHROUGH)
    first = dp.find("ft", "6410", 2)
    assert first is not None
    for _ in range(3):
        assert dp.find("ft", "6410", 2) == first
    assert dp.find("ft", "6410", 2, callerid="1") == first


_PIECES = st.sampled_from([*"0123456789XZN.!-", "[1-3]", "[05]", "[]", "[a-c9]", "[7"])


@given(
    st.lists(st.lists(_PIECES, max_size=6), min_size=1, max_size=12),
    st.lists(st.text(alphabet="0123456789-a", max_size=8), min_size=1, max_size=8),
)
def test_indexed_lookup_agrees_with_linear_scan(
    bodies: list[list[str]], dialled: list[str]
) -> None:
    names = sorted({"_" + "".join(b) for b in bodies} | {"123", "1-2", "a"})
    dp = plan("[p]\n" + "".join(f"exten => {n},1,NoOp({n})\n" for n in names))
    ordered = dp.ordered_extensions("p")
    for data in dialled:
        expected = next((e for e in ordered if e.pattern.matches(data)), None)
        found = dp.find("p", data, 1)
        assert (None if found is None else found.extension) is expected


def test_timespec_fields_and_timezone() -> None:
    spec = TimeSpec.parse("08:30-09:00,mon&wed-thu,1-7,jan-mar,Europe/Paris")
    assert spec.timezone == "Europe/Paris"
    assert spec.minutes is not None
    assert len(spec.minutes) == 31  # 08:30 to 09:00, both ends
    assert spec.weekdays == 0b0011010  # Monday, Wednesday, Thursday (bit 0 is Sunday)
    assert spec.mdays == 0b1111111
    assert spec.months == 0b111
    assert TimeSpec.parse("*").minutes is None
