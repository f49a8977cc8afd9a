"""rtp.conf: port range rules, checksums, strictrtp, warnings, missing file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pypbx.config.conf import parse_text
from pypbx.config.rtpconf import RtpConfig, StrictRtp, load_rtp_conf, parse_rtp_conf


def rtp(text: str) -> RtpConfig:
    return parse_rtp_conf(parse_text(text, "rtp.conf"))


def test_defaults_when_file_is_missing(tmp_path: Path) -> None:
    cfg = load_rtp_conf(tmp_path / "rtp.conf")
    assert cfg == RtpConfig()
    assert (cfg.rtpstart, cfg.rtpend, cfg.rtpchecksums) == (5000, 31000, True)
    assert (cfg.strictrtp, cfg.probation, cfg.rtcpinterval, cfg.rtptimeout) == (
        StrictRtp.YES,
        4,
        5000,
        0,
    )


def test_load_from_file(tmp_path: Path) -> None:
    (tmp_path / "rtp.conf").write_text("[general]\nrtpstart=10000\nrtpend=20000\n")
    cfg = load_rtp_conf(tmp_path / "rtp.conf")
    assert (cfg.rtpstart, cfg.rtpend, cfg.warnings) == (10000, 20000, ())


OPTIONS: list[tuple[str, str, Any]] = [
    ("rtpstart=10000", "rtpstart", 10000),
    ("rtpstart=10001", "rtpstart", 10002),  # RTP goes on even ports
    ("rtpstart=80", "rtpstart", 1024),  # clamped to MINIMUM_RTP_PORT
    ("rtpend=20000", "rtpend", 20000),
    ("rtpend=99999", "rtpend", 65535),
    ("rtpchecksums=no", "rtpchecksums", False),
    ("rtpchecksums=yes", "rtpchecksums", True),
    ("strictrtp=no", "strictrtp", StrictRtp.NO),
    ("strictrtp=seqno", "strictrtp", StrictRtp.SEQNO),
    ("strictrtp=yes", "strictrtp", StrictRtp.YES),
    ("probation=8", "probation", 8),
    ("rtcpinterval=100", "rtcpinterval", 500),
    ("rtcpinterval=90000", "rtcpinterval", 60000),
    ("rtcpinterval=2000", "rtcpinterval", 2000),
    ("rtptimeout=60", "rtptimeout", 60),
]


@pytest.mark.parametrize(("line", "attr", "expected"), OPTIONS)
def test_option(line: str, attr: str, expected: Any) -> None:
    cfg = rtp(f"[general]\n{line}\n")
    assert getattr(cfg, attr) == expected
    assert cfg.warnings == ()


def test_last_value_wins() -> None:
    assert rtp("[general]\nrtpstart=10000\nrtpstart=12000\n").rtpstart == 12000


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[general]\nrtpstart=20000\nrtpend=10000\n", 3),
        ("[general]\nrtpend=2000\n", 2),
        ("[general]\nrtpstart=30999\nrtpend=31000\n", 3),  # 30999 becomes 31000: empty range
    ],
)
def test_unreasonable_range_falls_back_to_defaults(text: str, line: int) -> None:
    cfg = rtp(text)
    assert (cfg.rtpstart, cfg.rtpend) == (5000, 31000)
    assert [(w.kind, w.origin.line) for w in cfg.warnings] == [("bad-value", line)]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("rtpstart=abc", "bad-value"),
        ("probation=-1", "bad-value"),
        ("mystery=1", "unknown-option"),
    ],
)
def test_bad_values_and_unknown_keys_warn(line: str, kind: str) -> None:
    cfg = rtp(f"[general]\n{line}\n")
    assert [(w.kind, str(w.origin)) for w in cfg.warnings] == [(kind, "rtp.conf:2")]
    assert (cfg.rtpstart, cfg.probation) == (5000, 4)


def test_known_ice_and_stun_options_are_silent_and_other_sections_ignored() -> None:
    cfg = rtp("[general]\nicesupport=yes\nstunaddr=stun.example.org\n[ice_host_candidates]\na=b\n")
    assert cfg.warnings == ()
