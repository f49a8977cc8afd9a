"""The call layer of the running PBX: INVITE → authentication (RFC 3261 §22.3, 407 from
the peer directory) → a channel → the dial plan; session events routed to channels; one
CDR per call (SQLite + Master.csv).

chan_sip's order is kept: the caller is authenticated first (unknown sources reach
``[general] context`` only with ``allowguest=yes``), then the Request-URI user must exist in
the peer's context (else 404). A trunk matched by address with ``insecure=invite`` is not
challenged and runs in its own context with ``${EXTEN}`` = the Request-URI user (the DID).

:class:`CallService` (``@register_service``) attaches to the SIP service's stack: it wraps
its endpoints in user agents, so INVITE dialogs reach :meth:`CallManager.on_session_event`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from pypbx.call.agent import CallUserAgent
from pypbx.call.channel import Channel, ChannelNamer, ChannelState, ChannelTable
from pypbx.call.dial import Dialer
from pypbx.call.media_ops import SoundLibrary
from pypbx.call.sip_channel import SipChannel
from pypbx.call.sip_env import CallEnv
from pypbx.call.sip_tech import SipTech
from pypbx.call.sip_view import SipDialogRow, dialog_rows
from pypbx.call.tech import TechRegistry
from pypbx.cdr.csvfile import CsvBackend
from pypbx.cdr.record import Cdr, CdrBackend, CdrBuilder
from pypbx.cdr.sqlite import SqliteBackend
from pypbx.config.rtpconf import RtpConfig
from pypbx.config.sipmodel import NatMode
from pypbx.dialplan.channel_api import HangupCause
from pypbx.dialplan.interpreter import Execution, Step
from pypbx.log import verbose
from pypbx.media.ports import PortAllocator
from pypbx.media.relay import LegOptions
from pypbx.peers import InviteDecision, PeerDirectory
from pypbx.server import register_service
from pypbx.sip.endpoint import Endpoint
from pypbx.sip.events import (
    InDialogRequestReceived,
    ReinviteAnswered,
    ReinviteReceived,
    RequestReceived,
    SessionAnswered,
    SessionCancelled,
    SessionConfirmed,
    SessionEvent,
    SessionOffered,
    SessionProgressed,
    SessionRejected,
    SessionTerminated,
)
from pypbx.sip.message import Response, build_response
from pypbx.sip.sdp import SdpError, parse_sdp
from pypbx.sip.session import Session, SessionInput
from pypbx.sip.transaction import IllegalTransition
from pypbx.sip.uri import NameAddr, SipUri
from pypbx.sip.useragent import UserAgent
from pypbx.transport.nat import effective_nat
from pypbx.transport.stack import SipStack

if TYPE_CHECKING:
    from pypbx.check import ConfigSet
    from pypbx.server import Pbx

__all__ = ["CallManager", "CallService", "CdrStore"]

log = logging.getLogger("pypbx.call")
BYE_WAIT = 1.0  # seconds a stop waits for the BYEs it sent to be answered
plan_log = logging.getLogger("pypbx.call.plan")
"""The dial plan's per-step lines: INFO only at verbosity >= 3 (cheap to skip otherwise)."""


class CdrStore:
    """Every finished record goes to each backend; ``last`` reads the SQLite one."""

    name = "sqlite"

    def __init__(self, sqlite: SqliteBackend, others: Sequence[CdrBackend] = ()) -> None:
        self.sqlite = sqlite
        self.others = list(others)

    def write(self, cdr: Cdr) -> None:
        for backend in (self.sqlite, *self.others):
            try:
                backend.write(cdr)
            except OSError as exc:  # sqlite3.Error subclasses Exception, caught below
                log.error("CDR backend %s: %s", type(backend).__name__, exc)

    def last(self, n: int) -> list[Cdr]:
        return self.sqlite.last(n)

    def close(self) -> None:
        for backend in (self.sqlite, *self.others):
            backend.close()


