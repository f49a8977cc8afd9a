"""The pypbx command line: argument forms, --version, delegation to dryrun, error exits."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from pypbx import __version__
from pypbx.cli import DEFAULT_CONFIG_DIR, build_parser, main
from tests.control.pbxproc import TUTORIAL, pypbx


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pypbx {__version__}"


def test_version_as_a_process() -> None:
    done = pypbx("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"pypbx {__version__}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"command": None, "remote": False, "execute": None}),
        (["-C", "/x"], {"command": None, "config_dir": "/x"}),
        (["run", "-C", "/x"], {"command": "run", "config_dir": "/x"}),
        (["-C", "/x", "run"], {"command": "run", "config_dir": "/x"}),
        (["-C", "/x", "-rx", "sip show peers"], {"remote": True, "execute": "sip show peers"}),
        (
            ["-rx", "core show uptime", "-C", "/y"],
            {"execute": "core show uptime", "config_dir": "/y"},
        ),
        (["-x", "help"], {"remote": False, "execute": "help"}),
        (["-C", "/x", "-r"], {"remote": True, "execute": None}),
        (["-vvv", "-C", "/x"], {"verbose": 3}),
        (["run", "-v", "-v", "--json-logs"], {"verbose": 2, "json_logs": True}),
        (["check", "-C", "/c"], {"command": "check", "config_dir": "/c"}),
        (["-C", "/c", "check"], {"command": "check", "config_dir": "/c"}),
        (
            ["dialplan", "run", "-C", "/d", "outgoing", "600", "--var", "A=1", "--var", "B=x=y"],
            {
                "dialplan_command": "run",
                "context": "outgoing",
                "exten": "600",
                "var": ["A=1", "B=x=y"],
            },
        ),
        (
            [
                "-C",
                "/d",
                "dialplan",
                "run",
                "in",
                "s",
                "--json",
                "--dialstatus",
                "BUSY",
                "--callerid",
                "42",
            ],
            {"config_dir": "/d", "json": True, "dialstatus": "BUSY", "callerid": "42"},
        ),
    ],
)
def test_parse(argv: list[str], expected: dict[str, object]) -> None:
    ns = build_parser().parse_args(argv)
    for key, value in expected.items():
        assert getattr(ns, key) == value, key


def test_config_dir_defaults_to_etc_pypbx() -> None:
    ns = build_parser().parse_args(["check"])
    assert getattr(ns, "config_dir", DEFAULT_CONFIG_DIR) == "/etc/pypbx"


@pytest.mark.parametrize(
    "argv",
    [
        ["-rx"],
        ["run", "-rx", "help"],
        ["-r", "check"],
        ["dialplan"],
        ["dialplan", "run", "ctx"],
        ["frob"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: pypbx" in capsys.readouterr().err


def test_run_on_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothing"
    assert main(["run", "-C", str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"{missing}: configuration directory not found" in err
    assert "not starting" in err


def test_dialplan_run_delegates_to_dryrun(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[object, ...]] = []

    def run_cli(*args: object) -> tuple[str, int]:
        calls.append(args)
        return "step 1\nstep 2\n", 3

    fake = types.ModuleType("pypbx.dialplan.dryrun")
    fake.run_cli = run_cli  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pypbx.dialplan.dryrun", fake)
    argv = ["dialplan", "run", "-C", "/cfg", "outgoing", "600", "--callerid", "1000"]
    code = main([*argv, "--var", "A=1", "--var", "B=2=3", "--json", "--dialstatus", "BUSY"])
    assert code == 3
    assert calls == [("/cfg", "outgoing", "600", "1000", {"A": "1", "B": "2=3"}, "BUSY", True)]
    assert capsys.readouterr().err == "step 1\nstep 2\n"


def test_dialplan_run_passes_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def run_cli(*args: object, **kwargs: object) -> tuple[str, int]:
        seen.update(kwargs)
        return "", 0

    fake = types.ModuleType("pypbx.dialplan.dryrun")
    fake.run_cli = run_cli  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pypbx.dialplan.dryrun", fake)
    assert main(["dialplan", "run", "-C", "/cfg", "ivr", "s", "--digits", "12#"]) == 0
    assert seen == {"digits": "12#"}


def test_dialplan_run_bad_var(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dialplan", "run", "-C", "/cfg", "c", "s", "--var", "novalue"]) == 2
    assert "--var needs KEY=VALUE" in capsys.readouterr().err


def test_dialplan_run_on_the_tutorial(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pypbx.dialplan.dryrun")
    assert main(["dialplan", "run", "-C", str(TUTORIAL), "outgoing", "600"]) == 0
    out = capsys.readouterr().out
    assert "Answer" in out
    assert "Echo" in out
