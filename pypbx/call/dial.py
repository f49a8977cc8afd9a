"""Dial(): ring every target at once, first answer wins, the others get CANCEL; timeout;
180/183 passed back to the caller; the caller's CANCEL ends the attempt; ``DIALSTATUS`` as
app_dial computes it (busy, then congestion, then no channel, else no answer). RFC 3261
§9.1 (CANCEL of the losing branches), §13.2.2.4 (forking).

Early media (a 183 with SDP, RFC 3960) is relayed from one callee at a time, the one whose
183 came last, and DTMF crosses between the caller and that callee as in a bridge, in each
leg's own mode (a provider's IVR asking "press 1" before it answers): see
:class:`EarlyMedia`. The join ends when that callee fails, another one takes over, or Dial
ends; the answered pair is then joined by the bridge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pypbx.call.bridge import Bridge, clear_dtmf_taps, join_media, set_dtmf_taps
from pypbx.call.causes import dialstatus_for_cause
from pypbx.call.limits import CallLimits
from pypbx.call.sip_channel import SipChannel
from pypbx.call.sip_env import LegNews
from pypbx.call.tech import TechRegistry, UnknownTech
from pypbx.dialplan.apps.dial import parse_duration_limit
from pypbx.dialplan.channel_api import DialResult, DialStatus, DialTarget, HangupCause, reveal
from pypbx.errors import PbxError
from pypbx.log import verbose
from pypbx.media.relay import Relay
from pypbx.sip.sdp import Codec, codecs

__all__ = ["Dialer", "EarlyMedia", "aggregate_status"]

log = logging.getLogger("pypbx.call")
_ORDER = (DialStatus.BUSY, DialStatus.CONGESTION, DialStatus.CHANUNAVAIL, DialStatus.NOANSWER)


def aggregate_status(causes: list[int]) -> DialStatus:
    """app_dial: any busy leg → BUSY, else any congestion → CONGESTION, else a leg that could
    not be reached → CHANUNAVAIL, else NOANSWER."""
    seen = {dialstatus_for_cause(c) for c in causes}
    return next((s for s in _ORDER if s in seen), DialStatus.NOANSWER)


class Dialer:
    """The ``dial`` of SIP channels: uses the technology registry and the loop clock.

    ``limits`` counts calls per peer for ``call-limit`` (share it with the incoming side so
    both directions count together); a target peer at its limit is not called (cause 17).
    """

    def __init__(
        self,
        techs: TechRegistry,
        loop_time: Callable[[], float],
        on_dialed: Callable[[SipChannel, SipChannel], None] | None = None,
        verbosity: Callable[[], int] = lambda: 0,
        *,
        limits: CallLimits | None = None,
    ) -> None:
        self.techs = techs
        self.loop_time = loop_time
        self.on_dialed = on_dialed
        self.verbosity = verbosity
        self.limits = limits if limits is not None else CallLimits()

    async def __call__(
        self,
        caller: SipChannel,
        targets: list[DialTarget],
        timeout: float | None,
        options: dict[str, str],
        inherit: dict[str, str] | None,
    ) -> DialResult:
        start = self.loop_time()
        news: asyncio.Queue[LegNews] = asyncio.Queue()
        causes: list[int] = []
        legs: list[SipChannel] = []
        for target in targets:
            try:
                tech = self.techs.get(target.tech)
            except UnknownTech:
                log.warning("%s: no channel technology %r", caller.name, target.tech)
                causes.append(int(HangupCause.CHAN_NOT_IMPLEMENTED))
                continue
            leg = tech.request(reveal(target.resource), caller, inherit=inherit)
            if not isinstance(leg, SipChannel):
                causes.append(int(HangupCause.SUBSCRIBER_ABSENT))
                continue
            if not self._count(leg):
                causes.append(int(HangupCause.USER_BUSY))
                continue
            leg.news = news
            try:
                await leg.start_call(_offer_codecs(caller, leg))
            except (PbxError, OSError) as exc:
                log.warning("%s: cannot call %s: %s", caller.name, leg.name, exc)
                leg.remote_ended(int(HangupCause.NORMAL_CIRCUIT_CONGESTION))
                causes.append(int(HangupCause.NORMAL_CIRCUIT_CONGESTION))
                continue
            if self.verbosity() >= 3:  # Asterisk's ast_verb(3): skip the formatting otherwise
                verbose(log, 3, "    -- Called %s", target)
            if self.on_dialed is not None:
                self.on_dialed(caller, leg)
            legs.append(leg)
        if not legs:
            return DialResult(DialStatus.CHANUNAVAIL, cause=causes[0] if causes else 0)
        if "r" in options:
            caller.ring()
        early = EarlyMedia(caller)
        try:
            winner = await self._wait(caller, legs, news, causes, start, timeout, early)
            if winner is not early.callee:
                early.leave()  # the bridge joins the answered pair (and sets their taps)
            dialed = int(self.loop_time() - start)
            for leg in legs:
                if leg is not winner:
                    leg.terminate(int(HangupCause.NORMAL_CLEARING))
            if winner is None:
                return self._unanswered(caller, causes, start, timeout, dialed)
            return await self._connect(caller, winner, options, start, dialed)
        finally:
            early.leave()  # Dial ended (or failed): no tap toward a callee outlives it

    def _unanswered(
        self,
        caller: SipChannel,
        causes: list[int],
        start: float,
        timeout: float | None,
        dialed: int,
    ) -> DialResult:
        if caller.hung_up:
            return DialResult(DialStatus.CANCEL, dialed_time=dialed)
        if self.loop_time() - start >= (timeout or float("inf")) - 0.05:
            return DialResult(DialStatus.NOANSWER, dialed_time=dialed)
        status = aggregate_status(causes)
        return DialResult(status, dialed_time=dialed, cause=causes[-1] if causes else 0)

    async def _connect(
        self,
        caller: SipChannel,
        winner: SipChannel,
        options: dict[str, str],
        start: float,
        dialed: int,
    ) -> DialResult:
        """Answer the caller and bridge it with ``winner`` until one of them hangs up."""
        if self.verbosity() >= 3:
            verbose(log, 3, "    -- %s answered %s", winner.name, caller.name)
        await caller.answer()
        congestion = int(HangupCause.NORMAL_CIRCUIT_CONGESTION)
        if caller.hung_up and caller.hangup_cause == congestion:  # no RTP ports for the caller
            winner.terminate(congestion)
            return DialResult(DialStatus.CONGESTION, dialed_time=dialed, peer=winner.name)
        if caller.hung_up:
            winner.terminate(int(HangupCause.NORMAL_CLEARING))
            return DialResult(DialStatus.CANCEL, dialed_time=dialed, peer=winner.name)
        answered_at = self.loop_time()
        limit = parse_duration_limit(options["L"])[0] if "L" in options else None
        end = await Bridge(caller, winner, clock=self.loop_time, limit=limit).run()
        return DialResult(
            DialStatus.ANSWER,
            dialed_time=int(self.loop_time() - start),
            answered_time=int(self.loop_time() - answered_at),
            peer=winner.name,
            peer_hung_up=end.callee_hung_up or end.limit_reached,
        )

    def _count(self, leg: SipChannel) -> bool:
        """Count ``leg`` against its peer's ``call-limit`` until it ends; False (and the leg
        ended with cause 17 USER_BUSY, as chan_sip's ``sip_call``) when the limit is reached."""
        peer = leg.peer
        if peer is None:
            return True
        release = self.limits.hold(peer.name, peer.call_limit)
        if release is None:
            log.warning(
                "Call to peer '%s' rejected due to usage limit of %d", peer.name, peer.call_limit
            )
            leg.remote_ended(int(HangupCause.USER_BUSY))
            return False
        then = leg.on_end

        def ended(chan: SipChannel) -> None:
            release()
            if then is not None:
                then(chan)

        leg.on_end = ended
        return True

    async def _wait(
        self,
        caller: SipChannel,
        legs: list[SipChannel],
        news: asyncio.Queue[LegNews],
        causes: list[int],
        start: float,
        timeout: float | None,
        early: EarlyMedia,
    ) -> SipChannel | None:
        live = set(legs)
        hung = asyncio.ensure_future(caller.ended.wait())
        try:
            while live:
                remaining = None if timeout is None else start + timeout - self.loop_time()
                if remaining is not None and remaining <= 0:
                    return None
                get = asyncio.ensure_future(news.get())
                done, _ = await asyncio.wait(
                    {get, hung}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if get not in done:
                    get.cancel()
                    return None
                if hung in done:  # the caller went away (CANCEL): the news is stale
                    get.cancel()
                    return None
                item = get.result()
                if item.leg not in live:
                    continue
                if item.kind == "answer":
                    return item.leg
                if item.kind == "fail":
                    live.discard(item.leg)
                    causes.append(item.leg.hangup_cause)
                    early.leave(item.leg)
                elif item.kind == "progress":
                    if item.sdp is not None:
                        await early.join(item.leg)
                    elif item.status > 100:  # 100 Trying is hop-by-hop: no ringing
                        caller.ring()
            return None
        finally:
            hung.cancel()


class EarlyMedia:
    """The caller's early media: the callee it is joined to, the relay between their relay
    legs and DTMF between them as :class:`Bridge` passes it: the conversion taps (RFC 4733
    events from the caller to an ``info`` or ``inband`` callee as INFO or tones, inband tones
    back as events) and ``bridged`` pointing at each other, so that a SIP INFO digit from
    either leg goes to the other (:meth:`SipChannel.info_received`).

    One callee at a time: a later 183 with SDP from another leg of a parallel Dial takes the
    caller over (RFC 3261 §13.2.2.4: one early dialog per fork; pypbx plays the last).
    ``leave`` unjoins, clears both legs' taps and ``bridged``, so that nothing is left on the
    caller's leg to swallow its digits once that callee is gone (a ``Read()`` after a failed
    Dial hears every digit).
    """

    __slots__ = ("callee", "caller", "relay")

    def __init__(self, caller: SipChannel) -> None:
        self.caller = caller
        self.callee: SipChannel | None = None
        self.relay: Relay | None = None

    async def join(self, callee: SipChannel) -> None:
        """``callee`` sent a 183 with SDP: answer the caller's offer in a 183 (once) and relay
        the early media between the two, with their DTMF taps, instead of any earlier callee."""
        caller = self.caller
        try:
            await caller.open_media()
        except (PbxError, OSError):
            return
        caller.ring(early_media=True)
        self.leave()
        if callee.hung_up:  # it failed while the caller's ports opened
            return
        relay = join_media(caller, callee)
        if relay is None:
            return
        self.callee, self.relay = callee, relay
        caller.bridged, callee.bridged = callee, caller
        set_dtmf_taps(caller, callee)

    def leave(self, callee: SipChannel | None = None) -> None:
        """End the join (only if it is with ``callee``, when given): relaying stops, both
        legs' taps are cleared and they are no longer each other's ``bridged``."""
        joined, relay = self.callee, self.relay
        if joined is None or relay is None or (callee is not None and callee is not joined):
            return
        self.callee = self.relay = None
        relay.unjoin()
        clear_dtmf_taps(self.caller, joined)
        if self.caller.bridged is joined:
            self.caller.bridged = None
        if joined.bridged is self.caller:
            joined.bridged = None


def _offer_codecs(caller: SipChannel, leg: SipChannel) -> tuple[str, ...]:
    """The callee peer's allow order, keeping what the caller offered when that leaves any
    (else the whole list: G.711 is transcoded between the two laws)."""
    offered = {c.name.upper() for c in caller_offer(caller)}
    names = {"ulaw": "PCMU", "alaw": "PCMA", "g729": "G729", "gsm": "GSM", "g722": "G722"}
    kept = tuple(a for a in leg.allow if names.get(a.lower(), a.upper()) in offered)
    return kept or leg.allow


def caller_offer(caller: SipChannel) -> list[Codec]:
    """The codecs the caller's offer listed (its audio streams)."""
    sd = caller.remote_sdp
    if sd is None:
        return []
    return [c for m in sd.media if m.kind == "audio" for c in codecs(m)]
