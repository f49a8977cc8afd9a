"""pypbx.conf: directories relative to the config dir, defaults, [general], [security]."""

from __future__ import annotations

from pathlib import Path

import pytest

from pypbx.config.conf import parse_text
from pypbx.config.pypbxconf import (
    Directories,
    PbxConfig,
    Security,
    default_directories,
    load_pypbx_conf,
    parse_pypbx_conf,
)


def pbx(text: str, config_dir: Path) -> PbxConfig:
    return parse_pypbx_conf(parse_text(text, "pypbx.conf"), config_dir)


def test_missing_file_gives_defaults_under_the_config_dir(tmp_path: Path) -> None:
    cfg = load_pypbx_conf(tmp_path)
    assert cfg.directories == Directories(
        rundir=tmp_path / "run",
        datadir=tmp_path / "data",
        logdir=tmp_path / "log",
        sounddir=tmp_path / "sounds",
    )
    assert (cfg.verbose, cfg.debug, cfg.controlsocket) == (0, 0, "pypbx.ctl")
    assert cfg.control_path == tmp_path / "run" / "pypbx.ctl"
    assert cfg.pid_path == tmp_path / "run" / "pypbx.pid"
    assert cfg.security == Security(ban_failures=5, ban_window=600, ban_time=3600, allow=())
    assert cfg.warnings == ()


def test_system_config_dir_uses_fhs_places() -> None:
    dirs = default_directories("/etc/pypbx/")
    assert dirs == Directories(
        rundir=Path("/run/pypbx"),
        datadir=Path("/var/lib/pypbx"),
        logdir=Path("/var/log/pypbx"),
        sounddir=Path("/usr/share/pypbx/sounds"),
    )


def test_two_config_dirs_never_share_runtime_paths(tmp_path: Path) -> None:
    a = load_pypbx_conf(tmp_path / "a")
    b = load_pypbx_conf(tmp_path / "b")
    assert a.control_path != b.control_path
    assert a.directories.datadir != b.directories.datadir


def test_relative_config_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_pypbx_conf("conf")
    assert cfg.config_dir == tmp_path / "conf"
    assert cfg.directories.rundir == tmp_path / "conf" / "run"


def test_directories_relative_and_absolute(tmp_path: Path) -> None:
    cfg = pbx(
        "[directories]\nrundir = var/run\ndatadir = /srv/pbx/data\nlogdir = ../logs\n",
        tmp_path,
    )
    assert cfg.directories.rundir == tmp_path / "var" / "run"
    assert cfg.directories.datadir == Path("/srv/pbx/data")
    assert cfg.directories.logdir == tmp_path / ".." / "logs"
    assert cfg.directories.sounddir == tmp_path / "sounds"


def test_load_reads_the_file(tmp_path: Path) -> None:
    (tmp_path / "pypbx.conf").write_text(
        "[general]\nverbose=3\ndebug=yes\ncontrolsocket=ctl\n"
        "[security]\nban_failures=3\nban_window=60\nban_time=120\n"
        "allow=10.0.0.0/8\nallow=192.168.1.0/255.255.255.0\n"
    )
    cfg = load_pypbx_conf(tmp_path)
    assert (cfg.verbose, cfg.debug, cfg.control_path) == (3, 1, tmp_path / "run" / "ctl")
    sec = cfg.security
    assert (sec.ban_failures, sec.ban_window, sec.ban_time) == (3, 60, 120)
    assert [str(n) for n in sec.allow] == ["10.0.0.0/8", "192.168.1.0/24"]
    assert cfg.warnings == ()


@pytest.mark.parametrize(
    ("text", "kind", "line"),
    [
        ("[general]\nverbose=loud\n", "bad-value", 2),
        ("[general]\ncolour=blue\n", "unknown-option", 2),
        ("[directories]\nrundir=\n", "bad-value", 2),
        ("[directories]\nbindir=x\n", "unknown-option", 2),
        ("[security]\nban_time=0\n", "bad-value", 2),
        ("[security]\nallow=everyone\n", "bad-value", 2),
        ("[general]\n[extras]\nx=1\n", "ignored-section", 2),
    ],
)
def test_problems_warn_with_file_line_and_keep_defaults(
    tmp_path: Path, text: str, kind: str, line: int
) -> None:
    cfg = pbx(text, tmp_path)
    assert [(w.kind, str(w.origin)) for w in cfg.warnings] == [(kind, f"pypbx.conf:{line}")]
    assert cfg.verbose == 0
    assert cfg.directories == default_directories(tmp_path)
    assert cfg.security == Security()
