"""Paced sending (driven by a fake clock), DTMF trains, and Echo on loopback."""

from __future__ import annotations

import asyncio
import os

import pytest

from pypbx.media import dtmf, rtp
from pypbx.media.player import Packetizer, echo, play, send_digits
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
