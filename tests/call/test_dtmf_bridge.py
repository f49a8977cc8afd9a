"""DTMF across two bridged legs in each leg's own mode (issue 7 point 1), driven without
sockets: SIP channels get their SDPs by hand, relay legs and sessions are fakes that record
what would go out, and a fake clock paces the tones and events that are sent.

Which conversion a bridge sets up is a table over (source mode, destination mode); each
conversion is then checked on the bytes: RFC 4733 events → SIP INFO ``Signal=`` / the key's
tones; inband tones → RFC 4733 events / INFO. Offers honour the peer's ``dtmfmode``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pypbx.call.bridge import (
    Bridge,
    EventTap,
    InbandTap,
    clear_dtmf_taps,
    dtmf_tap,
    set_dtmf_taps,
)
from pypbx.call.channel import ChannelNamer, ChannelState, ChannelTable
from pypbx.call.media_ops import EventSender
from pypbx.call.sip_channel import SipChannel
from pypbx.call.sip_env import CallEnv
from pypbx.config.conf import Origin
from pypbx.config.sipmodel import DtmfMode, Peer, PeerType
from pypbx.media.audio import DtmfDetector, Encoding, dtmf_tone, encode, samples_of, tone_frames
from pypbx.media.dtmf import DtmfBegan, DtmfReceiver, TelephoneEvent, digit_packets, event_of
from pypbx.media.rtp import RtpPacket, parse_rtp
from pypbx.sip.sdp import build_offer, codecs, parse_sdp

RFC2833, INFO, INBAND, AUTO = DtmfMode.RFC2833, DtmfMode.INFO, DtmfMode.INBAND, DtmfMode.AUTO


class FakeTime:
    """A clock that moves only when a sender sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class ZeroStats:
    """A leg's counters, every one of them 0 (whatever counters the relay keeps)."""

    def __getattr__(self, name: str) -> int:
        if name.startswith("__"):
            raise AttributeError(name)
        return 0


@dataclass
class FakeLeg:
    """A relay leg as the call layer uses it: what it sends, and its tap. ``receive`` takes a
    packet from its far end in the order :class:`~pypbx.media.relay.RelayLeg` does: the tap
    (which may consume it), then the joined peer (``forwarded`` there), else ``sink``."""

    clock: FakeTime
    port: int = 4000
    closed: bool = False
    peer: FakeLeg | None = None
    expected: object = None
    sent: list[RtpPacket] = field(default_factory=list)
    tap: Callable[[bytes], bool] | None = None
    tap_type: int | None = None
    route: object = None
    sink: Callable[[bytes], None] | None = None
    forwarded: list[bytes] = field(default_factory=list)

    def send(self, data: bytes) -> bool:
        self.sent.append(parse_rtp(data))
        return True

    def set_tap(self, tap: Callable[[bytes], bool], payload_type: int) -> None:
        self.tap, self.tap_type = tap, payload_type

    def set_route(self, route: object) -> None:
        self.route = route

    def set_remote(self, addr: object) -> None:
        self.expected = addr

    def clear_tap(self) -> None:
        self.tap, self.tap_type = None, None

    @property
    def tapped(self) -> int | None:
        return self.tap_type if self.tap is not None else None

    def receive(self, data: bytes) -> str:
        """Where one packet from the far end went: "tap", "peer", "sink" or "dropped"."""
        tap = self.tap
        if tap is not None and data[1] & 0x7F == self.tap_type and tap(data):
            return "tap"
        if self.peer is not None:
            self.peer.forwarded.append(data)
            return "peer"
        if self.sink is not None:
            self.sink(data)
            return "sink"
        return "dropped"

    def idle_for(self, _now: float) -> float:
        return 0.0

    def stats(self) -> ZeroStats:
        return ZeroStats()

    def close(self) -> None:
        if self.peer is not None and self.peer.peer is self:
            self.peer.peer = None
        self.closed, self.peer, self.sink = True, None, None
        self.clear_tap()


