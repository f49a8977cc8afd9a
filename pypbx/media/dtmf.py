"""RFC 4733 telephone-events (formerly RFC 2833): the §2.3 payload, the §2.5.1 sender packet
train and a §2.5.2 receiver that turns event packets into digits.

One event is one RTP timestamp (§2.5.1): the sender keeps the timestamp of the event's start on
every packet, sets the marker bit on the first, sends updates with a growing duration and ends
with three copies of the final packet carrying the E bit. The receiver deduplicates by that
timestamp, so retransmitted end packets and late updates do not repeat a digit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pypbx.errors import PbxError

__all__ = [
    "DIGITS",
    "DtmfBegan",
    "DtmfEnded",
    "DtmfError",
    "DtmfReceiver",
    "PlannedPacket",
    "TelephoneEvent",
    "digit_of",
    "digit_packets",
    "event_of",
    "parse_event",
]

# §3.2: events 0-9, *, #, A-D, then 16 = flash.
DIGITS = "0123456789*#ABCD!"
_PAYLOAD = struct.Struct("!BBH")


class DtmfError(PbxError):
    """A malformed telephone-event payload or an unknown digit."""


def event_of(digit: str) -> int:
    """The §3.2 event code of a digit (``0-9 * # A-D``, ``!`` for flash; case-insensitive)."""
    index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise DtmfError(f"not a DTMF digit: {digit!r}")
    return index


def digit_of(event: int) -> str | None:
    """The digit of an event code, or None for events that are not DTMF (17-255)."""
    return DIGITS[event] if 0 <= event < len(DIGITS) else None


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-octet payload of §2.3: event, End bit, volume (-dBm0, 0-63), duration (samples)."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    def to_bytes(self) -> bytes:
        if not 0 <= self.event <= 255 or not 0 <= self.volume <= 63:
            raise DtmfError("event or volume out of range")
        return _PAYLOAD.pack(
            self.event, (0x80 if self.end else 0) | self.volume, min(self.duration, 0xFFFF)
        )


def parse_event(payload: bytes) -> TelephoneEvent:
    """§2.3 payload → :class:`TelephoneEvent` (octets after the first four ignored)."""
    if len(payload) < 4:
        raise DtmfError(f"telephone-event payload of {len(payload)} octets")
    event, flags, duration = _PAYLOAD.unpack_from(payload)
    return TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


@dataclass(frozen=True, slots=True)
class PlannedPacket:
    """One packet of a digit's train: send it ``offset`` seconds after the digit starts."""

    offset: float
    payload: bytes
    marker: bool
    timestamp: int


def digit_packets(
    digit: str,
    *,
    timestamp: int,
    duration: float = 0.1,
    volume: int = 10,
    interval: float = 0.05,
    clock_rate: int = 8000,
    end_repeats: int = 3,
) -> list[PlannedPacket]:
    """The RFC 4733 packet train for ``digit`` lasting ``duration`` seconds.

    Updates go out every ``interval`` from the start, each covering the tone up to the next
    update (the first carries the marker bit); then ``end_repeats`` identical end packets with
    the full duration. All share ``timestamp``, the event's start (§2.5.1). The caller puts
    them in RTP packets with consecutive sequence numbers.
    """
    event = event_of(digit)
    total = round(duration * clock_rate)
    step = max(1, round(interval * clock_rate))
    out: list[PlannedPacket] = []
    elapsed = 0
    while elapsed < total:
        covered = min(elapsed + step, total)
        payload = TelephoneEvent(event, False, volume, covered).to_bytes()
        out.append(PlannedPacket(elapsed / clock_rate, payload, not out, timestamp))
        elapsed += step
    end = TelephoneEvent(event, True, volume, total).to_bytes()
    out.extend(
        PlannedPacket(total / clock_rate, end, not out and i == 0, timestamp)
        for i in range(end_repeats)
    )
    return out


@dataclass(frozen=True, slots=True)
class DtmfBegan:
    """A digit started (first packet seen for a new event timestamp)."""

    digit: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class DtmfEnded:
    """A digit ended; ``duration`` in samples (0 when the end was inferred, not received)."""

    digit: str
    timestamp: int
    duration: int


DtmfEvent = DtmfBegan | DtmfEnded


class DtmfReceiver:
    """Event packets (payload + RTP timestamp) → :class:`DtmfBegan` / :class:`DtmfEnded`.

    A new timestamp starts a digit (ending any digit still open, whose end packets were lost);
    the first end packet ends it and later copies are ignored. Packets of an event already
    ended (retransmissions, reordering) are ignored, as are non-DTMF events.
    """

    __slots__ = ("_digit", "_ended", "_open")

    def __init__(self) -> None:
        self._open: int | None = None
        self._digit = ""
        self._ended: list[int] = []  # the last few finished event timestamps

    def receive(self, payload: bytes, timestamp: int) -> list[DtmfEvent]:
        """Feed one telephone-event payload; malformed payloads raise :class:`DtmfError`."""
        event = parse_event(payload)
        digit = digit_of(event.event)
        if digit is None or timestamp in self._ended:
            return []
        out: list[DtmfEvent] = []
        if timestamp != self._open:
            if self._open is not None:
                out.append(DtmfEnded(self._digit, self._open, 0))
                self._finish(self._open)
            self._open, self._digit = timestamp, digit
            out.append(DtmfBegan(digit, timestamp))
        if event.end:
            out.append(DtmfEnded(self._digit, timestamp, event.duration))
            self._finish(timestamp)
            self._open = None
        return out

    def _finish(self, timestamp: int) -> None:
        self._ended.append(timestamp)
        del self._ended[:-8]
