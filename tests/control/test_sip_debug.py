"""``sip set debug on|off|ip A|peer X`` over the control socket of a running pypbx: a console
subscribed to the live log sees every SIP message in full, to and from the chosen hosts only.

The PBX is a real ``pypbx run`` child; the SIP traffic is REGISTER (answered 401) sent from
two loopback addresses; the console is a ``{"subscribe": true}`` connection, as ``pypbx -r``.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pypbx.control.client import connect, run_command
from pypbx.server import control_socket_for
from tests.control.pbxproc import PbxProcess, free_udp_port

PHONE = "127.0.0.31"
TRUNK = "127.0.0.32"


@pytest.fixture(scope="module")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PbxProcess, int]]:
    cfg = tmp_path_factory.mktemp("sipdebug")
    port = free_udp_port()
    (cfg / "sip.conf").write_text(
        f"[general]\nbindaddr=127.0.0.1\nbindport={port}\n\n"
        f"[trunk]\ntype=peer\nhost={TRUNK}\nport=5999\ncontext=in\n\n"
        "[1000]\ntype=friend\nhost=dynamic\nsecret=s3cret\ncontext=in\n"
    )
    (cfg / "extensions.conf").write_text("[in]\nexten => 1000,1,Hangup()\n")
    proc = PbxProcess(cfg).wait_ready()
    yield proc, port
    proc.kill()


class Console:
    """A subscribed control connection (what ``pypbx -r`` opens); its log lines queue up."""

    def __init__(self, path: Path, verbose: int) -> None:
        self.sock = connect(path)
        self.sock.sendall(json.dumps({"subscribe": True, "verbose": verbose}).encode() + b"\n")
        self.stream = self.sock.makefile("rb")
        hello = json.loads(self.stream.readline())
        assert hello["ok"] is True
        self.ident = int(hello["console"])
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.stream:
            obj = json.loads(raw)
            if "log" in obj:
                self.lines.put(str(obj["log"]))

    def until(self, text: str, timeout: float = 10.0) -> list[str]:
        """Log records up to and including the first one containing ``text``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen in {seen!r}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            seen.append(line)
            if text in line:
                return seen

    def close(self) -> None:
        self.sock.close()


def register(src: str, port: int) -> str:
    """A REGISTER for 1000 from ``src`` (answered 401); returns its Call-ID once answered."""
    call_id = f"{os.urandom(6).hex()}@{src}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        lport = s.getsockname()[1]
        s.settimeout(5)
        s.sendto(
            (
                f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {src}:{lport};branch=z9hG4bK{os.urandom(6).hex()};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:1000@127.0.0.1>;tag=dbg\r\n"
                f"To: <sip:1000@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 REGISTER\r\n"
                f"Contact: <sip:1000@{src}:{lport}>\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", port),
        )
        answer = s.recv(65535).decode()
    assert answer.startswith("SIP/2.0 401"), answer
    return call_id