@dataclass
class FakeSession:
    """Records in-dialog requests, re-INVITE answers and the INVITE usage's own actions
    (``actions``: "183", "answer", "reject 486", "bye", "cancel")."""

    requests: list[tuple[str, bytes, str | None]] = field(default_factory=list)
    reanswers: list[tuple[int, bytes]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    def request(
        self, method: str, *, body: bytes = b"", content_type: str | None = None, now: float
    ) -> None:
        self.requests.append((method, body, content_type))

    def answer_reinvite(
        self, status: int, *, body: bytes = b"", content_type: str | None = None, now: float
    ) -> None:
        self.reanswers.append((status, body))

    def reinvite(self, **_kw: Any) -> None:
        raise AssertionError("no bridged leg to re-offer to")

    def ring(self, *, status: int = 180, **_kw: Any) -> None:
        self.actions.append(str(status))

    def answer(self, **_kw: Any) -> None:
        self.actions.append("answer")

    def reject(self, status: int = 486, **_kw: Any) -> None:
        self.actions.append(f"reject {status}")

    def bye(self, **_kw: Any) -> None:
        self.actions.append("bye")

    def hangup(self, **_kw: Any) -> None:
        self.actions.append("cancel")


def peer(mode: DtmfMode, allow: tuple[str, ...] = ("ulaw",)) -> Peer:
    return Peer(str(mode), PeerType.FRIEND, Origin("sip.conf", 1), allow=allow, dtmfmode=mode)


def env(clock: FakeTime) -> CallEnv:
    return CallEnv(
        ua=cast(Any, None),
        directory=cast(Any, None),
        ports=cast(Any, None),
        media_host="192.0.2.1",
        sip_host="192.0.2.1",
        namer=ChannelNamer(),
        channels=ChannelTable(),
        loop_time=clock,
        wall_time=lambda: 1_800_000_000.0,
        flush=lambda: None,
        register_session=lambda _s, _c: None,
        ssrc=lambda: 0x5151,
    )


@dataclass
class Leg:
    chan: SipChannel
    relay: FakeLeg
    session: FakeSession


def leg(
    mode: DtmfMode, *, events: bool = True, codec: str = "ulaw", clock: FakeTime | None = None
) -> Leg:
    """An answered incoming leg of a ``mode`` peer whose phone offered ``codec`` and, when
    ``events``, telephone-event 101."""
    clock = clock or FakeTime()
    chan = SipChannel(env(clock), f"SIP/{mode}-1", "1.1", peer=peer(mode, (codec,)), outgoing=False)
    relay, session = FakeLeg(clock), FakeSession()
    chan.leg, chan.session = cast(Any, relay), cast(Any, session)
    chan.remote_sdp = build_offer("192.0.2.9", 5000, (codec,), dtmf=events, session_id=1, version=1)
    chan.answer_sdp()
    chan.set_state(ChannelState.RING)
    chan.set_state(ChannelState.UP)
    chan.events = EventSender(0x77, clock=clock, sleep=clock.sleep)
    return Leg(chan, relay, session)


def rtp(pt: int, seq: int, ts: int, payload: bytes, *, marker: bool = False) -> bytes:
    return RtpPacket(pt, seq & 0xFFFF, ts, 0xCAFE, payload, marker).to_bytes()


def event_packets(digits: str, pt: int = 101, duration: float = 0.16) -> list[bytes]:
    """RFC 4733 trains as a phone sends them (updates, then the end packet three times)."""
    out: list[bytes] = []
    seq, ts = 1, 8000
    for digit in digits:
        for planned in digit_packets(digit, timestamp=ts, duration=duration):
            out.append(rtp(pt, seq, planned.timestamp, planned.payload, marker=planned.marker))
            seq += 1
        ts += 4000
    return out


def tone_packets(keys: str, encoding: Encoding = Encoding.ULAW, pt: int = 0) -> list[bytes]:
    """A phone's G.711 stream: speech-like 440 Hz, then the keys' tones, then silence."""
    frames = list(islice(tone_frames([440.0], amplitude=3000), 10))
    payloads = [encode(f, encoding) for f in frames]
    for key in keys:
        payloads += dtmf_tone(key, encoding)
    payloads += [encode(b"\0\0" * 160, encoding)] * 5
    return [rtp(pt, i + 1, (i + 1) * 160, p) for i, p in enumerate(payloads)]


def digits_in_events(packets: list[RtpPacket], pt: int) -> list[str]:
    rx = DtmfReceiver()
    got = [e for p in packets if p.payload_type == pt for e in rx.receive(p.payload, p.timestamp)]
    return [e.digit for e in got if isinstance(e, DtmfBegan)]


def run_taps(src: Leg, dst: Leg, packets: list[bytes]) -> list[bool]:
    """Bridge-time taps set, ``packets`` fed to ``src``'s tap, every digit sent out."""
    consumed: list[bool] = []

    async def go() -> None:
        set_dtmf_taps(src.chan, dst.chan)
        tap = src.relay.tap
        assert tap is not None
        for data in packets:
            consumed.append(tap(data))
        await dst.chan.events.drain()

    asyncio.run(go())
    return consumed


# --- which conversion the bridge sets up -------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        ((RFC2833, True), (RFC2833, True), None),  # plain call: events relayed, no tap
        ((AUTO, True), (RFC2833, True), None),
        ((RFC2833, True), (INFO, True), ("events", 101)),  # the INFO peer's answer drops them
        ((RFC2833, True), (INBAND, True), ("events", 101)),
        ((RFC2833, True), (AUTO, False), ("events", 101)),  # auto without events is inband
        ((RFC2833, True), (RFC2833, False), ("events", 101)),  # nothing to relay them to
        ((RFC2833, False), (INFO, False), None),  # the phone sends no events at all
        ((INBAND, False), (INBAND, False), None),  # tones ride in the audio
        ((INBAND, True), (AUTO, False), None),
        ((INBAND, False), (RFC2833, True), ("inband", 0)),
        ((INBAND, False), (INFO, False), ("inband", 0)),
        ((AUTO, False), (RFC2833, True), ("inband", 0)),
        ((INFO, True), (RFC2833, True), None),  # INFO is converted by the leg itself
        ((INFO, False), (INBAND, False), None),
    ],
)
def test_bridge_taps_only_where_the_modes_differ(
    src: tuple[DtmfMode, bool], dst: tuple[DtmfMode, bool], expected: tuple[str, int] | None
) -> None:
    a, b = leg(src[0], events=src[1]), leg(dst[0], events=dst[1])
    found = dtmf_tap(a.chan, b.chan)
    if expected is None:
        assert found is None
        return
    assert found is not None
    tap, pt = found
    kind = {EventTap: "events", InbandTap: "inband"}[type(tap)]
    assert (kind, pt) == expected


