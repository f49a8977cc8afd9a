"""Transcoding end to end with SIPp on both sides (issue 7 point 2): a caller offering only
PCMU (events as payload type 96) calls through pypbx a callee peer that allows only alaw
(pypbx offers it events as 101). Both SIPp parties stream a tone with ``rtp_stream`` (the
caller 440 Hz in µ-law, the callee 1000 Hz in A-law, WAV files this test writes); tshark
captures loopback and each side's received RTP is decoded with its own law: the callee must
hear 440 Hz in A-law (PT 8), the caller 1000 Hz in µ-law (PT 0). One second in, the caller
also plays (``play_pcap_audio``, a pcap this test writes) an RFC 4733 digit as PT 96: the
callee must get every event packet as PT 101 with its payload and marker unchanged.
pypbx runs in this process.
"""

from __future__ import annotations

import asyncio
import random
import struct
import subprocess
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import pytest

from pypbx.call.manager import CallService
from pypbx.check import load_config_dir
from pypbx.media import audio, dtmf
from pypbx.media.rtp import RtpError, RtpPacket, parse_rtp
from pypbx.server import Pbx
from pypbx.sipservice import SipService
from tests.interop.sipp import SippResult, free_port, run_sipp, sipp_command, start_sipp
from tests.interop.tone import analyse

pytestmark = pytest.mark.interop
INTEROP_TOOLS = ("sipp", "tshark")

CALLER_IP = "127.0.0.71"
CALLEE_IP = "127.0.0.72"
HOLD_MS = 4000  # after the 1 s before the digit
CALLER_HZ, CALLEE_HZ = 440.0, 1000.0

# --- media files ---------------------------------------------------------------------------


def write_g711_wav(path: Path, hz: float, law: str, seconds: float) -> None:
    """A mono 8 kHz G.711 WAV (format tag 7 µ-law, 6 A-law) of a sine at ``hz``."""
    encode = audio.ulaw_encode if law == "ulaw" else audio.alaw_encode
    frames = islice(audio.tone_frames([hz], amplitude=12000), int(seconds * 50))
    data = b"".join(encode(f) for f in frames)
    fmt = struct.pack("<HHIIHH", 7 if law == "ulaw" else 6, 1, 8000, 8000, 1, 8)
    chunks = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(chunks)) + chunks)


DIGIT = "5"
EVENT_PT = 96  # the caller's number for telephone-event; pypbx offers the callee 101


def write_dtmf_pcap(path: Path) -> list[bytes]:
    """A pcap (Ethernet/IPv4/UDP) of one RFC 4733 digit as payload type 96, 20 ms apart, for
    SIPp's ``play_pcap_audio`` (it replaces addresses and ports); returns the payloads."""
    planned = dtmf.digit_packets(DIGIT, timestamp=4000, duration=0.2, interval=0.02)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    payloads = []
    for seq, item in enumerate(planned, start=1):
        rtp = RtpPacket(EVENT_PT, seq, item.timestamp, 0x4D32, item.payload, marker=item.marker)
        udp_payload = rtp.to_bytes()
        payloads.append(item.payload)
        udp = struct.pack("!HHHH", 40000, 40000, 8 + len(udp_payload), 0) + udp_payload
        ip = _ipv4(udp)
        frame = b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00" + ip
        stamp = 0.02 * (seq - 1)
        sec, usec = int(stamp), int((stamp % 1) * 1e6)
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return payloads