@pytest.mark.parametrize(
    ("setting", "reply", "shown", "hidden"),
    [
        ("on", "SIP Debugging enabled", [PHONE, TRUNK], []),
        ("ip 127.0.0.31", "SIP Debugging Enabled for IP: 127.0.0.31", [PHONE], [TRUNK]),
        ("ip 127.0.0.31:5060", "SIP Debugging Enabled for IP: 127.0.0.31:5060", [PHONE], [TRUNK]),
        ("peer trunk", "SIP Debugging Enabled for IP: 127.0.0.32", [TRUNK], [PHONE]),
        ("off", "SIP Debugging Disabled", [], [PHONE, TRUNK]),
    ],
)
def test_sip_set_debug_prints_full_messages_for_the_chosen_hosts(
    pbx: tuple[PbxProcess, int], setting: str, reply: str, shown: list[str], hidden: list[str]
) -> None:
    proc, port = pbx
    path = control_socket_for(proc.config_dir)
    console = Console(path, verbose=0)  # SIP debug shows at any console verbosity
    try:
        ok, out = run_command(path, f"sip set debug {setting}")
        assert (ok, out) == (True, reply)
        calls = {src: register(src, port) for src in (*hidden, *shown)}
        # the hidden sources were sent first: had they been traced, they would be here by now
        for src in shown:
            records = console.until(f"Call-ID: {calls[src]}")
            read = records[-1]
            assert f"<--- SIP read from {src}:" in read, read
            assert read.splitlines()[1].startswith("REGISTER sip:127.0.0.1:"), read
            assert f"Contact: <sip:1000@{src}:" in read  # the whole message, headers and all
            sent = console.until(f"Call-ID: {calls[src]}")[-1]
            assert f"<--- Transmitting to {src}:" in sent, sent
            assert "SIP/2.0 401 Unauthorized" in sent, sent
            assert "WWW-Authenticate: Digest" in sent, sent
        if hidden:
            # a traced message from now on proves the queue caught up with the hidden ones
            ok, _ = run_command(path, "sip set debug on")
            probe = register(PHONE, port)
            rest = console.until(f"Call-ID: {probe}")
            everything = "\n".join(rest)
            for src in hidden:
                assert calls[src] not in everything, everything
    finally:
        run_command(path, "sip set debug off")
        console.close()


def test_peer_without_an_address_is_refused(pbx: tuple[PbxProcess, int]) -> None:
    proc, _ = pbx
    path = control_socket_for(proc.config_dir)
    assert run_command(path, "sip set debug peer 1000") == (
        False,
        "Unable to get IP address of peer '1000'",
    )
    assert run_command(path, "sip set debug peer nosuch") == (
        False,
        "Unable to get IP address of peer 'nosuch'",
    )


def invite(src: str, port: int) -> str:
    """An INVITE to 1000 from a stranger at ``src``; the final answer is ACKed. Its Call-ID."""
    call_id = f"{os.urandom(6).hex()}@{src}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        lport = s.getsockname()[1]
        s.settimeout(5)
        via = f"Via: SIP/2.0/UDP {src}:{lport};branch=z9hG4bK{os.urandom(6).hex()};rport\r\n"
        common = f"From: <sip:9@{src}>;tag=dbg\r\nCall-ID: {call_id}\r\nMax-Forwards: 70\r\n"
        sdp = f"v=0\r\no=- 1 1 IN IP4 {src}\r\ns=-\r\nc=IN IP4 {src}\r\nt=0 0\r\n"
        sdp += "m=audio 4000 RTP/AVP 0\r\n"
        s.sendto(
            (
                f"INVITE sip:1000@127.0.0.1:{port} SIP/2.0\r\n{via}{common}"
                f"To: <sip:1000@127.0.0.1>\r\nCSeq: 1 INVITE\r\nContact: <sip:9@{src}:{lport}>\r\n"
                f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
            ).encode(),
            ("127.0.0.1", port),
        )
        while True:
            answer = s.recv(65535).decode()
            if int(answer.split(" ", 2)[1]) >= 200:
                break
        to = next(h for h in answer.split("\r\n") if h.lower().startswith("to:"))
        s.sendto(
            (
                f"ACK sip:1000@127.0.0.1:{port} SIP/2.0\r\n{via}{common}{to}\r\n"
                f"CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", port),
        )
    return call_id


def test_sip_debug_shows_call_signalling(pbx: tuple[PbxProcess, int]) -> None:
    proc, port = pbx
    path = control_socket_for(proc.config_dir)
    console = Console(path, verbose=0)
    try:
        assert run_command(path, "sip set debug on")[0]
        call_id = invite(PHONE, port)
        records = console.until(f"Call-ID: {call_id}", timeout=3)
        assert "INVITE sip:1000@127.0.0.1" in records[-1]
    finally:
        run_command(path, "sip set debug off")
        console.close()
