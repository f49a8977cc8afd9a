"""DTMF between bridged legs in each leg's own mode, with real parties (issue 7 point 1).

- baresip (extension 1000, RFC 4733) dials a SIPp callee through pypbx. The callee peer's
  ``dtmfmode`` decides the offer pypbx sends it (telephone-event only for ``rfc2833``) and
  how baresip's ``5`` reaches it: a SIP INFO ``application/dtmf-relay`` ``Signal=5`` for
  ``info``; nothing in signalling for ``rfc2833`` (the events are relayed) and ``inband``
  (the key's tones go into its audio). SIPp fails the call on any unexpected INFO.
- A SIPp caller with ``dtmfmode=inband`` streams G.711 voice carrying the tones of ``5``;
  pypbx detects them while relaying the audio, and baresip, called by Dial, receives the
  digit as RFC 4733 events (its ``CALL_DTMF_START``).

Loopback only, free ports, every wait bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.sipp import SippProcess, free_port, run_sipp, sipp_command, start_sipp
from tests.interop.test_media_apps import (
    _SIPP_BYE,
    _SIPP_HEAD,
    SIPP_IP,
    Bed,
    running_bed,
    tone_audio,
    write_ulaw_wav,
)

pytestmark = pytest.mark.interop
INTEROP_TOOLS = ("baresip", "sipp")

CALLEE_IP = "127.0.0.44"

_CALLEE_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="dtmf_callee_{mode}">
  <recv request="INVITE"/>
  <send>
    <![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:3002@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:3002@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP {formats}
      a=rtpmap:0 PCMU/8000
{events}      a=sendrecv

    ]]>
  </send>
  <recv request="ACK"/>
"""
_CALLEE_EVENTS = "      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-16\n"
_OK_EMPTY = """  <send>
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
"""
"""SIPp's 200 OK without a body to the request it just received."""
_CALLEE_INFO = (
    """
  <recv request="INFO" timeout="20000">
    <action>
      <ereg regexp="Signal=([0-9*#A-D])" search_in="body" check_it="true" assign_to="all,sig"/>
      <log message="INFO digit [$sig] type [last_Content-Type:] ([$all])"/>
    </action>
  </recv>
"""
    + _OK_EMPTY
)
_CALLEE_TAIL = '\n  <recv request="BYE" timeout="30000"/>\n' + _OK_EMPTY + "</scenario>\n"


def callee_scenario(mode: str) -> str:
    """The SIPp callee: answers PCMU (with telephone-event when ``rfc2833``), then takes one
    INFO carrying a digit when ``info``, then the BYE. Anything else fails the call."""
    events = mode == "rfc2833"
    head = _CALLEE_HEAD.format(
        mode=mode,
        formats="0 101" if events else "0",
        events=_CALLEE_EVENTS if events else "",
    )
    return head + (_CALLEE_INFO if mode == "info" else "") + _CALLEE_TAIL


def callee_conf(port: int, mode: str) -> str:
    return f"""
[3002]
type=peer
host={CALLEE_IP}
port={port}
context=dtmfbridge
dtmfmode={mode}
disallow=all
allow=ulaw
"""


def sent_request(messages: str, method: str) -> str:
    """The first ``method`` request in a SIPp message trace (empty when none came)."""
    start = messages.find(f"{method} sip:")
    if start < 0:
        return ""
    block = messages[start:]
    end = block.find("\n---")
    return block[: end if end > 0 else None]


@dataclass
class CalleeBed:
    bed: Bed
    callee: SippProcess
    mode: str


