"""Loopback harness for call tests: a PBX (SipService + CallService) and scripted phones.

Each phone is a SipStack with a UserAgent on its own loopback address and one RTP socket;
it records session events and RTP it receives, so tests can assert signalling and relaying.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from pypbx.call.manager import CallService
from pypbx.cdr.record import Cdr
from pypbx.cdr.sqlite import SqliteBackend
from pypbx.check import load_config_dir
from pypbx.server import Pbx
from pypbx.sip.events import ReinviteReceived, SessionEvent, SessionOffered, SessionProgressed
from pypbx.sip.sdp import build_answer, build_offer, parse_sdp
from pypbx.sip.session import Session
from pypbx.sip.useragent import UserAgent
from pypbx.sipservice import SipService
from pypbx.transport.stack import SipStack, StackConfig

SDP = "application/sdp"


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def rtp_packet(seq: int, payload: bytes = b"\xff" * 160, pt: int = 0, ssrc: int = 7) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, seq * 160, ssrc) + payload


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[tuple[bytes, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((data, addr))


@dataclass
class Phone:
    """A scripted SIP phone: ``answer`` decides what it does with an incoming INVITE."""

    ip: str
    port: int = 0
    answer: str = "200"  # "200", "486", "ring" (180 then wait), "183" (early media then 200)
    stack: SipStack | None = None
    rtp: _Rtp = field(default_factory=_Rtp)
    rtp_port: int = 0
    events: list[SessionEvent] = field(default_factory=list)
    incoming: list[Session] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self.port = self.port or free_port(self.ip)
        contact = f"<sip:phone@{self.ip}:{self.port}>"
        self.stack = SipStack(
            StackConfig(bindaddr=self.ip, bindport=self.port),
            rng=random.Random(hash(self.ip)),
            ua_factory=lambda ep: UserAgent(ep, contact=contact),
            session_handler=self._on,
        )
        await self.stack.start()
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self.rtp, local_addr=(self.ip, 0))
        assert self.rtp.transport is not None
        self.rtp_port = self.rtp.transport.get_extra_info("sockname")[1]

    @property
    def ua(self) -> UserAgent:
        assert self.stack is not None
        return self.stack.uas["UDP"]

    def now(self) -> float:
        assert self.stack is not None
        return self.stack.loop.time()

    def offer(self, allowed: tuple[str, ...] = ("ulaw",)) -> bytes:
        return build_offer(self.ip, self.rtp_port, allowed, session_id=1, version=1).to_bytes()

    def _on(self, stack: SipStack, ev: SessionEvent) -> None:
        self.events.append(ev)
        self.changed.set()
        if isinstance(ev, SessionOffered):
            self.incoming.append(ev.session)
            offer = parse_sdp(ev.request.body)
            body = build_answer(
                offer, self.ip, self.rtp_port, ("ulaw", "alaw"), session_id=2, version=1
            ).to_bytes()
            now = self.now()
            if self.answer == "200":
                ev.session.ring(now=now)
                ev.session.answer(body=body, content_type=SDP, now=now)
            elif self.answer == "183":
                ev.session.ring(status=183, body=body, content_type=SDP, now=now)
            elif self.answer == "ring":
                ev.session.ring(now=now)
            else:
                ev.session.reject(int(self.answer), now=now)
        elif isinstance(ev, ReinviteReceived):
            offer = parse_sdp(ev.request.body)
            body = build_answer(
                offer, self.ip, self.rtp_port, ("ulaw", "alaw"), session_id=2, version=2
            ).to_bytes()
            ev.session.answer_reinvite(200, body=body, content_type=SDP, now=self.now())

    async def wait_for(
        self,
        kind: type,
        timeout: float = 5.0,
        where: Callable[[SessionEvent], bool] = lambda ev: True,
    ) -> SessionEvent:
        async def find() -> SessionEvent:
            while True:
                for ev in self.events:
                    if isinstance(ev, kind) and where(ev):
                        return ev
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def early_media(self, timeout: float = 5.0) -> SessionProgressed:
        """The first 183 this party received."""
        ev = await self.wait_for(
            SessionProgressed,
            timeout,
            lambda ev: isinstance(ev, SessionProgressed) and ev.response.status == 183,
        )
        assert isinstance(ev, SessionProgressed)
        return ev

    def send_rtp(self, dest: tuple[str, int], count: int, pt: int = 0) -> None:
        assert self.rtp.transport is not None
        for i in range(count):
            self.rtp.transport.sendto(rtp_packet(i + 1, pt=pt), dest)

    async def close(self) -> None:
        if self.rtp.transport is not None:
            self.rtp.transport.close()
        if self.stack is not None:
            await self.stack.close()


SIP_CONF = """[general]
bindaddr=127.0.0.1
bindport={port}
context=guests
disallow=all
allow=ulaw
{general_extra}

