"""Media applications and DTMF with real parties (issue 7, points 1 and 3).

baresip as extension 1000 calls pypbx (a real process):

- Echo: it hears its own 440 Hz tone back;
- Playback: it hears the 1 kHz WAV the test wrote into ``sounddir``, in the codec it
  negotiated (PCMU or PCMA); a missing file sets ``PLAYBACKSTATUS=FAILED``;
- Progress + Playback(,noanswer): the tone comes as early media, unanswered;
- PlayTones/StopPlayTones, MusicOnHold (the generated default class), SayDigits/SayNumber
  with the prompts ``scripts/make-sounds.sh`` makes, Read;
- an IVR menu (Background + WaitExten): it types ``5`` (RFC 4733, baresip's ``sndcode``) and
  the channel moves to ``5@ivr`` (``core show channels verbose``).

SIPp sends DTMF by SIP INFO and as inband G.711 tones to a menu, and by INFO to a caller
bridged to baresip, which must receive it as RFC 4733 events.

Loopback only, free ports, every wait bounded.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pypbx.media.audio import DtmfDetector, tone_frames, ulaw_encode
from tests.interop.parties import ROOT, Baresip, BaresipCtl, PbxProcess, write_tone
from tests.interop.sipp import free_port, run_sipp, sipp_command
from tests.interop.tone import analyse, read_mono

pytestmark = pytest.mark.interop
INTEROP_TOOLS = ("baresip",)

PHONE_IP = "127.0.0.41"
PHONE_TONE = 440.0
PROMPT_TONE = 1000.0
MENU_TONE = 600.0


def sip_conf(port: int, extra: str = "", phone: str = "") -> str:
    return f"""[general]
bindaddr=127.0.0.1
bindport={port}
minexpiry=10

[1000]
type=friend
host=dynamic
secret=mysecretpassword
context=internal
disallow=all
allow=ulaw,alaw
{phone}
{extra}"""


EXTENSIONS = """[internal]
exten => 600,1,Answer()
same => n,Echo()
exten => 601,1,Answer()
same => n,Playback(tone-1khz)
same => n,Set(STATUS=${PLAYBACKSTATUS})
same => n,Playback(no-such-prompt)
same => n,Verbose(1,playback status ${STATUS} then ${PLAYBACKSTATUS})
same => n,Wait(1)
same => n,Hangup()
exten => 602,1,Goto(ivr,s,1)
exten => 603,1,Progress()
same => n,Playback(tone-1khz,noanswer)
same => n,Hangup()
exten => 608,1,Playback(tone-1khz,noanswer)
same => n,Hangup()
exten => 604,1,Answer()
same => n,PlayTones(800)
same => n,Wait(3)
same => n,StopPlayTones()
same => n,Wait(1.5)
same => n,Hangup()
exten => 605,1,Answer()
same => n,MusicOnHold(,3)
same => n,Hangup()
exten => 606,1,Answer()
same => n,SayDigits(42)
same => n,SayNumber(123)
same => n,Verbose(1,said it)
same => n,Hangup()
exten => 607,1,Answer()
same => n,Read(PIN,beep,3,,,8)
same => n,Verbose(1,pin ${PIN} status ${READSTATUS})
same => n,Hangup()

