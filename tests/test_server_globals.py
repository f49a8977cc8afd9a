"""The PBX owns one [globals] store: loaded at start, kept or cleared on `dialplan reload`."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from pypbx.check import load_config_dir
from pypbx.server import Pbx
from tests.control.pbxproc import TUTORIAL


@pytest.mark.parametrize(("clear", "kept"), [("no", True), ("yes", False)])
def test_globals_survive_reload_unless_cleared(tmp_path: Path, clear: str, kept: bool) -> None:
    d = Path(shutil.copytree(TUTORIAL, tmp_path / "conf"))
    ext = d / "extensions.conf"
    ext.write_text(ext.read_text().replace("clearglobalvars=no", f"clearglobalvars={clear}"))
    pbx = Pbx(load_config_dir(d))
    assert pbx.globals.values["TRUNK"] == "flowroute"
    pbx.globals.values["RUNTIME"] = "set by Set(GLOBAL(RUNTIME)=...)"
    ext.write_text(ext.read_text().replace("TRUNK=flowroute", "TRUNK=othertrunk"))
    result = asyncio.run(pbx.reload_dialplan())
    assert result.ok
    assert pbx.globals.values["TRUNK"] == "othertrunk"
    assert ("RUNTIME" in pbx.globals.values) is kept


def test_broken_reload_keeps_globals(tmp_path: Path) -> None:
    d = Path(shutil.copytree(TUTORIAL, tmp_path / "conf"))
    pbx = Pbx(load_config_dir(d))
    (d / "extensions.conf").write_text("[globals]\nTRUNK=x\n[broken\n")
    result = asyncio.run(pbx.reload_dialplan())
    assert not result.ok
    assert any("extensions.conf:3" in line for line in result.lines)
    assert pbx.globals.values["TRUNK"] == "flowroute"
