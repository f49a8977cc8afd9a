"""Paced RTP sending for Playback, tones and DTMF, and Echo (RFC 3550 §5.1 numbering; RFC 3551
§4.5 20 ms G.711 packets; RFC 4733 §2.5.1 event trains).

Pacing runs from a monotonic clock: frame *k* is due at ``start + k * ptime``, so a late wake-up
is caught up by sending the frames already due at once, and the error never accumulates. The
clock and the sleep are injected, so tests drive time by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from pypbx.media.dtmf import digit_packets
from pypbx.media.relay import RelayLeg
from pypbx.media.rtp import RtpError, RtpPacket, parse_rtp

__all__ = [
    "Packetizer",
    "PlayResult",
    "Sender",
    "echo",
    "play",
    "send_digits",
    "send_digits_in_stream",
    "send_in_stream",
]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Sender(Protocol):
    """Where packets go: a :class:`~pypbx.media.relay.RelayLeg` or a test double."""

    def send(self, data: bytes) -> bool: ...


class Packetizer:
    """One outgoing RTP stream's numbering: SSRC, sequence number and timestamp.

    Keep one per leg so that successive plays continue the same stream; the first packet
    after :meth:`talkspurt` carries the marker bit (RFC 3551 §4.1).
    """

    __slots__ = ("_marker", "payload_type", "samples", "sequence", "ssrc", "timestamp")

    def __init__(
        self, ssrc: int, payload_type: int, *, sequence: int = 0, timestamp: int = 0,
        samples: int = 160,
    ) -> None:  # fmt: skip
        self.ssrc, self.payload_type, self.samples = ssrc, payload_type, samples
        self.sequence, self.timestamp = sequence & 0xFFFF, timestamp & 0xFFFFFFFF
        self._marker = True

    def talkspurt(self) -> None:
        """Mark the next packet as the start of a talkspurt."""
        self._marker = True

    def packet(self, payload: bytes, *, samples: int | None = None) -> bytes:
        """The next audio packet; the timestamp advances by ``samples`` (default: the
        packetizer's frame size; Echo passes the length of what it bounces)."""
        data = RtpPacket(
            self.payload_type, self.sequence, self.timestamp, self.ssrc, payload, self._marker
        ).to_bytes()
        self._marker = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        step = self.samples if samples is None else samples
        self.timestamp = (self.timestamp + step) & 0xFFFFFFFF
        return data

    def event(self, payload: bytes, payload_type: int, timestamp: int, *, marker: bool) -> bytes:
        """A telephone-event packet: its own payload type and the event's start timestamp."""
        data = RtpPacket(payload_type, self.sequence, timestamp, self.ssrc, payload, marker)
        self.sequence = (self.sequence + 1) & 0xFFFF
        return data.to_bytes()


@dataclass(frozen=True, slots=True)
class PlayResult:
    """What a play did: frames sent, and how many were sent late (after catching up)."""

    sent: int
    late: int


async def play(
    frames: Iterable[bytes],
    leg: Sender,
    packetizer: Packetizer,
    *,
    ptime: float = 0.02,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> PlayResult:
    """Send each frame as one RTP packet every ``ptime`` seconds without drift.

    A frame counts as late when it left more than one ``ptime`` after it was due. Cancelling
    the task stops the play between two frames.
    """
    packetizer.talkspurt()
    start = clock()
    sent = late = 0
    for frame in frames:
        due = start + sent * ptime
        wait = due - clock()
        if wait > 0:
            await sleep(wait)
        elif -wait > ptime:
            late += 1
        leg.send(packetizer.packet(frame))
        sent += 1
    return PlayResult(sent, late)


async def send_digits(
    digits: str,
    leg: Sender,
    packetizer: Packetizer,
    payload_type: int,
    *,
    duration: float = 0.1,
    gap: float = 0.05,
    interval: float = 0.05,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Send RFC 4733 event trains for ``digits``, paced as the trains plan them (an update
    every ``interval``)."""
    for digit in digits:
        start = clock()
        train = digit_packets(
            digit, timestamp=packetizer.timestamp, duration=duration, interval=interval
        )
        for planned in train:
            wait = start + planned.offset - clock()
            if wait > 0:
                await sleep(wait)
            leg.send(
                packetizer.event(
                    planned.payload, payload_type, planned.timestamp, marker=planned.marker
                )
            )
        # The audio clock moves on by the event's length plus the gap before the next digit.
        packetizer.timestamp = (
            packetizer.timestamp + round((duration + gap) * packetizer.samples / 0.02)
        ) & 0xFFFFFFFF
        await sleep(gap)


def _after(a: int, b: int) -> bool:
    """Whether sequence number ``a`` comes after ``b`` (RFC 3550 §A.1 16-bit serial order)."""
    return 0 < (a - b) & 0xFFFF < 0x8000


async def send_in_stream(
    source: RelayLeg | None,
    target: RelayLeg,
    payload_type: int,
    fallback: Packetizer,
    send: Callable[[Packetizer], Awaitable[object]],
    *,
    learn: float = 0.2,
    settle: float = 0.5,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> bool:
    """Run ``send(packetizer)`` to put packets to ``target``'s far end *inside* the RTP stream
    that ``source`` relays to it (an RTP translator, RFC 3550 §7.1, should not start a second
    source that a receiver's jitter buffer takes as an SSRC change).

    The voice from ``source`` is held back meanwhile, as Asterisk mutes voice while it sends a
    digit: its next packet gives the stream's SSRC, sequence number and timestamp (advanced by
    that packet's length: one octet a sample, as G.711), the packetizer continues that
    numbering with ``payload_type``, and relaying resumes once the source's own numbering has
    passed ours (at most ``settle`` seconds later). When ``source`` does not relay to
    ``target``, or sends nothing within ``learn`` seconds, ``fallback`` (our own stream) is
    used. Returns whether the relayed stream was used.
    """
    if source is None or source.peer is not target:
        await send(fallback)
        return False
    heard: list[RtpPacket] = []

    def tap(data: bytes) -> None:
        try:
            heard[:] = [parse_rtp(data)]
        except RtpError:
            return

    saved_sink = source.sink
    source.peer, source.sink = None, tap
    try:
        deadline = clock() + learn
        while not heard and clock() < deadline:
            await sleep(0.005)
        if not heard:
            await send(fallback)
            return False
        last = heard[0]
        stream = Packetizer(
            last.ssrc,
            payload_type,
            sequence=last.sequence + 1,
            timestamp=last.timestamp + len(last.payload),
        )
        await send(stream)
        ours = (stream.sequence - 1) & 0xFFFF
        deadline = clock() + settle
        while not _after(heard[0].sequence, ours) and clock() < deadline:
            await sleep(0.005)
        return True
    finally:
        if source.sink is tap:
            source.sink = saved_sink
        # rejoin only if the bridge still stands (target still relays to source)
        if source.peer is None and target.peer is source and not source.closed:
            source.peer = target


async def send_digits_in_stream(
    digits: str,
    source: RelayLeg | None,
    target: RelayLeg,
    payload_type: int,
    fallback: Packetizer,
    *,
    duration: float = 0.12,
    interval: float = 0.02,
    learn: float = 0.2,
    settle: float = 0.5,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> bool:
    """RFC 4733 events for ``digits`` inside the stream ``source`` relays to ``target``
    (:func:`send_in_stream`), an update every ``interval``."""

    async def events(packetizer: Packetizer) -> None:
        await send_digits(
            digits, target, packetizer, payload_type, duration=duration, gap=0.0,
            interval=interval, clock=clock, sleep=sleep,
        )  # fmt: skip

    return await send_in_stream(
        source, target, payload_type, fallback, events,
        learn=learn, settle=settle, clock=clock, sleep=sleep,
    )  # fmt: skip


def echo(leg: RelayLeg) -> Callable[[], None]:
    """Send every packet the leg accepts back to where it came from; returns the stop function."""

    def bounce(data: bytes) -> None:
        leg.send(data)

    leg.sink = bounce

    def stop() -> None:
        if leg.sink is bounce:
            leg.sink = None

    return stop
