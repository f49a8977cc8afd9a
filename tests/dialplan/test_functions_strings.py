"""String, logic and arithmetic functions (Asterisk funcs/func_strings.c, func_cut.c,
func_logic.c, func_math.c, func_rand.c), evaluated through a dial plan step."""

from __future__ import annotations

import random
import textwrap
from datetime import UTC

import pytest

from pypbx.config.conf import parse_text
from pypbx.dialplan.dryrun import DryRunResult, dry_run
from pypbx.dialplan.functions.arith import compute, format_result
from pypbx.dialplan.functions.strings import cut_fields
from pypbx.dialplan.parser import parse_dialplan

EPOCH = 1_700_000_000.0  # Tue 2023-11-14 22:13:20 UTC


def run_lines(lines: str, variables: dict[str, str] | None = None) -> DryRunResult:
    text = "[test]\n" + textwrap.dedent(lines)
    dp = parse_dialplan(parse_text(text, "extensions.conf"))
    return dry_run(
        dp,
        "test",
        "s",
        variables=variables or {},
        clock=lambda: EPOCH,
        rng=random.Random(7),
        tz=UTC,
    )


def expand(expr: str, variables: dict[str, str] | None = None) -> str:
    result = run_lines(f"exten => s,1,NoOp({expr})\n", variables)
    return result.steps[0].args


V = {"LIST": "a-b-c-d", "CSV": "x,y,z", "NUM": "+1 (555) 123-4567", "EMPTY": "", "N": "7"}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # LEN
        ("${LEN(hello)}", "5"),
        ("${LEN()}", "0"),
        ("${LEN(${LIST})}", "7"),
        # CUT: varname, delimiter (default '-'), fields
        ("${CUT(LIST,-,2)}", "b"),
        ("${CUT(LIST,,2-3)}", "b-c"),
        ("${CUT(LIST,-,3-)}", "c-d"),
        ("${CUT(LIST,-,-2)}", "a-b"),
        ("${CUT(LIST,-,1&4)}", "a-d"),
        ("${CUT(LIST,-,9)}", ""),
        ("${CUT(CSV,\\,,2)}", "y"),
        # FIELDQTY
        ("${FIELDQTY(LIST,-)}", "4"),
        ("${FIELDQTY(EMPTY,-)}", "0"),
        ("${FIELDQTY(CSV,\\,)}", "3"),
        ("${FIELDQTY(LIST)}", "1"),  # no delimiter: one field
        # FILTER (the cases of Asterisk's own func_FILTER_test)
        ("${FILTER(A-R,0042133333&DAHDI/g1/2212)}", "DAHDI"),
        ("${FILTER(A\\-R,0042133333&DAHDI/g1/2212)}", "A"),
        ("${FILTER(\\x41-R,0042133333&DAHDI/g1/2212)}", "DAHDI"),
        ("${FILTER(0-9A-Ca-c,0042133333&DAHDI/g1/2212)}", "0042133333A12212"),
        ("${FILTER(0-9a-cA-C_+\\-,0042133333&DAHDI/g1/2212)}", "0042133333A12212"),
        ("${FILTER(0-9,${NUM})}", "15551234567"),
        ("${FILTER(0-9+,${NUM})}", "+15551234567"),
        ("${FILTER(a-c,abcdef)}", "abc"),
        # STRREPLACE
        ("${STRREPLACE(LIST,-,_)}", "a_b_c_d"),
        ("${STRREPLACE(LIST,-)}", "abcd"),
        ("${STRREPLACE(LIST,-,+,2)}", "a+b+c-d"),
        # TOUPPER / TOLOWER
        ("${TOUPPER(Hello)}", "HELLO"),
        ("${TOLOWER(HeLLo)}", "hello"),
        # REGEX
        ('${REGEX("^[0-9]+$" 12345)}', "1"),
        ('${REGEX("^[0-9]+$" 12a45)}', "0"),
        ('${REGEX("^1(800|888)" 18005551234)}', "1"),
        ('${REGEX("^\\d+$" ddd)}', "1"),  # app args drop the backslash: the regex is ^d+$
        ("${REGEX(no quotes)}", ""),
        # ISNULL / EXISTS
        ("${ISNULL()}", "1"),
        ("${ISNULL(x)}", "0"),
        ("${EXISTS(x)}", "1"),
        ("${EXISTS(${EMPTY})}", "0"),
        # IF
        ("${IF($[1 = 1]?yes:no)}", "yes"),
        ("${IF($[1 = 2]?yes:no)}", "no"),
        ("${IF(0?yes)}", ""),
        ("${IF(1?a(b):c)}", "a(b)"),
        # IFTIME (Tuesday 22:13 UTC, November 14)
        ("${IFTIME(22:00-23:00,*,*,*?in:out)}", "in"),
        ("${IFTIME(09:00-17:00,mon-fri,*,*?in:out)}", "out"),
        ("${IFTIME(*,tue,14,nov?in:out)}", "in"),
        ("${IFTIME(*,sat-sun,*,*?in:out)}", "out"),
        # MATH (func_math.c: C printf formats; first operator in its search order)
        ("${MATH(3*2)}", "6.000000"),
        ("${MATH(10/4)}", "2.500000"),
        ("${MATH(10/4,int)}", "2"),
        ("${MATH(7%3,i)}", "1"),
        ("${MATH(-7%3,i)}", "-1"),
        ("${MATH(255+0,h)}", "ff"),
        ("${MATH(-1+0,h)}", "ffffffff"),
        ("${MATH(2^10,i)}", "1024"),
        ("${MATH(1<<4,i)}", "16"),
        ("${MATH(256>>4,i)}", "16"),
        ("${MATH(170 AND 63,i)}", "42"),  # Asterisk's own test_MATH_function
        ("${MATH(170AND63,i)}", "42"),
        ("${MATH(5 XOR 1,i)}", "4"),
        ("${MATH(4 OR 1,i)}", "5"),
        ("${MATH(3>=2)}", "TRUE"),
        ("${MATH(3<2)}", "FALSE"),
        ("${MATH(2==2)}", "TRUE"),
        ("${MATH(-3+1)}", "-2.000000"),
        ("${MATH(3--1)}", "4.000000"),
        ("${MATH(65+0,c)}", "A"),
        ("${MATH(1/0)}", "0.000000"),  # "can't do a divide by 0"
        ("${MATH(1/-2)}", "0.000000"),
        ("${MATH(a+b)}", ""),
        ("${MATH(5)}", ""),
        ("${MATH(1+1,bogus)}", ""),
        ("${MATH(1=1)}", ""),
        # INC, DEC, MIN, MAX, ABS
        ("${INC(N)} ${N} ${DEC(N)} ${N}", "8 8 7 7"),
        ("${MIN(7,4)} ${MAX(4,7)} ${MAX(1.5,1)} ${ABS(-13)} ${MIN(,3)}", "4 7 1.500000 13 3"),
        # SET returns the value it sets
        ("${SET(Z=5)}-${Z}", "5-5"),
    ],
)
def test_function(expr: str, expected: str) -> None:
    assert expand(expr, V) == expected


