"""Paced sending (driven by a fake clock), DTMF trains, and Echo on loopback."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, cast

import pytest

from pypbx.media import dtmf, rtp
from pypbx.media.player import Packetizer, echo, play, send_digits, send_digits_in_stream
from pypbx.media.ports import PortAllocator
from pypbx.media.relay import RelayLeg

BASE = 23000 + (os.getpid() % 250) * 4


class FakeTime:
    """A clock that only moves when the player sleeps; ``late`` adds oversleep per call."""

    def __init__(self, late: list[float] | None = None) -> None:
        self.now = 50.0
        self.late = list(late or [])
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + (self.late.pop(0) if self.late else 0.0)


class FakeLeg:
    def __init__(self, clock: FakeTime) -> None:
        self.clock = clock
        self.sent: list[tuple[float, bytes]] = []

    def send(self, data: bytes) -> bool:
        self.sent.append((self.clock.now, data))
        return True


def test_packetizer_numbers_and_marker() -> None:
    p = Packetizer(0xABC, 8, sequence=65535, timestamp=2**32 - 160)
    first, second = rtp.parse_rtp(p.packet(b"a")), rtp.parse_rtp(p.packet(b"b"))
    assert (first.sequence, first.timestamp, first.marker) == (65535, 2**32 - 160, True)
    assert (second.sequence, second.timestamp, second.marker) == (0, 0, False)
    assert (first.ssrc, first.payload_type) == (0xABC, 8)
    p.talkspurt()
    assert rtp.parse_rtp(p.packet(b"c")).marker


def test_play_paces_every_20ms_without_drift() -> None:
    clock = FakeTime()
    leg = FakeLeg(clock)
    result = asyncio.run(play([b"x"] * 5, leg, Packetizer(1, 0), clock=clock, sleep=clock.sleep))
    assert result.sent == 5
    assert result.late == 0
    times = [round(t - 50.0, 6) for t, _ in leg.sent]
    assert times == [0.0, 0.02, 0.04, 0.06, 0.08]
    assert [rtp.sequence_of(d) for _, d in leg.sent] == [0, 1, 2, 3, 4]


def test_play_catches_up_after_a_late_wakeup() -> None:
    # The second sleep overshoots by 65 ms: the frames due meanwhile go at once, then the
    # schedule continues from the original start (no drift).
    clock = FakeTime(late=[0.0, 0.065])
    leg = FakeLeg(clock)
    frames = [b"x"] * 8
    result = asyncio.run(play(frames, leg, Packetizer(1, 0), clock=clock, sleep=clock.sleep))
    times = [round(t - 50.0, 3) for t, _ in leg.sent]
    assert times == [0.0, 0.02, 0.105, 0.105, 0.105, 0.105, 0.12, 0.14]
    assert result.late == 2  # frames due at 0.06 and 0.08 left more than 20 ms late
    timestamps = [rtp.timestamp_of(d) for _, d in leg.sent]
    assert timestamps == [160 * i for i in range(8)]


def test_send_digits_builds_trains() -> None:
    clock = FakeTime()
    leg = FakeLeg(clock)
    pk = Packetizer(5, 0, timestamp=1000)
    asyncio.run(send_digits("12", leg, pk, 101, clock=clock, sleep=clock.sleep))
    packets = [rtp.parse_rtp(d) for _, d in leg.sent]
    assert len(packets) == 10
    assert {p.payload_type for p in packets} == {101}
    assert [p.sequence for p in packets] == list(range(10))
    rx = dtmf.DtmfReceiver()
    began = [e for p in packets for e in rx.receive(p.payload, p.timestamp)]
    assert [e.digit for e in began if isinstance(e, dtmf.DtmfBegan)] == ["1", "2"]
    assert packets[0].timestamp == 1000
    assert packets[5].timestamp == 1000 + 1200  # 100 ms event + 50 ms gap at 8 kHz
    assert [p.marker for p in packets[:5]] == [True, False, False, False, False]


class Phone(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.queue.put_nowait(data)


def test_echo_sends_received_packets_back() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        alloc = PortAllocator(BASE, BASE + 3, "127.0.0.1")
        phone = Phone()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: phone, local_addr=("127.0.0.1", 0)
        )
        leg = RelayLeg(
            alloc.allocate(), remote=transport.get_extra_info("sockname"), on_close=alloc.release
        )
        await leg.open()
        stop = echo(leg)
        packet = rtp.RtpPacket(0, 1, 160, 7, b"\xff" * 160).to_bytes()
        transport.sendto(packet, ("127.0.0.1", leg.port))
        assert await asyncio.wait_for(phone.queue.get(), 2.0) == packet
        stop()
        assert leg.sink is None
        leg.close()
        transport.close()

    asyncio.run(main())


@pytest.mark.parametrize("frames", [0, 1])
def test_play_nothing_or_one(frames: int) -> None:
    clock = FakeTime()
    leg = FakeLeg(clock)
    result = asyncio.run(
        play([b"z"] * frames, leg, Packetizer(1, 0), clock=clock, sleep=clock.sleep)
    )
    assert result.sent == frames == len(leg.sent)
    assert clock.sleeps == []


@pytest.mark.parametrize(("samples", "step"), [(None, 160), (80, 80), (240, 240)])
def test_packetizer_advances_by_the_bounced_length(samples: int | None, step: int) -> None:
    p = Packetizer(5, 0, timestamp=1000)
    first = rtp.parse_rtp(p.packet(b"\xff" * (samples or 160), samples=samples))
    second = rtp.parse_rtp(p.packet(b"\xff" * 160))
    assert (first.timestamp, second.timestamp) == (1000, 1000 + step)
    assert second.sequence == first.sequence + 1


class StreamLeg:
    """A relay leg stand-in: ``peer``/``sink`` as RelayLeg has them, ``send`` recorded."""

    def __init__(self, clock: FakeTime) -> None:
        self.clock = clock
        self.peer: StreamLeg | None = None
        self.sink: Callable[[bytes], None] | None = None
        self.closed = False
        self.sent: list[rtp.RtpPacket] = []

    def send(self, data: bytes) -> bool:
        self.sent.append(rtp.parse_rtp(data))
        return True


def joined(clock: FakeTime) -> tuple[StreamLeg, StreamLeg]:
    source, target = StreamLeg(clock), StreamLeg(clock)
    source.peer, target.peer = target, source
    return source, target


def voice(seq: int) -> bytes:
    return rtp.RtpPacket(
        0, seq & 0xFFFF, 16000 + 160 * (seq - 100), 0xAAAA, b"\x55" * 160
    ).to_bytes()


def run_in_stream(
    source: StreamLeg, target: StreamLeg, clock: FakeTime, hooks: dict[int, Callable[[], None]]
) -> bool:
    """Run send_digits_in_stream("5"); ``hooks[k]`` runs after the k-th sleep."""
    count = 0

    async def sleeps(seconds: float) -> None:
        nonlocal count
        count += 1
        await clock.sleep(seconds)
        hook = hooks.get(count)
        if hook is not None:
            hook()

    return asyncio.run(
        send_digits_in_stream(
            "5", cast(Any, source), cast(Any, target), 101, Packetizer(0xBBBB, 101),
            clock=clock, sleep=sleeps,
        )
    )  # fmt: skip


def hears(source: StreamLeg, seq: int) -> Callable[[], None]:
    def hook() -> None:
        if source.sink is not None:  # held back: the tap sees it
            source.sink(voice(seq))

    return hook


def test_digits_go_inside_the_relayed_stream_and_voice_resumes_after() -> None:
    clock = FakeTime()
    source, target = joined(clock)
    # the first voice packet (seq 100) while learning; later ones still below the events'
    # numbering are held back; seq 110 passes the last event (109) and relaying resumes.
    feed = {1: 100, 5: 104, 20: 108, 30: 109, 40: 110, 50: 111}
    used = run_in_stream(source, target, clock, {k: hears(source, q) for k, q in feed.items()})
    assert used
    events = target.sent
    assert len(events) == 6 + 3  # 120 ms of updates every 20 ms, three end packets
    assert {(p.ssrc, p.payload_type) for p in events} == {(0xAAAA, 101)}
    assert [p.sequence for p in events] == list(range(101, 110))
    assert {p.timestamp for p in events} == {16160}  # the event starts after the last voice
    assert [p.marker for p in events] == [True] + [False] * 8
    assert source.peer is target  # rejoined
    assert source.sink is None
    assert len(clock.sleeps) == 40  # resumed as soon as seq 110 was heard
    rx = dtmf.DtmfReceiver()
    got = [e for p in events for e in rx.receive(p.payload, p.timestamp)]
    assert [e.digit for e in got if isinstance(e, dtmf.DtmfBegan)] == ["5"]


def test_no_voice_from_the_source_uses_our_own_stream() -> None:
    clock = FakeTime()
    source, target = joined(clock)
    assert not run_in_stream(source, target, clock, {})
    assert {p.ssrc for p in target.sent} == {0xBBBB}
    assert len(target.sent) == 9
    assert source.peer is target


def test_a_bridge_that_ends_meanwhile_is_not_rejoined() -> None:
    clock = FakeTime()
    source, target = joined(clock)

    def end_bridge() -> None:
        target.peer = None

    assert run_in_stream(source, target, clock, {1: hears(source, 100), 3: end_bridge})
    assert source.peer is None
    assert source.sink is None


def test_an_unjoined_source_is_left_alone() -> None:
    clock = FakeTime()
    source, target = joined(clock)
    source.peer = None
    assert not run_in_stream(source, target, clock, {1: hears(source, 100)})
    assert source.peer is None
    assert {p.ssrc for p in target.sent} == {0xBBBB}