[ivr]
exten => s,1,Answer()
same => n,Background(menu)
same => n,WaitExten(10)
exten => 5,1,Verbose(1,menu choice five)
same => n,Playback(tone-1khz)
same => n,Hangup()
exten => 7,1,Verbose(1,menu choice seven)
same => n,Hangup()
exten => t,1,Hangup()
exten => i,1,Hangup()
"""


@dataclass
class Bed:
    pbx: PbxProcess
    phone: Baresip
    port: int


def start_bed(tmp_path: Path, codec: str, *, sip: str = "", ext: str = "", phone: str = "") -> Bed:
    port = free_port("127.0.0.1")
    pbx = PbxProcess(tmp_path / "pbx", port)
    pbx.write(
        {
            "sip.conf": sip_conf(port, sip, phone),
            "extensions.conf": EXTENSIONS + ext,
            "rtp.conf": "[general]\nrtpstart=10000\nrtpend=20000\n",
        }
    )
    sounds = pbx.confdir / "sounds"  # the default sounddir of a private config dir
    sounds.mkdir(parents=True, exist_ok=True)
    write_tone(sounds / "tone-1khz.wav", PROMPT_TONE, 3.0)
    write_tone(sounds / "menu.wav", MENU_TONE, 8.0)
    baresip = Baresip(
        tmp_path / "phone",
        PHONE_IP,
        [
            f"<sip:1000@127.0.0.1:{port}>;auth_pass=mysecretpassword;regint=600;"
            f"answermode=auto;audio_codecs={codec}"
        ],
        tone_hz=PHONE_TONE,
        sip_port=free_port(PHONE_IP),
        ctrl_port=free_port(PHONE_IP),
        rtp_ports="34000-34999",
    )
    pbx.start()
    return Bed(pbx, baresip, port)


def running_bed(
    tmp_path: Path, codec: str, *, sip: str = "", ext: str = "", phone: str = ""
) -> Iterator[Bed]:
    b = start_bed(tmp_path, codec, sip=sip, ext=ext, phone=phone)
    try:
        b.phone.start()
        text = b.pbx.wait_for("sip show peers", lambda t: PHONE_IP in t, timeout=15)
        assert PHONE_IP in text, text
        yield b
    finally:
        b.phone.stop()
        b.pbx.stop()


@pytest.fixture(params=["PCMU", "PCMA"])
def bed(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Bed]:
    yield from running_bed(tmp_path, str(request.param))


@pytest.fixture
def bed_ulaw(tmp_path: Path) -> Iterator[Bed]:
    yield from running_bed(tmp_path, "PCMU")


def call(bed: Bed, exten: str, ctl: BaresipCtl) -> None:
    ctl.send("dial", f"sip:{exten}@127.0.0.1:{bed.port}")
    assert ctl.wait_event("CALL_ESTABLISHED", 20) is not None, bed.pbx.log_text()[-3000:]


def hang_up(ctl: BaresipCtl) -> None:
    ctl.send("hangup")
    assert ctl.wait_event("CALL_CLOSED", 10) is not None


def last_recording(phone: Baresip) -> Path:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        recs = phone.recordings("dec")
        if recs and recs[-1].stat().st_size > 44:
            return recs[-1]
        time.sleep(0.2)
    raise AssertionError(f"{phone.ip}: no recording")


def test_echo_returns_the_callers_tone(bed: Bed) -> None:
    ctl = bed.phone.ctl()
    try:
        call(bed, "600", ctl)
        time.sleep(4.0)
        hang_up(ctl)
    finally:
        ctl.close()
    time.sleep(0.5)
    tone = analyse(last_recording(bed.phone))
    assert abs(tone.dominant_hz - PHONE_TONE) <= 15, tone
    assert tone.peak_share >= 0.5, tone
    assert tone.active_s >= 2.5, tone


def test_playback_plays_the_sound_file(bed: Bed) -> None:
    ctl = bed.phone.ctl()
    try:
        call(bed, "601", ctl)
        assert ctl.wait_event("CALL_CLOSED", 15) is not None, "pypbx did not hang up"
    finally:
        ctl.close()
    time.sleep(0.5)
    tone = analyse(last_recording(bed.phone))
    assert abs(tone.dominant_hz - PROMPT_TONE) <= 15, tone
    assert tone.peak_share >= 0.5, tone
    assert 2.5 <= tone.active_s <= 3.6, tone  # the 3 s file, once
    log = bed.pbx.log_text()
    assert "playback status SUCCESS then FAILED" in log, log[-3000:]
    assert "no-such-prompt" in log


@pytest.mark.parametrize("exten", ["603", "608"], ids=["progress", "implicit-183"])
def test_playback_before_the_answer_is_early_media(bed_ulaw: Bed, exten: str) -> None:
    """``Progress()`` then ``Playback(,noanswer)``; or the Playback alone, which sends the 183
    itself as chan_sip does when audio goes out before the answer."""
    ctl = bed_ulaw.phone.ctl()
    try:
        ctl.send("dial", f"sip:{exten}@127.0.0.1:{bed_ulaw.port}")
        closed = ctl.wait_event("CALL_CLOSED", 15)
        assert closed is not None, "pypbx did not end the call"
    finally:
        ctl.close()
    time.sleep(0.5)
    tone = analyse(last_recording(bed_ulaw.phone))  # heard before any answer
    assert abs(tone.dominant_hz - PROMPT_TONE) <= 15, tone
    assert tone.active_s >= 2.5, tone
    cdr = bed_ulaw.pbx.wait_for("cdr show last 1", lambda t: "SIP/1000" in t, timeout=5)
    row = next(line for line in cdr.splitlines() if "SIP/1000" in line)
    assert "ANSWERED" not in row, cdr  # the tone came as early media; nobody answered


@pytest.mark.parametrize(
    ("exten", "hz", "active"),
    [
        ("604", (800.0,), (2.5, 3.6)),  # PlayTones until StopPlayTones, then silence
        # the generated default class: 0.2 s rest, 2 s of notes, then rest (of 3 s)
        ("605", (523.0, 659.0, 784.0, 1047.0), (1.6, 2.6)),
    ],
    ids=["playtones", "musiconhold"],
)
def test_tones_and_hold_music(
    bed_ulaw: Bed, exten: str, hz: tuple[float, ...], active: tuple[float, float]
) -> None:
    ctl = bed_ulaw.phone.ctl()
    try:
        call(bed_ulaw, exten, ctl)
        assert ctl.wait_event("CALL_CLOSED", 15) is not None, "pypbx did not hang up"
    finally:
        ctl.close()
    time.sleep(0.5)
    tone = analyse(last_recording(bed_ulaw.phone))
    assert min(abs(tone.dominant_hz - f) for f in hz) <= 15, tone
    assert active[0] <= tone.active_s <= active[1], tone


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="not installed: espeak-ng/sox (the prompt set)",
)
def test_say_digits_and_number_with_the_generated_prompts(bed_ulaw: Bed) -> None:
    sounds = bed_ulaw.pbx.confdir / "sounds"
    made = subprocess.run(
        ["sh", str(ROOT / "scripts" / "make-sounds.sh"), str(sounds)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    ctl = bed_ulaw.phone.ctl()
    try:
        call(bed_ulaw, "606", ctl)
        assert ctl.wait_event("CALL_CLOSED", 20) is not None, "pypbx did not hang up"
    finally:
        ctl.close()
    log = bed_ulaw.pbx.log_text()
    assert "said it" in log, log[-3000:]
    assert "does not exist" not in log, log[-3000:]  # four two / one hundred twenty three
    time.sleep(0.5)
    tone = analyse(last_recording(bed_ulaw.phone))
    assert tone.active_s >= 1.0, tone  # speech was heard


def test_read_collects_the_typed_digits(bed_ulaw: Bed) -> None:
    write_tone(bed_ulaw.pbx.confdir / "sounds" / "beep.wav", 1000.0, 0.25)
    ctl = bed_ulaw.phone.ctl()
    try:
        call(bed_ulaw, "607", ctl)
        time.sleep(1.0)
        for digit in "739":
            ctl.send("sndcode", digit)
            time.sleep(0.4)
        assert ctl.wait_event("CALL_CLOSED", 15) is not None, "pypbx did not hang up"
    finally:
        ctl.close()
    log = bed_ulaw.pbx.log_text()
    assert "pin 739 status OK" in log, log[-3000:]


def branch_row(text: str) -> list[str]:
    """The phone's channel row of ``core show channels verbose``: [channel, context, exten,
    prio, state, app, ...] (empty when the channel is not listed)."""
    return next((line.split() for line in text.splitlines() if line.startswith("SIP/1000")), [])


def test_dtmf_in_a_menu_lands_in_its_branch(bed: Bed) -> None:
    ctl = bed.phone.ctl()
    try:
        call(bed, "602", ctl)
        time.sleep(1.5)  # the menu prompt is playing
        before = branch_row(bed.pbx.rx("core show channels verbose"))
        ctl.send("sndcode", "5")
        text = bed.pbx.wait_for(
            "core show channels verbose",
            lambda t: branch_row(t)[1:3] == ["ivr", "5"] and branch_row(t)[5:6] == ["Playback"],
            timeout=5,
        )
        assert ctl.wait_event("CALL_CLOSED", 15) is not None, "the 5 branch did not hang up"
    finally:
        ctl.close()
    assert before[1:3] == ["ivr", "s"], before
    assert before[5] == "Background", before
    row = branch_row(text)
    assert row[1:3] == ["ivr", "5"], text  # the digit's extension, in the menu's context
    assert row[5] == "Playback", text
    log = bed.pbx.log_text()
    assert "menu choice five" in log, log[-3000:]
    assert "menu choice seven" not in log
    # the caller heard the menu, then (after the digit) the 1 kHz prompt of branch 5
    time.sleep(0.5)
    tone = analyse(last_recording(bed.phone))
    assert tone.active_s >= 3.5, tone


# ---------------------------------------------------------------- SIPp: INFO and inband DTMF

SIPP_IP = "127.0.0.43"

_SIPP_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="dtmf_{name}">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:[caller]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=ptime:20
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      Max-Forwards: 70
      From: <sip:[caller]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
"""

