"""Reload with a live call (issue 8, "Reload without dropping anything"): pypbx runs as a real
process (``pypbx run``) between two SIPp parties, and is driven only through ``pypbx -rx``.

The call: SIPp as extension 1000 (127.0.0.24) dials 3000 → ``Dial(SIP/2000)`` → SIPp as peer
2000 (127.0.0.26), which answers and streams PCMU (``rtp_stream``) to pypbx. The caller's SDP
points at a UDP counter socket of this test, which timestamps every packet pypbx relays to
it and sends each one back (so audio flows both ways through the relay). While the call is
up, sip.conf and extensions.conf are edited (a peer added, a peer's context changed, one
provider registration swapped for another), reloaded, then broken and reloaded again; the
counter's timestamps must show no gap across any of it.

Two Kamailio instances play two providers (acct1 and acct2): the ``register =>`` line removed
on reload must disappear from the first one's ``ul.dump``, the new one must appear in the
second one's.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.interop.parties import ROOT, Kamailio, PbxProcess
from tests.interop.sipp import (
    SippProcess,
    SippResult,
    free_port,
    run_sipp,
    sipp_command,
    start_sipp,
)

pytestmark = pytest.mark.interop
INTEROP_TOOLS = ("sipp", "kamailio", "kamcmd", "sox")

PROVIDER_IP = "127.0.0.21"
CALLER_IP = "127.0.0.24"
CALLEE_IP = "127.0.0.26"
NEW_PEER_IP = "127.0.0.27"
CALL_SCENARIOS = Path(__file__).resolve().parent / "scenarios_call"
REG_SCENARIOS = Path(__file__).resolve().parent / "scenarios_reg"
MAX_GAP = 0.5
"""Seconds without a relayed RTP packet that count as "the audio stopped" (the stream is
50 packets/s; a loaded 2-core machine can delay a few of them, never half a second)."""


# ---------------------------------------------------------------- helpers shared with
# test_graceful_stop.py


def rx(pbx: PbxProcess, command: str, *, timeout: float = 15.0) -> tuple[int, str]:
    """``pypbx -C DIR -rx COMMAND``: (exit code, stdout + stderr)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-m", "pypbx", "-C", str(pbx.confdir), "-rx", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        check=False,
    )
    return out.returncode, out.stdout + out.stderr


def rx_ok(pbx: PbxProcess, command: str) -> str:
    """``-rx COMMAND`` that must succeed (exit 0): its output."""
    code, text = rx(pbx, command)
    assert code == 0, f"{command}: exit {code}\n{text}"
    return text


def _derive(source: Path, dest: Path, edits: list[tuple[str, str]]) -> Path:
    """``source`` with each (old, new) replaced (every old text must be there)."""
    text = source.read_text()
    for old, new in edits:
        assert old in text, f"{source.name} no longer contains {old!r}"
        text = text.replace(old, new)
    dest.write_text(text)
    return dest


def uac_until_bye(
    workdir: Path, *, rtp_port_key: bool = False, bye_timeout_ms: int = 90000
) -> Path:
    """The caller: digest-authenticated INVITE, ACK, then waits for pypbx's BYE (200 OK).

    With ``rtp_port_key`` its SDP offers ``[rtpport]`` (``-key rtpport N``) instead of SIPp's
    own media port, so a socket of the test receives the call's audio."""
    edits = [
        (
            '<recv request="BYE" timeout="15000"/>',
            f'<recv request="BYE" timeout="{bye_timeout_ms}"/>',
        )
    ]
    if rtp_port_key:
        edits.append(("m=audio [media_port]", "m=audio [rtpport]"))
    return _derive(CALL_SCENARIOS / "uac_wait_bye.xml", workdir / "uac_until_bye.xml", edits)


def uas_answer(workdir: Path, *, wav: Path | None = None, bye_timeout_ms: int = 90000) -> Path:
    """The callee: 180, 200 with SDP, then waits for the BYE; with ``wav`` it streams that
    u-law file (looped) as RTP from the ACK on."""
    ack = '<recv request="ACK" crlf="true"/>'
    stream = f'{ack}\n  <nop><action><exec rtp_stream="{wav},-1,0"/></action></nop>' if wav else ack
    edits = [
        (ack, stream),
        (
            '<recv request="BYE" timeout="20000"/>',
            f'<recv request="BYE" timeout="{bye_timeout_ms}"/>',
        ),
    ]
    return _derive(CALL_SCENARIOS / "uas_answer.xml", workdir / "uas_answer_long.xml", edits)


