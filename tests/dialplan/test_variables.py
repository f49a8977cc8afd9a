"""${...} / $[...] substitution: main/pbx_variables.c pbx_substitute_variables_helper_full."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pypbx.dialplan.variables import (
    INT_MAX,
    Resolver,
    parse_variable_name,
    substitute,
    substring,
)


class FakeResolver:
    """Variables from a dict, functions from a dict of callables; records every call."""

    def __init__(
        self,
        variables: dict[str, str],
        functions: dict[str, Callable[[str], str]] | None = None,
    ) -> None:
        self.variables = variables
        self.functions = functions or {}
        self.lookups: list[str] = []
        self.calls: list[tuple[str, str]] = []

    def get_variable(self, name: str) -> str | None:
        self.lookups.append(name)
        return self.variables.get(name)

    def call_function(self, name: str, args: str) -> str | None:
        self.calls.append((name, args))
        fn = self.functions.get(name)
        return None if fn is None else fn(args)


VARIABLES = {
    "X": "5",
    "EXTEN": "5551234",
    "A": "hello",
    "B": "X",
    "AX": "ax!",
    "EMPTY": "",
    "SELF": "${SELF}",
    "EXPR": "$[1+1]",
    "SPACE": "a b",
    "NUM": "12345",
}
FUNCTIONS: dict[str, Callable[[str], str]] = {
    "LEN": lambda a: str(len(a)),
    "UPPER": str.upper,
    "ECHO": lambda a: a,
}


def make() -> FakeResolver:
    return FakeResolver(dict(VARIABLES), dict(FUNCTIONS))


def sub(text: str) -> tuple[str, list[str]]:
    warnings: list[str] = []
    return substitute(text, make(), warn=warnings.append), warnings


def test_fake_resolver_is_a_resolver() -> None:
    resolver: Resolver = make()
    assert resolver.get_variable("X") == "5"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("plain text", "plain text"),
        ("${X}", "5"),
        ("a${X}b", "a5b"),
        ("${X}${X}", "55"),
        ("${NOPE}", ""),  # unknown variables are empty
        ("[${NOPE}]", "[]"),
        ("${EMPTY}x", "x"),
        # nested references: the inside is substituted first
        ("${${B}}", "5"),
        ("${A${B}}", "ax!"),
        ("${${NOPE}}", ""),
        # values are not substituted again
        ("${SELF}", "${SELF}"),
        ("${EXPR}", "$[1+1]"),
        # a $ that starts nothing is copied
        ("$5", "$5"),
        ("cost: $", "cost: $"),
        ("$$${X}", "$$5"),
        ("$(X)", "$(X)"),
        # braces outside a reference are plain text; inside, they nest
        ("{${X}}", "{5}"),
        ("${X}}", "5}"),
        ("${X{}}", ""),
    ],
)
def test_variables(text: str, expected: str) -> None:
    assert sub(text) == (expected, [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # backslashes are not escapes during substitution: they stay, and ${ still works
        ("\\${X}", "\\5"),
        ("\\\\${X}", "\\\\5"),
        ("\\$[1+1]", "\\2"),
        ("a\\,b", "a\\,b"),
    ],
)
def test_backslashes_are_left_alone(text: str, expected: str) -> None:
    assert sub(text) == (expected, [])


# docs.asterisk.org, Configuration > Dialplan > Variables > "Manipulating Variables" (substrings):
# ${EXTEN:1} drops the first digit, ${EXTEN:-4} keeps the last four, ${EXTEN:-4:3} three of them
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${EXTEN:1}", "551234"),
        ("${EXTEN:-4}", "1234"),
        ("${EXTEN:-4:3}", "123"),
        ("${EXTEN:1:3}", "551"),
        ("${EXTEN:0:3}", "555"),
        ("${EXTEN:0:-2}", "55512"),  # negative length: leave that many off the end
        ("${EXTEN:2:-2}", "512"),
        ("${EXTEN:-3:-1}", "23"),
        ("${EXTEN:5:-5}", ""),
        ("${EXTEN:-99}", "5551234"),  # a too-negative offset starts at the beginning
        ("${EXTEN:99}", ""),
        ("${EXTEN:7}", ""),
        ("${EXTEN:0:0}", ""),
        ("${EXTEN::3}", "5551234"),  # sscanf fails on the empty offset: nothing is cut
        ("${EXTEN:x}", "5551234"),
        ("${EXTEN: 2}", "51234"),  # %d skips leading white space
        ("${EXTEN:+2:2}", "51"),
        ("${EXTEN:2:}", "51234"),
        ("${EXTEN:2:x}", "51234"),
        ("${NOPE:1}", ""),
        ("${EMPTY:1}", ""),
        ("${A:1:2}${X}", "el5"),
        ("${${B}:0:1}", "5"),
        ("${EXTEN:${X}}", "34"),
        ("${EXTEN:$[1+1]:$[3-1]}", "51"),
    ],
)
def test_substrings(text: str, expected: str) -> None:
    assert sub(text) == (expected, [])


@pytest.mark.parametrize(
    ("value", "offset", "length", "expected"),
    [
        ("abcdef", 0, INT_MAX, "abcdef"),
        ("abcdef", 2, INT_MAX, "cdef"),
        ("abcdef", -2, INT_MAX, "ef"),
        ("abcdef", -10, 2, "ab"),
        ("abcdef", 6, 1, ""),
        ("abcdef", 1, -1, "bcde"),
        ("abcdef", 3, -3, ""),
        ("abcdef", 0, -6, ""),
        ("abcdef", 0, -7, ""),
        ("", 0, 5, ""),
        ("", -1, -1, ""),
    ],
)
def test_substring_rules(value: str, offset: int, length: int, expected: str) -> None:
    assert substring(value, offset, length) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("X", ("X", 0, INT_MAX, False)),
        ("X:1", ("X", 1, INT_MAX, False)),
        ("X:-1:2", ("X", -1, 2, False)),
        ("CUT(a:b,c):1", ("CUT(a:b,c)", 1, INT_MAX, True)),  # ':' inside () is not a cut
        ("LEN(x)", ("LEN(x)", 0, INT_MAX, True)),
        ("X:1(", ("X", 1, INT_MAX, False)),  # '(' after the ':' does not make a function
        ("X:99999999999", ("X", 1215752191, INT_MAX, False)),  # C int wrap-around
    ],
)
def test_parse_variable_name(name: str, expected: tuple[str, int, int, bool]) -> None:
    assert parse_variable_name(name) == expected


@pytest.mark.parametrize(
    ("text", "expected", "calls"),
    [
        ("${LEN(abc)}", "3", [("LEN", "abc")]),
        ("${LEN()}", "0", [("LEN", "")]),
        ("${LEN(${A})}", "5", [("LEN", "hello")]),
        ("${LEN(${A}):1}", "", [("LEN", "hello")]),
        ("${UPPER(${A}):-3}", "LLO", [("UPPER", "hello")]),
        # the resolver receives the raw argument string, commas and quotes included
        ('${ECHO(a,"b,c",d)}', 'a,"b,c",d', [("ECHO", 'a,"b,c",d')]),
        ("${ECHO(f(x))}", "f(x)", [("ECHO", "f(x)")]),
        # arguments end at the last ')'; anything after it is dropped
        ("${ECHO(a)b)c}", "a)b", [("ECHO", "a)b")]),
        ("${ECHO(a:b)}", "a:b", [("ECHO", "a:b")]),
        # unknown functions give nothing
        ("[${NOSUCH(x)}]", "[]", [("NOSUCH", "x")]),
        ("${ECHO(${X},$[${X}*2])}", "5,10", [("ECHO", "5,10")]),
    ],
)
def test_functions(text: str, expected: str, calls: list[tuple[str, str]]) -> None:
    resolver = make()
    assert substitute(text, resolver) == expected
    assert resolver.calls == calls


def test_function_without_closing_parenthesis_warns() -> None:
    resolver = make()
    warnings: list[str] = []
    assert substitute("${ECHO(abc}", resolver, warn=warnings.append) == "abc"
    assert warnings == ["Can't find trailing parenthesis for function 'ECHO(abc'?"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$[1+1]", "2"),
        ("$[ 1 + 1 ]", "2"),
        ("$[${X}+1]", "6"),
        ("$[${X}=5]", "1"),
        ("$[${X} = 1]", "0"),
        ('$["${EMPTY}" = ""]', "1"),
        ('$["${A}" = ""]', "0"),
        ("$[${LEN(${A})} > 3]", "1"),
        ("$[$[1+1]*3]", "6"),
        ("$[(1+1)*$[2+1]]", "6"),
        ("${LEN($[1+1])}", "1"),
        ("${EXTEN:$[${X}-4]:2}", "55"),
        ("a$[1]b$[2]c", "a1b2c"),
        ("$[]", ""),
        ("$[${NOPE}]", ""),
        # a function called inside an expression goes to the same resolver
        ("$[LEN(abc) + 1]", "4"),
        # brackets nest inside an expression
        ("$[[1]+1]", "2"),
        # the value of a variable with a space is two tokens: a syntax error, first token wins
        ("$[${SPACE}]", "a"),
        ("$[${NUM} : 12]", "2"),
        ('$[${NUM} : "(..)"]', "12"),
        ("$[${X} > 3 ? big :: small]", "big"),
    ],
)
def test_expressions(text: str, expected: str) -> None:
    assert sub(text)[0] == expected


@pytest.mark.parametrize(
    ("text", "expected", "warning"),
    [
        # an unclosed reference takes the rest of the text
        ("${X", "5", "Error in extension logic (missing '}')"),
        ("a${X", "a5", "Error in extension logic (missing '}')"),
        ("${EXTEN:1", "551234", "Error in extension logic (missing '}')"),
        ("$[1+2", "3", "Error in extension logic (missing ']')"),
        ("$[1+${X", "6", "Error in extension logic (missing '}')"),
        ("${", "", "Error in extension logic (missing '}')"),
        ("$[", "", "Error in extension logic (missing ']')"),
    ],
)
def test_unterminated(text: str, expected: str, warning: str) -> None:
    result, warnings = sub(text)
    assert result == expected
    assert warning in warnings


def test_scanning_ignores_the_other_kind_of_bracket() -> None:
    # inside ${...} only braces count and '$[' is skipped; inside $[...] only brackets count
    resolver = FakeResolver({"a]b": "ok", "X": "5"})
    assert substitute("${a]b}", resolver) == "ok"
    assert substitute("$[${X}]]", resolver) == "5]"
    assert substitute("${X$[1]}", resolver) == ""
    assert resolver.lookups[-1] == "X1"


def test_expression_errors_are_reported() -> None:
    result, warnings = sub("$[1/0]")
    assert result == "2147483647"
    assert warnings == ["division by zero"]


def test_nesting_is_bounded() -> None:
    resolver = FakeResolver({"X": "5"})
    warnings: list[str] = []
    deep = "${" * 50 + "X" + "}" * 50
    assert substitute(deep, resolver, max_depth=10, warn=warnings.append) == ""
    assert any("nested deeper than 10" in w for w in warnings)
    # within the bound the same shape works: ${${X}} looks up "5"
    resolver.variables["5"] = "five"
    assert substitute("${${X}}", resolver, max_depth=10) == "five"


def test_substitute_without_warn() -> None:
    assert substitute("${X", make()) == "5"
