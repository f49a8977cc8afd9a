"""Calls end to end with real parties (issue 6): baresip as extension 1000 → pypbx →
Kamailio as the provider → baresip as the PSTN phone, and the DID path back. pypbx runs in
this process (SipService + CallService) so that the relay's counters can be read.

Each phone sends its own tone (1000: 440 Hz, PSTN: 1000 Hz); each recording must carry the
other side's tone for >= 90 % of the time the call was up; every RTP packet went through
pypbx's relay (the phones only ever saw pypbx's address in SDP, and the relay counted them).
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pypbx.call.manager import CallService
from pypbx.check import load_config_dir
from pypbx.server import Pbx
from pypbx.sipservice import SipService
from tests.interop.parties import Baresip, BaresipCtl, Kamailio, have
from tests.interop.sipp import (
    SippProcess,
    SippResult,
    free_port,
    run_sipp,
    sipp_command,
    start_sipp,
)
from tests.interop.tone import analyse

pytestmark = pytest.mark.interop
INTEROP_TOOLS = ("kamailio", "baresip", "sipp")

PROVIDER_IP = "127.0.0.21"
PSTN_IP = "127.0.0.22"
PHONE_IP = "127.0.0.23"
HOLD = 8.0

needs_parties = pytest.mark.skipif(
    not (have("kamailio") and have("baresip")), reason="not installed: kamailio/baresip"
)


def sip_conf(port: int, kport: int) -> str:
    return f"""[general]
bindaddr=127.0.0.1
bindport={port}
minexpiry=10
register => acct1:trunksecret@{PROVIDER_IP}:{kport}/1000

[flowroute]
type=peer
host={PROVIDER_IP}
port={kport}
username=acct1
fromuser=acct1
secret=trunksecret
insecure=port,invite
context=from-flowroute
disallow=all
allow=ulaw

[1000]
type=friend
host=dynamic
secret=mysecretpassword
context=internal
disallow=all
allow=ulaw
"""


EXTENSIONS = """[internal]
exten => _1NXXNXXXXXX,1,Dial(SIP/flowroute/${EXTEN},30)

