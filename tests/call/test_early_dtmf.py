"""DTMF during Dial's early media (a 183 with SDP), converted between the legs' modes as a
bridge converts it (issue 7 point 1), driven through the real :class:`Dialer` without sockets:
the callees are SIP channels whose INVITE goes into fakes, the test plays their far ends
(183, 486, 200) and the caller phone's RFC 4733 packets or SIP INFOs, and looks at the relay
legs' taps and at what each leg sent.

What is proven here: the caller's events reach the joined callee its own way (INFO
``Signal=``, tones, or relayed events), and an ``info`` caller's INFO digits too; the taps
follow the callee a later 183 joins; they are gone once that callee fails, times out or is
cancelled, so that the caller's digits reach its own media engine again (``Read()`` after a
failed Dial); an answer replaces them with the bridge's, for the early callee as for another
leg. The loopback section at the end runs the real SIP sessions: an INFO in the early dialog
of the 183 (as chan_sip sends it) and inband tones, end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from pypbx.call.bridge import EventTap, InbandTap
from pypbx.call.channel import ChannelState
from pypbx.call.dial import Dialer
from pypbx.call.media_ops import EventSender
from pypbx.call.sip_channel import SipChannel
from pypbx.call.sip_env import media_address
from pypbx.call.tech import TechRegistry
from pypbx.config.sipmodel import DtmfMode
from pypbx.dialplan.channel_api import DialResult, DialStatus, DialTarget
from pypbx.media.audio import DtmfDetector, Encoding, samples_of
from pypbx.media.rtp import parse_rtp
from pypbx.sip.events import InDialogRequestReceived, SessionOffered
from pypbx.sip.sdp import build_answer, build_offer, parse_sdp
from pypbx.sip.session import Session
from tests.call.loopback import Bed, run_bed
from tests.call.test_dtmf_bridge import (
    FakeLeg,
    FakeSession,
    FakeTime,
    digits_in_events,
    env,
    event_packets,
    peer,
    tone_packets,
)
from tests.call.test_loopback_calls import call, flush

RFC2833, INFO, INBAND = DtmfMode.RFC2833, DtmfMode.INFO, DtmfMode.INBAND


class ScriptedLeg(SipChannel):
    """An outgoing leg whose INVITE goes into fakes: its relay leg and session record."""

    async def start_call(self, allowed: tuple[str, ...]) -> None:
        self.leg = cast(Any, FakeLeg(cast(FakeTime, self.env.loop_time), port=6000))
        self.session = cast(Any, FakeSession())
        self.offer_sdp(allowed)
        self.set_state(ChannelState.DIALING)

    @property
    def relay(self) -> FakeLeg:
        return cast(FakeLeg, self.leg)

    @property
    def fake_session(self) -> FakeSession:
        return cast(FakeSession, self.session)

    def far_sdp(self) -> bytes:
        """The far end's answer to our offer: its peer's dtmfmode decides telephone-event."""
        assert self.local_sdp is not None
        events = self.dtmfmode is RFC2833
        ans = build_answer(
            self.local_sdp, "192.0.2.20", 7000, ("ulaw",), dtmf=events, session_id=5, version=1
        )
        return ans.to_bytes()

    def send_183(self) -> None:
        self.progressed(183, self.far_sdp())

    def send_200(self) -> None:
        self.answered_remote(self.far_sdp())


@dataclass
class FakeTech:
    """``SIP/<name>`` → the scripted leg of that name."""

    legs: dict[str, ScriptedLeg]
    name: str = "SIP"
    description: str = "scripted legs"

    def request(
        self, resource: str, caller: object, *, inherit: dict[str, str] | None = None
    ) -> ScriptedLeg | None:
        return self.legs.get(resource)


@dataclass
class Scene:
    clock: FakeTime
    caller: SipChannel
    legs: dict[str, ScriptedLeg]
    dial: asyncio.Task[DialResult]

    @property
    def caller_relay(self) -> FakeLeg:
        return cast(FakeLeg, self.caller.leg)

    @property
    def caller_session(self) -> FakeSession:
        return cast(FakeSession, self.caller.session)

    def press(self, digits: str) -> list[str]:
        """The caller's phone sends ``digits`` as RFC 4733 events: where each packet went."""
        return [self.caller_relay.receive(p) for p in event_packets(digits)]

    def infos(self, name: str) -> list[bytes]:
        """The ``Signal=`` lines of the INFOs sent to callee ``name``."""
        reqs = self.legs[name].fake_session.requests
        return [body.split(b"\r\n")[0] for method, body, _ in reqs if method == "INFO"]