def ulaw_tone(path: Path, seconds: float = 4.0) -> Path:
    """A u-law WAV (SIPp ``rtp_stream`` input), 440 Hz."""
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", "-t", "wav", str(path),
         "synth", str(seconds), "sine", "440", "vol", "0.5"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return path


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def aor_contacts(kam: Kamailio, user: str) -> list[str]:
    """The contacts Kamailio's ``ul.dump`` holds for AoR ``user`` (empty when none)."""
    dump = kam.contacts()
    out: list[str] = []
    current = None
    for line in dump.splitlines():
        m = re.search(r"AoR:\s*(\S+)", line)
        if m:
            current = m.group(1)
            continue
        m = re.search(r"Address:\s*(\S+)", line)
        if m and current is not None and current.split("@")[0] == user:
            out.append(m.group(1))
    return out


def registers_seen(kam: Kamailio) -> int:
    """REGISTER requests Kamailio has logged so far."""
    return kam.log.read_text(errors="replace").count("RX REGISTER ")


@dataclass
class RtpCounter:
    """A UDP socket that timestamps every packet it receives and sends it back to its sender."""

    host: str
    port: int = 0
    times: list[float] = field(default_factory=list)
    senders: set[tuple[str, int]] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sock: socket.socket | None = None

    def start(self, max_seconds: float = 180.0) -> RtpCounter:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.host, self.port))
        sock.settimeout(0.1)
        self.port = sock.getsockname()[1]
        self._sock = sock
        deadline = time.monotonic() + max_seconds

        def loop() -> None:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    data, addr = sock.recvfrom(2048)
                except TimeoutError:
                    continue
                except OSError:
                    return
                self.times.append(time.monotonic())
                self.senders.add(addr)
                with contextlib.suppress(OSError):
                    sock.sendto(data, addr)

        self._thread = threading.Thread(target=loop, name="rtp counter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()

    def count(self, since: float = 0.0, until: float = float("inf")) -> int:
        return sum(1 for t in list(self.times) if since <= t <= until)

    def max_gap(self, since: float, until: float) -> float:
        """The longest stretch in [since, until] without a packet."""
        ts = [since, *(t for t in list(self.times) if since <= t <= until), until]
        return max(b - a for a, b in itertools.pairwise(ts))


# ---------------------------------------------------------------- the configuration


def sip_conf(port: int, uas_port: int, reg: str, *, edited: bool) -> str:
    ctx_1000 = "internal2" if edited else "internal"
    new_peer = (
        "\n[1001]\ntype=friend\nhost=dynamic\nsecret=newpeersecret\ncontext=internal2\n"
        "disallow=all\nallow=ulaw\n"
        if edited
        else ""
    )
    return f"""[general]
bindaddr=127.0.0.1
bindport={port}
minexpiry=10
{reg}

[1000]
type=friend
host=dynamic
secret=mysecretpassword
context={ctx_1000}
disallow=all
allow=ulaw

[2000]
type=peer
host={CALLEE_IP}
port={uas_port}
context=internal
disallow=all
allow=ulaw
{new_peer}"""


EXTENSIONS = """[internal]
exten => 3000,1,Dial(SIP/2000,20)
"""

EXTENSIONS_EDITED = """[internal]
exten => 3000,1,Dial(SIP/2000,20)

[internal2]
exten => 3000,1,Dial(SIP/2000,20)
exten => 4000,1,Hangup(17)
"""


@dataclass
class Bed:
    tmp: Path
    pbx: PbxProcess
    port: int
    uas_port: int
    provider_a: Kamailio
    provider_b: Kamailio

    def reg_line(self, kam: Kamailio, user: str, secret: str) -> str:
        return f"register => {user}:{secret}@{PROVIDER_IP}:{kam.port}/{user}"


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    ports = [free_port(PROVIDER_IP)]
    for _ in range(50):  # two Kamailios on one port would steal each other's REGISTERs
        if (other := free_port(PROVIDER_IP)) != ports[0]:
            ports.append(other)
            break
    providers = [
        Kamailio(
            tmp_path / f"kam{i}",
            ip=PROVIDER_IP,
            port=kport,
            defines={"TRUNK_USER": user, "TRUNK_PASS": f"{user}pass"},
        )
        for i, user, kport in ((1, "acct1", ports[0]), (2, "acct2", ports[1]))
    ]
    port = free_port("127.0.0.1")
    b = Bed(
        tmp_path,
        PbxProcess(tmp_path / "pbx", port),
        port,
        free_port(CALLEE_IP),
        providers[0],
        providers[1],
    )
    b.pbx.write(
        {
            "sip.conf": sip_conf(
                port, b.uas_port, b.reg_line(b.provider_a, "acct1", "acct1pass"), edited=False
            ),
            "extensions.conf": EXTENSIONS,
            "rtp.conf": "[general]\nrtpstart=10000\nrtpend=20000\n",
        }
    )
    started: list[Kamailio] = []
    try:
        for kam in providers:
            kam.start()
            started.append(kam)
        b.pbx.start()
        yield b
    finally:
        b.pbx.stop()
        for kam in started:
            kam.stop()


def call(bed: Bed, number: str, name: str) -> SippResult:
    """A short call from 1000 that expects a final failure (uac_fail); the result."""
    work = bed.tmp / f"uac-{name}"
    work.mkdir()
    return run_sipp(
        sipp_command(
            CALL_SCENARIOS / "uac_fail.xml",
            f"127.0.0.1:{bed.port}",
            workdir=work,
            local_ip=CALLER_IP,
            local_port=free_port(CALLER_IP),
            timeout=15,
            keys={"caller": "1000"},
            extra=[
                "-s",
                number,
                "-au",
                "1000",
                "-ap",
                "mysecretpassword",
                "-auth_uri",
                f"{number}@127.0.0.1:{bed.port}",
            ],
        )
    )


def final_status(result: SippResult) -> int | None:
    found = re.findall(r"^SIP/2\.0 ([3-6]\d\d) ", result.messages, re.M)
    return int(found[-1]) if found else None


def register_new_peer(bed: Bed) -> SippResult:
    work = bed.tmp / "reg-1001"
    work.mkdir()
    inf = work / "users.csv"
    inf.write_text("SEQUENTIAL\n1001;\n")
    return run_sipp(
        sipp_command(
            REG_SCENARIOS / "reg_auth.xml",
            f"127.0.0.1:{bed.port}",
            workdir=work,
            local_ip=NEW_PEER_IP,
            local_port=free_port(NEW_PEER_IP),
            timeout=10,
            extra=["-inf", str(inf), "-au", "1001", "-ap", "newpeersecret"],
        )
    )


def start_live_call(bed: Bed, counter: RtpCounter) -> tuple[SippProcess, SippProcess]:
    work = bed.tmp / "live"
    work.mkdir()
    wav = ulaw_tone(work / "tone.wav")
    uas = start_sipp(
        sipp_command(
            uas_answer(work, wav=wav),
            None,
            workdir=work,
            local_ip=CALLEE_IP,
            local_port=bed.uas_port,
            timeout=120,
        )
    )
    uac_work = bed.tmp / "live-uac"
    uac_work.mkdir()
    number = "3000"
    uac = start_sipp(
        sipp_command(
            uac_until_bye(uac_work, rtp_port_key=True),
            f"127.0.0.1:{bed.port}",
            workdir=uac_work,
            local_ip=CALLER_IP,
            local_port=free_port(CALLER_IP),
            timeout=120,
            keys={"caller": "1000", "rtpport": str(counter.port)},
            extra=[
                "-s",
                number,
                "-au",
                "1000",
                "-ap",
                "mysecretpassword",
                "-auth_uri",
                f"{number}@127.0.0.1:{bed.port}",
            ],
        )
    )
    return uac, uas


def shows_the_call(text: str) -> bool:
    return "2 active channels" in text and "1 active call" in text and "SIP/1000-" in text


# ---------------------------------------------------------------- the test


def test_reload_with_a_live_call(bed: Bed) -> None:
    pbx, a, b = bed.pbx, bed.provider_a, bed.provider_b
    assert wait_until(lambda: bool(aor_contacts(a, "acct1")), 20), (
        a.contacts() + rx(pbx, "sip show registry")[1] + pbx.log_text()[-3000:]
    )
    assert not aor_contacts(b, "acct2")

    # before: 4000 does not exist in 1000's context
    before = call(bed, "4000", "before")
    assert final_status(before) == 404, before.explain()

    counter = RtpCounter(CALLER_IP).start()
    uac, uas = start_live_call(bed, counter)
    try:
        assert wait_until(lambda: counter.count() >= 50, 20), (
            f"no relayed RTP reached the caller: {counter.count()} packets\n"
            + pbx.log_text()[-3000:]
        )
        t_up = time.monotonic()
        text = rx_ok(pbx, "core show channels")
        assert shows_the_call(text), text

        # 1. add a peer, move 1000 to another context, swap the provider registration
        pbx.write(
            {
                "sip.conf": sip_conf(
                    bed.port, bed.uas_port, bed.reg_line(b, "acct2", "acct2pass"), edited=True
                ),
                "extensions.conf": EXTENSIONS_EDITED,
            }
        )
        code, text = rx(pbx, "sip reload")
        assert code == 0, text
        for line in (
            "Peer added: 1001",
            "Peer changed: 1000",
            f"Registration added: acct2@{PROVIDER_IP}",
            f"Registration removed: acct1@{PROVIDER_IP}",
        ):
            assert line in text, text
        text = rx_ok(pbx, "dialplan reload")
        assert "Dialplan reloaded" in text, text
        text = rx_ok(pbx, "core show channels")
        assert shows_the_call(text), text
        text = rx_ok(pbx, "dialplan show 4000@internal2")
        assert "Hangup(17)" in text, text

        # the removed register => line unregistered, the new one registered
        assert wait_until(lambda: not aor_contacts(a, "acct1"), 10), a.contacts()
        assert wait_until(lambda: bool(aor_contacts(b, "acct2")), 20), b.contacts()
        code, text = rx(pbx, "sip show registry")
        assert f"{PROVIDER_IP}:{b.port}" in text, text
        assert f"{PROVIDER_IP}:{a.port}" not in text, text

        # the new peer registers and is shown
        reg = register_new_peer(bed)
        assert reg.ok, reg.explain()
        code, text = rx(pbx, "sip show peer 1001")
        assert code == 0, text
        assert re.search(rf"Addr->IP\s*: {re.escape(NEW_PEER_IP)}:\d+", text), text
        assert re.search(r"Context\s*: internal2", text), text

        # the changed context and dial plan take effect for a new call: 4000 is now busy
        after = call(bed, "4000", "after")
        assert final_status(after) == 486, after.explain()
        t_reloaded = time.monotonic()

        # 2. break a line in each file: refused with file:line, the running config stays
        (pbx.confdir / "sip.conf").write_text(
            (pbx.confdir / "sip.conf").read_text() + "\n[1002\ntype=friend\n"
        )
        code, text = rx(pbx, "sip reload")
        assert code == 1, text
        assert re.search(r"sip\.conf:\d+: no closing ']'", text), text
        assert "keeping the running configuration" in text, text
        (pbx.confdir / "extensions.conf").write_text("[internal2\nexten => 4000,1,Answer()\n")
        code, text = rx(pbx, "dialplan reload")
        assert code == 1, text
        assert re.search(r"extensions\.conf:1: no closing ']'", text), text
        text = rx_ok(pbx, "sip show peer 1001")
        assert "Addr->IP" in text, text
        still = call(bed, "4000", "still")
        assert final_status(still) == 486, still.explain()
        text = rx_ok(pbx, "core show channels")
        assert shows_the_call(text), text
        assert aor_contacts(b, "acct2"), b.contacts()
        t_broken = time.monotonic()

        # 3. a valid file again, one more peer: what did not change stays as it was
        registers_b = registers_seen(b)
        pbx.write(
            {
                "sip.conf": sip_conf(
                    bed.port, bed.uas_port, bed.reg_line(b, "acct2", "acct2pass"), edited=True
                )
                + "\n[1002]\ntype=friend\nhost=dynamic\nsecret=other\ncontext=internal2\n",
                "extensions.conf": EXTENSIONS_EDITED,
            }
        )
        text = rx_ok(pbx, "sip reload")
        assert "Peer added: 1002" in text, text
        assert "Registration" not in text, text
        assert "SIP reloaded: 1 change." in text, text
        assert "Dialplan reloaded" in rx_ok(pbx, "dialplan reload")
        text = rx_ok(pbx, "sip show peer 1001")  # its registration survived the reload
        assert re.search(rf"Addr->IP\s*: {re.escape(NEW_PEER_IP)}:\d+", text), text
        assert shows_the_call(rx_ok(pbx, "core show channels"))
        time.sleep(1.0)
        assert aor_contacts(b, "acct2"), b.contacts()
        assert registers_seen(b) == registers_b, "an unchanged register => line re-registered"
        t_last = time.monotonic()

        # the relayed audio never stopped, before, during or after any reload
        time.sleep(0.5)
        gap = counter.max_gap(t_up, t_last)
        assert gap < MAX_GAP, f"RTP stopped for {gap:.2f} s during the reloads"
        for since, until in ((t_up, t_reloaded), (t_reloaded, t_broken), (t_broken, t_last)):
            rate = counter.count(since, until) / (until - since)
            assert rate >= 40, f"{rate:.1f} packets/s between {since:.1f} and {until:.1f}"

        # end the call from the CLI: both parties get a BYE
        text = rx_ok(pbx, "channel request hangup all")
        assert "Requested Hangup on channel 'SIP/1000-" in text, text
        uac_result, uas_result = uac.wait(), uas.wait()
        assert uac_result.ok, uac_result.explain()
        assert uas_result.ok, uas_result.explain()
    finally:
        uac.stop()
        uas.stop()
        counter.stop()
    code, text = rx(pbx, "core show channels")
    assert "0 active channels" in text, text
