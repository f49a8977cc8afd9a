"""Pattern matching and ordering, as Asterisk main/pbx.c does it.

Cases follow the Asterisk documentation, "Configuration / Dialplan / Pattern Matching"
(special characters, character sets, ordering of matches) and the behaviour of
``_extension_match_core`` / ``ext_cmp`` in main/pbx.c.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.dialplan.pattern import (
    EARLY,
    MATCHED,
    NO_MATCH,
    MatchMode,
    PatternIndex,
    compile_pattern,
    extension_close,
    extension_match,
    sort_key,
)
from pypbx.dialplan.pattern import _pattern_core as slow_core

M, C, MM = MatchMode.MATCH, MatchMode.CANMATCH, MatchMode.MATCHMORE

# (pattern, dialled, result in MATCH, CANMATCH, MATCHMORE modes)
MATCH_TABLE = [
    # literals: exact, prefix (overlap dialling), too long, '-' ignored, case-sensitive
    ("1000", "1000", MATCHED, MATCHED, NO_MATCH),
    ("1000", "100", NO_MATCH, MATCHED, MATCHED),
    ("1000", "", NO_MATCH, MATCHED, MATCHED),
    ("1000", "10001", NO_MATCH, NO_MATCH, NO_MATCH),
    ("1000", "1001", NO_MATCH, NO_MATCH, NO_MATCH),
    ("1000", "1-000", MATCHED, MATCHED, NO_MATCH),
    ("1-000", "1000", MATCHED, MATCHED, NO_MATCH),
    ("abc", "ABC", NO_MATCH, NO_MATCH, NO_MATCH),
    ("s", "s", MATCHED, MATCHED, NO_MATCH),
    ("_X", "s", NO_MATCH, NO_MATCH, NO_MATCH),
    # docs "Special Characters Used in Pattern Matching": X 0-9, Z 1-9, N 2-9, any case
    ("_X", "5", MATCHED, MATCHED, NO_MATCH),
    ("_x", "0", MATCHED, MATCHED, NO_MATCH),
    ("_X", "a", NO_MATCH, NO_MATCH, NO_MATCH),
    ("_Z", "0", NO_MATCH, NO_MATCH, NO_MATCH),
    ("_z", "1", MATCHED, MATCHED, NO_MATCH),
    ("_N", "1", NO_MATCH, NO_MATCH, NO_MATCH),
    ("_n", "2", MATCHED, MATCHED, NO_MATCH),
    ("_NXXNXXXXXX", "2125551212", MATCHED, MATCHED, NO_MATCH),
    ("_NXXNXXXXXX", "212555", NO_MATCH, MATCHED, MATCHED),
    ("_NXXNXXXXXX", "1125551212", NO_MATCH, NO_MATCH, NO_MATCH),
    # docs "Ranges used in Pattern Matching": [1237-9], letters, empty set skipped
    ("_[1237-9]", "8", MATCHED, MATCHED, NO_MATCH),
    ("_[1237-9]", "5", NO_MATCH, NO_MATCH, NO_MATCH),
    ("_[1-5a-c]", "b", MATCHED, MATCHED, NO_MATCH),
    ("_[1-5a-c]", "B", NO_MATCH, NO_MATCH, NO_MATCH),
    ("_[1-5a-c]", "e", NO_MATCH, NO_MATCH, NO_MATCH),
    ("_[]5", "5", MATCHED, MATCHED, NO_MATCH),
    ("_[5", "5", NO_MATCH, NO_MATCH, NO_MATCH),
    ("_1[.]", "1.", MATCHED, MATCHED, NO_MATCH),
    # '.': one or more of anything; what follows '.' is never looked at
    ("_1X.", "12", NO_MATCH, MATCHED, MATCHED),
    ("_1X.", "123", MATCHED, MATCHED, MATCHED),
    ("_1X.", "12*#ab", MATCHED, MATCHED, MATCHED),
    ("_X.5", "12", MATCHED, MATCHED, MATCHED),
    ("_X.", "", NO_MATCH, MATCHED, MATCHED),
    # '!': zero or more, an "early match" (result 2)
    ("_1X!", "1", NO_MATCH, MATCHED, MATCHED),
    ("_1X!", "12", EARLY, EARLY, EARLY),
    ("_1X!", "123", EARLY, EARLY, EARLY),
    ("_!", "", EARLY, EARLY, EARLY),
    # '-' ignored in patterns and in the dialled string
    ("_NXX-XXXX", "555-1212", MATCHED, MATCHED, NO_MATCH),
    ("_NXX-XXXX", "5551212", MATCHED, MATCHED, NO_MATCH),
    # the empty pattern matches only the empty string; patterns are not literals
    ("_", "", MATCHED, MATCHED, NO_MATCH),
    ("_X", "", NO_MATCH, MATCHED, MATCHED),
    ("_X", "55", NO_MATCH, NO_MATCH, NO_MATCH),
]


@pytest.mark.parametrize(("pattern", "data", "match", "canmatch", "matchmore"), MATCH_TABLE)
def test_match_modes(pattern: str, data: str, match: int, canmatch: int, matchmore: int) -> None:
    p = compile_pattern(pattern)
    assert (p.match_core(data, M), p.match_core(data, C), p.match_core(data, MM)) == (
        match,
        canmatch,
        matchmore,
    )


def test_public_helpers() -> None:
    assert extension_match("_1NXXNXXXXXX", "18002223333")
    assert not extension_match("_1NXXNXXXXXX", "911")
    assert extension_close("_1NXXNXXXXXX", "1800")
    assert extension_close("_1NXXNXXXXXX", "1800", needmore=True)
    assert not extension_close("911", "911", needmore=True)
    assert extension_close("911", "911")


@pytest.mark.parametrize(
    ("pattern", "data", "expected"),
    [
        ("_X.", "_X.", True),  # a pattern given as data compares as a pattern (pbx.c XXX note)
        ("_X", "_[0-9]", True),
        ("_N", "_[2-9]", True),
        ("_X", "_Z", False),
    ],
)
def test_pattern_given_as_data(pattern: str, data: str, expected: bool) -> None:
    assert extension_match(pattern, data) is expected


# docs "Pattern Matching", ordering example: "_6XX1 _64XX _640X _6. _64NX _6[45]NX _6[34]NX"
DOCS_EXAMPLE = ["_6XX1", "_64XX", "_640X", "_6.", "_64NX", "_6[45]NX", "_6[34]NX"]
DOCS_SORTED = ["_640X", "_64NX", "_64XX", "_6[34]NX", "_6[45]NX", "_6XX1", "_6."]

ORDER_TABLE = [
    (DOCS_EXAMPLE, DOCS_SORTED),
    (list(reversed(DOCS_EXAMPLE)), DOCS_SORTED),
    # literals before patterns, whatever the pattern
    (["_X", "5"], ["5", "_X"]),
    (["_5", "5"], ["5", "_5"]),
    # digit < N < Z < X at a position (fewer characters admitted wins)
    (["_X", "_Z", "_N", "_7"], ["_7", "_N", "_Z", "_X"]),
    # sets by size, then by lowest character, then by the whole set
    (["_[123]", "_[89]"], ["_[89]", "_[123]"]),
    (["_[45]", "_[36]"], ["_[36]", "_[45]"]),
    (["_[13]", "_[12]"], ["_[12]", "_[13]"]),
    (["_[2-7]", "_N"], ["_[2-7]", "_N"]),
    # '.' after any set, '!' after '.', the end of the pattern after '!'
    (["_.", "_[0-9a-z]"], ["_[0-9a-z]", "_."]),
    (["_!", "_."], ["_.", "_!"]),
    (["_X", "_X!", "_X."], ["_X.", "_X!", "_X"]),
    # literals compare as strings without '-', case-sensitively
    (["101", "1000", "100"], ["100", "1000", "101"]),
    (["a", "B", "A"], ["A", "B", "a"]),
    (["1-01", "100"], ["100", "1-01"]),
    # earlier positions decide before later ones
    (["_X1", "_1X"], ["_1X", "_X1"]),
    (["_NXXXXXX", "_1NXXNXXXXXX", "_011."], ["_011.", "_1NXXNXXXXXX", "_NXXXXXX"]),
]


@pytest.mark.parametrize(("names", "expected"), ORDER_TABLE)
def test_asterisk_order(names: list[str], expected: list[str]) -> None:
    assert sorted(names, key=sort_key) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("_[0-9]", "_X"),
        ("_[2-9]", "_N"),
        ("_[1-9]", "_Z"),
        ("_x", "_X"),
        ("_[0123456789]", "_X"),
        ("_[9-0]X", "_[]X"),  # an inverted range is empty, and empty sets are skipped
        ("_1-2X", "_12X"),
        ("_[5]", "_5"),
        ("1-00", "100"),
    ],
)
def test_equal_sort_keys(a: str, b: str) -> None:
    assert sort_key(a) == sort_key(b)


def test_unequal_sort_keys() -> None:
    assert sort_key("_X") != sort_key("X")  # a literal "X" is not a pattern
    assert sort_key("abc") != sort_key("ABC")


_PATTERN_CHARS = st.sampled_from([*"0123456789XZNxzn.!-*#", "[1-3]", "[05]", "[]", "[a-c9]"])
_DATA = st.text(alphabet="0123456789*#-ab", max_size=10)


@given(st.lists(_PATTERN_CHARS, max_size=8).map(lambda parts: "_" + "".join(parts)), _DATA)
def test_fast_match_agrees_with_core(pattern: str, data: str) -> None:
    p = compile_pattern(pattern)
    plain = data.replace("-", "")
    assert p.match_core(data, M) == slow_core(p.tokens, plain, M)


@given(st.lists(_PATTERN_CHARS, max_size=8).map(lambda parts: "_" + "".join(parts)), _DATA)
def test_modes_are_consistent(pattern: str, data: str) -> None:
    p = compile_pattern(pattern)
    if p.matches(data, M):
        # whatever matches could be matched all along the way (overlap dialling)
        for i in range(len(data) + 1):
            assert p.matches(data[:i], C)
    if p.matches(data, MM):
        assert p.matches(data, C)


@given(st.lists(_PATTERN_CHARS, min_size=1, max_size=6), st.lists(_PATTERN_CHARS, max_size=6))
def test_sort_is_a_total_order(a: list[str], b: list[str]) -> None:
    ka, kb = sort_key("_" + "".join(a)), sort_key("_" + "".join(b))
    assert (ka < kb) + (ka > kb) + (ka == kb) == 1
    assert sort_key("".join(c for c in "".join(a) if c.isdigit()) or "0") < ka


@given(
    st.lists(st.lists(_PATTERN_CHARS, max_size=7), min_size=1, max_size=15),
    st.lists(st.sampled_from(["123", "1-2", "12", "s", "*1", ""]), max_size=3),
    _DATA,
)
def test_pattern_index_finds_every_match_in_order(
    bodies: list[list[str]], literals: list[str], data: str
) -> None:
    names = sorted({"_" + "".join(b) for b in bodies} | set(literals), key=sort_key)
    index = PatternIndex()
    for i, name in enumerate(names):
        index.add(compile_pattern(name), i)
    expected = [i for i, name in enumerate(names) if extension_match(name, data)]
    assert index.matches(data.replace("-", "")) == expected