def test_rand_uses_the_injected_rng_and_range() -> None:
    values = {int(expand("${RAND(1,6)}")) for _ in range(3)}
    assert all(1 <= v <= 6 for v in values)
    # same seed, same value: the rng is injected, not the random module
    assert expand("${RAND(1,1000)}") == expand("${RAND(1,1000)}")
    assert expand("${RAND(5,5)}") == "5"
    assert expand("${RAND(9,3)}") in {str(i) for i in range(3, 10)}


@pytest.mark.parametrize(
    ("value", "spec", "expected"),
    [("a-b-c", "2", "b"), ("a-b-c", "2-", "b-c"), ("a-b-c", "x", None), ("", "1", "")],
)
def test_cut_fields(value: str, spec: str, expected: str | None) -> None:
    assert cut_fields(value, "-", spec) == expected


@pytest.mark.parametrize(
    ("expression", "kind", "expected"),
    [("1+1", "f", "2.000000"), ("1.5*3", "f", "4.500000"), ("9/2", "i", "4"), ("1<2", "f", "TRUE")],
)
def test_math_helpers(expression: str, kind: str, expected: str) -> None:
    value = compute(expression)
    assert value is not None
    assert format_result(value, kind) == expected


def test_shift_pop_push_unshift() -> None:
    result = run_lines(
        """
        exten => s,1,Set(L=a,b,c)
        same => n,NoOp(${SHIFT(L)} ${L})
        same => n,NoOp(${POP(L)} ${L})
        same => n,Set(PUSH(L)=z)
        same => n,Set(UNSHIFT(L)=y)
        same => n,NoOp(${L})
        same => n,Set(M=1-2)
        same => n,NoOp(${SHIFT(M,-)} ${POP(M,-)} [${M}])
        same => n,Set(PUSH(E)=first)
        same => n,NoOp(${E})
        """
    )
    assert [s.args for s in result.steps if s.app == "NoOp"] == [
        "a b,c",
        "c b",
        "y,b,z",
        "1 2 []",
        "first",
    ]


def test_unknown_function_logs_and_expands_to_nothing() -> None:
    result = run_lines("exten => s,1,NoOp([${NOSUCH(x)}])\n")
    assert result.steps[0].args == "[]"
    assert any("NOSUCH not registered" in m for m in result.log)


def test_function_names_are_case_sensitive() -> None:
    """ast_custom_function_find compares with strcmp."""
    assert expand("[${len(abc)}]") == "[]"