def caller_leg(clock: FakeTime, mode: DtmfMode = RFC2833) -> SipChannel:
    """A ringing incoming call from a phone of ``mode`` that offered PCMU (and
    telephone-event when it speaks RFC 4733)."""
    chan = SipChannel(env(clock), "SIP/1000-1", "1.1", peer=peer(mode), outgoing=False)
    chan.leg = cast(Any, FakeLeg(clock))
    chan.session = cast(Any, FakeSession())
    events = mode is RFC2833
    chan.remote_sdp = build_offer(
        "192.0.2.9", 5000, ("ulaw",), dtmf=events, session_id=1, version=1
    )
    chan.set_state(ChannelState.RING)
    return chan


def callee(clock: FakeTime, name: str, mode: DtmfMode) -> ScriptedLeg:
    chan = ScriptedLeg(env(clock), f"SIP/{name}-1", f"2.{name}", peer=peer(mode), outgoing=True)
    chan.events = EventSender(0x99, clock=clock, sleep=clock.sleep)
    return chan


async def settle() -> None:
    """Let the dialer and the bridge take in what the test did (no time passes)."""
    for _ in range(30):
        await asyncio.sleep(0)


def run(
    modes: dict[str, DtmfMode],
    script: Callable[[Scene], Awaitable[None]],
    *,
    timeout: float = 30.0,
    caller_mode: DtmfMode = RFC2833,
) -> DialResult:
    """Dial every leg of ``modes`` at once from a ringing caller (RFC 4733 unless
    ``caller_mode``), play ``script`` (which must make Dial end), and return Dial's result."""

    async def main() -> DialResult:
        clock = FakeTime()
        caller = caller_leg(clock, caller_mode)
        legs = {name: callee(clock, name, mode) for name, mode in modes.items()}
        techs = TechRegistry()
        techs.register(FakeTech(legs))
        dialer = Dialer(techs, clock)
        targets = [DialTarget("SIP", name) for name in modes]
        task = asyncio.ensure_future(dialer(caller, targets, timeout, {}, None))
        await settle()
        await script(Scene(clock, caller, legs, task))
        return await asyncio.wait_for(task, 5.0)

    return asyncio.run(main())


# --- the caller's digits reach the early callee its way -----------------------------------------


def test_events_become_info_for_an_early_info_callee() -> None:
    async def script(s: Scene) -> None:
        b = s.legs["b"]
        b.send_183()
        await settle()
        assert s.caller_session.actions == ["183"]  # the caller hears the early media
        assert s.caller_relay.peer is b.relay
        assert s.press("5#") == ["tap"] * len(event_packets("5#"))  # none relayed to B
        assert b.fake_session.requests == [
            ("INFO", b"Signal=5\r\nDuration=160\r\n", "application/dtmf-relay"),
            ("INFO", b"Signal=#\r\nDuration=160\r\n", "application/dtmf-relay"),
        ]
        assert b.relay.forwarded == []
        s.caller.remote_ended(16)  # the caller gives up: CANCEL

    result = run({"b": INFO}, script)
    assert result.status is DialStatus.CANCEL