[1000]
type=friend
host=127.0.0.31
port={caller_port}
secret=pw1000
context=internal
disallow=all
allow=ulaw

[trunk]
type=peer
host=127.0.0.32
port={trunk_port}
insecure=port,invite
context=from-trunk
fromuser=acct1
username=acct1
secret=trunksecret
disallow=all
allow=ulaw
{trunk_extra}

[2000]
type=friend
host=127.0.0.33
port={callee2_port}
context=internal
disallow=all
allow=ulaw,alaw
"""

EXTENSIONS = """[internal]
exten => _1NXXNXXXXXX,1,Dial(SIP/trunk/${{EXTEN}},{timeout})
same => n,Set(RESULT=${{DIALSTATUS}})
same => n,Hangup(17)
exten => 2000,1,Dial(SIP/2000,{timeout})
exten => 3000,1,Dial(SIP/trunk/18005550000&SIP/2000,{timeout})

[from-trunk]
exten => 18182223333,1,Dial(SIP/1000,{timeout})

[guests]
exten => 18002223333,1,Dial(SIP/trunk/${{EXTEN}})
"""


@dataclass
class Bed:
    pbx: Pbx
    port: int
    caller: Phone
    trunk: Phone
    callee2: Phone
    service: CallService

    @property
    def addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


Body = Callable[[Bed], Awaitable[None]]


def run_bed(
    tmp_path: Path,
    body: Body,
    *,
    trunk_answer: str = "200",
    callee2_answer: str = "200",
    timeout: int = 5,
    limit: float = 15.0,
    trunk_extra: str = "",
    general_extra: str = "",
    rtp_range: tuple[int, int] = (30000, 30999),
) -> Bed:
    """Start the PBX and three phones (1000 at .31, the trunk at .32, 2000 at .33), run
    ``body``, stop everything; returns the bed for after-the-fact assertions."""
    port = free_port("127.0.0.1")
    caller = Phone("127.0.0.31")
    trunk = Phone("127.0.0.32", answer=trunk_answer)
    callee2 = Phone("127.0.0.33", answer=callee2_answer)
    caller.port, trunk.port, callee2.port = (free_port(p.ip) for p in (caller, trunk, callee2))
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "sip.conf").write_text(
        SIP_CONF.format(
            port=port,
            caller_port=caller.port,
            trunk_port=trunk.port,
            callee2_port=callee2.port,
            trunk_extra=trunk_extra,
            general_extra=general_extra,
        )
    )
    (tmp_path / "extensions.conf").write_text(EXTENSIONS.format(timeout=timeout))
    (tmp_path / "rtp.conf").write_text(
        f"[general]\nrtpstart={rtp_range[0]}\nrtpend={rtp_range[1]}\n"
    )
    pbx = Pbx(load_config_dir(tmp_path))
    pbx.dirs.datadir.mkdir(parents=True, exist_ok=True)
    holder: list[Bed] = []

    async def main() -> None:
        for phone in (caller, trunk, callee2):
            phone.changed = asyncio.Event()
        sip = SipService(rng=random.Random(3))
        pbx.services.append(sip)
        await sip.start(pbx)
        calls = CallService()
        await calls.start(pbx)
        for phone in (caller, trunk, callee2):
            await phone.start()
        for _ in range(100):
            if calls.manager is not None:
                break
            await asyncio.sleep(0.01)
        bed = Bed(pbx, port, caller, trunk, callee2, calls)
        holder.append(bed)
        try:
            await asyncio.wait_for(body(bed), limit)
        finally:
            for phone in (caller, trunk, callee2):
                await phone.close()
            await calls.stop()
            await sip.stop()

    asyncio.run(main())
    return holder[0]


def last_cdr(bed: Bed) -> Cdr:
    """The newest record in the PBX's SQLite CDR table (read after the PBX stopped)."""
    db = SqliteBackend.in_dir(bed.pbx.dirs.datadir)
    try:
        (cdr,) = db.last(1)
        return cdr
    finally:
        db.close()
