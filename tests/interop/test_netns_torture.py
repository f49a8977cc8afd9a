"""Torture messages against a live stack endpoint inside a loopback-only network namespace.

Issue 3 proof: every RFC 4475 and RFC 5118 message from the shared corpus is sent over UDP
to ``stack_endpoint.py`` running in a namespace the test creates (only ``lo``, so nothing
the endpoint derives from the corpus's 192.0.2.0/24 or 2001:db8:: addresses can leave the
machine). After each message an OPTIONS probe must get 200 (the endpoint is alive), and at
the end its log must hold no Traceback and no internal error. The namespace is deleted in
the fixture teardown, also on failure.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.conftest import EndpointProcess

pytestmark = [pytest.mark.netns, pytest.mark.timeout(300)]

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
SETS = ("rfc4475", "rfc5118")
PORT = 5070  # the namespace has its own port space
SENDER_PORT = 5060  # responses routed to a Via sent-by without a port land on the sender

SENDER = r"""
import json, socket, sys, time
from pathlib import Path
files = [Path(p) for p in sys.argv[2:]]
target = ("127.0.0.1", int(sys.argv[1]))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 5060))
me = sock.getsockname()[1]

def probe(n):
    call_id = f"probe-{n}@netns"
    msg = (
        f"OPTIONS sip:127.0.0.1:{target[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKprobe{n};rport\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=p{n}\r\nTo: <sip:127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    answers = []
    for attempt in range(3):
        sock.sendto(msg, target)
        deadline = time.monotonic() + 1.0
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(65535)
            except socket.timeout:
                break
            first = data.split(b"\r\n", 1)[0].decode("latin-1")
            if call_id.encode() in data:
                return first.startswith("SIP/2.0 200"), answers
            answers.append(first)
    return False, answers

for n, path in enumerate(files):
    sock.sendto(path.read_bytes(), target)
    alive, answers = probe(n)  # the answers to the message arrive before the probe's
    print(json.dumps({"file": path.name, "alive": alive, "answers": answers}), flush=True)
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh namespace with only ``lo`` (up); always deleted afterwards."""
    name = f"pypbx-t-{secrets.token_hex(4)}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        _ip("netns", "del", name, check=False)


def _corpus_files() -> list[Path]:
    files: list[Path] = []
    for name in SETS:
        files += sorted((CORPUS / name).glob("*.dat"))
    return files


def _verdicts() -> dict[str, str]:
    """name.dat → valid/invalid, from each set's verdicts.tsv."""
    out: dict[str, str] = {}
    for name in SETS:
        table = CORPUS / name / "verdicts.tsv"
        if table.is_file():
            for line in table.read_text().splitlines()[1:]:
                cols = line.split("\t")
                if len(cols) >= 2:
                    out[f"{cols[0]}.dat"] = cols[1]
    return out


def test_corpus_against_live_endpoint_in_netns(netns: str, tmp_path: Path) -> None:
    files = _corpus_files()
    if not files:
        pytest.skip(f"RFC 4475/5118 corpus not found under {CORPUS}")
    links = _ip("-n", netns, "-o", "link", "show").stdout.splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]

    endpoint = EndpointProcess(
        tmp_path / "endpoint.log",
        bind="127.0.0.1",
        port=PORT,
        prefix=("ip", "netns", "exec", netns),
    )
    try:
        sent = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                netns,
                sys.executable,
                "-c",
                SENDER,
                str(PORT),
                *map(str, files),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        alive_at_end = endpoint.alive()
    finally:
        code = endpoint.stop()
    log = endpoint.log_text()
    assert sent.returncode == 0, sent.stderr
    results = [json.loads(line) for line in sent.stdout.splitlines()]
    assert [r["file"] for r in results] == [f.name for f in files]
    dead = [r["file"] for r in results if not r["alive"]]
    assert not dead, f"no 200 to the OPTIONS probe after: {dead}\n{log[-4000:]}"
    assert alive_at_end
    # an invalid message is refused (4xx/5xx) or dropped, never accepted with a 2xx
    verdicts = _verdicts()
    accepted = [
        (r["file"], r["answers"])
        for r in results
        if verdicts.get(r["file"]) == "invalid"
        and any(a.startswith("SIP/2.0 2") for a in r["answers"])
    ]
    assert not accepted
    refused = sum(any(" 400 " in a for a in r["answers"]) for r in results)
    assert refused >= 10, results  # the 400s do reach the sender (routed by Via)
    assert code == 0, log[-4000:]
    assert "Traceback" not in log
    assert "internal error on" not in log, log[-4000:]
    assert "stopped (internal errors: 0)" in log