def test_events_become_tones_for_an_early_inband_callee() -> None:
    async def script(s: Scene) -> None:
        b = s.legs["b"]
        b.send_183()
        await settle()
        assert isinstance(s.caller_relay.tap, EventTap)
        assert s.caller_relay.tapped == 101
        assert isinstance(b.relay.tap, InbandTap)  # the IVR's tones would come back as events
        s.press("7")
        await b.events.drain()
        assert b.fake_session.requests == []
        heard = samples_of(b"".join(p.payload for p in b.relay.sent), Encoding.ULAW)
        assert DtmfDetector().feed(heard) == ["7"]
        s.caller.remote_ended(16)

    assert run({"b": INBAND}, script).status is DialStatus.CANCEL


def test_events_are_relayed_untouched_to_an_early_rfc4733_callee() -> None:
    async def script(s: Scene) -> None:
        b = s.legs["b"]
        b.send_183()
        await settle()
        assert s.caller_relay.tap is None
        assert b.relay.tap is None
        packets = event_packets("3")
        assert s.press("3") == ["peer"] * len(packets)
        assert b.relay.forwarded == packets
        s.caller.remote_ended(16)

    assert run({"b": RFC2833}, script).status is DialStatus.CANCEL


def test_the_callee_ivrs_tones_reach_the_caller_as_events() -> None:
    """The other direction (rare, but the taps are set both ways): tones in an inband
    callee's early media become RFC 4733 events toward the caller."""

    async def script(s: Scene) -> None:
        b = s.legs["b"]
        s.caller.events = EventSender(0x55, clock=s.clock, sleep=s.clock.sleep)
        b.send_183()
        await settle()
        for data in tone_packets("9"):
            b.relay.receive(data)
        await s.caller.events.drain()
        assert digits_in_events(s.caller_relay.sent, 101) == ["9"]
        s.caller.remote_ended(16)

    run({"b": INBAND}, script)


def test_info_digits_from_the_caller_reach_the_early_callee_then_read() -> None:
    """An ``info`` phone's SIP INFO during early media goes to the joined callee (as RFC 4733
    events for an ``rfc2833`` one); once that callee is busy, the next INFO is the caller's
    own again and ``Read()`` gets it."""
    read: list[str] = []

    async def script(s: Scene) -> None:
        b = s.legs["b"]
        b.send_183()
        await settle()
        assert s.caller.bridged is b
        assert s.caller_relay.tap is None  # INFO needs no tap: the leg converts it
        status = s.caller.info_received("application/dtmf-relay", b"Signal=5\r\nDuration=200\r\n")
        assert status == 200
        await b.events.drain()
        assert digits_in_events(b.relay.sent, 101) == ["5"]
        b.rejected(486)
        assert (await asyncio.wait_for(s.dial, 5.0)).status is DialStatus.BUSY
        assert s.caller.bridged is None
        s.caller.info_received("application/dtmf-relay", b"Signal=7\r\n")
        read.append(await s.caller.read_digits(1, 0.5))
        s.caller.remote_ended(16)

    run({"b": RFC2833}, script, caller_mode=INFO)
    assert read == ["7"]


# --- parallel ringing: the taps follow the callee joined ----------------------------------------


def test_a_second_183_takes_the_caller_and_its_taps_over() -> None:
    async def script(s: Scene) -> None:
        b, c = s.legs["b"], s.legs["c"]
        b.send_183()
        await settle()
        s.press("0")
        assert s.infos("b") == [b"Signal=0"]
        c.send_183()
        await settle()
        assert s.caller_relay.peer is c.relay
        assert b.relay.peer is None  # B's early media no longer reaches the caller
        s.press("4")
        await c.events.drain()
        assert s.infos("b") == [b"Signal=0"]  # no INFO to B any more
        heard = samples_of(b"".join(p.payload for p in c.relay.sent), Encoding.ULAW)
        assert DtmfDetector().feed(heard) == ["4"]
        c.rejected(486)  # the joined callee fails while B still rings
        await settle()
        assert not s.dial.done()
        assert s.caller_relay.tap is None
        assert s.caller_relay.peer is None
        assert set(s.press("1")) == {"dropped"}  # no engine yet: nothing joined, no tap
        assert s.infos("b") == [b"Signal=0"]
        s.caller.remote_ended(16)

    assert run({"b": INFO, "c": INBAND}, script).status is DialStatus.CANCEL