class CallManager:
    """Routes session events to channels and runs incoming calls through the dial plan."""

    def __init__(
        self,
        pbx: Pbx,
        *,
        directory: Callable[[], PeerDirectory],
        rtp: RtpConfig | None = None,
        cdr: CdrStore | None = None,
        wall_time: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.pbx = pbx
        self._directory = directory
        self.rtp = rtp or RtpConfig()
        self.cdr = cdr
        self.wall_time = wall_time or pbx.clock
        self.rng = rng or random.Random()
        self.namer = ChannelNamer()
        self.channels = ChannelTable(self._channels_changed)
        self.techs = TechRegistry()
        self.sessions: dict[Session, SipChannel] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.stack: SipStack | None = None
        self.env: CallEnv | None = None
        self.ports: PortAllocator | None = None
        self._cdrs: dict[str, CdrBuilder] = {}

    # -- wiring --------------------------------------------------------------------------

    def sip_dialogs(self) -> list[SipDialogRow]:
        """``sip show channels``: the SIP legs up or ringing now."""
        return dialog_rows(list(self.channels))

    def attach(self, stack: SipStack, *, media_host: str | None = None) -> None:
        """Drive INVITE dialogs of ``stack`` through user agents (after ``stack.start()``)."""
        self.stack = stack
        udp = stack.endpoints["UDP"]
        host, port = udp.config.host, stack.local_addr[1]
        contact = NameAddr(SipUri.parse(f"sip:{_uri_host(host)}:{port}"))

        def factory(endpoint: Endpoint) -> UserAgent:
            return CallUserAgent(endpoint, contact=contact)

        uas = stack.use_user_agents(factory, self.on_session_event)
        bind = stack.config.bindaddr
        self.ports = PortAllocator(self.rtp.rtpstart, self.rtp.rtpend, bind)
        loop = stack.loop
        self.env = CallEnv(
            ua=uas["UDP"],
            directory=self._directory(),
            ports=self.ports,
            media_host=media_host or host,
            sip_host=f"{_uri_host(host)}:{port}" if port != 5060 else _uri_host(host),
            namer=self.namer,
            channels=self.channels,
            loop_time=loop.time,
            wall_time=self.wall_time,
            flush=stack.flush,
            register_session=self._register,
            strict=LegOptions(strict=self.rtp.strictrtp, probation=self.rtp.probation),
            sounds=SoundLibrary(self.pbx.dirs.sounddir),
            ssrc=lambda: self.rng.getrandbits(32),
        )
        self.techs = TechRegistry()
        self.techs.register(SipTech(self.env))
        self.dialer = Dialer(self.techs, loop.time, self._dialed, lambda: self.pbx.verbosity)
        self.env.dial = self.dialer

    def adopt_rtp(self, rtp: RtpConfig) -> list[str]:
        """rtp.conf reloaded: new calls take ports from the new range and the new source
        rules; live calls keep their ports (they go back to the allocator that gave them)."""
        old, self.rtp = self.rtp, rtp
        if self.env is None or self.stack is None:
            return []
        lines: list[str] = []
        if (old.rtpstart, old.rtpend) != (rtp.rtpstart, rtp.rtpend):
            self.ports = PortAllocator(rtp.rtpstart, rtp.rtpend, self.stack.config.bindaddr)
            self.env.ports = self.ports
            lines.append(f"RTP ports now {rtp.rtpstart}-{rtp.rtpend} (live calls keep theirs)")
        strict = LegOptions(strict=rtp.strictrtp, probation=rtp.probation)
        if strict != self.env.strict:
            self.env.strict = strict
            lines.append(f"strictrtp={rtp.strictrtp.value} probation={rtp.probation} for new calls")
        return lines

    def _register(self, session: Session, channel: SipChannel) -> None:
        self.sessions[session] = channel

    def _channels_changed(self, channel: Channel, added: bool) -> None:
        """Keep ``pbx.channels``/``pbx.active_calls`` current without walking the table."""
        incoming = isinstance(channel, SipChannel) and not channel.outgoing
        if added:
            self.pbx.channels.append(channel)
        else:
            with suppress(ValueError):
                self.pbx.channels.remove(channel)
        if incoming:
            self.pbx.active_calls += 1 if added else -1

    def _dialed(self, caller: SipChannel, leg: SipChannel) -> None:
        builder = self._cdrs.get(caller.name)
        if builder is not None:
            builder.dialed(leg.name)

    # -- the legacy hook of the SIP service ------------------------------------------------

    def __call__(self, service: Any, event: Any) -> None:
        """``pbx.call_handler`` shape of the SIP service: without user agents attached, an
        INVITE cannot become a call here (480)."""
        if isinstance(event, RequestReceived) and self.stack is not None:
            self.stack.reply(event, 480, "Temporarily Unavailable")

    # -- session events ----------------------------------------------------------------------

    def on_session_event(self, stack: SipStack, ev: SessionEvent) -> None:
        """The stack's session handler: the one boundary for call signalling."""
        try:
            self._on_event(ev)
        except Exception as exc:  # one boundary: log and carry on
            log.error("%s: internal error on %s: %r", ev.session.call_id, type(ev).__name__, exc)

    def _on_event(self, ev: SessionEvent) -> None:
        if isinstance(ev, SessionOffered):
            self._offered(ev.session)
            return
        chan = self.sessions.get(ev.session)
        if chan is None:
            self._orphan(ev)
            return
        received = _received(ev)
        if received:
            chan.last_message = received
        if isinstance(ev, SessionProgressed):
            if not chan.hung_up:
                chan.progressed(ev.response.status, ev.response.body)
        elif isinstance(ev, SessionAnswered):
            if chan.hung_up:  # answered after our CANCEL: the session sends BYE itself
                return
            chan.answered_remote(ev.response.body)
        elif isinstance(ev, SessionRejected):
            chan.rejected(ev.status)
        elif isinstance(ev, SessionCancelled):
            chan.remote_ended(int(HangupCause.NORMAL_CLEARING))
        elif isinstance(ev, SessionTerminated):
            self.sessions.pop(ev.session, None)
            if ev.remote:
                chan.remote_ended(int(HangupCause.NORMAL_CLEARING))
        elif isinstance(ev, SessionConfirmed):
            chan.acknowledged(ev.ack.body)
        elif isinstance(ev, ReinviteReceived):
            chan.reinvite_received(ev.request.body)
        elif isinstance(ev, ReinviteAnswered):
            chan.reinvite_answered(ev.response.status, ev.response.body)
        elif isinstance(ev, InDialogRequestReceived):
            req = ev.request
            if req.method == "INFO":
                status = chan.info_received(req.content_type or "", req.body)
            else:
                status = 200 if req.method in ("OPTIONS", "UPDATE") else 501
            ev.session.respond(ev.key, req, status, now=self._now())

    def _orphan(self, ev: SessionEvent) -> None:
        now = self._now()
        with suppress(IllegalTransition):
            if isinstance(ev, ReinviteReceived):
                ev.session.answer_reinvite(481, now=now)
            elif isinstance(ev, InDialogRequestReceived):
                ev.session.respond(ev.key, ev.request, 481, now=now)

    def _now(self) -> float:
        assert self.stack is not None
        return self.stack.loop.time()

    # -- incoming calls ------------------------------------------------------------------------

    def _refuse(self, session: Session, response: Response | int, why: str = "") -> None:
        now = self._now()
        if why:
            log.warning("%s", why)
        if isinstance(response, int):
            with suppress(IllegalTransition):
                session.reject(response, now=now)
            return
        assert self.env is not None
        with suppress(IllegalTransition):
            session.ua.endpoint.send_response(session.invite_key, response, now=now)  # type: ignore[arg-type]
            session._move(SessionInput.REJECT)

    def _offered(self, session: Session) -> None:
        env = self.env
        assert env is not None
        req = session.invite
        if not self.pbx.accepting_calls:
            self._refuse(session, 503)
            return
        directory = self._directory()
        env.directory = directory
        auth = directory.authenticate_invite(req, session.origin, now=self.wall_time())
        if auth.decision is not InviteDecision.ACCEPT:
            assert auth.response is not None
            if auth.log:
                log.warning("%s", auth.log)
            self._refuse(session, auth.response)
            return
        context = auth.context or directory.general.context
        uri = req.uri
        exten = uri.user if isinstance(uri, SipUri) and uri.user else "s"
        cid_num, cid_name = _caller_id(req.from_)
        plan = self.pbx.dialplan
        if plan is None or not (
            plan.exists(context, exten, 1, callerid=cid_num or None)
            or plan.match_more(context, exten, callerid=cid_num or None)
        ):
            log.warning(
                "Call from '%s' (%s:%d) to extension '%s' rejected because extension not found "
                "in context '%s'.",
                cid_num,
                *session.origin,
                exten,
                context,
            )
            self._refuse(session, build_response(req, 404, to_tag=session.local_tag))
            return
        try:
            offer = parse_sdp(req.body) if req.body else None
        except SdpError:
            offer = None
        if offer is None and req.body.strip():
            self._refuse(session, 488, f"{req.call_id}: INVITE with an SDP offer it cannot parse")
            return
        peer = auth.peer
        release = None
        if peer is not None:
            release = self.dialer.limits.hold(peer.name, peer.call_limit)
            if release is None:
                why = f"Failed to place call for device {peer.name}, too many calls"
                self._refuse(session, 480, why)
                return
        name, uniqueid = self.namer.next("SIP", peer.name if peer else "guest", self.wall_time())
        chan = SipChannel(env, name, uniqueid, peer=peer, outgoing=False, session=session)
        chan.remote_sdp = offer  # None: late offer, ours goes in the 200 OK
        if release is not None:
            chan.on_end = lambda _chan: release()
        if peer is not None:
            chan.nat_modes = effective_nat(peer.nat, req.top_via, session.origin)
            if NatMode.FORCE_RPORT in chan.nat_modes:
                session.dest = session.origin  # BYE/re-INVITE to the source, not the Contact
        chan.callerid_num, chan.callerid_name = cid_num, cid_name
        chan.context, chan.exten = context, exten
        chan.set_state(ChannelState.RING)
        chan.last_message = "Rx: INVITE"
        self.channels.add(chan)
        self.sessions[session] = chan
        self.pbx.calls_processed += 1
        task = asyncio.get_running_loop().create_task(self._run(chan))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, chan: SipChannel) -> None:
        plan = self.pbx.dialplan
        assert plan is not None
        builder = CdrBuilder(
            channel=chan.name,
            uniqueid=chan.uniqueid,
            start=chan.created,
            clid=_clid(chan.callerid_name, chan.callerid_num),
            src=chan.callerid_num,
            dst=chan.exten,
            dcontext=chan.context,
            accountcode=chan.peer.accountcode if chan.peer else "",
        )
        self._cdrs[chan.name] = builder
        chan.on_answer = lambda c: builder.answered(self.wall_time())

        def on_step(step: Step) -> None:
            chan.app, chan.app_data = step.app, step.args
            chan.context, chan.exten, chan.priority = step.context, step.exten, step.priority
            builder.application(step.app, step.args)
            builder.location(step.exten, step.context)

        variables = dict(chan.peer.setvar) if chan.peer else {}
        chatty = self.pbx.verbosity >= 3
        level = logging.NOTSET if chatty else logging.WARNING
        if plan_log.level != level:
            plan_log.setLevel(level)
        if chatty:
            verbose(log, 3, "    -- Executing %s in [%s] %s", chan.name, chan.context, chan.exten)
        ex = Execution(
            plan,
            chan,
            context=chan.context,
            exten=chan.exten,
            callerid_num=chan.callerid_num,
            callerid_name=chan.callerid_name,
            variables=variables,
            clock=self.wall_time,
            rng=self.rng,
            on_step=on_step,
            logger=plan_log,
        )
        try:
            await ex.run()
        finally:
            status = ex.vars.get("DIALSTATUS")
            if status:
                builder.dial_status(status)
            chan.terminate(ex.hangup_cause or int(HangupCause.NORMAL_CLEARING))
            builder.hangup_cause(chan.hangup_cause)
            self._cdrs.pop(chan.name, None)
            record = builder.ended(self.wall_time())
            if self.cdr is not None:
                try:
                    self.cdr.write(record)
                except Exception as exc:  # a CDR failure never breaks the call path
                    log.error("CDR write failed: %r", exc)

    async def hangup_all(self) -> None:
        """Stop: hang up every channel and wait for the call tasks."""
        for chan in list(self.channels):
            if isinstance(chan, SipChannel):
                chan.terminate(int(HangupCause.NORMAL_CLEARING))
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=2.0)
        # let the BYEs be answered (or retransmitted) before the stack closes
        deadline = asyncio.get_running_loop().time() + BYE_WAIT
        while self.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)


