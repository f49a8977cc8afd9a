"""``pypbx check``: summary, warnings with file:line, errors exit 1, absent files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pypbx.check import FILES, check_main, load_config_dir, summary_lines
from pypbx.cli import main
from pypbx.config.conf import ConfigError
from tests.control.pbxproc import TUTORIAL, pypbx


@pytest.fixture
def tutorial(tmp_path: Path) -> Path:
    return Path(shutil.copytree(TUTORIAL, tmp_path / "tutorial"))


def test_tutorial_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-C", str(TUTORIAL)]) == 0
    out = capsys.readouterr().out
    assert "sip.conf: 3 peers, 1 registrations" in out
    assert "extensions.conf: 2 contexts, 5 extensions" in out
    assert out.rstrip().endswith(f"pypbx check: {TUTORIAL}: configuration OK")
    # the tutorial's own `dial=SIP/1000` is an unknown option: a warning with file:line
    assert re.search(rf"^{re.escape(str(TUTORIAL))}/sip\.conf:\d+: .*'dial'", out, re.MULTILINE)


def test_tutorial_as_a_process() -> None:
    done = pypbx("check", "-C", str(TUTORIAL))
    assert done.returncode == 0, done.stderr
    assert "configuration OK" in done.stdout


@pytest.mark.parametrize(
    ("file", "append", "message"),
    [
        ("sip.conf", "\n[broken\n", "no closing ']' in section header"),
        ("sip.conf", "\n[x](notemplate)\n", "section 'notemplate' does not exist"),
        ("extensions.conf", '\n#include "absent.conf"\n', "#include absent.conf"),
        ("rtp.conf", "\n[general\n", "no closing ']'"),
        ("pypbx.conf", "\n[directories\n", "no closing ']'"),
    ],
)
def test_error_exits_1_with_file_line(
    tutorial: Path, capsys: pytest.CaptureFixture[str], file: str, append: str, message: str
) -> None:
    path = tutorial / file
    attr = {"rtp.conf": "rtp", "pypbx.conf": "settings"}.get(file)
    if attr is not None and getattr(load_config_dir(tutorial), attr) is None:
        pytest.skip(f"no loader for {file} yet")
    text = path.read_text()
    path.write_text(text + append)
    line = text.count("\n") + 2
    assert main(["check", "-C", str(tutorial)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:{line}: " in err
    assert message in err
    assert "configuration has an error" in err


@pytest.mark.parametrize("absent", ["sip.conf", "extensions.conf", "rtp.conf"])
def test_one_file_absent_is_a_warning(
    tutorial: Path, capsys: pytest.CaptureFixture[str], absent: str
) -> None:
    (tutorial / absent).unlink()
    assert check_main(str(tutorial)) == 0
    assert f"{tutorial / absent}: file not found" in capsys.readouterr().out


def test_all_files_absent_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_main(str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}: no configuration found" in err
    for name in FILES:
        assert name in err


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration directory not found"):
        load_config_dir(tmp_path / "nope")


def test_summary_counts_what_was_loaded(tutorial: Path) -> None:
    with (tutorial / "sip.conf").open("a") as f:
        f.write("\n[2000]\ntype=friend\nhost=dynamic\n")
        f.write("\n[general](+)\nregister => u2:s@other.example\n")
    cfg = load_config_dir(tutorial)
    lines = summary_lines(cfg)
    assert "sip.conf: 4 peers, 2 registrations" in lines
    assert lines[-1] == f"{len(cfg.warnings)} warnings"


def test_unknown_application_is_a_warning(
    tutorial: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ext = tutorial / "extensions.conf"
    text = ext.read_text()
    ext.write_text(text + "\n[extra]\nexten => 7,1,NoOp()\n same => n,Frobnicate(x)\n")
    assert check_main(str(tutorial)) == 0
    out = capsys.readouterr().out
    line = text.count("\n") + 4
    assert f"{ext}:{line}: no application 'Frobnicate' in pypbx for extension (extra, 7, 2)" in out
    assert "'NoOp'" not in out


def test_tutorial_has_no_security_findings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-C", str(TUTORIAL)]) == 0
    assert "[security" not in capsys.readouterr().out


def test_guest_calls_into_an_outbound_context_are_flagged(
    tutorial: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tutorial
    sip = (d / "sip.conf").read_text()
    sip = sip.replace("allowguest=no", "allowguest=yes").replace(
        "context=default", "context=outgoing"
    )
    (d / "sip.conf").write_text(sip)
    assert main(["check", "-C", str(d)]) == 0
    out = capsys.readouterr().out
    hole = [line for line in out.splitlines() if line.endswith("[security error]")]
    assert len(hole) == 1
    assert re.match(rf"{re.escape(str(d))}/extensions\.conf:\d+: context 'outgoing'", hole[0])
    assert "toll-fraud" in hole[0]
    assert "Dial(SIP/${EXTEN}@${GLOBAL(TRUNK)})" in hole[0]
    assert re.search(r"^.*sip\.conf:\d+: allowguest=yes.*\[security warning\]$", out, re.M)
    assert "1 toll-fraud risks" in out