def test_inband_tap_watches_the_legs_own_codec() -> None:
    a, b = leg(INBAND, events=False, codec="alaw"), leg(RFC2833)
    found = dtmf_tap(a.chan, b.chan)
    assert found is not None
    tap, pt = found
    assert pt == 8
    assert isinstance(tap, InbandTap)
    assert tap.encoding is Encoding.ALAW


def test_taps_are_set_both_ways_and_cleared() -> None:
    a, b = leg(RFC2833), leg(INFO)
    set_dtmf_taps(a.chan, b.chan)
    assert isinstance(a.relay.tap, EventTap)
    assert a.relay.tap_type == 101
    assert b.relay.tap is None  # an INFO leg's digits come by INFO, not in its RTP
    clear_dtmf_taps(a.chan, b.chan)
    assert a.relay.tap is None


def test_plain_calls_get_no_tap() -> None:
    a, b = leg(RFC2833), leg(RFC2833)
    a.relay.tap = b.relay.tap = lambda _d: True  # left over from an earlier look
    set_dtmf_taps(a.chan, b.chan)
    assert a.relay.tap is None
    assert b.relay.tap is None


def test_a_reinvite_dropping_telephone_event_sets_the_tap() -> None:
    """The bridge looks at the SDPs again after a re-INVITE: once B's re-offer has no
    telephone-event, B (``auto``) is inband: A's events are taken out and sent to B as
    tones, and B's audio is watched for tones to send to A as events."""
    a, b = leg(RFC2833), leg(AUTO)
    bridge = Bridge(a.chan, b.chan)
    bridge.relay = cast(Any, SimpleNamespace(a=a.relay, b=b.relay))
    assert bridge.refresh_routes()
    assert (a.relay.tap, b.relay.tap) == (None, None)
    assert not bridge.refresh_routes()  # nothing changed
    reoffer = build_offer("192.0.2.9", 5002, ("ulaw",), dtmf=False, session_id=1, version=2)
    b.chan.reinvite_received(reoffer.to_bytes())
    assert bridge.refresh_routes()
    assert isinstance(a.relay.tap, EventTap)
    assert isinstance(b.relay.tap, InbandTap)
    assert b.relay.tap_type == 0


# --- RFC 4733 events → INFO or tones ------------------------------------------------------------


def test_events_become_one_info_per_digit_with_signal_and_duration() -> None:
    a, b = leg(RFC2833), leg(INFO)
    consumed = run_taps(a, b, event_packets("5#", duration=0.16))
    assert all(consumed)  # not relayed to the INFO leg
    assert b.session.requests == [
        ("INFO", b"Signal=5\r\nDuration=160\r\n", "application/dtmf-relay"),
        ("INFO", b"Signal=#\r\nDuration=160\r\n", "application/dtmf-relay"),
    ]
    assert b.relay.sent == []


