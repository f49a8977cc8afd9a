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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pypbx.call.manager import CallService
from pypbx.check import load_config_dir
from pypbx.server import Pbx
from pypbx.sipservice import SipService
from tests.interop.parties import Baresip, BaresipCtl, Kamailio, have
from tests.interop.sipp import free_port
from tests.interop.tone import analyse

pytestmark = pytest.mark.interop
INTEROP_TOOLS = ("kamailio", "baresip")

PROVIDER_IP = "127.0.0.21"
PSTN_IP = "127.0.0.22"
PHONE_IP = "127.0.0.23"
HOLD = 6.0

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


def run_pbx(world: World, script: object) -> dict[str, int]:
    """Run pypbx in this process while ``script(world)`` (blocking) drives the phones."""
    pbx = Pbx(load_config_dir(world.tmp / "pbx"))
    pbx.dirs.datadir.mkdir(parents=True, exist_ok=True)
    totals: dict[str, int] = {}

    async def main() -> None:
        sip = SipService(rng=random.Random(11))
        pbx.services.append(sip)
        await sip.start(pbx)
        calls = CallService()
        await calls.start(pbx)
        try:
            await asyncio.wait_for(asyncio.to_thread(script, world), 90)  # type: ignore[arg-type]
            await asyncio.sleep(0.5)
        finally:
            if calls.manager is not None and calls.manager.env is not None:
                totals.update(calls.manager.env.relayed)
            await calls.stop()
            await sip.stop()

    asyncio.run(main())
    return totals


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


@needs_parties
def test_extension_calls_the_pstn_through_pypbx(world: World) -> None:
    def script(w: World) -> None:
        w.phone.start()
        wait_registered(w)
        ctl = w.phone.ctl()
        try:
            time.sleep(1.0)  # the phone's REGISTER to pypbx
            call_and_hold(ctl, f"sip:18002223333@127.0.0.1:{w.pbx_port}")
        finally:
            ctl.close()
        time.sleep(1.0)

    totals = run_pbx(world, script)
    check_recordings(world.phone, world.pstn, caller_hears=1000.0, callee_hears=440.0)
    # every packet the phones heard went through the relay: 2 legs, ~50 pkt/s each way
    assert totals.get("legs") == 2, totals
    assert totals["packets_out"] >= 2 * 50 * (HOLD - 1), totals
    log = world.provider.log.read_text(errors="replace")
    assert "CUSTOMER->PSTN" in log


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
