"""Issue 9 proofs against a live pypbx process on loopback: brute force, flood, toll fraud.

pypbx runs as a real process (``PbxProcess``) on 127.0.0.1; attackers, the legitimate phone and
the provider ("trunk") are raw UDP sockets bound to other 127.0.0.x addresses
(:mod:`tests.security.rawsip`; the flood sender is a separate process). Every loop is bounded
in count and time. Each test prints a report: attempts, bans, false bans, legitimate calls.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.parties import PbxProcess
from tests.interop.sipp import free_port
from tests.security.rawsip import RawUa, digest

pytestmark = pytest.mark.slow

PHONE_IP = "127.0.0.10"
PROBE_IP = "127.0.0.20"
TRUNK_IP = "127.0.0.30"
STRANGER_IP = "127.0.0.40"
ATTACKER_IP = "127.0.0.99"
FLOOD_IPS = [f"127.0.0.{n}" for n in range(51, 56)]
PASSWORD = "Phone-1000-pw"
BAN_LINE = re.compile(r"SECURITY: banned (\S+) for \d+ s")


def sip_conf(port: int, trunk_port: int) -> str:
    return f"""[general]
bindaddr=127.0.0.1
bindport={port}
context=public
realm=pypbx
minexpiry=60

[1000]
type=friend
host=dynamic
secret={PASSWORD}
context=internal

[trunk]
type=peer
host={TRUNK_IP}
port={trunk_port}
insecure=port,invite
context=from-trunk
"""


EXTENSIONS = """[public]
exten => 600,1,Hangup()

[internal]
exten => 600,1,Answer()
 same => n,Hangup()
exten => _1NXXNXXXXXX,1,Dial(SIP/${EXTEN}@trunk)