[from-flowroute]
exten => 18182223333,1,Dial(SIP/1000,30)
"""


@dataclass
class World:
    pbx_port: int
    provider: Kamailio
    pstn: Baresip
    phone: Baresip
    tmp: Path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    kport = free_port(PROVIDER_IP)
    pstn_port = free_port(PSTN_IP)
    pbx_port = free_port("127.0.0.1")
    kam = Kamailio(
        tmp_path / "kamailio",
        ip=PROVIDER_IP,
        port=kport,
        defines={"PSTN_HOSTPORT": f"{PSTN_IP}:{pstn_port}"},
    )
    pstn = Baresip(
        tmp_path / "pstn",
        PSTN_IP,
        [
            f"<sip:13105550100@{PSTN_IP}>;regint=0;answermode=auto;audio_codecs=PCMU",
            f"<sip:18002223333@{PSTN_IP}>;regint=0;answermode=auto;audio_codecs=PCMU",
        ],
        tone_hz=1000.0,
        sip_port=pstn_port,
        ctrl_port=free_port(PSTN_IP),
        rtp_ports="32000-32999",
    )
    phone = Baresip(
        tmp_path / "phone",
        PHONE_IP,
        [
            f"<sip:1000@127.0.0.1:{pbx_port}>;auth_pass=mysecretpassword;regint=600;"
            "answermode=auto;audio_codecs=PCMU"
        ],
        tone_hz=440.0,
        sip_port=free_port(PHONE_IP),
        ctrl_port=free_port(PHONE_IP),
        rtp_ports="33000-33999",
    )
    conf = tmp_path / "pbx"
    conf.mkdir()
    (conf / "sip.conf").write_text(sip_conf(pbx_port, kport))
    (conf / "extensions.conf").write_text(EXTENSIONS)
    (conf / "rtp.conf").write_text("[general]\nrtpstart=10000\nrtpend=20000\n")
    kam.start()
    try:
        pstn.start()
        try:
            yield World(pbx_port, kam, pstn, phone, tmp_path)
        finally:
            pstn.stop()
            phone.stop()
    finally:
        kam.stop()


def run_pbx(world: World, script: Callable[[World], None]) -> dict[str, int]:
    """Run pypbx in this process while ``script(world)`` (blocking) drives the phones."""
    return serve(world.tmp / "pbx", lambda: script(world))


def wait_registered(world: World) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if "Address: sip:1000@127.0.0.1" in world.provider.contacts():
            return
        time.sleep(0.2)
    raise AssertionError("pypbx did not register to the provider:\n" + world.provider.contacts())


def call_and_hold(ctl: BaresipCtl, uri: str) -> None:
    ctl.send("dial", uri)
    assert ctl.wait_event("CALL_ESTABLISHED", 20) is not None, f"call to {uri} not established"
    time.sleep(HOLD)
    ctl.send("hangup")
    assert ctl.wait_event("CALL_CLOSED", 10) is not None


def check_recordings(
    caller: Baresip, callee: Baresip, caller_hears: float, callee_hears: float
) -> None:
    for phone, hz in ((caller, caller_hears), (callee, callee_hears)):
        recs = phone.recordings("dec")
        assert recs, f"{phone.ip}: no recording"
        tone = analyse(recs[-1])
        assert abs(tone.dominant_hz - hz) <= 15, (phone.ip, tone)
        assert tone.peak_share >= 0.5, (phone.ip, tone)
        assert tone.active_s >= 0.9 * (HOLD - 1.0), (phone.ip, tone)


class Capture:
    """tshark on lo for the phones' addresses (skipped quietly when tshark is absent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not have("tshark"):
            return
        self.proc = subprocess.Popen(
            ["tshark", "-q", "-i", "lo", "-f", f"udp and (host {PSTN_IP} or host {PHONE_IP})",
             "-w", str(self.path), "-a", "duration:80"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)

    def stop(self) -> list[tuple[str, int, str, int]]:
        if self.proc is None:
            return []
        time.sleep(0.5)
        self.proc.terminate()
        self.proc.wait(timeout=10)
        out = subprocess.run(
            ["tshark", "-r", str(self.path), "-T", "fields", "-e", "ip.src", "-e", "udp.srcport",
             "-e", "ip.dst", "-e", "udp.dstport"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        rows = []
        for line in out.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 4 and parts[1] and parts[3]:
                rows.append((parts[0], int(parts[1]), parts[2], int(parts[3])))
        return rows


def check_no_direct_rtp(rows: list[tuple[str, int, str, int]]) -> None:
    """Nothing from one phone's RTP ports reaches the other phone; pypbx's relay ports
    (10000-20000) carry the audio to both."""
    if not rows:
        return
    phone_ports, pstn_ports = range(33000, 34000), range(32000, 33000)
    rtp = [r for r in rows if r[0] != PROVIDER_IP]  # the provider only carries SIP
    direct = [
        r
        for r in rtp
        if (r[2] == PSTN_IP and r[1] in phone_ports) or (r[2] == PHONE_IP and r[1] in pstn_ports)
    ]
    assert not direct, direct[:5]
    for ip in (PSTN_IP, PHONE_IP):
        relayed = [r for r in rtp if r[2] == ip and 10000 <= r[1] <= 20000]
        assert len(relayed) >= 50 * (HOLD - 1), (ip, len(relayed))


@needs_parties
def test_extension_calls_the_pstn_through_pypbx(world: World) -> None:
    capture = Capture(world.tmp / "call.pcap")

    def script(w: World) -> None:
        w.phone.start()
        wait_registered(w)
        ctl = w.phone.ctl()
        try:
            time.sleep(1.0)  # the phone's REGISTER to pypbx
            capture.start()
            call_and_hold(ctl, f"sip:18002223333@127.0.0.1:{w.pbx_port}")
        finally:
            ctl.close()
        time.sleep(1.0)

    totals = run_pbx(world, script)
    check_no_direct_rtp(capture.stop())
    check_recordings(world.phone, world.pstn, caller_hears=1000.0, callee_hears=440.0)
    # every packet the phones heard went through the relay: 2 legs, ~50 pkt/s each way
    assert totals.get("legs") == 2, totals
    assert totals["packets_out"] >= 2 * 50 * (HOLD - 1), totals
    # after the 5 s strictrtp learning window both legs went on through the fast path (source
    # locked, socket connected), and the recordings above cover that part of the call too
    assert totals.get("fast_in", 0) >= 2 * 50 * 1, totals
    log = world.provider.log.read_text(errors="replace")
    assert "CUSTOMER->PSTN" in log
    # the provider record-routes: our ACK and BYE went through it (loose_route)
    assert "IN-DIALOG ACK" in log
    assert "IN-DIALOG BYE" in log


@needs_parties
def test_did_from_the_pstn_rings_extension_1000(world: World) -> None:
    def script(w: World) -> None:
        w.phone.start()
        wait_registered(w)
        time.sleep(1.0)
        ctl = w.pstn.ctl()
        try:
            call_and_hold(ctl, f"sip:18182223333@{PROVIDER_IP}:{w.provider.port}")
        finally:
            ctl.close()
        time.sleep(1.0)

    totals = run_pbx(world, script)
    check_recordings(world.pstn, world.phone, caller_hears=440.0, callee_hears=1000.0)
    assert totals.get("legs") == 2, totals
    assert totals["packets_out"] >= 2 * 50 * (HOLD - 1), totals
    # after the 5 s strictrtp learning window both legs went on through the fast path (source
    # locked, socket connected), and the recordings above cover that part of the call too
    assert totals.get("fast_in", 0) >= 2 * 50 * 1, totals


# ---------------------------------------------------------------- SIPp on both sides

SIPP_CALLER_IP = "127.0.0.24"
SIPP_TRUNK_IP = "127.0.0.25"
SIPP_EXT_IP = "127.0.0.26"
SCENARIOS = Path(__file__).resolve().parent / "scenarios_call"
needs_sipp = pytest.mark.skipif(not have("sipp"), reason="not installed: sipp")


def sipp_sip_conf(port: int, trunk_port: int, ext_port: int) -> str:
    return f"""[general]
bindaddr=127.0.0.1
bindport={port}
context=guests

[1000]
type=friend
host=dynamic
secret=mysecretpassword
context=internal
disallow=all
allow=ulaw

[trunk]
type=peer
host={SIPP_TRUNK_IP}
port={trunk_port}
insecure=port,invite
context=from-trunk
username=acct1
fromuser=acct1
secret=trunksecret
disallow=all
allow=ulaw

[2000]
type=peer
host={SIPP_EXT_IP}
port={ext_port}
context=internal
disallow=all
allow=ulaw
"""


SIPP_EXTENSIONS = """[internal]
exten => _1NXXNXXXXXX,1,Dial(SIP/trunk/${EXTEN},3)
same => n,Goto(s-${DIALSTATUS},1)
exten => s-BUSY,1,Hangup(17)
exten => s-NOANSWER,1,Hangup(19)
exten => _s-.,1,Hangup(34)
exten => 3000,1,Dial(SIP/trunk/18005550000&SIP/2000,10)

[guests]
exten => 18002223333,1,Dial(SIP/trunk/${EXTEN})
"""


@dataclass
class SippBed:
    tmp: Path
    port: int
    trunk_port: int
    ext_port: int


def sipp_uas(bed: SippBed, scenario: str, ip: str, port: int, **keys: str) -> SippProcess:
    work = bed.tmp / f"uas-{ip}-{scenario}"
    work.mkdir(parents=True, exist_ok=True)
    return start_sipp(
        sipp_command(
            SCENARIOS / f"{scenario}.xml",
            None,
            workdir=work,
            local_ip=ip,
            local_port=port,
            calls=1,
            timeout=25,
            keys=keys,
        )
    )


def sipp_uac(
    bed: SippBed, scenario: str, number: str, *, auth: bool = True, hold_ms: int = 1000
) -> SippResult:
    work = bed.tmp / f"uac-{scenario}-{number}"
    work.mkdir(parents=True, exist_ok=True)
    extra = ["-s", number, "-d", str(hold_ms)]
    if auth:
        # SIPp's digest uri defaults to sip:remote_ip:port; pypbx wants the Request-URI
        extra += ["-au", "1000", "-ap", "mysecretpassword"]
        extra += ["-auth_uri", f"{number}@127.0.0.1:{bed.port}"]
    return run_sipp(
        sipp_command(
            SCENARIOS / f"{scenario}.xml",
            f"127.0.0.1:{bed.port}",
            workdir=work,
            local_ip=SIPP_CALLER_IP,
            local_port=free_port(SIPP_CALLER_IP),
            calls=1,
            timeout=20,
            keys={"caller": "1000"},
            extra=extra,
        )
    )


def with_sipp_pbx(tmp_path: Path, script: Callable[[SippBed], None]) -> dict[str, int]:
    bed = SippBed(
        tmp_path, free_port("127.0.0.1"), free_port(SIPP_TRUNK_IP), free_port(SIPP_EXT_IP)
    )
    conf = tmp_path / "pbx"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "sip.conf").write_text(sipp_sip_conf(bed.port, bed.trunk_port, bed.ext_port))
    (conf / "extensions.conf").write_text(SIPP_EXTENSIONS)
    (conf / "rtp.conf").write_text("[general]\nrtpstart=10000\nrtpend=20000\n")
    return serve(conf, lambda: script(bed))


def serve(conf: Path, script: Callable[[], None]) -> dict[str, int]:
    pbx = Pbx(load_config_dir(conf))
    pbx.dirs.datadir.mkdir(parents=True, exist_ok=True)
    totals: dict[str, int] = {}

    async def main() -> None:
        sip = SipService(rng=random.Random(5))
        pbx.services.append(sip)
        await sip.start(pbx)
        calls = CallService()
        await calls.start(pbx)
        try:
            await asyncio.wait_for(asyncio.to_thread(script), 90)
            await asyncio.sleep(0.3)
        finally:
            manager = calls.manager
            if manager is not None and manager.env is not None:
                totals.update(manager.env.relayed)
                totals["ports_in_use"] = manager.ports.in_use if manager.ports else -1
                totals["channels"] = len(manager.channels)
            await calls.stop()
            await sip.stop()

    asyncio.run(main())
    return totals


def final_status(result: SippResult) -> list[int]:
    return [int(m) for m in re.findall(r"^SIP/2\.0 ([3-6]\d\d) ", result.messages, re.M)]


@needs_sipp
def test_sipp_answered_call_through_a_trunk_that_asks_401(tmp_path: Path) -> None:
    out: dict[str, object] = {}

    def script(bed: SippBed) -> None:
        uas = sipp_uas(
            bed,
            "uas_answer_auth",
            SIPP_TRUNK_IP,
            bed.trunk_port,
            authuser="acct1",
            authpass="trunksecret",
        )
        try:
            out["uac"] = sipp_uac(bed, "uac_call", "18005551234", hold_ms=1500)
            out["uas"] = uas.wait()
        finally:
            uas.stop()

    totals = with_sipp_pbx(tmp_path, script)
    uac, uas = out["uac"], out["uas"]
    assert isinstance(uac, SippResult)
    assert isinstance(uas, SippResult)
    assert uac.ok, uac.explain()
    assert uas.ok, uas.explain()
    assert "Authorization: Digest" in uas.messages
    assert 'username="acct1"' in uas.messages
    assert totals["ports_in_use"] == 0
    assert totals["channels"] == 0


@needs_sipp
@pytest.mark.parametrize(
    ("uas_scenario", "keys", "expect"),
    [
        ("uas_busy", {}, 486),  # BUSY → Hangup(17)
        ("uas_ring", {}, 480),  # NOANSWER after 3 s → Hangup(19); the trunk got CANCEL
        ("uas_congested", {}, 503),  # CONGESTION → Hangup(34)
    ],
)
def test_sipp_failed_dial_continues_the_plan(
    tmp_path: Path, uas_scenario: str, keys: dict[str, str], expect: int
) -> None:
    out: dict[str, object] = {}

    def script(bed: SippBed) -> None:
        uas = sipp_uas(bed, uas_scenario, SIPP_TRUNK_IP, bed.trunk_port, **keys)
        try:
            out["uac"] = sipp_uac(bed, "uac_fail", "18005551234")
            out["uas"] = uas.wait()
        finally:
            uas.stop()

    totals = with_sipp_pbx(tmp_path, script)
    uac, uas = out["uac"], out["uas"]
    assert isinstance(uac, SippResult)
    assert isinstance(uas, SippResult)
    assert uac.ok, uac.explain()
    assert uas.ok, uas.explain()
    assert final_status(uac)[-1] == expect, uac.explain()
    assert totals["ports_in_use"] == 0


@needs_sipp
@pytest.mark.parametrize(
    ("uac_scenario", "uas_scenario"),
    [
        ("uac_cancel", "uas_ring"),  # caller CANCEL → trunk CANCEL
        ("uac_wait_bye", "uas_bye"),  # callee BYE → caller BYE
        ("uac_hold", "uas_answer"),  # hold re-INVITE, then caller BYE
        ("uac_late_offer", "uas_answer"),  # INVITE without SDP: our offer in 200, answer in ACK
    ],
)
def test_sipp_call_flows(tmp_path: Path, uac_scenario: str, uas_scenario: str) -> None:
    out: dict[str, object] = {}

    def script(bed: SippBed) -> None:
        uas = sipp_uas(bed, uas_scenario, SIPP_TRUNK_IP, bed.trunk_port)
        try:
            out["uac"] = sipp_uac(bed, uac_scenario, "18005551234")
            out["uas"] = uas.wait()
        finally:
            uas.stop()

    totals = with_sipp_pbx(tmp_path, script)
    uac, uas = out["uac"], out["uas"]
    assert isinstance(uac, SippResult)
    assert isinstance(uas, SippResult)
    assert uac.ok, uac.explain()
    assert uas.ok, uas.explain()
    assert totals["ports_in_use"] == 0
    if uac_scenario == "uac_hold":
        assert "a=sendonly" in uas.messages, uas.messages[-3000:]
    if uac_scenario == "uac_late_offer":  # the callee still got an offer from pypbx
        assert "m=audio" in uas.messages, uas.messages[-3000:]


@needs_sipp
def test_sipp_parallel_ringing_first_answer_wins(tmp_path: Path) -> None:
    out: dict[str, object] = {}

    def script(bed: SippBed) -> None:
        ringing = sipp_uas(bed, "uas_ring", SIPP_TRUNK_IP, bed.trunk_port)
        answering = sipp_uas(bed, "uas_answer", SIPP_EXT_IP, bed.ext_port)
        try:
            out["uac"] = sipp_uac(bed, "uac_call", "3000")
            out["ring"] = ringing.wait()
            out["answer"] = answering.wait()
        finally:
            ringing.stop()
            answering.stop()

    with_sipp_pbx(tmp_path, script)
    for name in ("uac", "ring", "answer"):
        result = out[name]
        assert isinstance(result, SippResult)
        assert result.ok, f"{name}: " + result.explain()


@needs_sipp
def test_sipp_stranger_cannot_call_out(tmp_path: Path) -> None:
    out: dict[str, object] = {}

    def script(bed: SippBed) -> None:
        uas = sipp_uas(bed, "uas_answer", SIPP_TRUNK_IP, bed.trunk_port)
        try:
            out["uac"] = sipp_uac(bed, "uac_stranger", "18002223333", auth=False)
            time.sleep(1.0)
            out["trunk_messages"] = (
                (bed.tmp / f"uas-{SIPP_TRUNK_IP}-uas_answer" / "sipp_messages.log").read_text()
                if (bed.tmp / f"uas-{SIPP_TRUNK_IP}-uas_answer" / "sipp_messages.log").exists()
                else ""
            )
        finally:
            uas.stop()

    with_sipp_pbx(tmp_path, script)
    uac = out["uac"]
    assert isinstance(uac, SippResult)
    assert uac.ok, uac.explain()
    assert final_status(uac)[-1] in (403, 407), uac.explain()
    assert "INVITE" not in str(out["trunk_messages"])
