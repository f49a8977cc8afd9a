"""Fuzzing expressions and substitution: any text gives a string, quickly, and never raises."""

from __future__ import annotations

import operator
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.dialplan.args import split_args
from pypbx.dialplan.expr import evaluate
from pypbx.dialplan.posix_regex import RegexError, _EreParser, _to_python, compile_ere
from pypbx.dialplan.variables import INT_MAX, substitute, substring

# characters the expression lexer and the substitution scanner care about, to reach deep paths
EXPR_CHARS = "0123456789.abcXYZ_ \t\"'$\\{}[]()+-*/%=!<>&|?:~,^#@\n"
SUBST_CHARS = '${}[]():-+=, aXY0123\\"'

expr_text = st.one_of(st.text(max_size=80), st.text(alphabet=EXPR_CHARS, max_size=80))
subst_text = st.one_of(st.text(max_size=80), st.text(alphabet=SUBST_CHARS, max_size=80))


class EchoResolver:
    """Every variable is set to its own name; every function returns its arguments."""

    def get_variable(self, name: str) -> str | None:
        return name if len(name) % 2 else None

    def call_function(self, name: str, args: str) -> str | None:
        return args if name else None


@settings(max_examples=400)
@given(expr_text)
def test_evaluate_any_text_gives_a_string(text: str) -> None:
    warnings: list[str] = []
    assert isinstance(evaluate(text, warn=warnings.append), str)
    assert all(isinstance(w, str) for w in warnings)


@settings(max_examples=200)
@given(expr_text)
def test_evaluate_with_functions_any_text_gives_a_string(text: str) -> None:
    assert isinstance(evaluate(text, call_function=lambda name, args: args), str)


@settings(max_examples=300)
@given(st.text(alphabet="ab()[]{}|*+?^$.\\-:=,1", max_size=20))
def test_any_regex_pattern_is_handled(pattern: str) -> None:
    pattern = pattern.replace('"', "")
    for op in (":", "=~"):
        assert isinstance(evaluate(f'"aab(]" {op} "{pattern}"', warn=lambda _: None), str)


@settings(max_examples=400)
@given(subst_text)
def test_substitute_any_text_gives_a_string(text: str) -> None:
    warnings: list[str] = []
    assert isinstance(substitute(text, EchoResolver(), warn=warnings.append), str)


@given(st.text(max_size=60).filter(lambda t: "$" not in t))
def test_text_without_dollar_is_unchanged(text: str) -> None:
    assert substitute(text, EchoResolver()) == text


@given(st.text(max_size=40))
def test_values_are_never_rescanned(value: str) -> None:
    class One:
        def get_variable(self, name: str) -> str | None:
            return value if name == "V" else None

        def call_function(self, name: str, args: str) -> str | None:
            return None

    assert substitute("${V}", One()) == value
    assert substitute("<${V}>", One()) == f"<{value}>"


small = st.integers(min_value=-(10**9) + 1, max_value=10**9 - 1)  # products fit 18 digits
OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
CMPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt}
CMPS |= {"<=": operator.le, ">=": operator.ge}


@given(small, small, st.sampled_from(sorted(OPS)))
def test_integer_arithmetic_matches_python(a: int, b: int, op: str) -> None:
    expected = OPS[op](a, b)
    result = evaluate(f"{a} {op} {b}")
    if expected == 0 and op == "*" and (a < 0) != (b < 0):
        assert result == "-0"  # IEEE negative zero, printed by %Lg
    else:
        assert result == str(expected)


@given(small, small, st.sampled_from(sorted(CMPS)))
def test_integer_comparisons_match_python(a: int, b: int, op: str) -> None:
    assert evaluate(f"{a} {op} {b}") == str(int(CMPS[op](a, b)))


@given(st.text(alphabet=st.characters(blacklist_characters='"\0'), max_size=30))
def test_quoted_strings_equal_themselves(s: str) -> None:
    assert evaluate(f'"{s}" = "{s}"') == "1"
    assert evaluate(f'"{s}" != "{s}"') == "0"


@given(st.text(max_size=20), st.integers(0, 30), st.integers(0, 30))
def test_substring_with_non_negative_bounds_is_a_slice(
    value: str, offset: int, length: int
) -> None:
    assert substring(value, offset, length) == value[offset : offset + length]
    assert substring(value, offset, INT_MAX) == value[offset:]


@given(st.text(max_size=20), st.integers(1, 30))
def test_negative_offset_counts_from_the_end(value: str, back: int) -> None:
    assert substring(value, -back, INT_MAX) == value[-back:]


@given(st.text(alphabet='ab,()[]"\\', max_size=40))
def test_split_args_is_total(text: str) -> None:
    assert isinstance(split_args(text), list)


@settings(max_examples=300)
@given(
    st.text(alphabet="ab()|*+?.[]{}1,", max_size=10),
    st.text(alphabet="abc", max_size=8),
    st.booleans(),
)
def test_regex_finds_the_leftmost_longest_match(pattern: str, subject: str, anchored: bool) -> None:
    # oracle: try every (start, end) with Python's re on the same pattern, leftmost then longest
    try:
        found = compile_ere(pattern).search(subject, anchored=anchored)
        oracle = re.compile(_to_python(_EreParser(pattern).parse()), re.DOTALL)
    except (RegexError, re.error):
        return
    expected = None
    for start in [0] if anchored else range(len(subject) + 1):
        ends = [
            end
            for end in range(start, len(subject) + 1)
            if oracle.fullmatch(subject, start, end) is not None
        ]
        if ends:
            expected = (start, max(ends))
            break
    assert (found[:2] if found else None) == expected
