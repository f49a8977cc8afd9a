"""$[...] expressions: main/ast_expr2.y, main/ast_expr2.fl and the Asterisk expression docs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pypbx.dialplan.expr import evaluate, format_number


def run(text: str) -> tuple[str, list[str]]:
    warnings: list[str] = []
    return evaluate(text, warn=warnings.append), warnings


# docs.asterisk.org, Configuration > Dialplan > Expressions > Expressions Examples (the page's
# table lost the '+' of the regexes in formatting; these are the cases as the parser reads them)
DOC_EXAMPLES = [
    ('"One Thousand Five Hundred" =~ "(T[^ ]+)"', "Thousand"),
    ('"One Thousand Five Hundred" =~ "T[^ ]+"', "8"),
    ('"One Thousand Five Hundred" : "T[^ ]+"', "0"),
    ('"8015551212" : "(...)"', "801"),
    ('"3075551212":"...(...)"', "555"),
    ('! "One Thousand Five Hundred" =~ "T[^ ]+"', "0"),
    ('!( "One Thousand Five Hundred" : "T[^ ]+" )', "1"),
    ("2 + 8 / 2", "6"),
    ("2+8/2", "6"),
    ("(2+8)/2", "5"),
    ("(3+8)/2", "5.5"),
    ("TRUNC((3+8)/2)", "5"),
    ("FLOOR(2.5)", "2"),
    ("FLOOR(-2.5)", "-3"),
    ("CEIL(2.5)", "3"),
    ("CEIL(-2.5)", "-2"),
    ("ROUND(2.5)", "3"),
    ("ROUND(3.5)", "4"),
    ("ROUND(-2.5)", "-3"),
    ("RINT(2.5)", "2"),
    ("RINT(3.5)", "4"),
    ("RINT(-2.5)", "-2"),
    ("RINT(-3.5)", "-4"),
    ("TRUNC(2.5)", "2"),
    ("TRUNC(3.5)", "3"),
    ("TRUNC(-3.5)", "-3"),
]


@pytest.mark.parametrize(("text", "expected"), DOC_EXAMPLES)
def test_documented_examples(text: str, expected: str) -> None:
    assert run(text) == (expected, [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Operators section: precedence from lowest (? ::) to highest (: =~)
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("10 - 4 - 3", "3"),  # left associative
        ("64 / 4 / 2", "8"),
        ("7 % 4 * 2", "6"),
        ("1 + 1 = 2", "1"),  # + binds tighter than =
        ("1 = 1 & 2 = 2", "1"),  # = binds tighter than &
        ("0 & 1 | 5", "5"),  # & binds tighter than |
        ("1 | 0 & 0", "1"),
        ("- 2 * 3", "-6"),
        ("- 3 + 5", "2"),  # unary minus binds tighter than +
        ("3 - - 3", "6"),
        ("- - 3", "3"),
        ("!0 + 1", "2"),  # ! binds tighter than +
        ("! 1 = 0", "1"),  # (!1) = 0
        ("1 ? 2 :: 3", "2"),
        ("0 ? 2 :: 3", "3"),
        ("1 ? 2 ? 3 :: 4 :: 5", "3"),
        ("0 ? 1 :: 0 ? 2 :: 3", "3"),  # left associative: (0?1::0) ? 2 :: 3
        ("1 ? 2 :: 3 | 4", "2"),  # | binds tighter than ? ::
        ("0 ? 2 :: 0 | 4", "4"),
        ("1 = 2 ? yes :: no", "no"),
        ("5 == 5 && 2", "1"),  # == && || are aliases; & gives its left operand
        ("0 || 7", "7"),
    ],
)
def test_precedence_and_associativity(text: str, expected: str) -> None:
    assert run(text) == (expected, [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # numbers compare as numbers, strings as strings (Operators section)
        ("10 < 9", "0"),
        ("10 > 9", "1"),
        ("1.0 = 1", "1"),
        ("007 = 7", "1"),
        ("2.50 >= 2.5", "1"),
        ("abc = abc", "1"),
        ("abc != abd", "1"),
        ("abc < abd", "1"),
        ("b > abc", "1"),
        ("abc <= abc", "1"),
        ("10 < 9a", "1"),  # 9a is a string: "10" < "9a"
        ("A = a", "0"),
        # quoted tokens keep their quotes: "5" is the 3-character string "5" with quotes
        ('"5" = 5', "0"),
        ('"abc" = "abc"', "1"),
        ('"" = ""', "1"),
        ('"a b" = "a b"', "1"),
        # comparisons always give 0 or 1
        ("3 = 3", "1"),
        ("3 != 3", "0"),
    ],
)
def test_comparisons(text: str, expected: str) -> None:
    assert run(text) == (expected, [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # | gives the left operand when it is true, else the right
        ("abc | def", "abc"),
        ("0 | def", "def"),
        ('"" | x', '""'),  # the two-character string "" is true here
        ("007 | 1", "7"),  # the true test converted the numeric string
        ("00 | 5", "5"),
        # & gives the left operand when both are true, else 0
        ("abc & def", "abc"),
        ("abc & 0", "0"),
        ("0 & abc", "0"),
        ("007 & 1", "7"),
        # ? :: with a string condition: false when empty, "" or 0
        ('"" ? a :: b', "b"),
        ("x ? a :: b", "a"),
        ("0.0 ? a :: b", "b"),
        ("000 ? a :: b", "b"),
        # ! with strings uses atoi: any string that does not start with a number is "false"
        ("!abc", "1"),
        ("!5abc", "0"),
        ("!0.5", "1"),
        ("!1.5", "0"),
        ("!00", "1"),
        ('!""', "1"),
        ("!4294967296", "1"),  # atoi truncates to a 32-bit int: 0
        ("!(1 - 1)", "1"),
    ],
)
def test_logical_operators(text: str, expected: str) -> None:
    assert run(text) == (expected, [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # plain values pass through untouched: numeric strings are not reformatted
        ("5", "5"),
        ("007", "007"),
        ("1.50", "1.50"),
        ("abc", "abc"),
        ('"quoted text"', '"quoted text"'),
        ("(((42)))", "42"),
        ("1e5", "1e5"),  # not a number token: a string
        # results of arithmetic are numbers, printed with %.18Lg
        ("007 + 0", "7"),
        ("1.50 * 1", "1.5"),
        ("-0", "-0"),
        ("0 - 0", "0"),
        ("10 / 3", "3.33333333333333333"),
        ("1 / 3", "0.333333333333333333"),
        ("2 / 3", "0.666666666666666667"),
        ("0.1 + 0.2", "0.3"),
        ("7 % 3", "1"),
        ("-7 % 3", "-1"),  # fmod keeps the dividend's sign
        ("7.5 % 2", "1.5"),
        ("1000000000000000000 * 1000", "1e+21"),
        ("123456789012345678 + 0", "123456789012345678"),
        ("1234567890123456789 + 0", "1.23456789012345679e+18"),
        ("1 / 100000", "1e-05"),
        ("1 / 10000", "0.0001"),
        # ~~ concatenates, stripping surrounding quotes
        ('"abc" ~~ "def"', "abcdef"),
        ("1 ~~ 2", "12"),
        ("1 ~~ 2 + 1", "13"),  # ~~ binds tighter than +
    ],
)
def test_values_and_arithmetic(text: str, expected: str) -> None:
    assert run(text) == (expected, [])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", "0"),
        ("-0", "-0"),
        ("1", "1"),
        ("-1.5", "-1.5"),
        ("100", "100"),
        ("123456789012345678", "123456789012345678"),
        ("999999999999999999", "999999999999999999"),
        ("9999999999999999999", "1e+19"),
        ("0.0001", "0.0001"),
        ("0.00001", "1e-05"),
        ("1.5E+300", "1.5e+300"),
        ("1E-300", "1e-300"),
        ("0.1234567890123456789", "0.123456789012345679"),
        ("Infinity", "inf"),
        ("-Infinity", "-inf"),
        ("NaN", "-nan"),
    ],
)
def test_format_number_is_printf_18Lg(value: str, expected: str) -> None:
    assert format_number(Decimal(value)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # ':' is anchored at the start; '=~' is not (Operators section)
        ("abcdef : abc", "3"),
        ("xabc : abc", "0"),
        ("xabc =~ abc", "3"),
        ("xabc =~ zzz", "0"),
        ('xabc =~ "(zz)"', ""),  # no match with a group gives ""
        ('12345 : "(..)"', "12"),
        ('12345 =~ "(3.)"', "34"),
        ('12345 : "1(x)?2"', "2"),  # an unset group gives the match length
        # unquoted, ( ) are the expression's own parentheses: the pattern is just ".."
        ("12345 : (..)", "2"),
        ('"a b c" : "a (b) c"', "b"),
        # POSIX classes, brackets, intervals and GNU escapes
        ('"5551234" : "[[:digit:]]{3}"', "3"),
        ('5551234 : "([0-9]{3})"', "555"),
        ('"abc" : "[^0-9]+"', "3"),
        ('"a]b" : "[]a]+"', "2"),
        ('"a-b" : "[a-]+"', "2"),
        ('"a\\b" : "a[\\]b"', "3"),  # a backslash is literal inside brackets
        ('"foo bar" =~ "\\<bar"', "3"),
        ('"ab" : "a**"', "1"),  # repeated repetition is allowed in POSIX
        ('"a)" : "a)"', "2"),  # an unmatched ) is an ordinary character
        ('"aXb" : "a.b"', "3"),
        ('"ab" : "ab$"', "2"),
        ('"abc" : "ab$"', "0"),
        # a number operand is turned into its string first
        ("(2 * 21) : 4", "1"),
        # : and =~ bind tighter than everything else, left to right
        ("abc : a ~~ x", "1x"),
    ],
)
def test_regex_match(text: str, expected: str) -> None:
    assert run(text) == (expected, [])


@pytest.mark.parametrize(
    "pattern",
    ['"(ab"', '"[ab"', '"a{1"', '"*a"', '"a\\"', '"[[:nope:]]"', '"[b-a]"', '"a{3,1}"'],
)
def test_bad_regex_warns_and_gives_empty(pattern: str) -> None:
    result, warnings = run(f"abc : {pattern}")
    assert result == ""
    assert len(warnings) == 1
    assert warnings[0].startswith("regcomp() error")


@pytest.mark.parametrize(
    ("text", "expected", "warning"),
    [
        # Asterisk's op_div / op_rem answers for division by zero
        ("1 / 0", "2147483647", "division by zero"),
        ("5 % 0", "0", "div by zero"),
        # non-numeric operands
        ("a + 1", "1", "non-numeric argument"),
        ("a + b", "0", "non-numeric argument"),
        ("1 - a", "1", "non-numeric argument"),
        ("a - 1", "-1", "non-numeric argument"),
        ("a * 2", "0", "non-numeric argument"),
        ("a / 2", "0", "non-numeric argument"),
        ("2 / a", "2147483647", "non-numeric argument"),
        ("a % 2", "0", "non-numeric argument"),
        ("- abc", "0", "non-numeric argument"),
    ],
)
def test_arithmetic_errors(text: str, expected: str, warning: str) -> None:
    assert run(text) == (expected, [warning])


def test_one_plus_string_gives_number_without_warning() -> None:
    # op_plus: a number plus a string gives the number, silently
    assert run("1 + a") == ("1", [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a complete expression followed by junk: bison already reduced it to the result
        ("1 2", "1"),
        ("1 + 2 3", "3"),
        ("a b = c", "a"),
        ("- 3 4", "-3"),
        ("1 :: 2", "1"),
        ("1 , 2", "1"),
        ("(1) )", "1"),
        # an error before any expression is complete: the empty expression's ""
        (")", ""),
        (":: 1", ""),
        (", 1", ""),
        # an error inside an unfinished construct: no value at all, "0"
        ("1 +", "0"),
        ("(1 + 2", "0"),
        ("(1 2)", "0"),
        ("1 ? 2", "0"),
        ("1 ? 2 3 :: 4", "0"),
        ("FUNC()", "0"),
        ("FLOOR(1 2)", "0"),
        ("abc : (b", "0"),
        ("* 2", ""),
    ],
)
def test_syntax_errors(text: str, expected: str) -> None:
    result, warnings = run(text)
    assert result == expected
    assert len(warnings) == 1
    assert "syntax error" in warnings[0]
    assert text in warnings[0]  # the input is echoed with a caret under the bad token


def test_syntax_error_points_at_the_token() -> None:
    _, warnings = run("1 + 2 3")
    lines = warnings[0].splitlines()
    assert lines[-2] == "1 + 2 3"
    assert lines[-1] == "      ^"


@pytest.mark.parametrize("text", ["", " ", "\t\r\n", "[]", "{}", "~"])
def test_empty_expression_is_empty_string(text: str) -> None:
    # start: /* nothing */ gives ""; unknown characters are skipped by flex's default rule
    assert run(text) == ("", [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the forms substitution leaves behind (docs: Expressions, "Spaces Inside Variable")
        ("5=1", "0"),
        ("5=5", "1"),
        ('"" = ""', "1"),
        ('"x" = ""', "0"),
        ("5 > 3", "1"),
        ("abc=abc", "1"),
        # '/' and '-' are operators, so a channel name splits into an arithmetic mess
        ("SIP/100", "0"),
        ('"SIP/100-0001" = "SIP/100-0001"', "1"),
        # $ followed by anything but { is part of a word
        ("$abc", "$abc"),
        ("a$=b", "a$=b"),
        # a leftover ${...} reference is a single string token with its trailing text
        ("${X}==1", "0"),
        ("${X}abc", "${X}abc"),
        ("${X}abc = ${X}abc", "1"),
        ("${A${B}}c:x", "0"),
        ("${X", ""),  # an unterminated reference is dropped
        # unknown characters are skipped
        ("[1] + [2]", "3"),
        ('"unterminated', "unterminated"),
        # the C string ends at NUL
        ("1 + 1\0 + 5", "2"),
        ("1 + 1\n+ 5", "7"),
    ],
)
def test_tokenizer(text: str, expected: str) -> None:
    assert run(text)[0] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Expr2 Built-in Functions section
        ("SQRT(16)", "4"),
        ("SQRT(2)", "1.41421356237309505"),
        ("POW(2,10)", "1024"),
        ("POW(2, 0.5)", "1.41421356237309505"),
        ("ABS(-3)", "3"),
        ("ABS(3)", "3"),
        ("COS(0)", "1"),
        ("SIN(0)", "0"),
        ("ATAN2(0,1)", "0"),
        ("EXP(0)", "1"),
        ("EXP2(10)", "1024"),
        ("EXP10(3)", "1000"),
        ("LOG(1)", "0"),
        ("LOG2(8)", "3"),
        ("LOG10(1000)", "3"),
        ("REMAINDER(7,4)", "-1"),  # IEEE remainder rounds the quotient to nearest
        ("REMAINDER(5,4)", "1"),
        ("FLOOR(7 / 2) + 1", "4"),
        ("SQRT(-1)", "-nan"),
        ("LOG(0)", "-inf"),
        ("ACOS(2)", "-nan"),
        ("FLOOR(abc)", "0"),  # a string argument reads as 0
    ],
)
def test_builtin_functions(text: str, expected: str) -> None:
    assert run(text) == (expected, [])


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        ("SQRT(1,2)", "Wrong args to SQRT() function"),
        ("POW(2)", "Wrong args to POW() function"),
        ("cos(0)", "Error! 'cos' is not possibly a function name!"),
        ("NOSUCH(1)", "Error! 'NOSUCH' doesn't appear to be an available function!"),
    ],
)
def test_function_errors_give_zero(text: str, warning: str) -> None:
    assert run(text) == ("0", [warning])


def test_dialplan_functions_go_to_the_callback() -> None:
    calls: list[tuple[str, str]] = []

    def call(name: str, args: str) -> str | None:
        calls.append((name, args))
        return {"LEN": str(len(args)), "CUT": "a-b", "EMPTY": "", "NEG": " -5 "}.get(name)

    def ev(text: str) -> str:
        return evaluate(text, call_function=call)

    assert ev("LEN(abcd) + 1") == "5"
    assert calls[-1] == ("LEN", "abcd")
    # arguments are evaluated, numbers formatted, and joined with ','
    assert ev("LEN(1+1, x, 2/4)") == "7"
    assert calls[-1] == ("LEN", "2,x,0.5")
    assert ev('LEN("q",)') == "4"
    assert calls[-1] == ("LEN", '"q",')
    # a result made only of digits, '-', '.', space and tab is a number
    assert ev("CUT(x)") == "a-b"
    assert ev("EMPTY(x) + 1") == "1"
    assert ev("NEG(x) * 2") == "-10"
    assert ev("NOPE(x)") == "0"


def test_all_operands_are_evaluated() -> None:
    # no short-circuit: both branches of ? :: (and both sides of | and &) run
    calls: list[str] = []

    def call(name: str, args: str) -> str | None:
        calls.append(name)
        return "1"

    assert evaluate("0 ? A(1) :: B(1)", call_function=call) == "1"
    assert evaluate("C(1) | D(1)", call_function=call) == "1"
    assert calls == ["A", "B", "C", "D"]


def test_deep_nesting_is_a_syntax_error_not_a_crash() -> None:
    result, warnings = run("(" * 5000 + "1" + ")" * 5000)
    assert result == "0"
    assert warnings
    result, warnings = run("- " * 5000 + "1")
    assert result == "0"


def test_warn_is_optional() -> None:
    assert evaluate("1 / 0") == "2147483647"
    assert evaluate("1 +") == "0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # POSIX regexec picks the leftmost, then LONGEST match (Python's re would pick "a")
        ('"ab" : "a|ab"', "2"),
        ('"xyz" =~ "y|yz"', "2"),
        ('"abcd" =~ "(b|bc)d?"', "bc"),
        ('"aaa" : "(a|aa)*"', "a"),
        ('"aaa" : "a*?"', "3"),  # '?' after '*' is another repetition, not laziness
        # the first group is the first '(' even when later groups exist
        ('"abc" : "(a)(b)(c)"', "a"),
        ('"abc" : "((a)b)"', "ab"),
        ('"b" : "(a)|b"', "1"),  # group 1 did not take part: the match length
        ('"abc" : "()"', ""),
        ('"aaaa" : "a{,3}"', "3"),
        ('"aaaa" : "a{2,}"', "4"),
        ('"aaaa" : "a{2}"', "2"),
        # anchors and GNU word operators
        ('"ab" =~ "^b"', "0"),
        ('"ab" =~ "b$"', "1"),
        ('"a b" =~ "\\bb"', "1"),
        ('"ab" =~ "\\Bb"', "1"),
        ('"foo bar" =~ "bar\\>"', "3"),
        ('"foo_bar" =~ "\\<bar"', "0"),
        ('"x y" =~ "\\s"', "1"),
        ('"a.b" : "a\\.b"', "3"),
        ('"a+b" : "a[+]b"', "3"),
        # back-references (glibc supports them in extended patterns)
        ('"abab" : "(ab)\\1"', "ab"),
        ('"abac" : "(ab)\\1"', ""),
    ],
)
def test_posix_regex_semantics(text: str, expected: str) -> None:
    assert run(text) == (expected, [])


def test_regex_cannot_hang_on_nested_quantifiers() -> None:
    # exponential for a backtracking matcher; linear for the NFA used here
    subject = "a" * 5000 + "c"
    assert run(f'"{subject}" : "(a+)+b"') == ("", [])
    assert run(f'"{subject}" =~ "(a|aa)*c"') == ("a", [])


def test_regex_that_compiles_too_big_is_an_error() -> None:
    result, warnings = run('"a" : "((a{1000}){1000})"')
    assert result == ""
    assert warnings == ["regcomp() error : Regular expression too big"]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [("[a||]", "|", True), ("[^a&&b]", "c", True), ("[x~~y]", "~", True), ("[a||]", "b", False)],
)
def test_doubled_class_operators_are_plain_characters(
    pattern: str, text: str, matches: bool
) -> None:
    # Python's re warns about [||], [&&], [~~] (future set operations); POSIX means characters
    found = evaluate(f'"{text}" =~ "{pattern}"')
    assert (found != "0") is matches
