"""Stopping with 20 live calls (issue 8, "Graceful stop with 20 live calls").

pypbx runs as a real process, registered to Kamailio (the provider); SIPp as extension 1000
places 20 calls to 3000 → ``Dial(SIP/2000)`` → SIPp as peer 2000, which answers them all.

* SIGTERM and ``core stop now`` (Asterisk: hang up every call at once and exit): every call
  gets a BYE on both legs (both SIPp scenarios wait for it: 20 successful calls each), the
  provider's ``ul.dump`` loses our binding, exit code 0, all within 5 s of the request.
* ``core stop gracefully`` (Asterisk: accept no new calls, exit once none is left): nothing
  is hung up; a new INVITE gets 503; the calls end when the callers hang up, and only then
  pypbx unregisters and exits 0.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.parties import Kamailio, PbxProcess
from tests.interop.sipp import SippProcess, SippResult, free_port, sipp_command, start_sipp
from tests.interop.test_reload_live import (
    CALL_SCENARIOS,
    aor_contacts,
    rx,
    rx_ok,
    uac_until_bye,
    uas_answer,
    wait_until,
)

pytestmark = pytest.mark.interop
INTEROP_TOOLS = ("sipp", "kamailio", "kamcmd")

PROVIDER_IP = "127.0.0.21"
CALLER_IP = "127.0.0.24"
CALLEE_IP = "127.0.0.26"
CALLS = 20
STOP_WITHIN = 5.0


def sip_conf(port: int, kport: int, uas_port: int) -> str:
    return f"""[general]
bindaddr=127.0.0.1
bindport={port}
minexpiry=10
register => acct1:trunksecret@{PROVIDER_IP}:{kport}/1000

[1000]
type=friend
host=dynamic
secret=mysecretpassword
context=internal
disallow=all
allow=ulaw