@pytest.fixture(params=["info", "rfc2833", "inband"])
def callee_bed(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[CalleeBed]:
    """pypbx with baresip as 1000 (whose calls go to ``dtmfbridge``) and a SIPp callee
    ``3002`` of the parametrized ``dtmfmode`` waiting for the call."""
    mode = str(request.param)
    work = tmp_path / "sipp"
    work.mkdir()
    scenario = work / f"callee_{mode}.xml"
    scenario.write_text(callee_scenario(mode))
    sipp_port = free_port(CALLEE_IP)
    callee = start_sipp(
        sipp_command(
            scenario, None, workdir=work, local_ip=CALLEE_IP, local_port=sipp_port, timeout=40
        )
    )
    try:
        for bed in running_bed(
            tmp_path,
            "PCMU",
            sip=callee_conf(sipp_port, mode),
            ext="\n[dtmfbridge]\nexten => 810,1,Dial(SIP/3002,20)\n",
            phone="context=dtmfbridge",
        ):
            yield CalleeBed(bed, callee, mode)
    finally:
        callee.stop()


def test_rfc4733_digit_reaches_the_callee_its_way(callee_bed: CalleeBed) -> None:
    """baresip types ``5``; the offer to the callee and the digit's way follow its mode."""
    bed, mode = callee_bed.bed, callee_bed.mode
    ctl = bed.phone.ctl()
    try:
        ctl.send("dial", f"sip:810@127.0.0.1:{bed.port}")
        assert ctl.wait_event("CALL_ESTABLISHED", 20) is not None, bed.pbx.log_text()[-3000:]
        time.sleep(1.5)  # the bridge stands
        ctl.send("sndcode", "5")
        time.sleep(2.0)
        ctl.send("hangup")
        assert ctl.wait_event("CALL_CLOSED", 10) is not None
    finally:
        ctl.close()
    result = callee_bed.callee.wait()
    assert result.ok, result.explain() + bed.pbx.log_text()[-3000:]
    offer = sent_request(result.messages, "INVITE")
    assert "PCMU/8000" in offer, result.messages[-3000:]
    assert ("telephone-event" in offer) is (mode == "rfc2833"), offer
    info = sent_request(result.messages, "INFO")
    if mode != "info":
        assert info == ""  # (SIPp would also have failed the call on an unexpected INFO)
        return
    assert "INFO digit 5 " in result.logs, result.logs
    assert "Content-Type: application/dtmf-relay" in info, info
    assert "Signal=5\n" in info.replace("\r", "")
    assert "Duration=" in info


@pytest.fixture
def inband_caller_bed(tmp_path: Path) -> Iterator[Bed]:
    sip = """
[3001]
type=friend
host=dynamic
context=bridgetest
dtmfmode=inband
disallow=all
allow=ulaw
"""
    ext = "\n[bridgetest]\nexten => 800,1,Dial(SIP/1000,20)\n"
    yield from running_bed(tmp_path, "PCMU", sip=sip, ext=ext, phone="dtmfmode=rfc2833")


def test_inband_caller_digit_reaches_rfc4733_phone_as_events(
    inband_caller_bed: Bed, tmp_path: Path
) -> None:
    """SIPp's voice carries 250 ms of the ``5`` tones (770 + 1336 Hz) between 440 Hz
    stretches; baresip hears ``5`` as RFC 4733 events (``CALL_DTMF_START``), once."""
    bed = inband_caller_bed
    work = tmp_path / "sipp"
    work.mkdir()
    voice = tone_audio((440.0,), lead=0, tone=2.5, tail=0)
    voice += tone_audio((770.0, 1336.0), lead=0, tone=0.25, tail=0)
    voice += tone_audio((440.0,), lead=0, tone=2.5, tail=0)
    wav = write_ulaw_wav(work / "voice_5.wav", voice)
    middle = f'  <nop><action><exec rtp_stream="{wav},1,0"/></action></nop>\n'
    middle += '  <pause milliseconds="5500"/>\n'
    path = work / "inband_caller.xml"
    path.write_text(_SIPP_HEAD.format(name="inband_caller") + middle + _SIPP_BYE)
    ctl = bed.phone.ctl()
    try:
        result = run_sipp(
            sipp_command(
                path,
                f"127.0.0.1:{bed.port}",
                workdir=work,
                local_ip=SIPP_IP,
                local_port=free_port(SIPP_IP),
                timeout=25,
                keys={"caller": "3001"},
                extra=["-s", "800"],
            )
        )
        assert result.ok, result.explain() + bed.pbx.log_text()[-3000:]
        event = ctl.wait_event("CALL_DTMF_START", 5)
        again = ctl.wait_event("CALL_DTMF_START", 1)
    finally:
        ctl.close()
    assert event is not None, "baresip heard no DTMF\n" + bed.pbx.log_text()[-3000:]
    assert event.get("param") == "5", event
    assert again is None, again  # one key, one digit
