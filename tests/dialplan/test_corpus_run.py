"""Every extensions.conf of the corpus loads and a dry run of each context terminates
(issue 4, proof 2): from ``s`` when the context has it, else from its first extension (a
pattern is dialled with a number it matches). No exception, no hang, bounded steps, and no
application or function fails with an internal error.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from datetime import UTC
from pathlib import Path

import pytest

from pypbx.config.conf import ConfigError
from pypbx.dialplan.dryrun import dry_run
from pypbx.dialplan.model import Dialplan, Extension
from pypbx.dialplan.parser import load_dialplan

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
MAX_STEPS = 500
ENDS = {"hangup", "invalid", "fallthrough", "timeout", "loop"}


def _files() -> list[Path]:
    manifest = CORPUS / "manifest.tsv"
    if not manifest.exists():
        return []
    out = []
    with manifest.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            name = row["file"]
            if row["kind"] == "extensions" or (
                row["kind"] == "asterisk-sample" and "extensions" in name
            ):
                out.append(CORPUS / "asterisk-conf" / name)
    return out


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""  # a missing #include target reads as empty


def sample_number(ext: Extension) -> str:
    """A dialled string the extension's pattern matches (the name itself for literals)."""
    if not ext.is_pattern:
        return ext.name
    out = []
    text = ext.name[1:]
    i = 0
    while i < len(text):
        c = text[i]
        if c in "XxNnZz.!":
            out.append("5")
        elif c == "[":
            end = text.find("]", i)
            body = text[i + 1 : end] if end > i else ""
            out.append(body[:1] or "5")
            i = end if end > i else len(text)
        elif c != "-":
            out.append(c)
        i += 1
    return "".join(out)


def _start(dp: Dialplan, context: str) -> str | None:
    ctx = dp.contexts[context]
    if any(e.name == "s" for e in ctx.extensions):
        return "s"
    for e in ctx.extensions:
        if e.priorities:
            return sample_number(e)
    return None


FILES = _files()


def test_corpus_present() -> None:
    if not CORPUS.exists():
        pytest.skip("shared corpus not available")
    assert len(FILES) >= 80


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dry_run_of_every_context_terminates(path: Path) -> None:
    try:
        dp = load_dialplan(path, read_file=_read)
    except ConfigError as exc:
        pytest.skip(f"Asterisk refuses this file too (see test_corpus_parse.py): {exc}")
    ends: Counter[str] = Counter()
    for context in dp.context_names():
        exten = _start(dp, context)
        if exten is None:
            continue
        result = dry_run(
            dp,
            context,
            exten,
            callerid="2000",
            max_steps=MAX_STEPS,
            clock=lambda: 1_700_000_000.0,
            rng=random.Random(0),
            tz=UTC,
        )
        ends[result.end] += 1
        assert result.end in ENDS
        assert len(result.steps) <= MAX_STEPS + 1
        internal = [m for m in result.log if "failed: " in m]
        assert not internal, f"{context},{exten}: {internal}"
