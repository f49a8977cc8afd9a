"""Corpus proof: every real-world sip.conf (and the rtp.conf sample) loads without an error.

The corpus lives next to the project (``../shared/corpus``, see its ``manifest.tsv``); the test
is skipped only when it is absent. Files are read in place. Their ``#include`` targets were not
collected, so the loader is given a ``read_file`` that returns ``""`` for any file that is not
in the corpus directory: a missing include then reads as empty instead of raising the
``ConfigError`` a real missing ``#include`` gives. The one file Asterisk itself would refuse is
listed in ``REFUSED`` with the reason, and must raise ``ConfigError``. ``users.conf`` is not
read by pypbx and is skipped. The warning counts per kind are printed (``pytest -s`` or ``-rA``).
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from pypbx.config.conf import ConfigError
from pypbx.config.rtpconf import load_rtp_conf
from pypbx.config.sipconf import SipConfig, load_sip_conf

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
CONF_DIR = CORPUS / "asterisk-conf"

REFUSED = {
    "Ekrem2311__VoIP-Asterisk-cust_dialplan--old_PBX_style_outgoing-incoming-calls--"
    "Routing-via-Telco-lines__sip.conf": (
        "line 1 '=====...' is a variable line before any [section]: Asterisk's config.c logs "
        "'No category context' and refuses the whole file, so chan_sip does not load it"
    ),
}


def _manifest() -> list[dict[str, str]]:
    if not (CORPUS / "manifest.tsv").is_file():
        return []
    with (CORPUS / "manifest.tsv").open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _sip_files() -> list[str]:
    return sorted(
        row["file"]
        for row in _manifest()
        if row["kind"] == "sip" or (row["kind"] == "asterisk-sample" and "sip.conf" in row["file"])
    )


def _read_in_corpus(path: str) -> str:
    """Read files inside the corpus; anything else (uncollected includes) reads as empty."""
    p = Path(path).resolve()
    if CONF_DIR.resolve() not in p.parents or not p.is_file():
        return ""
    data = p.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


pytestmark = pytest.mark.skipif(not CONF_DIR.is_dir(), reason="corpus not present")
SIP_FILES = _sip_files()


def _load(name: str) -> SipConfig:
    return load_sip_conf(CONF_DIR / name, read_file=_read_in_corpus)


def test_manifest_lists_the_sip_family() -> None:
    assert len(SIP_FILES) >= 40
    assert set(REFUSED) <= set(SIP_FILES)


@pytest.mark.parametrize("name", SIP_FILES)
def test_corpus_sip_conf_loads(name: str) -> None:
    if name in REFUSED:
        with pytest.raises(ConfigError) as info:
            _load(name)
        assert f"{name}:" in str(info.value)  # the error names file:line
        return
    cfg = _load(name)
    for warning in cfg.warnings:
        assert warning.origin.line >= 1
        assert str(warning).startswith(str(warning.origin.file))


def test_corpus_rtp_conf_sample_loads() -> None:
    cfg = load_rtp_conf(CONF_DIR / "asterisk__asterisk__configs__samples__rtp.conf.sample")
    assert (cfg.rtpstart, cfg.rtpend) == (10000, 20000)
    assert cfg.warnings == ()


def test_sip_conf_sample_is_stock_asterisk_with_no_unknown_options() -> None:
    cfg = _load("asterisk__asterisk__configs__samples__sip.conf.sample")
    assert [w for w in cfg.warnings if w.kind == "unknown-option"] == []
    assert cfg.general.context == "public"
    assert cfg.general.allowguest_explicit is False


def test_corpus_warning_summary() -> None:
    by_kind: Counter[str] = Counter()
    peers = registrations = 0
    loaded = 0
    for name in SIP_FILES:
        if name in REFUSED:
            continue
        cfg = _load(name)
        loaded += 1
        peers += len(cfg.peers)
        registrations += len(cfg.registrations)
        by_kind.update(w.kind for w in cfg.warnings)
    print(
        f"\ncorpus sip.conf family: {loaded} files loaded, {len(REFUSED)} refused as Asterisk does"
    )
    print(f"  {peers} peers, {registrations} registrations")
    for kind, count in sorted(by_kind.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {kind}: {count} warnings")
    assert loaded + len(REFUSED) == len(SIP_FILES)
    assert peers > 100
    assert by_kind["unknown-option"] > 0
