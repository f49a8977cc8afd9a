"""The B2BUA bridge: two answered legs joined, RTP relayed between their relay legs with
per-direction payload-type routes (RFC 3550 §7: pypbx acts as an RTP translator; RFC 4733
events renumbered, G.711 laws transcoded), routes recomputed after a re-INVITE changed an SDP
(hold re-INVITEs are passed across by the legs, RFC 3264 §8.4), Dial's ``L`` time limit, and
the first hangup ending both (Asterisk ``ast_bridge_call`` with a two-party bridge).

DTMF crosses in the receiving leg's mode (chan_sip ``dtmfmode``): between two legs that
negotiated RFC 4733 telephone-event the events are relayed (renumbered); from an RFC 4733 leg
to an ``info`` or ``inband`` one they are taken out of the stream by a relay tap and sent as
SIP INFO ``application/dtmf-relay`` (RFC 2976) or as the key's tones; from an ``inband`` leg
the audio is watched for tones while it flows on, and the digits sent as RFC 4733 events
(RFC 4733 §2.5) or INFO. INFO from a leg is converted by the leg itself
(:meth:`SipChannel.info_received`). No tap is set when both legs speak the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pypbx.call.media_ops import DIGIT_MS, choose_format
from pypbx.call.sip_channel import SipChannel
from pypbx.dialplan.apps.dial import DurationLimit
from pypbx.dialplan.channel_api import HangupCause
from pypbx.media.audio import DtmfDetector, Encoding, samples_of
from pypbx.media.codecs import LegFormats, Route, leg_formats, route_between
from pypbx.media.dtmf import DtmfEnded, DtmfError, DtmfReceiver
from pypbx.media.relay import Relay, Tap
from pypbx.media.rtp import RtpError, parse_rtp
from pypbx.sip.sdp import is_hold

__all__ = [
    "Bridge",
    "BridgeEnd",
    "DigitSink",
    "EventTap",
    "InbandTap",
    "clear_dtmf_taps",
    "digit_ms",
    "dtmf_tap",
    "formats",
    "join_media",
    "routes",
    "rtp_timeout",
    "set_dtmf_taps",
]

log = logging.getLogger("pypbx.call")

DigitSink = Callable[[str, int], None]
"""Takes a digit heard on a bridged leg and its duration in milliseconds."""
_MIN_MS, _MAX_MS = 40, 2000


def rtp_timeout(chan: SipChannel) -> int:
    """Seconds of RTP silence after which ``chan`` is dead: the peer's ``rtpholdtimeout``
    while its last SDP put the call on hold, else its ``rtptimeout`` (0 = never)."""
    peer = chan.peer
    if peer is None:
        return 0
    held = chan.remote_sdp is not None and is_hold(chan.remote_sdp)
    return peer.rtpholdtimeout if held else peer.rtptimeout


@dataclass(frozen=True, slots=True)
class BridgeEnd:
    """How a bridge ended: ``callee_hung_up`` is True when the called leg ended first;
    ``limit_reached`` when Dial's ``L`` time limit ended it: the callee is hung up and the
    caller left in the dial plan, which goes on only with Dial's ``g`` (app_dial's bridge
    time limit ends the caller's side of the bridge and dissolves it)."""

    callee_hung_up: bool
    cause: int
    limit_reached: bool = False


def formats(chan: SipChannel) -> LegFormats:
    """The leg's agreed payload types on each side, telephone-event included (its
    ``codecs`` attribute leaves telephone-event out); ``codecs`` before both SDPs exist."""
    if chan.local_sdp is None or chan.remote_sdp is None:
        return LegFormats(chan.codecs, chan.codecs)
    found = leg_formats(chan.local_sdp, chan.remote_sdp)
    return LegFormats(found.receive or chan.codecs, found.send or chan.codecs)


def routes(a: SipChannel, b: SipChannel) -> tuple[Route, Route]:
    """(a → b, b → a): payload types mapped by codec name (RFC 4733 events included) and
    G.711 laws transcoded, from each leg's last SDPs."""
    fa, fb = formats(a), formats(b)
    return route_between(fa.receive, fb.send), route_between(fb.receive, fa.send)


