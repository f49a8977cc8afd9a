"""Every extensions.conf of the shared corpus loads into a dial plan (issue 2 item 6).

The corpus is read in place (``../shared/corpus/asterisk-conf``, listed in ``manifest.tsv``).
``#include`` targets that are not part of the corpus read as empty files. A file Asterisk itself
would refuse is listed in ``REFUSED`` with the reason, and must fail with a ``ConfigError``.
The warning counts per kind are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from pypbx.config.conf import ConfigError, load
from pypbx.dialplan.model import Dialplan
from pypbx.dialplan.parser import parse_dialplan

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
CONF_DIR = CORPUS / "asterisk-conf"

# Files Asterisk would not load either (config.c gives up on the whole file).
REFUSED = {
    "Ekrem2311__VoIP-Asterisk-cust_dialplan--old_PBX_style_outgoing-incoming-calls--"
    "Routing-via-Telco-lines__extensions.conf": "line 1 is a '=====' banner before any "
    "[section]: config.c 'No category context for line 1'",
    "OxMarco__Micro-GSM-Network__extensions.conf": "[globals](+) appends to a section that "
    "only the #include'd extensions-range.conf (not in the repository) defines; Asterisk "
    "also refuses a missing #include",
    "RangeNetworks__asterisk-config__extensions.conf": "[globals](+) appends to a section that "
    "only the #include'd extensions-range.conf (not in the repository) defines; Asterisk "
    "also refuses a missing #include",
}


def _dialplan_files() -> list[str]:
    manifest = CORPUS / "manifest.tsv"
    if not manifest.exists():
        return []
    with manifest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [
        r["file"]
        for r in rows
        if r["kind"] == "extensions"
        or (r["kind"] == "asterisk-sample" and r["file"].split("__")[-1].startswith("extensions"))
    ]


FILES = _dialplan_files()
pytestmark = pytest.mark.skipif(not FILES, reason="shared corpus not present")


def _read(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return ""  # an #include target that is not in the corpus
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _load(name: str) -> Dialplan:
    return parse_dialplan(load(CONF_DIR / name, read_file=_read))


def test_corpus_is_complete() -> None:
    assert len(FILES) == 82  # 80 real-world dial plans + 2 from the Asterisk project
    assert set(REFUSED) <= set(FILES)


@pytest.mark.parametrize("name", [f for f in FILES if f not in REFUSED])
def test_corpus_file_loads(name: str) -> None:
    dp = _load(name)
    for ctx in dp.contexts.values():
        for ext in ctx.extensions:
            assert ext.priorities or ext.hint is not None, f"{ext.name} in {ctx.name}"
            for number, step in ext.priorities.items():
                assert number == step.number >= 1
                assert step.app
                assert str(step.origin).startswith(str(CONF_DIR))


@pytest.mark.parametrize(("name", "reason"), sorted(REFUSED.items()))
def test_corpus_file_refused_as_asterisk_does(name: str, reason: str) -> None:
    assert reason
    with pytest.raises(ConfigError) as info:
        _load(name)
    assert info.value.origin is not None


def test_corpus_warning_counts() -> None:
    kinds: Counter[str] = Counter()
    contexts = extensions = priorities = 0
    for name in FILES:
        if name in REFUSED:
            continue
        dp = _load(name)
        kinds.update(w.kind for w in dp.warnings)
        contexts += len(dp.contexts)
        for ctx in dp.contexts.values():
            extensions += len(ctx.extensions)
            priorities += sum(len(e.priorities) for e in ctx.extensions)
    print(f"\ncorpus: {len(FILES) - len(REFUSED)} dial plans, {contexts} contexts, ", end="")
    print(f"{extensions} extensions, {priorities} priorities")
    for kind, count in sorted(kinds.items()):
        print(f"  warnings[{kind}] = {count}")
    assert contexts > 1000
    assert priorities > 10000
    assert "duplicate" in kinds  # real configs do repeat priorities; Asterisk warns


def test_asterisk_sample_plan() -> None:
    dp = _load("asterisk__asterisk__configs__samples__extensions.conf.sample")
    assert dp.general.static
    assert not dp.general.writeprotect
    assert dp.general.autofallthrough
    assert "CONSOLE" in dp.global_vars()
    demo = dp.contexts["demo"]
    assert [i.name for i in demo.includes] == ["stdexten"]
    assert dp.find_label("demo", "s", "instruct") == 6
    found = dp.find("default", "2", 2)  # default includes demo
    assert found is not None
    assert (found.context, found.priority.app, found.priority.args) == (
        "demo",
        "Goto",
        "s,instruct",
    )
    assert dp.contexts["local"].ignorepats == ["9"]
    assert "general" not in dp.contexts
    assert "globals" not in dp.contexts