_SIPP_INFO = """
  <send retrans="500">
    <![CDATA[

      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      Max-Forwards: 70
      From: <sip:[caller]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Content-Type: {ctype}
      Content-Length: [len]

{body}
    ]]>
  </send>
  <recv response="{status}"/>
"""

_SIPP_TAIL = """
  <recv request="BYE" timeout="20000"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def info_scenario() -> str:
    """After the answer: an INFO pypbx does not understand (415), then ``Signal=5`` (200)."""
    middle = '  <pause milliseconds="1500"/>\n'
    middle += _SIPP_INFO.format(cseq=2, ctype="text/plain", body="hello", status=415)
    middle += _SIPP_INFO.format(
        cseq=3, ctype="application/dtmf-relay", body="Signal=5\nDuration=160", status=200
    )
    return _SIPP_HEAD.format(name="info") + middle + _SIPP_TAIL


def inband_scenario(wav: Path) -> str:
    """After the answer: G.711 audio carrying the DTMF tones of ``5`` (SIPp rtp_stream)."""
    middle = f"""
  <nop>
    <action>
      <exec rtp_stream="{wav},1,0"/>
    </action>
  </nop>
"""
    return _SIPP_HEAD.format(name="inband") + middle + _SIPP_TAIL


def write_ulaw_wav(path: Path, pcm: bytes) -> Path:
    """A µ-law WAV (format tag 7) of 16-bit linear ``pcm``, as SIPp's rtp_stream reads."""
    data = ulaw_encode(pcm)
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def tone_audio(freqs: tuple[float, ...], *, lead: float, tone: float, tail: float) -> bytes:
    silence = b"\0\0"
    frames = tone_frames(freqs, amplitude=7000)
    n = round(tone / 0.02)
    return (
        silence * round(8000 * lead)
        + b"".join(next(frames) for _ in range(n))
        + (silence * round(8000 * tail))
    )