def _ipv4(udp: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
        bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]),
    )  # fmt: skip
    total = sum(struct.unpack("!10H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return header[:10] + struct.pack("!H", ~total & 0xFFFF) + header[12:] + udp


def write_pcm_wav(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)


# --- SIPp scenarios (written next to the media files) --------------------------------------

_UAC_INVITE = """
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: "Ext 1000" <sip:1000@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:1000@[local_ip]:[local_port]>
      {auth}
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 {cseq} IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 96
      a=rtpmap:0 PCMU/8000
      a=rtpmap:96 telephone-event/8000
      a=fmtp:96 0-16
      a=ptime:20
      a=sendrecv
"""

UAC = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="uac_pcmu_tone">
  <send retrans="500"><![CDATA[
{_UAC_INVITE.format(cseq=1, auth="")}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="401" optional="true" auth="true" next="ack1"/>
  <recv response="407" auth="true"/>
  <label id="ack1"/>
  <send><![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      Max-Forwards: 70
      From: "Ext 1000" <sip:1000@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Content-Length: 0

  ]]></send>
  <send retrans="500"><![CDATA[
{_UAC_INVITE.format(cseq=2, auth="[authentication]")}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      Max-Forwards: 70
      From: "Ext 1000" <sip:1000@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 ACK
      Contact: <sip:1000@[local_ip]:[local_port]>
      Content-Length: 0

  ]]></send>
  <nop><action><exec rtp_stream="caller.wav,-1,0"/></action></nop>
  <pause milliseconds="1000"/>
  <nop><action><exec play_pcap_audio="dtmf.pcap"/></action></nop>
  <pause/>
  <send retrans="500"><![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      Max-Forwards: 70
      From: "Ext 1000" <sip:1000@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Contact: <sip:1000@[local_ip]:[local_port]>
      Content-Length: 0

  ]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""

_UAS_REPLY = """
      SIP/2.0 {status}
      [last_Via:]
      [last_Record-Route:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
"""

UAS = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="uas_pcma_tone">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
{_UAS_REPLY.format(status="180 Ringing")}      Content-Length: 0

  ]]></send>
  <send retrans="500"><![CDATA[
{_UAS_REPLY.format(status="200 OK")}      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      a=ptime:20
      a=sendrecv

  ]]></send>
  <recv request="ACK" crlf="true"/>
  <nop><action><exec rtp_stream="callee.wav,-1,8"/></action></nop>
  <recv request="BYE" timeout="20000"/>
  <send><![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
</scenario>
"""


def sip_conf(port: int, callee_port: int) -> str:
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

[pstn]
type=peer
host={CALLEE_IP}
port={callee_port}
insecure=port,invite
context=from-pstn
disallow=all
allow=alaw
"""


EXTENSIONS = """[internal]
exten => _1NXXNXXXXXX,1,Dial(SIP/pstn/${EXTEN},10)
"""


# --- capture -------------------------------------------------------------------------------


@dataclass
class Heard:
    """RTP a SIPp party received, by payload type."""

    payload_types: dict[int, int] = field(default_factory=dict)
    audio: bytearray = field(default_factory=bytearray)
    sources: set[tuple[str, int]] = field(default_factory=set)
    events: list[tuple[int, bytes, bool]] = field(default_factory=list)


class Capture:
    """tshark on lo for the two SIPp addresses, read back as UDP payloads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc = subprocess.Popen(
            ["tshark", "-q", "-i", "lo", "-f", f"udp and (host {CALLER_IP} or host {CALLEE_IP})",
             "-w", str(path), "-a", "duration:60"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)

    def stop(self) -> list[tuple[str, int, str, int, bytes]]:
        time.sleep(0.3)
        self.proc.terminate()
        self.proc.wait(timeout=10)
        out = subprocess.run(
            ["tshark", "-r", str(self.path), "-T", "fields", "-e", "ip.src", "-e", "udp.srcport",
             "-e", "ip.dst", "-e", "udp.dstport", "-e", "udp.payload"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        rows = []
        for line in out.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 5 and parts[1] and parts[3] and parts[4]:
                payload = bytes.fromhex(parts[4].replace(":", ""))
                rows.append((parts[0], int(parts[1]), parts[2], int(parts[3]), payload))
        return rows


def heard_by(rows: list[tuple[str, int, str, int, bytes]], ip: str, law_pt: int) -> Heard:
    """What ``ip`` received over RTP (not SIP: SIP text never starts with version 2 bits)."""
    heard = Heard()
    decode = audio.ulaw_decode if law_pt == 0 else audio.alaw_decode
    for src, sport, dst, _dport, payload in rows:
        if dst != ip or not payload or payload[0] >> 6 != 2:
            continue
        try:
            packet = parse_rtp(payload)
        except RtpError:
            continue
        pt = packet.payload_type
        heard.payload_types[pt] = heard.payload_types.get(pt, 0) + 1
        heard.sources.add((src, sport))
        if pt == law_pt:
            heard.audio += decode(packet.payload)
        else:
            heard.events.append((pt, packet.payload, packet.marker))
    return heard


# --- pypbx in this process -----------------------------------------------------------------


def serve(conf: Path, script: Callable[[], None]) -> dict[str, int]:
    pbx = Pbx(load_config_dir(conf))
    pbx.dirs.datadir.mkdir(parents=True, exist_ok=True)
    totals: dict[str, int] = {}

    async def main() -> None:
        sip = SipService(rng=random.Random(7))
        pbx.services.append(sip)
        await sip.start(pbx)
        calls = CallService()
        await calls.start(pbx)
        try:
            await asyncio.wait_for(asyncio.to_thread(script), 60)
            await asyncio.sleep(0.3)
        finally:
            manager = calls.manager
            if manager is not None and manager.env is not None:
                totals.update(manager.env.relayed)
                totals["ports_in_use"] = manager.ports.in_use if manager.ports else -1
            await calls.stop()
            await sip.stop()

    asyncio.run(main())
    return totals


def test_pcmu_caller_and_pcma_callee_hear_each_other(tmp_path: Path) -> None:
    write_g711_wav(tmp_path / "caller.wav", CALLER_HZ, "ulaw", 10)
    write_g711_wav(tmp_path / "callee.wav", CALLEE_HZ, "alaw", 10)
    sent_events = write_dtmf_pcap(tmp_path / "dtmf.pcap")
    (tmp_path / "uac.xml").write_text(UAC)
    (tmp_path / "uas.xml").write_text(UAS)
    port, callee_port = free_port("127.0.0.1"), free_port(CALLEE_IP)
    conf = tmp_path / "pbx"
    conf.mkdir()
    (conf / "sip.conf").write_text(sip_conf(port, callee_port))
    (conf / "extensions.conf").write_text(EXTENSIONS)
    (conf / "rtp.conf").write_text("[general]\nrtpstart=10000\nrtpend=20000\n")
    results: dict[str, SippResult] = {}
    capture = Capture(tmp_path / "transcode.pcap")

    def script() -> None:
        uas = start_sipp(
            sipp_command(
                tmp_path / "uas.xml", None, workdir=tmp_path, local_ip=CALLEE_IP,
                local_port=callee_port, calls=1, timeout=25,
            )
        )  # fmt: skip
        try:
            time.sleep(0.5)
            number = "18005550199"
            uac_dir = tmp_path / "uac"
            uac_dir.mkdir()
            for name in ("caller.wav", "dtmf.pcap"):
                (uac_dir / name).write_bytes((tmp_path / name).read_bytes())
            auth = ["-au", "1000", "-ap", "mysecretpassword"]
            auth += ["-auth_uri", f"{number}@127.0.0.1:{port}"]
            results["uac"] = run_sipp(
                sipp_command(
                    tmp_path / "uac.xml",
                    f"127.0.0.1:{port}",
                    workdir=uac_dir,
                    local_ip=CALLER_IP,
                    local_port=free_port(CALLER_IP),
                    calls=1,
                    timeout=20,
                    extra=["-s", number, "-d", str(HOLD_MS), *auth],
                )
            )
        finally:
            results["uas"] = uas.wait()
            uas.stop()

    try:
        totals = serve(conf, script)
    finally:
        rows = capture.stop()
    assert results["uac"].ok, results["uac"].explain()
    assert results["uas"].ok, results["uas"].explain()
    assert totals.get("legs") == 2, totals
    assert totals.get("ports_in_use") == 0, totals
    callee = heard_by(rows, CALLEE_IP, 8)
    caller = heard_by(rows, CALLER_IP, 0)
    # each side got only its own law: pypbx transcoded, nothing passed through unchanged;
    # the caller's RFC 4733 digit (PT 96) reached the callee as PT 101, payloads intact
    assert set(callee.payload_types) == {8, 101}, callee.payload_types
    assert [payload for _pt, payload, _m in callee.events] == sent_events
    assert [m for _pt, _p, m in callee.events] == [True] + [False] * (len(sent_events) - 1)
    assert set(caller.payload_types) == {0}, caller.payload_types
    # everything came from pypbx's relay ports, never from the other party
    assert {ip for ip, _ in callee.sources | caller.sources} == {"127.0.0.1"}
    for name, heard, hz in (("callee", callee, CALLER_HZ), ("caller", caller, CALLEE_HZ)):
        wav = tmp_path / f"{name}_heard.wav"
        write_pcm_wav(wav, bytes(heard.audio))
        tone = analyse(wav)
        assert abs(tone.dominant_hz - hz) <= 15, (name, tone)
        assert tone.peak_share >= 0.5, (name, tone)
        assert tone.active_s >= 0.9 * (HOLD_MS / 1000), (name, tone)