def test_flash_and_broken_event_packets_send_nothing() -> None:
    a, b = leg(RFC2833), leg(INFO)
    flash = TelephoneEvent(event_of("!"), end=True, duration=800).to_bytes()
    consumed = run_taps(a, b, [rtp(101, 1, 8000, flash), rtp(101, 2, 9000, b"\x01")])
    assert consumed == [True, True]
    assert b.session.requests == []


def test_events_become_the_keys_tones_for_an_inband_leg() -> None:
    clock = FakeTime()
    a, b = leg(RFC2833, clock=clock), leg(INBAND, events=False, clock=clock)
    run_taps(a, b, event_packets("7"))
    assert b.session.requests == []
    assert {p.payload_type for p in b.relay.sent} == {0}
    heard = samples_of(b"".join(p.payload for p in b.relay.sent), Encoding.ULAW)
    assert DtmfDetector().feed(heard) == ["7"]
    assert len(b.relay.sent) >= 160 // 20  # the key held its 160 ms at least


def test_a_hung_up_leg_gets_no_digit() -> None:
    a, b = leg(RFC2833), leg(INFO)
    b.chan.set_state(ChannelState.HUNGUP)
    run_taps(a, b, event_packets("5"))
    assert b.session.requests == []


# --- inband tones → RFC 4733 events or INFO ------------------------------------------------------


def test_inband_tones_become_events_and_the_audio_flows_on() -> None:
    clock = FakeTime()
    a, b = leg(INBAND, events=False, clock=clock), leg(RFC2833, clock=clock)
    consumed = run_taps(a, b, tone_packets("59"))
    assert not any(consumed)  # every audio packet is still relayed
    assert digits_in_events(b.relay.sent, 101) == ["5", "9"]
    assert {p.payload_type for p in b.relay.sent} == {101}


@pytest.mark.parametrize(
    ("codec", "pt", "encoding"), [("ulaw", 0, Encoding.ULAW), ("alaw", 8, Encoding.ALAW)]
)
def test_inband_tones_become_info(codec: str, pt: int, encoding: Encoding) -> None:
    a, b = leg(INBAND, events=False, codec=codec), leg(INFO)
    run_taps(a, b, tone_packets("3", encoding, pt))
    assert [r[1].split(b"\r\n")[0] for r in b.session.requests] == [b"Signal=3"]


def test_speech_alone_sends_no_digit() -> None:
    a, b = leg(INBAND, events=False), leg(INFO)
    run_taps(a, b, tone_packets(""))
    assert b.session.requests == []


# --- offers and answers by dtmfmode -------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "offered"),
    [(RFC2833, True), (AUTO, True), (INFO, False), (DtmfMode.SHORTINFO, False), (INBAND, False)],
)
def test_offers_carry_telephone_event_only_for_rfc2833_and_auto(
    mode: DtmfMode, offered: bool
) -> None:
    chan = SipChannel(env(FakeTime()), "SIP/x-1", "1.1", peer=peer(mode), outgoing=True)
    chan.leg = cast(Any, FakeLeg(FakeTime()))
    sd = parse_sdp(chan.offer_sdp(("ulaw", "alaw")))
    names = [c.name.lower() for c in codecs(sd.media[0])]
    assert names[:2] == ["pcmu", "pcma"]
    assert ("telephone-event" in names) is offered


@pytest.mark.parametrize(("mode", "answered"), [(RFC2833, True), (INFO, False), (INBAND, False)])
def test_reinvite_answers_follow_dtmfmode(mode: DtmfMode, answered: bool) -> None:
    x = leg(mode)
    reoffer = build_offer("192.0.2.9", 5002, ("ulaw",), session_id=1, version=2)
    x.chan.reinvite_received(reoffer.to_bytes())
    ((status, body),) = x.session.reanswers
    assert status == 200
    assert (b"telephone-event" in body) is answered


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.sampled_from([101, 0]))
def test_event_tap_takes_any_packet(payload: bytes, pt: int) -> None:
    delivered: list[tuple[str, int]] = []
    tap = EventTap(lambda d, ms: delivered.append((d, ms)))
    assert tap(rtp(pt, 1, 160, payload)) is True
    assert tap(payload) is True
    assert all(d in "0123456789*#ABCD" and 40 <= ms <= 2000 for d, ms in delivered)