DTMF_EXTENSIONS = """[dtmftest]
exten => 700,1,Answer()
same => n,Background(menu)
same => n,WaitExten(10)
exten => 5,1,Verbose(1,dtmf choice five from ${CALLERID(num)})
same => n,Hangup()
exten => t,1,Verbose(1,dtmf timeout)
same => n,Hangup()
exten => i,1,Verbose(1,dtmf invalid)
same => n,Hangup()
"""


def dtmf_sip_conf(port: int) -> str:
    return f"""[general]
bindaddr=127.0.0.1
bindport={port}

[3000]
type=friend
host=dynamic
context=dtmftest
dtmfmode=info
disallow=all
allow=ulaw

[3001]
type=friend
host=dynamic
context=dtmftest
dtmfmode=inband
disallow=all
allow=ulaw
"""


@pytest.mark.skipif(shutil.which("sipp") is None, reason="not installed: sipp")
@pytest.mark.parametrize("mode", ["info", "inband"])
def test_sipp_dtmf_by_info_and_inband_picks_the_branch(tmp_path: Path, mode: str) -> None:
    port = free_port("127.0.0.1")
    pbx = PbxProcess(tmp_path / "pbx", port)
    pbx.write({"sip.conf": dtmf_sip_conf(port), "extensions.conf": DTMF_EXTENSIONS})
    sounds = pbx.confdir / "sounds"
    sounds.mkdir(parents=True, exist_ok=True)
    write_tone(sounds / "menu.wav", MENU_TONE, 8.0)
    work = tmp_path / "sipp"
    work.mkdir()
    if mode == "info":
        scenario, caller = info_scenario(), "3000"
    else:
        audio = tone_audio((770.0, 1336.0), lead=1.5, tone=0.2, tail=0.5)
        scenario, caller = inband_scenario(write_ulaw_wav(work / "five.wav", audio)), "3001"
    path = work / f"dtmf_{mode}.xml"
    path.write_text(scenario)
    pbx.start()
    try:
        result = run_sipp(
            sipp_command(
                path,
                f"127.0.0.1:{port}",
                workdir=work,
                local_ip=SIPP_IP,
                local_port=free_port(SIPP_IP),
                timeout=25,
                keys={"caller": caller},
                extra=["-s", "700"],
            )
        )
    finally:
        pbx.stop()
    log = pbx.log_text()
    assert result.ok, result.explain() + log[-3000:]
    assert f"dtmf choice five from {caller}" in log, log[-3000:]
    assert "dtmf timeout" not in log


