"""The import direction of DESIGN.md: pure modules import no I/O and nothing above them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "pypbx"

PURE = [
    "config",
    "sip",
    "media/rtp.py",
    "media/dtmf.py",
    "media/codecs.py",
    "media/audio.py",
    "dialplan/model.py",
    "dialplan/parser.py",
    "dialplan/pattern.py",
    "dialplan/expr.py",
    "dialplan/posix_regex.py",
    "dialplan/args.py",
    "dialplan/variables.py",
    "cdr/record.py",
    "registrar.py",
    "location.py",
    "peers.py",
    "trunks.py",
    "qualify.py",
    "sipshow.py",
    "security",
    "transport/nat.py",
]
FORBIDDEN = {"asyncio", "socket", "time", "random", "selectors", "threading", "subprocess"}
UPPER = ("pypbx.transport", "pypbx.call", "pypbx.control", "pypbx.server", "pypbx.cli")


def _pure_files() -> list[Path]:
    out: list[Path] = []
    for entry in PURE:
        p = ROOT / entry
        if p.is_dir():
            out.extend(sorted(p.rglob("*.py")))
        elif p.exists():
            out.append(p)
    return out


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_pure_set_is_not_empty() -> None:
    assert _pure_files(), "no pure modules found: the layout moved?"


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path}: pure module imports {name}"
        assert not name.startswith(UPPER), f"{path}: pure module imports upper layer {name}"