def test_a_failing_leg_that_is_not_joined_leaves_the_taps_alone() -> None:
    async def script(s: Scene) -> None:
        b, c = s.legs["b"], s.legs["c"]
        b.send_183()
        await settle()
        c.rejected(486)
        await settle()
        assert s.caller_relay.peer is b.relay
        s.press("2")
        assert s.infos("b") == [b"Signal=2"]
        s.caller.remote_ended(16)

    run({"b": INFO, "c": INFO}, script)


# --- no tap outlives the early-media join -------------------------------------------------------


async def busy(s: Scene) -> None:
    s.legs["b"].rejected(486)


async def no_answer(s: Scene) -> None:
    s.clock.now += 31.0  # past Dial's timeout; a 180 wakes the dialer up
    s.legs["b"].progressed(180, b"")


async def caller_gone(s: Scene) -> None:
    s.caller.remote_ended(16)


@pytest.mark.parametrize(
    ("end", "status", "b_action"),
    [
        (busy, DialStatus.BUSY, []),
        (no_answer, DialStatus.NOANSWER, ["cancel"]),
        (caller_gone, DialStatus.CANCEL, ["cancel"]),
    ],
)
def test_a_failed_dial_leaves_no_tap_and_read_hears_the_digits(
    end: Callable[[Scene], Awaitable[None]], status: DialStatus, b_action: list[str]
) -> None:
    """A stale EventTap on the caller's leg would swallow its RFC 4733 events after Dial:
    a ``Read()`` in the plan would never see them."""
    read: list[str] = []

    async def script(s: Scene) -> None:
        b = s.legs["b"]
        b.send_183()
        await settle()
        assert s.caller_relay.tap is not None
        await end(s)
        result = await asyncio.wait_for(s.dial, 5.0)
        assert b.hung_up
        assert b.fake_session.actions == b_action
        assert s.caller_relay.tap is None
        assert b.relay.tap is None
        assert s.caller_relay.peer is None
        if result.status is DialStatus.CANCEL:
            return  # the caller is gone: nothing left to read
        assert await s.caller.media_engine() is not None
        assert set(s.press("12")) == {"sink"}
        read.append(await s.caller.read_digits(2, 0.5))
        assert b.fake_session.requests == []
        s.caller.remote_ended(16)

    assert run({"b": INFO}, script).status is status
    assert read == ([] if status is DialStatus.CANCEL else ["12"])


# --- an answer replaces the early taps with the bridge's ----------------------------------------


def test_the_early_callee_answers_and_keeps_getting_info() -> None:
    async def script(s: Scene) -> None:
        b = s.legs["b"]
        b.send_183()
        await settle()
        b.send_200()
        await settle()
        assert s.caller.answered
        assert s.caller.bridged is b
        assert s.caller_session.actions == ["183", "answer"]
        s.press("8")
        assert s.infos("b") == [b"Signal=8"]
        b.remote_ended(16)  # B hangs up: the bridge and Dial end

    result = run({"b": INFO}, script)
    assert result.status is DialStatus.ANSWER
    assert result.peer == "SIP/b-1"