def _received(ev: SessionEvent) -> str:
    """``Rx: METHOD`` for the events a request from the far end makes (chan_sip's lastmsg)."""
    if isinstance(ev, InDialogRequestReceived):
        return f"Rx: {ev.request.method}"
    if isinstance(ev, ReinviteReceived):
        return "Rx: INVITE"
    if isinstance(ev, SessionConfirmed):
        return "Rx: ACK"
    if isinstance(ev, SessionCancelled):
        return "Rx: CANCEL"
    if isinstance(ev, SessionTerminated) and ev.remote:
        return "Rx: BYE"
    return ""


def _directory_of(service: object) -> Callable[[], PeerDirectory]:
    def get() -> PeerDirectory:
        directory = getattr(service, "directory", None)
        if not isinstance(directory, PeerDirectory):
            raise RuntimeError("the SIP service has no peer directory")
        return directory

    return get


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _caller_id(from_: NameAddr) -> tuple[str, str]:
    uri = from_.uri
    num = uri.user if isinstance(uri, SipUri) and uri.user else ""
    return num, (from_.display or "")


def _clid(name: str, num: str) -> str:
    return f'"{name}" <{num}>' if name else (f"<{num}>" if num else "")


# ---------------------------------------------------------------- the service


class CallService:
    """Attaches the call layer to the SIP service's stack (waits for it to be up)."""

    name = "calls"

    def __init__(self) -> None:
        self.manager: CallManager | None = None
        self._waiter: asyncio.Task[None] | None = None
        self.cdr: CdrStore | None = None

    async def start(self, pbx: Pbx) -> None:
        datadir = pbx.dirs.datadir
        datadir.mkdir(parents=True, exist_ok=True)
        self.cdr = CdrStore(SqliteBackend.in_dir(datadir), [CsvBackend.in_dir(datadir)])
        pbx.cdr_store = self.cdr
        self._waiter = asyncio.get_running_loop().create_task(self._attach(pbx))

    async def _attach(self, pbx: Pbx) -> None:
        for _ in range(600):
            sip = next((s for s in pbx.services if getattr(s, "name", "") == "sip"), None)
            stack = getattr(sip, "stack", None)
            if isinstance(stack, SipStack) and stack.endpoints and sip is not None:
                manager = CallManager(
                    pbx,
                    directory=_directory_of(sip),
                    rtp=pbx.rtp,
                    cdr=self.cdr,
                )
                manager.attach(stack)
                pbx.call_handler = manager
                self.manager = manager
                log.info("call layer attached to the SIP stack on %s", stack.local_addr)
                return
            await asyncio.sleep(0.05)
        log.error("call layer: no SIP service came up; calls are refused")

    async def stop(self) -> None:
        if self._waiter is not None:
            self._waiter.cancel()
        if self.manager is not None:
            await self.manager.hangup_all()
            if self.manager.env is not None:
                totals = self.manager.env.relayed
                verbose(
                    log,
                    0,
                    "RTP relay totals: legs=%d packets_in=%d (fast path %d) packets_out=%d "
                    "dropped=%d",
                    totals.get("legs", 0),
                    totals.get("packets_in", 0),
                    totals.get("fast_in", 0),
                    totals.get("packets_out", 0),
                    totals.get("dropped", 0),
                )
        if self.cdr is not None:
            self.cdr.close()

    def describe(self) -> list[str]:
        return ["Calls: SIP channels, RTP relay, CDR (sqlite + Master.csv)"]

    async def reload(self, config: ConfigSet) -> list[str]:
        if self.manager is None or config.rtp is None:
            return []
        return self.manager.adopt_rtp(config.rtp)


@register_service
def _calls(pbx: Pbx) -> CallService | None:
    return CallService() if pbx.sip is not None else None
