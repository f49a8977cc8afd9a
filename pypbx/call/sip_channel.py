"""The SIP channel technology: a :class:`SipChannel` binds one INVITE session (RFC 3261 §13)
and one RTP relay leg to a :class:`~pypbx.call.channel.Channel`, with the SDP rewritten to
pypbx's address on each leg (RFC 3264 §6 answers, §8 re-offers; Asterisk ``canreinvite=no``).

Incoming legs implement :class:`~pypbx.dialplan.channel_api.ChannelApi` for the dial plan;
outgoing legs are made by :class:`~pypbx.call.sip_tech.SipTech` (``Dial(SIP/peer)``,
``SIP/number@peer``, ``SIP/peer/number``) and report their progress to the dialer through
``news``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress

from pypbx.call.causes import cause_to_sip, sip_to_cause
from pypbx.call.channel import Channel, ChannelState
from pypbx.call.media_ops import (
    DIGIT_MS,
    EventSender,
    MediaEngine,
    Played,
    choose_format,
    hold_music,
    info_body,
    info_digit,
    info_status,
)
from pypbx.call.sip_env import (
    CallEnv,
    LegNews,
    audio_codecs,
    event_type_of,
    media_address,
    offered_direction,
)
from pypbx.config.sipmodel import DtmfMode, NatMode, Peer
from pypbx.dialplan.channel_api import DialResult, DialTarget, HangupCause, Indication
from pypbx.errors import PbxError
from pypbx.media.relay import LegOptions, RelayLeg
from pypbx.sip.auth import ClientAuthState
from pypbx.sip.events import Addr
from pypbx.sip.sdp import (
    Codec,
    Direction,
    NotAcceptable,
    SdpError,
    SessionDescription,
    build_answer,
    build_offer,
    parse_sdp,
)
from pypbx.sip.session import Session
from pypbx.sip.transaction import IllegalTransition

__all__ = ["SipChannel"]

log = logging.getLogger("pypbx.call")
SDP = "application/sdp"
_PLAIN_NAT = frozenset({NatMode.FORCE_RPORT, NatMode.COMEDIA})
LATE_ANSWER_WAIT = 4.0  # seconds an answered late-offer call waits for the ACK's SDP
_MIN_KEY_MS = 120  # tones and events sent no shorter: a shorter key is not heard reliably


class SipChannel(Channel):
    """One SIP call leg: session, relay leg, SDP state; ChannelApi for incoming legs."""

    def __init__(
        self,
        env: CallEnv,
        name: str,
        uniqueid: str,
        *,
        peer: Peer | None,
        outgoing: bool,
        session: Session | None = None,
    ) -> None:
        super().__init__(name, uniqueid, created=env.wall_time())
        self.env = env
        self.peer = peer
        self.outgoing = outgoing
        self.session = session
        self.leg: RelayLeg | None = None
        self.remote_sdp: SessionDescription | None = None
        self.local_sdp: SessionDescription | None = None
        self.codecs: list[Codec] = []  # this leg's negotiated codecs (its payload types)
        self.ended = asyncio.Event()
        self.news: asyncio.Queue[LegNews] | None = None
        self.callerid_num = ""
        self.callerid_name = ""
        self.rang = False
        self.early_media = False
        self._sdp_version = 1
        self._session_id = abs(hash(uniqueid)) % 10**9 + 1
        self.invite_plan: tuple[str, str, str, Addr, ClientAuthState | None] | None = None
        self.on_answer: Callable[[SipChannel], None] | None = None
        self.on_end: Callable[[SipChannel], None] | None = None
        self.late_offer = False
        # NAT modes in force (nat.effective_nat: auto_* resolved against the INVITE's Via);
        # outgoing legs take the peer's plain modes
        self.nat_modes: frozenset[NatMode] = frozenset(
            m for m in (peer.nat if peer is not None else ()) if m in _PLAIN_NAT
        )
        self.acked = asyncio.Event()  # the ACK of our 2xx came (late offer: with the answer)
        self.media: MediaEngine | None = None
        self.priority = 1  # where the dial plan runs (``core show channels``)
        self.events = EventSender(env.ssrc())  # digits from the bridged leg, as RFC 4733
        self.early_digits: list[str] = []  # INFO digits before the media engine exists
        self.last_message = ""  # the last SIP request on this leg, "Rx: ACK" (sip show channels)

    # -- ChannelApi properties ---------------------------------------------------------

    @property
    def answered(self) -> bool:
        return self.state is ChannelState.UP

    @property
    def hung_up(self) -> bool:
        return self.state is ChannelState.HUNGUP

    @property
    def allow(self) -> tuple[str, ...]:
        return self.peer.allow if self.peer is not None else self.env.default_allow

    @property
    def dtmfmode(self) -> DtmfMode:
        return self.peer.dtmfmode if self.peer is not None else DtmfMode.RFC2833

    @property
    def rfc4733(self) -> bool:
        """Whether this leg negotiates telephone-event (chan_sip: rfc2833 and auto)."""
        return self.dtmfmode in (DtmfMode.RFC2833, DtmfMode.AUTO)

    @property
    def event_type(self) -> int | None:
        """The payload type this leg's RFC 4733 events arrive on (the one our SDP gave), when
        it takes DTMF that way: ``rfc2833``/``auto`` and telephone-event in both SDPs."""
        if not self.rfc4733 or event_type_of(self.remote_sdp) is None:
            return None
        return event_type_of(self.local_sdp)

    @property
    def inband(self) -> bool:
        """Whether DTMF travels as tones in this leg's audio: ``dtmfmode=inband``, or ``auto``
        without telephone-event (chan_sip)."""
        mode = self.dtmfmode
        return mode is DtmfMode.INBAND or (
            mode is DtmfMode.AUTO and event_type_of(self.remote_sdp) is None
        )

    # -- media -------------------------------------------------------------------------

    async def open_media(self) -> None:
        """Allocate the even/odd port pair and start reading it (PortsExhausted escapes)."""
        if self.leg is not None:
            return
        pair = self.env.ports.allocate()
        latch = NatMode.COMEDIA in self.nat_modes
        options = LegOptions(latch=latch, strict=self.env.strict.strict)
        leg = RelayLeg(pair, options=options, on_close=self.env.ports.release)
        self.leg = leg
        try:
            await leg.open()
        except OSError:
            leg.close()
            self.leg = None
            raise
        if self.remote_sdp is not None:
            self._apply_remote(self.remote_sdp)

    def _apply_remote(self, sd: SessionDescription) -> None:
        self.remote_sdp = sd
        addr = media_address(sd)
        if self.leg is not None and addr is not None and addr != self.leg.expected:
            self.leg.set_remote(addr)

    def _next_version(self) -> int:
        self._sdp_version += 1
        return self._sdp_version

    def answer_sdp(self) -> bytes:
        """Our answer to the leg's offer (raises NotAcceptable: no common codec); for an
        INVITE without SDP (late offer, RFC 3261 §13.2.1) our offer, answered in the ACK."""
        assert self.leg is not None
        if self.remote_sdp is None:
            self.late_offer = True
            if self.local_sdp is None:
                return self.offer_sdp(self.allow)
            return self.local_sdp.to_bytes()
        if self.local_sdp is None:
            ans = build_answer(
                self.remote_sdp,
                self.env.media_host,
                self.leg.port,
                self.allow,
                dtmf=self.rfc4733,
                session_id=self._session_id,
                version=self._sdp_version,
            )
            self.local_sdp = ans
            self.codecs = [c for c in audio_codecs(ans) if c.name.lower() != "telephone-event"]
        return self.local_sdp.to_bytes()

    def offer_sdp(self, allowed: tuple[str, ...], way: Direction = Direction.SENDRECV) -> bytes:
        assert self.leg is not None
        sd = build_offer(
            self.env.media_host,
            self.leg.port,
            allowed,
            dtmf=self.rfc4733,
            session_id=self._session_id,
            version=self._next_version() if self.local_sdp is not None else self._sdp_version,
            way=way,
        )
        self.local_sdp = sd
        return sd.to_bytes()

    def _watch(self, session: Session) -> None:
        """Tell a call-layer user agent that ``session`` now retransmits a 2xx."""
        watch = getattr(self.env.ua, "watch", None)
        if watch is not None:
            watch(session)

    # -- ChannelApi --------------------------------------------------------------------

    async def answer(self) -> None:
        if self.state in (ChannelState.UP, ChannelState.HUNGUP) or self.session is None:
            return
        try:
            await self.open_media()
            body = self.answer_sdp()
        except NotAcceptable:
            await self.hangup(int(HangupCause.BEARERCAPABILITY_NOTAVAIL))
            return
        except (PbxError, OSError) as exc:  # no RTP ports (exhausted, or the PBX is stopping)
            if not self.hung_up:
                log.warning("%s: cannot answer: %s", self.name, exc)
                await self.hangup(int(HangupCause.NORMAL_CIRCUIT_CONGESTION))
            return
        if self.hung_up:  # the caller left while the ports opened
            return
        with suppress(IllegalTransition):
            self.session.answer(body=body, content_type=SDP, now=self.env.loop_time())
        self._watch(self.session)
        self.set_state(ChannelState.UP)
        self.answered_at = self.env.wall_time()
        self.env.flush()
        if self.on_answer is not None:
            self.on_answer(self)
        if self.late_offer:
            await self._await_late_answer()
        await self.media_engine()  # listen for DTMF from the first packet on

    async def _await_late_answer(self) -> None:
        """Late offer: media waits for the SDP answer in the ACK (a few seconds at most)."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self.acked.wait(), LATE_ANSWER_WAIT)
        if not self.hung_up and self.remote_sdp is None:
            log.warning("%s: no SDP answer in the ACK to our offer; hanging up", self.name)
            self.terminate(int(HangupCause.BEARERCAPABILITY_NOTAVAIL))

    def acknowledged(self, body: bytes) -> None:
        """The ACK of our 2xx arrived; with a late offer it carries the caller's answer."""
        if self.late_offer and self.remote_sdp is None:
            sd = self._body_sdp(body)
            if sd is not None:
                self._apply_remote(sd)
                self.codecs = [c for c in audio_codecs(sd) if c.name.lower() != "telephone-event"]
        self.acked.set()

    async def hangup(self, cause: int) -> None:
        self.terminate(cause)

    def ring(self, *, early_media: bool = False) -> None:
        """180 Ringing (or 183 with our SDP for early media) to the caller, once each."""
        if self.session is None or self.state is not ChannelState.RING:
            return
        now = self.env.loop_time()
        try:
            if early_media and self.remote_sdp is None:
                return  # late offer: an unreliable 183 cannot carry our offer (RFC 3261 §13.2.1)
            if early_media and not self.early_media and self.leg is not None:
                self.session.ring(status=183, body=self.answer_sdp(), content_type=SDP, now=now)
                self.early_media = True
            elif not early_media and not self.rang:
                self.session.ring(status=180, now=now)
                self.rang = True
        except (IllegalTransition, NotAcceptable):
            return
        self.env.flush()

    async def indicate(self, what: Indication) -> None:
        if what is Indication.RINGING:
            self.ring()
        elif what is Indication.PROGRESS:
            with suppress(OSError):
                await self.open_media()
            self.ring(early_media=True)
        elif what is Indication.BUSY and not self.answered:
            self.terminate(int(HangupCause.USER_BUSY))
        elif what is Indication.CONGESTION and not self.answered:
            self.terminate(int(HangupCause.NORMAL_CIRCUIT_CONGESTION))

    async def sleep(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), max(0.0, seconds))

    async def play(self, files: list[str], *, stop_digits: str = "") -> str:
        return (await self.play_sounds(files, stop_digits=stop_digits)).digit

    async def play_sounds(
        self, files: list[str], *, stop_digits: str = "", keep_going: bool = False
    ) -> Played:
        """Playback/Background/Say*: ``files`` from ``sounddir`` in the leg's codec."""
        engine = await self._sending_engine()
        if engine is None:
            if files:
                log.warning("%s: no media to play %s on", self.name, "&".join(files))
            return Played("", files[0] if files and not keep_going else None)
        return await engine.play(files, stop_digits=stop_digits, keep_going=keep_going)

    async def read_digits(self, max_digits: int, timeout: float, *, terminator: str = "#") -> str:
        engine = await self.media_engine()
        if engine is None:
            await self.sleep(timeout)
            return ""
        return await engine.read_digits(max_digits, timeout, terminator=terminator)

    async def echo(self) -> None:
        engine = await self._sending_engine()
        if engine is None:
            await self.ended.wait()
            return
        await engine.echo()

    async def play_tones(self, tones: str) -> None:
        engine = await self._sending_engine()
        if engine is not None:
            engine.start_tones(tones)

    async def stop_tones(self) -> None:
        if self.media is not None:
            self.media.stop_tones()

    async def music_on_hold(self, klass: str, seconds: float | None) -> None:
        """Hold music of ``klass`` (files in ``sounddir/moh/<class>``, else a generated tune)
        for ``seconds`` (None: until hangup)."""
        engine = await self._sending_engine()
        if engine is None or engine.format is None:
            await self.sleep(seconds if seconds is not None else 86400.0)
            return
        audio = hold_music(self.env.sounds, klass or "default", engine.format.encoding)
        await engine.loop(audio, seconds)

    async def _sending_engine(self) -> MediaEngine | None:
        """The engine, about to send audio: on a ringing incoming leg the audio goes as early
        media, so a 183 with our SDP goes first (once; chan_sip ``sip_write``)."""
        engine = await self.media_engine()
        if engine is not None and not self.outgoing and self.state is ChannelState.RING:
            self.ring(early_media=True)
        return engine

    async def media_engine(self) -> MediaEngine | None:
        """The leg's media engine, made on first use (None: no ports or no G.711 codec)."""
        if self.media is not None:
            return self.media
        if self.hung_up:
            return None
        try:
            await self.open_media()
        except OSError:
            return None
        leg = self.leg
        if leg is None or self.hung_up or self.media is not None:
            return self.media
        if not self.codecs and self.remote_sdp is not None and not self.outgoing:
            with suppress(NotAcceptable):
                self.answer_sdp()
        events = {
            pt for pt in (event_type_of(self.local_sdp), event_type_of(self.remote_sdp)) if pt
        }
        fmt = choose_format(self.codecs, events)
        inband = self.dtmfmode is DtmfMode.INBAND or (self.dtmfmode is DtmfMode.AUTO and not events)
        engine = MediaEngine(
            leg,
            fmt,
            ssrc=self.env.ssrc(),
            sounds=self.env.sounds,
            inband=inband,
            name=self.name,
            language=self.peer.language if self.peer is not None else "",
        )
        leg.sink = engine.receive
        self.media = engine
        for digit in self.early_digits:
            engine.push_digit(digit)
        self.early_digits.clear()
        return engine

    def info_received(self, content_type: str, body: bytes) -> int:
        """A SIP INFO in this dialog: a DTMF body feeds the digit queue. The status to answer:
        200, or 415 for a body pypbx does not understand (chan_sip)."""
        digit = info_digit(content_type, body)
        if digit is not None:
            other = self.bridged
            if isinstance(other, SipChannel) and not other.hung_up:
                other.send_digit(digit, source=self.leg)
            elif self.media is not None:
                self.media.push_digit(digit)
            elif len(self.early_digits) < 64:
                self.early_digits.append(digit)
        return info_status(content_type, body)

    def send_digit(
        self, digit: str, *, source: RelayLeg | None = None, duration_ms: int = DIGIT_MS
    ) -> bool:
        """Send a digit heard on the bridged leg the way this leg takes DTMF: SIP INFO
        (``dtmfmode=info``), the key's tones (``inband``, or ``auto`` without
        telephone-event) or an RFC 4733 event train on its negotiated payload type; tones and
        events go inside the stream ``source`` (the bridged leg's relay leg) sends it. False
        when it cannot be sent."""
        session = self.session
        if self.dtmfmode in (DtmfMode.INFO, DtmfMode.SHORTINFO):
            if session is None or self.hung_up:
                return False
            kind, body = info_body(digit, duration_ms)
            with suppress(ValueError, IllegalTransition):
                session.request("INFO", body=body, content_type=kind, now=self.env.loop_time())
                self.env.flush()
                return True
            return False
        leg = self.leg
        if leg is None or leg.closed:
            return False
        ms = max(duration_ms, _MIN_KEY_MS)
        if self.inband:
            fmt = choose_format(self.codecs)
            if fmt is None:
                return False
            self.events.send_inband(digit, source, leg, fmt, duration_ms=ms)
            return True
        pt = event_type_of(self.remote_sdp)
        if pt is None:
            return False
        self.events.send(digit, source, leg, pt, duration_ms=ms)
        return True

    async def dial(
        self,
        targets: list[DialTarget],
        timeout: float | None,
        options: dict[str, str],
        *,
        inherit: dict[str, str] | None = None,
    ) -> DialResult:
        if self.env.dial is None:
            raise RuntimeError("no dialer configured")
        return await self.env.dial(self, targets, timeout, options, inherit)

    # -- ending --------------------------------------------------------------------------

    @property
    def callerid(self) -> str:
        return self.callerid_num

    async def request_hangup(self) -> None:
        """``channel request hangup``: as a soft hangup with cause 16."""
        self.terminate(int(HangupCause.NORMAL_CLEARING))

    def terminate(self, cause: int) -> None:
        """End this leg now: BYE when up, CANCEL when calling, a final response when ringing."""
        if self.state is ChannelState.HUNGUP:
            return
        self.hangup_cause = self.hangup_cause or cause
        session = self.session
        if session is not None:
            now = self.env.loop_time()
            with suppress(IllegalTransition, ValueError):
                if self.state is ChannelState.UP:
                    session.bye(now=now)
                elif self.outgoing:
                    session.hangup(now=now)
                else:
                    session.reject(cause_to_sip(cause)[0], now=now)
            self.env.flush()
        self._ended()

    def remote_ended(self, cause: int) -> None:
        """The far end ended the leg (BYE, CANCEL, a failure): nothing to send."""
        if self.state is ChannelState.HUNGUP:
            return
        self.hangup_cause = self.hangup_cause or cause
        self._ended()

    def _ended(self) -> None:
        with suppress(ValueError):
            self.set_state(ChannelState.HUNGUP)
        if self.media is not None:
            self.media.close()
        self.events.close()
        if self.leg is not None:
            st = self.leg.stats()
            totals = self.env.relayed
            for key, value in (
                ("packets_in", st.packets_in),
                ("packets_out", st.packets_out),
                ("rtcp_in", st.rtcp_in),
                ("fast_in", st.fast_in),
                ("dropped", st.dropped_strict + st.dropped_learning + st.dropped_unroutable),
                ("legs", 1),
            ):
                totals[key] = totals.get(key, 0) + value
            self.leg.close()
        self.ended.set()
        self.env.channels.remove(self)
        if self.on_end is not None:
            self.on_end(self)

    # -- outgoing legs ---------------------------------------------------------------------

    async def start_call(self, allowed: tuple[str, ...]) -> None:
        """Send the INVITE planned by :class:`SipTech` with our offer of ``allowed``."""
        assert self.invite_plan is not None
        uri, to, from_, dest, auth = self.invite_plan
        await self.open_media()
        if self.hung_up:  # ended (caller gone, PBX stopping) while the ports opened
            return
        body = self.offer_sdp(allowed)
        session = self.env.ua.invite(
            uri,
            to=to,
            from_=from_,
            dest=dest,
            body=body,
            content_type=SDP,
            auth=auth,
            now=self.env.loop_time(),
        )
        if NatMode.FORCE_RPORT in self.nat_modes:
            session.dest = dest  # in-dialog requests where the INVITE went, not to the Contact
        self.session = session
        self.last_message = "Tx: INVITE"
        self.env.register_session(session, self)
        self.set_state(ChannelState.DIALING)
        self.env.flush()

    def _tell(self, kind: str, status: int, sd: SessionDescription | None = None) -> None:
        if self.news is not None:
            self.news.put_nowait(LegNews(self, kind, status, sd))

    def _body_sdp(self, body: bytes) -> SessionDescription | None:
        if not body:
            return None
        try:
            return parse_sdp(body)
        except SdpError:
            return None

    def progressed(self, status: int, body: bytes) -> None:
        sd = self._body_sdp(body)
        if sd is not None:
            self._apply_remote(sd)
            self.codecs = audio_codecs(sd)
        with suppress(ValueError):
            self.set_state(ChannelState.RINGING)
        self._tell("progress", status, sd)

    def answered_remote(self, body: bytes) -> None:
        sd = self._body_sdp(body)
        if sd is not None:
            self._apply_remote(sd)
            self.codecs = [c for c in audio_codecs(sd) if c.name.lower() != "telephone-event"]
        with suppress(ValueError):
            self.set_state(ChannelState.UP)
        self.answered_at = self.env.wall_time()
        self.last_message = "Tx: ACK"  # the session acknowledges the 2xx
        self._tell("answer", 200, sd)

    def rejected(self, status: int) -> None:
        self.remote_ended(sip_to_cause(status))
        self._tell("fail", status)

    # -- re-INVITE (hold/unhold) passed across --------------------------------------------

    def reinvite_received(self, body: bytes) -> None:
        """Answer a re-INVITE with our SDP and pass its direction to the bridged leg."""
        session = self.session
        if session is None:
            return
        now = self.env.loop_time()
        sd = self._body_sdp(body)
        if sd is None or self.leg is None:
            with suppress(IllegalTransition):
                session.answer_reinvite(
                    200, body=self.local_sdp.to_bytes() if self.local_sdp else b"",
                    content_type=SDP if self.local_sdp else None, now=now,
                )  # fmt: skip
            self._watch(session)
            self.env.flush()
            return
        self._apply_remote(sd)
        try:
            ans = build_answer(
                sd,
                self.env.media_host,
                self.leg.port,
                self.allow,
                dtmf=self.rfc4733,
                session_id=self._session_id,
                version=self._next_version(),
            )
        except NotAcceptable:
            with suppress(IllegalTransition):
                session.answer_reinvite(488, now=now)
            self.env.flush()
            return
        self.local_sdp = ans
        with suppress(IllegalTransition):
            session.answer_reinvite(200, body=ans.to_bytes(), content_type=SDP, now=now)
        self._watch(session)
        other = self.bridged
        way = offered_direction(sd)
        if isinstance(other, SipChannel) and other.session is not None and other.leg is not None:
            body_out = other.offer_sdp(other.allow, way)
            with suppress(IllegalTransition):
                other.session.reinvite(body=body_out, content_type=SDP, now=now)
                other.last_message = "Tx: INVITE"
        self.env.flush()

    def reinvite_answered(self, status: int, body: bytes) -> None:
        sd = self._body_sdp(body) if 200 <= status < 300 else None
        if sd is not None:
            self._apply_remote(sd)
