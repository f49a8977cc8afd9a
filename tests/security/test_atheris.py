"""A bounded atheris (libFuzzer) campaign over pypbx's parsers (issue 9 item 5).

Skipped when atheris is not installed (``pip install atheris``). The harness and its
invariants are in :mod:`tests.security.atheris_fuzz`; seeds are one valid input per target.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

pytestmark = pytest.mark.slow

HARNESS = Path(__file__).resolve().parent / "atheris_fuzz.py"
ROOT = Path(__file__).resolve().parents[2]
OPTIONS = ["-runs=30000", "-max_len=2048", "-seed=9"]

SEEDS = {
    "sip": b"\x00INVITE sip:1@a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:1@a>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n",
    "guard": b"\x01REGISTER sip:a SIP/2.0\r\nTo: <sip:100@a>;tag=1\r\nUser-Agent: x\r\n\r\n",
    "digest": b'\x02Digest username="1000", realm="r", nonce="n", uri="sip:a", response="0"',
    "sdp": b"\x03v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n",
    "conf": b"\x04[general]\nbindport=5060\n[1000](!)\ntype=friend\nhost=dynamic\n",
    "expr": b'\x05(1 + 2) * 3 = 9 & "a" =~ "a" | 4 % 0',
}


def test_parsers_survive_a_fuzzing_campaign(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in SEEDS.items():
        (corpus / name).write_bytes(data)
    run = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            *OPTIONS,
            f"-artifact_prefix={tmp_path}/crash-",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        check=False,
    )
    tail = run.stderr[-3000:]
    assert run.returncode == 0, tail
    assert "Done 30000 runs" in run.stderr, tail
    assert not list(tmp_path.glob("crash-*"))