[from-trunk]
exten => 1000,1,Dial(SIP/1000)
"""


class Trunk:
    """The provider: a UDP socket that records every request it receives."""

    def __init__(self) -> None:
        self.port = free_port(TRUNK_IP)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((TRUNK_IP, self.port))
        self.sock.settimeout(0.1)
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.received.append(data)

    @property
    def invites(self) -> list[bytes]:
        return [d for d in self.received if d.startswith(b"INVITE ")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def trunk() -> Iterator[Trunk]:
    t = Trunk()
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def pbx(tmp_path: Path, trunk: Trunk) -> Iterator[PbxProcess]:
    port = free_port("127.0.0.1")
    proc = PbxProcess(tmp_path / "pbx", port)
    proc.write({"sip.conf": sip_conf(port, trunk.port), "extensions.conf": EXTENSIONS})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def phone(pbx: PbxProcess) -> RawUa:
    return RawUa(PHONE_IP, ("127.0.0.1", pbx.port), "1000", PASSWORD)


def rss_kib(pbx: PbxProcess) -> int:
    assert pbx.proc is not None
    text = Path(f"/proc/{pbx.proc.pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    assert match is not None
    return int(match.group(1))


def banned(pbx: PbxProcess) -> list[str]:
    return BAN_LINE.findall(pbx.log_text())


def assert_clean_log(pbx: PbxProcess) -> None:
    text = pbx.log_text()
    assert "Traceback" not in text, text[-3000:]
    assert "internal error" not in text, text[-3000:]


def report(name: str, **values: object) -> None:
    print(f"\n[{name}] " + " ".join(f"{k}={v}" for k, v in values.items()))


# -- (a) brute force ------------------------------------------------------------------------


def brute_force(server: tuple[str, int], attempts: int, out: dict[str, int]) -> None:
    """``attempts`` REGISTERs with wrong passwords for user 1000 from ATTACKER_IP.

    Done properly (challenge, then a wrong digest with the server's nonce) while answers
    come; once the source is banned nothing answers, and the rest are sent blind with the
    last nonce, paced at ~2,500/s so the run stays bounded (~4 s)."""
    ua = RawUa(ATTACKER_IP, server, "1000")
    host, port = server
    ruri = f"sip:{host}:{port}"
    sent = answered = 0
    challenge = None
    try:
        while sent < attempts:
            call_id = f"bf-{sent}"
            ua.send(ua.build("REGISTER", ruri, call_id=call_id, cseq=1))
            reply = ua.receive(0.5)
            if reply is not None and reply.status == 401:
                challenge = reply.get("WWW-Authenticate")
            if reply is None or challenge is None:
                break
            auth = digest(challenge, method="REGISTER", uri=ruri, user="1000", password=f"g{sent}")
            ua.send(
                ua.build(
                    "REGISTER", ruri, call_id=call_id, cseq=2, headers=[("Authorization", auth)]
                )
            )
            sent += 1
            if ua.receive(0.5) is not None:
                answered += 1
        out["proper"] = sent
        out["answered"] = answered
        start = time.monotonic()
        auth = digest(
            challenge or 'Digest realm="pypbx", nonce="x"',
            method="REGISTER",
            uri=ruri,
            user="1000",
            password="blind",
        )
        while sent < attempts and time.monotonic() - start < 20:
            ua.send(
                ua.build(
                    "REGISTER",
                    ruri,
                    call_id=f"bf-{sent}",
                    cseq=2,
                    headers=[("Authorization", auth)],
                )
            )
            sent += 1
            if sent % 50 == 0:
                time.sleep(0.02)
                while (late := ua.receive(0.0)) is not None:
                    out["late_answers"] = out.get("late_answers", 0) + 1
                    del late
        ua.sock.settimeout(0.5)
        out["late_answers"] = out.get("late_answers", 0) + sum(
            1 for _ in iter(lambda: ua.receive(0.3), None)
        )
    finally:
        out["sent"] = sent
        ua.close()


def test_brute_force_is_banned_and_the_phone_keeps_working(pbx: PbxProcess) -> None:
    server = ("127.0.0.1", pbx.port)
    ua = phone(pbx)
    first = ua.register()
    assert first is not None
    assert first.status == 200

    # no answer reveals whether a user exists: unknown user vs wrong password
    probes = {}
    for user in ("1000", "nosuchuser"):
        probe = RawUa(PROBE_IP, server, user, "wrong")
        probes[user] = probe.register()
        probe.close()
    known, unknown = probes["1000"], probes["nosuchuser"]
    assert known is not None
    assert unknown is not None
    assert (
        (known.status, known.first)
        == (unknown.status, unknown.first)
        == (401, "SIP/2.0 401 Unauthorized")
    )
    assert known.header_names == unknown.header_names
    strip = re.compile(r'nonce="[^"]*"')
    assert strip.sub("", known.get("WWW-Authenticate") or "") == strip.sub(
        "", unknown.get("WWW-Authenticate") or ""
    )

    out: dict[str, int] = {}
    attacker = threading.Thread(target=brute_force, args=(server, 10_000, out))
    started = time.monotonic()
    attacker.start()
    registrations = calls = 0
    call_times: list[float] = []
    while attacker.is_alive() and time.monotonic() - started < 30:
        reply = ua.register()
        registrations += reply is not None and reply.status == 200
        final, took = ua.call("600")
        if final is not None and final.status == 200:
            calls += 1
            call_times.append(took)
        time.sleep(0.2)
    attacker.join(timeout=30)
    elapsed = time.monotonic() - started
    ua.close()

    bans = banned(pbx)
    false_bans = [b for b in bans if b != ATTACKER_IP]
    report(
        "brute-force",
        attempts=out.get("sent"),
        proper_attempts=out.get("proper"),
        answered_before_ban=out.get("answered"),
        answers_after_ban=out.get("late_answers"),
        seconds=f"{elapsed:.1f}",
        bans=len(bans),
        false_bans=len(false_bans),
        phone_registrations=registrations,
        legit_calls=calls,
        slowest_call=f"{max(call_times, default=0):.2f}s",
    )
    assert out["sent"] == 10_000
    assert elapsed <= 30
    assert out["proper"] == 5  # the sixth challenge request already went unanswered
    assert out["answered"] == 5  # the fifth failure is answered, then the source is banned
    assert out.get("late_answers", 0) == 0
    assert bans == [ATTACKER_IP]
    assert false_bans == []
    assert registrations >= 1
    assert calls >= 1
    shown = pbx.rx("sip show bans")
    assert ATTACKER_IP in shown
    assert "5 failed authentications" in shown
    assert_clean_log(pbx)