[2000]
type=peer
host={CALLEE_IP}
port={uas_port}
context=internal
disallow=all
allow=ulaw
"""


EXTENSIONS = """[internal]
exten => 3000,1,Dial(SIP/2000,20)
"""


@dataclass
class Bed:
    tmp: Path
    pbx: PbxProcess
    port: int
    uas_port: int
    provider: Kamailio


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    kam = Kamailio(tmp_path / "kamailio", ip=PROVIDER_IP, port=free_port(PROVIDER_IP))
    port = free_port("127.0.0.1")
    b = Bed(tmp_path, PbxProcess(tmp_path / "pbx", port, verbosity=1), port, 0, kam)
    b.uas_port = free_port(CALLEE_IP)
    b.pbx.write(
        {
            "sip.conf": sip_conf(port, kam.port, b.uas_port),
            "extensions.conf": EXTENSIONS,
            "rtp.conf": "[general]\nrtpstart=10000\nrtpend=20000\n",
        }
    )
    kam.start()
    try:
        b.pbx.start()
        try:
            yield b
        finally:
            b.pbx.stop()
    finally:
        kam.stop()


def start_calls(
    bed: Bed, *, caller_hangs_up_after_ms: int | None
) -> tuple[SippProcess, SippProcess]:
    """20 answered calls 1000 → 3000 → 2000. The callee always waits for a BYE; the caller
    either waits for one too (``None``) or hangs up itself after the given hold time."""
    uas_work = bed.tmp / "uas"
    uas_work.mkdir()
    uas = start_sipp(
        sipp_command(
            uas_answer(uas_work, bye_timeout_ms=60000),
            None,
            workdir=uas_work,
            local_ip=CALLEE_IP,
            local_port=bed.uas_port,
            calls=CALLS,
            timeout=90,
        )
    )
    uac_work = bed.tmp / "uac"
    uac_work.mkdir()
    number = "3000"
    extra = ["-s", number, "-au", "1000", "-ap", "mysecretpassword", "-r", "20", "-l", str(CALLS)]
    extra += ["-auth_uri", f"{number}@127.0.0.1:{bed.port}"]
    if caller_hangs_up_after_ms is None:
        scenario = uac_until_bye(uac_work, bye_timeout_ms=60000)
    else:
        scenario = CALL_SCENARIOS / "uac_call.xml"
        extra += ["-d", str(caller_hangs_up_after_ms)]
    uac = start_sipp(
        sipp_command(
            scenario,
            f"127.0.0.1:{bed.port}",
            workdir=uac_work,
            local_ip=CALLER_IP,
            local_port=free_port(CALLER_IP),
            calls=CALLS,
            timeout=90,
            keys={"caller": "1000"},
            extra=extra,
        )
    )
    return uac, uas


def all_calls_up(bed: Bed) -> str:
    """Wait until all 2 x 20 channels are answered (``core show channels concise``)."""

    def up(text: str) -> int:
        return sum(1 for line in text.splitlines() if line.split("!")[4:5] == ["Up"])

    text = bed.pbx.wait_for("core show channels concise", lambda t: up(t) == 2 * CALLS, timeout=30)
    assert up(text) == 2 * CALLS, text
    text = bed.pbx.rx("core show channels")
    assert f"{2 * CALLS} active channels" in text, text
    assert f"{CALLS} active calls" in text, text
    return text


def byes_received(result: SippResult) -> int:
    """BYE requests SIPp received (its message log also holds the ones it sent)."""
    return len(re.findall(r"^UDP message received[^\n]*\n\s*BYE sip:", result.messages, re.M))


def invite_status(port: int, *, timeout: float = 3.0) -> int | None:
    """One INVITE from a stranger to 3000: the final status (ACKed), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.25", 0))
        lport = s.getsockname()[1]
        branch = f"z9hG4bK{os.urandom(6).hex()}"
        call_id = f"{os.urandom(8).hex()}@127.0.0.25"
        head = (
            f"Via: SIP/2.0/UDP 127.0.0.25:{lport};branch={branch}\r\n"
            f"From: <sip:9999@127.0.0.25>;tag=late1\r\n"
        )
        sdp = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.25\r\ns=-\r\nc=IN IP4 127.0.0.25\r\nt=0 0\r\n"
            "m=audio 4000 RTP/AVP 0\r\n"
        )
        s.sendto(
            (
                f"INVITE sip:3000@127.0.0.1:{port} SIP/2.0\r\n{head}"
                f"To: <sip:3000@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
                f"Contact: <sip:9999@127.0.0.25:{lport}>\r\nMax-Forwards: 70\r\n"
                f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
            ).encode(),
            ("127.0.0.1", port),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = s.recv(65535).decode(errors="replace")
            except TimeoutError:
                return None
            status = int(data.split(" ", 2)[1])
            if status >= 200:
                to = re.search(r"(?mi)^To:\s*(.*)\r$", data)
                ack = (
                    f"ACK sip:3000@127.0.0.1:{port} SIP/2.0\r\n{head}"
                    f"To: {to.group(1) if to else '<sip:3000@127.0.0.1>'}\r\n"
                    f"Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n"
                    f"Content-Length: 0\r\n\r\n"
                )
                s.sendto(ack.encode(), ("127.0.0.1", port))
                return status
    return None


def check_everyone_got_a_bye(uac: SippProcess, uas: SippProcess) -> None:
    uac_result, uas_result = uac.wait(), uas.wait()
    for name, result in (("caller", uac_result), ("callee", uas_result)):
        assert result.successful == CALLS, f"{name}: " + result.explain()
        assert result.ok, f"{name}: " + result.explain()
        assert byes_received(result) == CALLS, f"{name}: " + result.explain()


@pytest.mark.parametrize("how", ["SIGTERM", "core stop now", "gracefully, then SIGTERM"])
def test_stop_hangs_up_20_calls_and_unregisters_within_5s(bed: Bed, how: str) -> None:
    pbx, kam = bed.pbx, bed.provider
    assert wait_until(lambda: bool(aor_contacts(kam, "acct1")), 20), (
        kam.contacts() + pbx.log_text()[-3000:]
    )
    uac, uas = start_calls(bed, caller_hangs_up_after_ms=None)
    try:
        all_calls_up(bed)
        assert pbx.proc is not None
        if how.startswith("gracefully"):
            assert "gracefully" in rx_ok(pbx, "core stop gracefully")
            time.sleep(0.5)
            assert pbx.proc.poll() is None  # still waiting for the calls
        t0 = time.monotonic()
        if how.endswith("SIGTERM"):
            os.killpg(pbx.proc.pid, signal.SIGTERM)
        else:
            text = rx_ok(pbx, how)
            assert "Shutting down pypbx now" in text, text
        code = pbx.proc.wait(timeout=15)
        elapsed = time.monotonic() - t0
        assert code == 0, pbx.log_text()[-3000:]
        assert elapsed < STOP_WITHIN, f"stopped in {elapsed:.2f} s\n{pbx.log_text()[-3000:]}"
        assert not aor_contacts(kam, "acct1"), kam.contacts()
        check_everyone_got_a_bye(uac, uas)
    finally:
        uac.stop()
        uas.stop()


def test_core_stop_gracefully_waits_for_the_calls_to_end(bed: Bed) -> None:
    pbx, kam = bed.pbx, bed.provider
    assert wait_until(lambda: bool(aor_contacts(kam, "acct1")), 20), (
        kam.contacts() + pbx.log_text()[-3000:]
    )
    hold_ms = 8000
    uac, uas = start_calls(bed, caller_hangs_up_after_ms=hold_ms)
    try:
        all_calls_up(bed)
        assert pbx.proc is not None
        code, text = rx(pbx, "core stop gracefully")
        assert code == 0, text
        assert "Shutting down pypbx gracefully" in text, text
        # no new calls, but the running ones carry on and pypbx keeps serving the CLI
        assert invite_status(bed.port) == 503
        text = rx_ok(pbx, "core show channels")
        assert f"{CALLS} active calls" in text, text
        assert pbx.proc.poll() is None
        assert aor_contacts(kam, "acct1"), "unregistered before the calls ended"
        # the callers hang up; then (and only then) pypbx unregisters and exits
        uac_result = uac.wait()
        t_last_bye = time.monotonic()
        code = pbx.proc.wait(timeout=15)
        assert code == 0, pbx.log_text()[-3000:]
        assert time.monotonic() - t_last_bye < STOP_WITHIN
        assert uac_result.ok, uac_result.explain()
        assert uac_result.successful == CALLS, uac_result.explain()
        assert byes_received(uac_result) == 0, "pypbx hung up a call it should have waited for"
        uas_result = uas.wait()
        assert uas_result.ok, uas_result.explain()
        assert uas_result.successful == CALLS, uas_result.explain()
        assert not aor_contacts(kam, "acct1"), kam.contacts()
    finally:
        uac.stop()
        uas.stop()
