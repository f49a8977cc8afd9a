"""Argument splitting: main/app.c __ast_app_separate_args, pbx_config.c app lines, Set."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.dialplan.args import (
    ApplicationCall,
    split_application,
    split_args,
    split_assignment,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("a", ["a"]),
        ("a,b,c", ["a", "b", "c"]),
        ("a,", ["a", ""]),
        (",", ["", ""]),
        (",a", ["", "a"]),
        ("a,,b", ["a", "", "b"]),
        # | has not been a separator since Asterisk 1.6
        ("a|b", ["a|b"]),
        # separators inside (), [] and "" do not split
        ("SIP/100,30,tT(x,y)", ["SIP/100", "30", "tT(x,y)"]),
        ("[a,b],c", ["[a,b]", "c"]),
        ('"a,b",c', ["a,b", "c"]),
        # quotes are removed wherever they are, and the quote state spans them
        ('x"y"z', ["xyz"]),
        ('say "hello, world"', ["say hello, world"]),
        # a backslash makes the next character literal and is removed
        ("a\\,b,c", ["a,b", "c"]),
        ('a\\"b,c', ['a"b', "c"]),
        ("a\\\\b", ["a\\b"]),
        ("a\\(,b", ["a(", "b"]),
        ("trailing\\", ["trailing"]),
        # an unclosed ( swallows the rest; a stray ) does not go negative
        ("a(,b,c", ["a(,b,c"]),
        ("a),b", ["a)", "b"]),
        ("a)(,b", ["a)(,b"]),
        ("${CUT(x,-,1)},y", ["${CUT(x,-,1)}", "y"]),
        ("$[${X} = 1],yes,no", ["$[${X} = 1]", "yes", "no"]),
    ],
)
def test_split_args_standard(text: str, expected: list[str]) -> None:
    assert split_args(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"a,b",c', ['"a,b"', "c"]),
        ("a\\,b,c", ["a\\,b", "c"]),
        ("a\\\\,b", ["a\\\\", "b"]),
    ],
)
def test_split_args_raw_keeps_quotes_and_backslashes(text: str, expected: list[str]) -> None:
    # AST_STANDARD_RAW_ARGS: remove_chars=0
    assert split_args(text, remove_chars=False) == expected


@pytest.mark.parametrize(
    ("text", "sep", "expected"),
    [
        ("a&b&c", "&", ["a", "b", "c"]),
        ("a,b&c", "&", ["a,b", "c"]),
        ("a^b", "^", ["a", "b"]),
        # with " as separator, quotes are ordinary separators (delim != '"' test)
        ('a"b', '"', ["a", "b"]),
    ],
)
def test_split_args_nonstandard_separator(text: str, sep: str, expected: list[str]) -> None:
    assert split_args(text, sep) == expected


@pytest.mark.parametrize(
    ("text", "max_args", "expected"),
    [
        ("a,b,c", 2, ["a", "b,c"]),
        # the rest is handed over as it is, unprocessed
        ('a,"b",\\c', 2, ["a", '"b",\\c']),
        ("a,b,c", 1, ["a,b,c"]),
        ("a,b,c", 3, ["a", "b", "c"]),
        ("a,b,c", 5, ["a", "b", "c"]),
        ("a,", 2, ["a", ""]),
        ("a,b", 0, []),
    ],
)
def test_split_args_limited_array(text: str, max_args: int, expected: list[str]) -> None:
    assert split_args(text, max_args=max_args) == expected


def test_split_args_rejects_long_separator() -> None:
    with pytest.raises(ValueError, match="one character"):
        split_args("a", "ab")


@given(st.lists(st.text(alphabet="abc123 /@-_.", max_size=8), min_size=1, max_size=6))
def test_split_args_roundtrip_of_plain_arguments(parts: list[str]) -> None:
    text = ",".join(parts)
    expected = [] if text == "" else parts
    assert split_args(text) == expected


@given(st.text(max_size=60))
def test_split_args_never_fails(text: str) -> None:
    args = split_args(text)
    assert all(isinstance(a, str) for a in args)
    # nothing but quotes and backslashes are ever removed
    assert sum(map(len, args)) <= len(text)


@pytest.mark.parametrize(
    ("line", "expected", "warned"),
    [
        ("Answer", ApplicationCall("Answer", ""), False),
        ("Answer()", ApplicationCall("Answer", ""), False),
        ("Dial(SIP/100,30)", ApplicationCall("Dial", "SIP/100,30"), False),
        ("Set(X=$[(1+2)*3])", ApplicationCall("Set", "X=$[(1+2)*3]"), False),
        ("  NoOp(hi)", ApplicationCall("NoOp", "hi"), False),
        # data ends at the LAST ')'; what follows it is dropped
        ("NoOp(a)b)c", ApplicationCall("NoOp", "a)b"), False),
        # missing ')': warning, and the rest is the data
        ("Dial(SIP/100,30", ApplicationCall("Dial", "SIP/100,30"), True),
        # old "App,args" syntax is no longer split: the whole text is the name
        ("Dial,SIP/100", ApplicationCall("Dial,SIP/100", ""), False),
        # a hint: substitution before the first '(' means there is no application
        ("SIP/${GLOBAL(X)}", ApplicationCall("SIP/${GLOBAL(X)}", ""), False),
        ("DAHDI/$[1+1](x)", ApplicationCall("DAHDI/$[1+1](x)", ""), False),
    ],
)
def test_split_application(line: str, expected: ApplicationCall, warned: bool) -> None:
    warnings: list[str] = []
    assert split_application(line, warn=warnings.append) == expected
    assert bool(warnings) == warned
    if warned:
        assert "No closing parenthesis" in warnings[0]


@pytest.mark.parametrize(
    ("data", "expected", "warning"),
    [
        ("X=1", ("X", "1"), None),
        ("X=", ("X", ""), None),
        ("X=a=b", ("X", "a=b"), None),
        ("X=a,b", ("X", "a,b"), None),
        ('X="quoted"', ("X", '"quoted"'), None),
        ("CDR(userfield)=x", ("CDR(userfield)", "x"), None),
        ("=x", ("", "x"), None),
        ("X =1", ("X ", "1"), "avoid unnecessary spaces"),
        ("X", None, "requires an '='"),
        ("", None, "requires one variable"),
    ],
)
def test_split_assignment(data: str, expected: tuple[str, str] | None, warning: str | None) -> None:
    warnings: list[str] = []
    assert split_assignment(data, warn=warnings.append) == expected
    if warning is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert warning in warnings[0]


def test_warn_callbacks_are_optional() -> None:
    assert split_assignment("X") is None
    assert split_application("Dial(x") == ApplicationCall("Dial", "x")
