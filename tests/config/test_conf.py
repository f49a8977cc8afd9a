"""The .conf dialect: table-driven cases of Asterisk main/config.c behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.config.conf import ConfigError, load, parse_text


def _one(text: str) -> list[tuple[str, str, bool]]:
    conf = parse_text(text, "t.conf")
    return [(e.key, e.value, e.arrow) for s in conf.sections for e in s.entries]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[a]\nx=1\n", [("x", "1", False)]),
        ("[a]\nx = 1 \n", [("x", "1", False)]),
        ("[a]\nexten => 1,1,NoOp()\n", [("exten", "1,1,NoOp()", True)]),
        ("[a]\nexten=>1,1,NoOp()\n", [("exten", "1,1,NoOp()", True)]),
        ("[a]\nx=1 ; comment\n", [("x", "1", False)]),
        ("[a]\nx=a\\;b\n", [("x", "a;b", False)]),
        ("[a]\n; whole line\n\n   \nx=2\n", [("x", "2", False)]),
        ("[a]\nx=1\nx=2\n", [("x", "1", False), ("x", "2", False)]),
        ("[a]\nx=1\nx+=2\n", [("x", "12", False)]),
        ("[a]\ny+=2\n", [("y", "2", False)]),
        ("[a]\nx=1 ;-- block\nstill comment\n--; y=2\n", [("x", "1", False), ("y", "2", False)]),
        ("[a]\nx==1\n", [("x", "=1", False)]),
        ("[a]\nx=\n", [("x", "", False)]),
        ("[a]\nsecret=p=w\n", [("secret", "p=w", False)]),
        ("[a]\r\nx=1\r\n", [("x", "1", False)]),
    ],
)
def test_lines(text: str, expected: list[tuple[str, str, bool]]) -> None:
    assert _one(text) == expected


def test_values_keep_file_and_line() -> None:
    conf = parse_text("[general]\n\n; c\nbindport=5060\n", "sip.conf")
    e = conf.sections[0].entry("bindport")
    assert e is not None
    assert str(e.origin) == "sip.conf:4"
    assert str(conf.sections[0].origin) == "sip.conf:1"


def test_last_value_wins_and_case_insensitive_keys() -> None:
    s = parse_text("[p]\nHost=a\nhost=b\n").sections[0]
    assert s.get("HOST") == "b"
    assert [e.value for e in s.all("host")] == ["a", "b"]
    assert s.get("missing", "d") == "d"


def test_templates_and_inheritance_in_order() -> None:
    text = (
        "[base](!)\ntype=friend\nhost=dynamic\n"
        "[codecs](!)\ndisallow=all\nallow=ulaw\n"
        "[1000](base,codecs)\nsecret=s\nhost=10.0.0.1\n"
    )
    conf = parse_text(text)
    assert [s.name for s in conf.categories()] == ["1000"]
    assert [s.name for s in conf.sections if s.template] == ["base", "codecs"]
    peer = conf.section("1000")
    assert peer is not None
    assert peer.bases == ("base", "codecs")
    assert [(e.key, e.value, e.inherited) for e in peer] == [
        ("type", "friend", True),
        ("host", "dynamic", True),
        ("disallow", "all", True),
        ("allow", "ulaw", True),
        ("secret", "s", False),
        ("host", "10.0.0.1", False),
    ]
    assert peer.get("host") == "10.0.0.1"


def test_template_chain() -> None:
    conf = parse_text("[a](!)\nx=1\n[b](!,a)\ny=2\n[c](b)\nz=3\n")
    c = conf.section("c")
    assert c is not None
    assert [(e.key, e.value) for e in c] == [("x", "1"), ("y", "2"), ("z", "3")]


def test_append_to_existing_section() -> None:
    conf = parse_text("[a]\nx=1\n[b]\ny=1\n[a](+)\nz=2\n")
    a = conf.section("a")
    assert a is not None
    assert [e.key for e in a] == ["x", "z"]
    assert len(conf.sections) == 2


def test_duplicate_sections_are_kept_apart() -> None:
    conf = parse_text("[general]\nx=1\n[general]\ny=2\n")
    assert [len(s.entries) for s in conf.sections_named("general")] == [1, 1]


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("[a\nx=1\n", "t.conf:1", "closing ']'"),
        ("x=1\n", "t.conf:1", "no section"),
        ("[a]\nx=1\n[b](nope)\n", "t.conf:3", "'nope' does not exist"),
        ("[a](+)\n", "t.conf:1", "'a' does not exist"),
        ("[]\n", "t.conf:1", "empty section"),
        ("[a](!\n", "t.conf:1", "closing ')'"),
        ("[a]\n#include\n", "t.conf:2", "needs a file name"),
    ],
)
def test_errors_have_file_and_line(text: str, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_text(text, "t.conf")
    assert str(info.value).startswith(where + ": ")
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[a]\njustaword\n", "no '='"),
        ("[a]\n#exec /bin/date\n", "#exec"),
        ("[a] trailing\n", "ignored"),
        ("[a]\n#frobnicate x\n", "unknown directive"),
    ],
)
def test_warnings(text: str, words: str) -> None:
    conf = parse_text(text, "t.conf")
    assert len(conf.warnings) == 1
    assert words in str(conf.warnings[0])
    assert str(conf.warnings[0]).startswith("t.conf:")


def test_include_relative_to_config_dir_and_globs(tmp_path: Path) -> None:
    (tmp_path / "sip.conf").write_text(
        "[general]\nx=1\n#include sip_custom.conf\n#include peers/*.conf\n"
    )
    (tmp_path / "sip_custom.conf").write_text("y=2\n[extra]\nz=3\n")
    (tmp_path / "peers").mkdir()
    (tmp_path / "peers" / "b.conf").write_text("[b]\nhost=dynamic\n")
    (tmp_path / "peers" / "a.conf").write_text("[a]\nhost=dynamic\n")
    conf = load(tmp_path / "sip.conf")
    names = [s.name for s in conf.sections]
    assert names == ["general", "extra", "a", "b"]
    general = conf.section("general")
    assert general is not None
    assert general.get("y") == "2"
    y = general.entry("y")
    assert y is not None
    assert y.origin.file.endswith("sip_custom.conf")
    assert y.origin.line == 1
    assert len(conf.files) == 4


def test_include_quoted_and_tryinclude(tmp_path: Path) -> None:
    (tmp_path / "x.conf").write_text('[a]\n#include "inc.conf"\n#tryinclude missing.conf\n')
    (tmp_path / "inc.conf").write_text("k=v\n")
    conf = load(tmp_path / "x.conf")
    a = conf.section("a")
    assert a is not None
    assert a.get("k") == "v"


def test_missing_include_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.conf").write_text("[a]\n#include missing.conf\n")
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "x.conf")
    assert str(info.value).startswith(f"{tmp_path / 'x.conf'}:2: ")


def test_include_loop_detected(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("[a]\n#include b.conf\n")
    (tmp_path / "b.conf").write_text("#include a.conf\n")
    with pytest.raises(ConfigError, match="include loop") as info:
        load(tmp_path / "a.conf")
    assert info.value.origin is not None
    assert info.value.origin.file.endswith("b.conf")


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load("/nonexistent/pypbx/sip.conf")


def test_latin1_file(tmp_path: Path) -> None:
    (tmp_path / "x.conf").write_bytes(b'[a]\ncallerid="Jos\xe9" <100>\n')
    a = load(tmp_path / "x.conf").section("a")
    assert a is not None
    assert a.get("callerid") == '"José" <100>'


def _no_files(path: str) -> str:
    raise FileNotFoundError(2, "No such file", path)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("[]()!+,=>;-#\\ \tab\n\r.*\"'x1")), max_size=300))
def test_any_text_gives_config_or_error_with_line(text: str) -> None:
    try:
        conf = parse_text(text, "f.conf", read_file=_no_files)
    except ConfigError as exc:
        assert exc.origin is not None
        assert exc.origin.file == "f.conf"
        assert exc.origin.line >= 1
    else:
        for w in conf.warnings:
            assert w.origin.line >= 1


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_unicode_text(text: str) -> None:
    try:
        parse_text(text, "f.conf", read_file=_no_files)
    except ConfigError as exc:
        assert exc.origin is not None