@pytest.mark.parametrize(("a_mode", "caller_tap"), [(RFC2833, False), (INBAND, True)])
def test_another_leg_answers_after_early_media_from_b(a_mode: DtmfMode, caller_tap: bool) -> None:
    """Early media from B (INFO), then A answers: B is cancelled and its tap goes; the
    caller's digits reach A its own way (relayed events, or tones) and never B."""
    seen: dict[str, object] = {}

    async def script(s: Scene) -> None:
        a, b = s.legs["a"], s.legs["b"]
        b.send_183()
        await settle()
        s.press("1")
        assert s.infos("b") == [b"Signal=1"]
        a.send_200()
        await settle()
        assert b.fake_session.actions == ["cancel"]
        assert s.caller.bridged is a
        assert s.caller_relay.peer is a.relay
        assert (s.caller_relay.tap is not None) is caller_tap
        where = s.press("6")
        await a.events.drain()
        seen["where"] = set(where)
        seen["a_forwarded"] = digits_in_events([parse_rtp(p) for p in a.relay.forwarded], 101)
        heard = samples_of(b"".join(p.payload for p in a.relay.sent), Encoding.ULAW)
        seen["a_tones"] = DtmfDetector().feed(heard)
        seen["b_info"] = s.infos("b")
        s.caller.remote_ended(16)  # the caller hangs up: the bridge and Dial end

    result = run({"a": a_mode, "b": INFO}, script)
    assert result.status is DialStatus.ANSWER
    assert result.peer == "SIP/a-1"
    assert seen["b_info"] == [b"Signal=1"]  # the one digit pressed before A answered
    if caller_tap:
        assert seen["where"] == {"tap"}
        assert seen["a_tones"] == ["6"]
    else:
        assert seen["where"] == {"peer"}
        assert seen["a_forwarded"] == ["6"]


# --- glue: the same through pypbx on loopback (scripted phones, tests/call/loopback.py) ----------


async def _press_during_early_media(bed: Bed, digits: str) -> tuple[Session, SessionOffered]:
    """1000 calls the trunk (which answers 183 with SDP) and, once it hears the early media,
    sends ``digits`` as RFC 4733 events to the PBX address of the 183's SDP."""
    session = call(bed, "18005551234")
    early = await bed.caller.early_media()
    pbx_side = media_address(parse_sdp(early.response.body))
    assert pbx_side is not None
    offered = await bed.trunk.wait_for(SessionOffered)
    assert isinstance(offered, SessionOffered)
    assert b"telephone-event" not in offered.request.body  # the trunk takes no RFC 4733
    transport = bed.caller.rtp.transport
    assert transport is not None
    for data in event_packets(digits):
        transport.sendto(data, pbx_side)
    return session, offered


def _hang_up(bed: Bed, session: Session) -> None:
    session.cancel(now=bed.caller.now())
    flush(bed.caller)


def test_loopback_early_media_digit_reaches_an_info_trunk_as_info(tmp_path: Path) -> None:
    got: list[bytes] = []

    async def body(bed: Bed) -> None:
        session, _ = await _press_during_early_media(bed, "5")
        try:
            ev = await bed.trunk.wait_for(
                InDialogRequestReceived,
                timeout=2.0,
                where=lambda e: (
                    isinstance(e, InDialogRequestReceived) and e.request.method == "INFO"
                ),
            )
            assert isinstance(ev, InDialogRequestReceived)
            got.append(ev.request.body)
        finally:
            _hang_up(bed, session)

    run_bed(tmp_path, body, trunk_answer="183", trunk_extra="dtmfmode=info")
    assert len(got) == 1
    assert got[0].startswith(b"Signal=5\r\n")


def test_loopback_early_media_digit_reaches_an_inband_trunk_as_tones(tmp_path: Path) -> None:
    heard: list[str] = []

    async def body(bed: Bed) -> None:
        session, _ = await _press_during_early_media(bed, "5")
        try:
            for _ in range(100):  # 0.2 s to look for the caller's stream, then 160 ms of tone
                await asyncio.sleep(0.02)
                audio = [parse_rtp(d) for d, _ in bed.trunk.rtp.received]
                pcm = samples_of(b"".join(p.payload for p in audio), Encoding.ULAW)
                heard[:] = DtmfDetector().feed([*pcm, *[0] * 800])
                if heard:
                    break
        finally:
            _hang_up(bed, session)

    run_bed(tmp_path, body, trunk_answer="183", trunk_extra="dtmfmode=inband")
    assert heard == ["5"]