BRIDGE_SIP = """
[3000]
type=friend
host=dynamic
context=bridgetest
dtmfmode=info
disallow=all
allow=ulaw
"""
BRIDGE_EXT = """
[bridgetest]
exten => 800,1,Dial(SIP/1000,20)
"""
_SIPP_BYE = """
  <pause milliseconds="1000"/>
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      Max-Forwards: 70
      From: <sip:[caller]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 9 BYE
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


@pytest.fixture(params=["rfc2833", "inband"])
def bridge_bed(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Bed]:
    phone = f"dtmfmode={request.param}"
    yield from running_bed(tmp_path, "PCMU", sip=BRIDGE_SIP, ext=BRIDGE_EXT, phone=phone)


@pytest.mark.skipif(shutil.which("sipp") is None, reason="not installed: sipp")
def test_info_digit_reaches_the_bridged_phone_its_way(bridge_bed: Bed, tmp_path: Path) -> None:
    """A dtmfmode=info caller's INFO ``Signal=5`` reaches baresip, called by Dial, in the
    phone's own mode (issue 7 point 1: DTMF converted to the other leg's mode): RFC 4733
    events (baresip reports the key) or, for ``dtmfmode=inband``, the key's tones (found in
    its recording). The caller sends voice all along, so the digit rides inside the relayed
    stream: baresip's jitter buffer drops packets of a second SSRC."""
    work = tmp_path / "sipp"
    work.mkdir()
    voice = write_ulaw_wav(work / "tone.wav", tone_audio((440.0,), lead=0, tone=6, tail=0))
    middle = f'  <nop><action><exec rtp_stream="{voice},1,0"/></action></nop>\n'
    middle += '  <pause milliseconds="2000"/>\n'
    middle += _SIPP_INFO.format(
        cseq=2, ctype="application/dtmf-relay", body="Signal=5\nDuration=160", status=200
    )
    path = work / "bridge_info.xml"
    path.write_text(_SIPP_HEAD.format(name="bridge_info") + middle + _SIPP_BYE)
    ctl = bridge_bed.phone.ctl()
    try:
        result = run_sipp(
            sipp_command(
                path,
                f"127.0.0.1:{bridge_bed.port}",
                workdir=work,
                local_ip=SIPP_IP,
                local_port=free_port(SIPP_IP),
                timeout=25,
                keys={"caller": "3000"},
                extra=["-s", "800"],
            )
        )
        assert result.ok, result.explain() + bridge_bed.pbx.log_text()[-3000:]
        inband = "dtmfmode=inband" in (bridge_bed.pbx.confdir / "sip.conf").read_text()
        event = ctl.wait_event("CALL_DTMF_START", 1 if inband else 5)
    finally:
        ctl.close()
    if not inband:
        assert event is not None, "baresip heard no DTMF"
        assert event.get("param") == "5", event
        return
    assert event is None, event  # no telephone-event to an inband phone
    time.sleep(0.5)
    samples, rate = read_mono(last_recording(bridge_bed.phone))
    assert rate == 8000
    assert DtmfDetector().feed([int(v) for v in samples]) == ["5"]