def join_media(a: SipChannel, b: SipChannel) -> Relay | None:
    """Relay RTP between the legs (None until both have a relay leg)."""
    if a.leg is None or b.leg is None or a.leg.closed or b.leg.closed:
        return None
    a_to_b, b_to_a = routes(a, b)
    return Relay(a.leg, b.leg, a_to_b=a_to_b, b_to_a=b_to_a)


def digit_ms(samples: int, rate: int = 8000) -> int:
    """An RFC 4733 duration (timestamp units) in milliseconds, kept within 40 ms-2 s;
    :data:`DIGIT_MS` when unknown (0: the end packet was lost)."""
    if samples <= 0:
        return DIGIT_MS
    return min(max(samples * 1000 // rate, _MIN_MS), _MAX_MS)


class EventTap:
    """RFC 4733 telephone-events of a bridged leg, consumed: each digit is handed to
    ``deliver`` when it ends (with its duration), as chan_sip sends an INFO at the digit's end.
    Flash is not a digit; malformed packets are dropped."""

    __slots__ = ("deliver", "receiver")

    def __init__(self, deliver: DigitSink) -> None:
        self.deliver = deliver
        self.receiver = DtmfReceiver()

    def __call__(self, data: bytes) -> bool:
        try:
            packet = parse_rtp(data)
            events = self.receiver.receive(packet.payload, packet.timestamp)
        except (RtpError, DtmfError):
            return True
        for ev in events:
            if isinstance(ev, DtmfEnded) and ev.digit != "!":
                self.deliver(ev.digit, digit_ms(ev.duration))
        return True


class InbandTap:
    """The G.711 audio of a bridged ``dtmfmode=inband`` leg run through the Goertzel detector;
    each digit found is handed to ``deliver`` and the audio is relayed as ever."""

    __slots__ = ("deliver", "detector", "encoding")

    def __init__(self, deliver: DigitSink, encoding: Encoding) -> None:
        self.deliver = deliver
        self.encoding = encoding
        self.detector = DtmfDetector()

    def __call__(self, data: bytes) -> bool:
        try:
            packet = parse_rtp(data)
        except RtpError:
            return False
        for digit in self.detector.feed(samples_of(packet.payload, self.encoding)):
            self.deliver(digit, DIGIT_MS)
        return False


def dtmf_tap(src: SipChannel, dst: SipChannel) -> tuple[Tap, int] | None:
    """The tap (and the payload type it watches) that ``src``'s relay leg needs so that
    ``dst`` hears ``src``'s digits its own way; None when nothing is to convert: both
    negotiated RFC 4733 (the relay passes the events), both are inband (the tones ride in the
    audio), or ``src`` sends INFO."""

    def deliver(digit: str, ms: int) -> None:
        if not dst.hung_up:
            dst.send_digit(digit, source=src.leg, duration_ms=ms)

    pt = src.event_type
    if pt is not None:
        return None if dst.event_type is not None else (EventTap(deliver), pt)
    if not src.inband or dst.inband:
        return None
    fmt = choose_format(src.codecs)
    return None if fmt is None else (InbandTap(deliver, fmt.encoding), fmt.payload_type)


def set_dtmf_taps(a: SipChannel, b: SipChannel) -> None:
    """Set (or clear) the DTMF conversion taps of both legs' relay legs for their SDPs now."""
    for src, dst in ((a, b), (b, a)):
        leg = src.leg
        if leg is None:
            continue
        found = dtmf_tap(src, dst)
        if found is None:
            leg.clear_tap()
        else:
            leg.set_tap(*found)


def clear_dtmf_taps(a: SipChannel, b: SipChannel) -> None:
    for chan in (a, b):
        if chan.leg is not None:
            chan.leg.clear_tap()


class Bridge:
    """``caller`` ↔ ``callee`` until one hangs up; the other is then hung up too (callee) or
    left to the dial plan (caller: Dial returns and the plan ends the call)."""

    def __init__(
        self,
        caller: SipChannel,
        callee: SipChannel,
        *,
        clock: Callable[[], float] = time.monotonic,
        check_every: float = 1.0,
        limit: DurationLimit | None = None,
    ) -> None:
        self.caller = caller
        self.callee = callee
        self.relay: Relay | None = None
        self.clock = clock
        self.check_every = check_every
        self.limit = limit
        self.warned: list[float] = []
        """Seconds left at each time-limit warning given (the sounds are not played)."""
        self._sdps: tuple[object, ...] = ()

    def _sdp_state(self) -> tuple[object, ...]:
        a, b = self.caller, self.callee
        return (a.local_sdp, a.remote_sdp, b.local_sdp, b.remote_sdp)

    def refresh_routes(self) -> bool:
        """Recompute the relay's routes when a leg's SDP changed since the last look (a
        re-INVITE may renumber payload types or change the codec); True if they changed."""
        state = self._sdp_state()
        seen = self._sdps
        if self.relay is None or (
            len(seen) == len(state) and all(x is y for x, y in zip(state, seen, strict=True))
        ):
            return False
        self._sdps = state
        a_to_b, b_to_a = routes(self.caller, self.callee)
        self.relay.a.set_route(a_to_b)
        self.relay.b.set_route(b_to_a)
        set_dtmf_taps(self.caller, self.callee)
        return True

    def dead_leg(self, now: float) -> SipChannel | None:
        """A leg whose peer's ``rtptimeout`` (``rtpholdtimeout`` while held) passed without
        an RTP packet (chan_sip ``check_rtp_timeout``), else None."""
        for chan in (self.caller, self.callee):
            limit = rtp_timeout(chan)
            if limit > 0 and chan.leg is not None and chan.leg.idle_for(now) > limit:
                return chan
        return None

    async def run(self) -> BridgeEnd:
        a, b = self.caller, self.callee
        a.bridged, b.bridged = b, a
        self.relay = join_media(a, b)
        if self.relay is not None:
            set_dtmf_taps(a, b)
        self._sdps = self._sdp_state()
        start = self.clock()
        end_at = start + self.limit.limit if self.limit is not None else None
        warn_at = [start + t for t in self.limit.warnings()] if self.limit is not None else []
        limit_reached = False
        waits = {asyncio.ensure_future(a.ended.wait()), asyncio.ensure_future(b.ended.wait())}
        try:
            while True:
                now = self.clock()
                timeout = self.check_every
                for due in (end_at, warn_at[0] if warn_at else None):
                    if due is not None:
                        timeout = min(timeout, max(0.0, due - now))
                done, _ = await asyncio.wait(
                    waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if done:
                    break
                self.refresh_routes()
                now = self.clock()
                while warn_at and now >= warn_at[0]:
                    warn_at.pop(0)
                    self._warn(a, (end_at or now) - now)
                if end_at is not None and now >= end_at:
                    log.info(
                        "%s: Dial time limit of %gs reached, hanging up", a.name, end_at - start
                    )
                    limit_reached = True
                    break
                dead = self.dead_leg(now)
                if dead is not None:
                    log.warning("Disconnecting call '%s' for lack of RTP activity", dead.name)
                    dead.terminate(int(HangupCause.NORMAL_CLEARING))
                    break
        finally:
            for w in waits:
                w.cancel()
            a.bridged = b.bridged = None
            if self.relay is not None:
                self.relay.unjoin()
                clear_dtmf_taps(a, b)
        if limit_reached:
            b.terminate(int(HangupCause.NORMAL_CLEARING))
            return BridgeEnd(False, int(HangupCause.NORMAL_CLEARING), limit_reached=True)
        if b.hung_up:
            return BridgeEnd(True, b.hangup_cause or int(HangupCause.NORMAL_CLEARING))
        b.terminate(int(HangupCause.NORMAL_CLEARING))
        return BridgeEnd(False, a.hangup_cause or int(HangupCause.NORMAL_CLEARING))

    def _warn(self, chan: SipChannel, left: float) -> None:
        """app_dial plays the time left to the caller; pypbx logs it (no prompts yet)."""
        self.warned.append(round(left, 3))
        log.info(
            "%s: %.1f seconds left of the Dial time limit (warning sound not played)",
            chan.name,
            left,
        )
