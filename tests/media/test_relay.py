"""The RTP relay on loopback: two fake endpoints exchange packets through two legs.

Each test runs on plain asyncio and on uvloop when installed. Waits are bounded by timeouts.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Coroutine
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from pypbx.call.sip_env import media_address
from pypbx.config.rtpconf import StrictRtp
from pypbx.media import audio, dtmf, rtp
from pypbx.media.codecs import route_between
from pypbx.media.ports import PortAllocator
from pypbx.media.relay import LegOptions, Relay, RelayLeg, SourceState
from pypbx.media.rtp import RtpPacket
from pypbx.sip.events import (
    Addr,
    InDialogRequestReceived,
    ReinviteAnswered,
    ReinviteReceived,
    SessionAnswered,
    SessionOffered,
    SessionTerminated,
)
from pypbx.sip.sdp import Codec, parse_sdp
from pypbx.sip.session import Session
from tests.call.loopback import Bed, Phone, rtp_packet, run_bed
from tests.call.test_limits import call

BASE = 24000 + (os.getpid() % 80) * 100  # 80 ports per run, below the ephemeral range
LOOPS = ["asyncio"]
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the test extra
    HAVE_UVLOOP = False
else:
    HAVE_UVLOOP = True
    LOOPS.append("uvloop")

WAIT = 2.0  # upper bound for a packet to cross loopback
QUIET = 0.05  # how long "nothing arrives" is watched


def run(loop_name: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if loop_name == "uvloop":
        assert HAVE_UVLOOP
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())


class Endpoint(asyncio.DatagramProtocol):
    """A fake phone: a UDP socket that records what it receives."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.addr: tuple[str, int] = ("", 0)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, addr))

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, ("127.0.0.1", port))

    async def recv(self) -> tuple[bytes, Any]:
        return await asyncio.wait_for(self.queue.get(), WAIT)

    async def quiet(self) -> None:
        await asyncio.sleep(QUIET)
        assert self.queue.empty(), f"unexpected packet {self.queue.get_nowait()!r}"

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def endpoint(host: str = "127.0.0.1", port: int = 0) -> Endpoint:
    loop = asyncio.get_running_loop()
    ep = Endpoint()
    transport, _ = await loop.create_datagram_endpoint(lambda: ep, local_addr=(host, port))
    ep.transport = transport
    ep.addr = transport.get_extra_info("sockname")[:2]
    return ep


def pkt(
    seq: int, pt: int = 0, ssrc: int = 0x1111, payload: bytes = b"\xff" * 160, m: bool = False
) -> bytes:
    return RtpPacket(pt, seq, seq * 160, ssrc, payload, marker=m).to_bytes()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def make_leg(alloc: PortAllocator, **kw: Any) -> RelayLeg:
    leg = RelayLeg(alloc.allocate(), on_close=alloc.release, **kw)
    await leg.open()
    return leg


async def bridged_call(bed: Bed, offer: bytes | None) -> tuple[Session, Addr, Addr, str]:
    """1000 calls the trunk (with ``offer`` as its SDP, else the phone's own) and both answer:
    the session, where the caller and the trunk send RTP to pypbx, and the offer the trunk got."""
    caller, trunk = bed.caller, bed.trunk
    session = call(bed, "18005551234", body=offer) if offer else call(bed, "18005551234")
    answered = await caller.wait_for(SessionAnswered, where=lambda ev: ev.session is session)
    offered = await trunk.wait_for(SessionOffered)
    assert isinstance(answered, SessionAnswered)
    assert isinstance(offered, SessionOffered)
    to_caller_leg = media_address(parse_sdp(answered.response.body))
    to_trunk_leg = media_address(parse_sdp(offered.request.body))
    assert to_caller_leg is not None
    assert to_trunk_leg is not None
    assert caller.rtp.transport is not None
    assert trunk.rtp.transport is not None
    return session, to_caller_leg, to_trunk_leg, offered.request.body.decode()


def send_events(phone: Phone, train: list[Any], pt: int, dest: Addr) -> None:
    """One digit's RFC 4733 packets (a :func:`dtmf.digit_packets` train) from ``phone``."""
    assert phone.rtp.transport is not None
    for j, planned in enumerate(train):
        packet = RtpPacket(pt, 10 + j, planned.timestamp, 7, planned.payload, marker=planned.marker)
        phone.rtp.transport.sendto(packet.to_bytes(), dest)


async def hang_up(bed: Bed, session: Session) -> None:
    """The caller sends BYE; back once the trunk's leg has ended too."""
    session.bye(now=bed.caller.now())
    assert bed.caller.stack is not None
    bed.caller.stack.flush()
    await bed.trunk.wait_for(SessionTerminated)


def allocator(offset: int) -> PortAllocator:
    return PortAllocator(BASE + offset, BASE + offset + 7, "127.0.0.1")


@pytest.mark.parametrize("loop_name", LOOPS)
def test_forwarding_is_symmetric_and_counted(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(0)
        a_phone, b_phone = await endpoint(), await endpoint()
        a = await make_leg(alloc, remote=a_phone.addr)
        b = await make_leg(alloc, remote=b_phone.addr)
        relay = Relay(a, b)
        a_phone.send(pkt(1, m=True), a.port)
        data, addr = await b_phone.recv()
        assert data == pkt(1, m=True)
        assert addr == ("127.0.0.1", b.port)  # sent from the port B sends to
        b_phone.send(pkt(7, ssrc=2), b.port)
        data, addr = await a_phone.recv()
        assert (rtp.sequence_of(data), addr) == (7, ("127.0.0.1", a.port))
        size = len(pkt(1))
        sa, sb = a.stats(), b.stats()
        assert (sa.packets_in, sa.bytes_in, sa.packets_out, sa.bytes_out) == (1, size, 1, size)
        assert (sb.packets_in, sb.packets_out) == (1, 1)
        assert a.source == a_phone.addr  # the SDP address is accepted at once
        assert a.source_state(time.monotonic()) is SourceState.LEARNING
        assert a.source_state(time.monotonic() + 6) is SourceState.LOCKED
        relay.close()
        assert alloc.in_use == 0
        a_phone.close()
        b_phone.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_latching_learns_the_real_source(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(8)
        a_phone, b_phone = await endpoint(), await endpoint()
        # A is behind NAT: its SDP says 192.0.2.10:4000, but packets come from a_phone.
        a = await make_leg(
            alloc,
            remote=("192.0.2.10", 4000),
            options=LegOptions(latch=True, strict=StrictRtp.YES, probation=3),
        )
        b = await make_leg(alloc, remote=b_phone.addr)
        relay = Relay(a, b)
        for seq in (10, 11):
            a_phone.send(pkt(seq), a.port)
        await b_phone.quiet()  # on probation: dropped
        assert a.stats().dropped_learning == 2
        assert a.remote == ("192.0.2.10", 4000)
        a_phone.send(pkt(12), a.port)
        data, _ = await b_phone.recv()
        assert rtp.sequence_of(data) == 12
        assert a.remote == a_phone.addr
        assert a.remote_rtcp == (a_phone.addr[0], a_phone.addr[1] + 1)
        b_phone.send(pkt(1), b.port)
        data, addr = await a_phone.recv()  # B's audio now reaches A's real address
        assert addr == ("127.0.0.1", a.port)
        relay.close()
        a_phone.close()
        b_phone.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_strict_rtp_drops_a_third_party(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(16)
        clock = Clock()
        a_phone, b_phone = await endpoint(), await endpoint()
        intruder = await endpoint("127.0.0.3")
        opts = LegOptions(latch=True, strict=StrictRtp.YES, probation=2)
        a = await make_leg(alloc, options=opts, clock=clock)
        b = await make_leg(alloc, remote=b_phone.addr)
        relay = Relay(a, b)
        for seq in (1, 2):
            a_phone.send(pkt(seq), a.port)
        await b_phone.recv()
        clock.now += 5.0  # the learning window is over: the source is locked
        assert a.source_state(clock.now) is SourceState.LOCKED
        for seq in range(3, 13):
            intruder.send(pkt(seq, ssrc=0x6666), a.port)
        a_phone.send(pkt(3), a.port)
        data, _ = await b_phone.recv()
        assert rtp.ssrc_of(data) == 0x1111
        await b_phone.quiet()
        assert a.stats().dropped_strict == 10
        assert a.remote == a_phone.addr  # not stolen
        intruder.send(b"\x80\xc9\x00\x01" + b"\0" * 4, a.port + 1)  # RTCP from another host
        await asyncio.sleep(QUIET)
        assert a.stats().rtcp_in == 0
        # After an SDP change the leg learns again, and the newcomer can pass probation.
        a.relearn()
        assert a.source_state(clock.now) is SourceState.LEARNING
        for seq in (20, 21):
            intruder.send(pkt(seq, ssrc=0x6666), a.port)
        data, _ = await b_phone.recv()
        assert rtp.ssrc_of(data) == 0x6666
        assert a.remote == intruder.addr
        relay.close()
        for ep in (a_phone, b_phone, intruder):
            ep.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_learning_window_lets_a_qualified_source_take_over(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(72)
        clock = Clock()
        first, second = await endpoint(), await endpoint("127.0.0.2")
        leg = await make_leg(
            alloc,
            remote=("192.0.2.1", 7078),  # the SDP address: nobody sends from there
            options=LegOptions(latch=True, strict=StrictRtp.YES, probation=3),
            clock=clock,
        )
        got: list[bytes] = []
        leg.sink = got.append
        for seq in (1, 2, 3):
            first.send(pkt(seq), leg.port)
        for seq in (50, 52, 53):  # not consecutive: 52 restarts probation
            second.send(pkt(seq, ssrc=2), leg.port)
        clock.now += 4.9
        second.send(pkt(54, ssrc=2), leg.port)  # third in a row, still in the window
        first.send(pkt(4), leg.port)  # the old source is no longer the accepted one
        await asyncio.sleep(QUIET * 2)
        assert [rtp.sequence_of(d) for d in got] == [3, 54]
        assert leg.source == second.addr
        assert leg.remote == second.addr
        assert leg.stats().dropped_learning == 2 + 3 + 1
        leg.close()
        first.close()
        second.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_strict_no_follows_and_seqno_locks(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(24)
        clock = Clock()
        p1, p2, b_phone = await endpoint(), await endpoint("127.0.0.2"), await endpoint()
        a = await make_leg(alloc, options=LegOptions(latch=True, strict=StrictRtp.NO))
        b = await make_leg(alloc, remote=b_phone.addr)
        seqno = LegOptions(latch=True, strict=StrictRtp.SEQNO, probation=2)
        c = await make_leg(alloc, options=seqno, clock=clock)
        relay = Relay(a, b)
        p1.send(pkt(1), a.port)
        await b_phone.recv()
        p2.send(pkt(2, ssrc=9), a.port)  # strictrtp=no: anyone, and the latch follows
        await b_phone.recv()
        assert a.remote == p2.addr
        assert a.source_state(clock.now + 100) is SourceState.OPEN
        relay.unjoin()
        got: list[bytes] = []
        c.sink = got.append
        for seq in (1, 2):
            p1.send(pkt(seq, ssrc=5), c.port)
        await asyncio.sleep(QUIET)
        clock.now += 5.0
        for seq in (3, 4):  # the same stream moved (NAT rebinding) after the lock: dropped
            p2.send(pkt(seq, ssrc=5), c.port)
        await asyncio.sleep(QUIET)
        assert [rtp.sequence_of(d) for d in got] == [2]
        assert c.remote == p1.addr
        assert c.stats().dropped_strict == 2
        for leg in (a, b, c):
            leg.close()
        assert alloc.in_use == 0
        for ep in (p1, p2, b_phone):
            ep.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_payload_type_rewrite(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(32)
        a_phone, b_phone = await endpoint(), await endpoint()
        a = await make_leg(alloc, remote=a_phone.addr)
        b = await make_leg(alloc, remote=b_phone.addr)
        a_codecs = [Codec(0, "PCMU", 8000), Codec(101, "telephone-event", 8000)]
        b_codecs = [Codec(0, "PCMU", 8000), Codec(96, "telephone-event", 8000)]
        relay = Relay(
            a, b, a_to_b=route_between(a_codecs, b_codecs), b_to_a=route_between(b_codecs, a_codecs)
        )
        event = bytes.fromhex("058a0320")
        a_phone.send(pkt(1, pt=101, payload=event, m=True), a.port)
        data, _ = await b_phone.recv()
        parsed = rtp.parse_rtp(data)
        assert (parsed.payload_type, parsed.marker, parsed.payload) == (96, True, event)
        a_phone.send(pkt(2, pt=0), a.port)
        assert (await b_phone.recv())[0] == pkt(2, pt=0)  # audio untouched
        b_phone.send(pkt(3, pt=96, payload=event), b.port)
        data, _ = await a_phone.recv()
        assert rtp.payload_type_of(data) == 101
        relay.close()
        a_phone.close()
        b_phone.close()

    run(loop_name, main)


def _dominant(samples: list[int]) -> int:
    return max(range(300, 3500, 50), key=lambda f: audio.goertzel_power(samples, f))


@pytest.mark.parametrize("loop_name", LOOPS)
def test_pcmu_to_pcma_transcoding_keeps_the_tone(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(40)
        a_phone, b_phone = await endpoint(), await endpoint()
        a = await make_leg(alloc, remote=a_phone.addr)
        b = await make_leg(alloc, remote=b_phone.addr)
        pcmu, pcma = [Codec(0, "PCMU", 8000)], [Codec(8, "PCMA", 8000)]
        relay = Relay(a, b, a_to_b=route_between(pcmu, pcma), b_to_a=route_between(pcma, pcmu))
        tone = audio.tone_frames([1000.0], amplitude=8000)
        sent = [audio.ulaw_encode(f) for f in islice(tone, 5)]
        for seq, frame in enumerate(sent):
            a_phone.send(pkt(seq, pt=0, payload=frame), a.port)
        received = [rtp.parse_rtp((await b_phone.recv())[0]) for _ in sent]
        assert {p.payload_type for p in received} == {8}
        samples = audio.samples_of(b"".join(p.payload for p in received), audio.Encoding.ALAW)
        assert _dominant(samples) == 1000
        assert received[0].payload == sent[0].translate(audio.ULAW_TO_ALAW)
        # padded packet: the padding octets are left alone
        padded = RtpPacket(0, 9, 0, 1, b"\xff" * 4, padding=4).to_bytes()
        a_phone.send(padded, a.port)
        out = rtp.parse_rtp((await b_phone.recv())[0])
        assert (out.payload, out.padding) == (b"\xd5" * 4, 4)
        relay.close()
        a_phone.close()
        b_phone.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_rtcp_is_relayed_between_odd_ports(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(48)
        a_phone, b_phone = await endpoint(), await endpoint()
        b_rtcp = await endpoint(port=b_phone.addr[1] + 1) if b_phone.addr[1] % 2 == 0 else None
        if b_rtcp is None:  # the kernel gave an odd port: put RTCP on an explicit address
            b_rtcp = await endpoint()
        a = await make_leg(alloc, remote=a_phone.addr)
        b = await make_leg(alloc, remote=b_phone.addr, remote_rtcp=b_rtcp.addr)
        relay = Relay(a, b)
        report = b"\x80\xc9\x00\x01" + b"\0\0\0\x01"
        a_phone.send(report, a.port + 1)
        data, addr = await b_rtcp.recv()
        assert (data, addr) == (report, ("127.0.0.1", b.port + 1))
        assert (a.stats().rtcp_in, b.stats().rtcp_out) == (1, 1)
        relay.close()
        for ep in (a_phone, b_phone, b_rtcp):
            ep.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_idle_time_and_unroutable(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(56)
        clock = Clock()
        a_phone = await endpoint()
        a = await make_leg(alloc, remote=a_phone.addr, clock=clock)
        b = await make_leg(alloc)  # no remote yet: nowhere to send
        relay = Relay(a, b)
        clock.now = 130.0
        assert a.idle_for(clock.now) == 30.0
        a_phone.send(pkt(1), a.port)
        for _ in range(100):
            if a.stats().packets_in:
                break
            await asyncio.sleep(0.01)
        assert a.idle_for(131.5) == 1.5
        assert a.stats().dropped_unroutable == 1
        relay.close()
        a_phone.close()

    run(loop_name, main)


def _free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        return False
    finally:
        s.close()
    return True


@pytest.mark.parametrize("loop_name", LOOPS)
def test_close_releases_ports_at_once(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(64)
        a = await make_leg(alloc)
        port = a.port
        assert not _free(port)
        a.close()
        a.close()
        assert alloc.in_use == 0
        # asyncio frees the ports synchronously; uvloop closes its handle on the next
        # loop iteration (the socket's fd is shared with libuv), never later.
        for _ in range(3):
            if _free(port) and _free(port + 1):
                break
            assert loop_name == "uvloop"
            await asyncio.sleep(0)
        assert _free(port)
        assert _free(port + 1)

    run(loop_name, main)


# --- through a real call: pypbx's bridge picks the routes from both legs' SDPs -------------

CALLER_OFFER_EV96 = (
    "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)


def test_call_transcodes_pcmu_to_pcma_and_renumbers_dtmf_events(tmp_path: Path) -> None:
    """Caller (PCMU, events as 96) → pypbx → trunk allowing only alaw (events as 101):
    the trunk hears A-law of the caller's µ-law tone, and each RFC 4733 packet arrives with
    the trunk's number and the same payload, marker and timestamp; and the reverse."""
    seen: dict[str, Any] = {}
    tone = [audio.ulaw_encode(f) for f in islice(audio.tone_frames([440.0]), 5)]
    back = [audio.alaw_encode(f) for f in islice(audio.tone_frames([1000.0]), 5)]
    digit = dtmf.digit_packets("5", timestamp=800)

    async def body(bed: Bed) -> None:
        caller, trunk = bed.caller, bed.trunk
        offer = CALLER_OFFER_EV96.format(ip=caller.ip, port=caller.rtp_port).encode()
        session, to_caller_leg, to_trunk_leg, seen["offer_to_trunk"] = await bridged_call(
            bed, offer
        )
        for i, payload in enumerate(tone):
            caller.rtp.transport.sendto(rtp_packet(i + 1, payload, pt=0), to_caller_leg)
        send_events(caller, digit, 96, to_caller_leg)
        for i, payload in enumerate(back):
            trunk.rtp.transport.sendto(rtp_packet(i + 1, payload, pt=8), to_trunk_leg)
        packet = RtpPacket(101, 50, 1600, 9, digit[0].payload, marker=True)
        trunk.rtp.transport.sendto(packet.to_bytes(), to_trunk_leg)
        want = len(tone) + len(digit)
        for _ in range(200):
            if len(trunk.rtp.received) >= want and len(caller.rtp.received) >= len(back) + 1:
                break
            await asyncio.sleep(0.01)
        seen["at_trunk"] = [rtp.parse_rtp(d) for d, _ in trunk.rtp.received]
        seen["at_caller"] = [rtp.parse_rtp(d) for d, _ in caller.rtp.received]
        await hang_up(bed, session)

    run_bed(tmp_path, body, trunk_extra="disallow=all\nallow=alaw", rtp_range=(BASE, BASE + 79))
    assert "RTP/AVP 8 101" in seen["offer_to_trunk"]
    at_trunk: list[RtpPacket] = seen["at_trunk"]
    audio_in = [p for p in at_trunk if p.payload_type == 8]
    events_in = [p for p in at_trunk if p.payload_type == 101]
    assert [p.payload for p in audio_in] == [t.translate(audio.ULAW_TO_ALAW) for t in tone]
    assert not [p for p in at_trunk if p.payload_type not in (8, 101)]
    assert [(p.payload, p.marker, p.timestamp) for p in events_in] == [
        (d.payload, d.marker, d.timestamp) for d in digit
    ]
    at_caller: list[RtpPacket] = seen["at_caller"]
    assert [p.payload for p in at_caller if p.payload_type == 0] == [
        b.translate(audio.ALAW_TO_ULAW) for b in back
    ]
    assert [(p.payload_type, p.marker) for p in at_caller if p.payload_type != 0] == [(96, True)]


TRUNK_REOFFER_EV97 = (
    "v=0\r\no=- 2 2 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 8 97\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:97 telephone-event/8000\r\na=fmtp:97 0-16\r\na=sendrecv\r\n"
)


def test_reinvite_renumbering_events_updates_the_routes(tmp_path: Path) -> None:
    """Mid-call the trunk re-offers with telephone-event as 97; pypbx passes the re-offer to
    the caller (who now answers events as 101). The bridge notices the new SDPs: the trunk's
    97 events reach the caller as 101 (before: 101 → 96)."""
    seen: dict[str, Any] = {}

    async def body(bed: Bed) -> None:
        caller, trunk = bed.caller, bed.trunk
        offer = CALLER_OFFER_EV96.format(ip=caller.ip, port=caller.rtp_port).encode()
        session = call(bed, "18005551234", body=offer)
        await caller.wait_for(SessionAnswered, where=lambda ev: ev.session is session)
        offered = await trunk.wait_for(SessionOffered)
        assert isinstance(offered, SessionOffered)
        to_trunk_leg = media_address(parse_sdp(offered.request.body))
        assert to_trunk_leg is not None
        assert trunk.rtp.transport is not None
        event = dtmf.TelephoneEvent(dtmf.event_of("7"), duration=160).to_bytes()
        trunk.rtp.transport.sendto(rtp_packet(1, event, pt=101), to_trunk_leg)
        for _ in range(200):
            if caller.rtp.received:
                break
            await asyncio.sleep(0.01)
        seen["before"] = [rtp.parse_rtp(d).payload_type for d, _ in caller.rtp.received]
        caller.rtp.received.clear()
        reoffer = TRUNK_REOFFER_EV97.format(ip=trunk.ip, port=trunk.rtp_port).encode()
        trunk.incoming[0].reinvite(body=reoffer, content_type="application/sdp", now=trunk.now())
        assert trunk.stack is not None
        trunk.stack.flush()
        await trunk.wait_for(ReinviteAnswered)
        await caller.wait_for(ReinviteReceived)
        for seq in range(2, 300):  # until the bridge has looked at the new SDPs (<= 1 s)
            trunk.rtp.transport.sendto(rtp_packet(seq, event, pt=97), to_trunk_leg)
            await asyncio.sleep(0.01)
            got = [rtp.parse_rtp(d).payload_type for d, _ in caller.rtp.received]
            if 101 in got:
                break
        seen["after"] = [rtp.parse_rtp(d).payload_type for d, _ in caller.rtp.received]
        await hang_up(bed, session)

    run_bed(tmp_path, body, trunk_extra="disallow=all\nallow=alaw", rtp_range=(BASE, BASE + 79))
    assert seen["before"] == [96]
    after: list[int] = seen["after"]
    assert after[-1] == 101, after
    assert set(after) <= {97, 101}, after  # 97 passed unchanged only until the refresh


# --- taps: packets of one payload type seen (and maybe consumed) before they are relayed -------


@pytest.mark.parametrize("loop_name", LOOPS)
def test_tap_consumes_or_watches_one_payload_type(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(80)
        a_phone, b_phone = await endpoint(), await endpoint()
        a = await make_leg(alloc, remote=a_phone.addr)
        b = await make_leg(alloc, remote=b_phone.addr)
        relay = Relay(a, b)
        seen: list[int] = []

        def take_events(data: bytes) -> bool:
            seen.append(rtp.sequence_of(data))
            return True

        assert a.tapped is None
        a.set_tap(take_events, 101)
        assert a.tapped == 101
        a_phone.send(pkt(1, pt=101), a.port)  # consumed
        a_phone.send(pkt(2, pt=0), a.port)  # another type: relayed, tap not called
        data, _ = await b_phone.recv()
        assert rtp.sequence_of(data) == 2
        await b_phone.quiet()
        assert seen == [1]
        assert a.stats().packets_in == 2  # a consumed packet was still accepted and counted

        def watch(data: bytes) -> bool:
            seen.append(rtp.sequence_of(data))
            return False

        a.set_tap(watch, 0)
        a_phone.send(pkt(3, pt=0), a.port)  # watched, relayed as ever
        data, _ = await b_phone.recv()
        assert (rtp.sequence_of(data), seen) == (3, [1, 3])

        relay.unjoin()  # unbridged: the tap still runs before the sink
        sunk: list[int] = []
        a.sink = lambda d: sunk.append(rtp.sequence_of(d))
        a.set_tap(take_events, 101)
        a_phone.send(pkt(4, pt=101), a.port)
        a_phone.send(pkt(5, pt=0), a.port)
        for _ in range(200):
            if sunk:
                break
            await asyncio.sleep(0.005)
        assert (seen[-1], sunk) == (4, [5])

        a.clear_tap()
        assert a.tapped is None
        relay = Relay(a, b)
        a_phone.send(pkt(6, pt=101), a.port)  # no tap: relayed
        data, _ = await b_phone.recv()
        assert rtp.sequence_of(data) == 6
        assert seen[-1] == 4
        relay.close()
        a_phone.close()
        b_phone.close()

    run(loop_name, main)


def test_dtmf_from_rfc4733_caller_reaches_info_trunk_as_info(tmp_path: Path) -> None:
    """Phone 1000 (RFC 4733 events on 101) → pypbx → a ``dtmfmode=info`` trunk: the offer
    to the trunk has no telephone-event and the caller's ``5`` arrives as an INFO
    ``Signal=5`` with the key's duration; the events are not relayed."""
    seen: dict[str, Any] = {}
    digit = dtmf.digit_packets("5", timestamp=800, duration=0.2)

    async def body(bed: Bed) -> None:
        caller, trunk = bed.caller, bed.trunk
        session, to_caller_leg, _, seen["offer_to_trunk"] = await bridged_call(bed, None)
        for _ in range(100):  # until the bridge stands (the caller's audio reaches the trunk)
            caller.rtp.transport.sendto(rtp_packet(1, pt=0), to_caller_leg)
            await asyncio.sleep(0.01)
            if trunk.rtp.received:
                break
        send_events(caller, digit, 101, to_caller_leg)
        info = await trunk.wait_for(
            InDialogRequestReceived,
            where=lambda ev: (
                isinstance(ev, InDialogRequestReceived) and ev.request.method == "INFO"
            ),
        )
        assert isinstance(info, InDialogRequestReceived)
        seen["info"] = info.request
        seen["at_trunk"] = [rtp.parse_rtp(d).payload_type for d, _ in trunk.rtp.received]
        await hang_up(bed, session)

    run_bed(tmp_path, body, trunk_extra="dtmfmode=info", rtp_range=(BASE, BASE + 79))
    assert "telephone-event" not in seen["offer_to_trunk"]
    info = seen["info"]
    assert info.headers.get("Content-Type") == "application/dtmf-relay"
    assert info.body == b"Signal=5\r\nDuration=200\r\n"
    assert set(seen["at_trunk"]) == {0}  # no event packet relayed


def test_dtmf_between_rfc4733_caller_and_inband_trunk_both_ways(tmp_path: Path) -> None:
    """Phone 1000 (RFC 4733) ↔ a ``dtmfmode=inband`` trunk: the caller's event ``3`` reaches
    the trunk as the key's tones in its audio; the trunk's tones of ``8`` reach the caller as
    RFC 4733 events on its payload type 101, while the trunk's audio is still relayed."""
    seen: dict[str, Any] = {}
    digit = dtmf.digit_packets("3", timestamp=800, duration=0.2)
    frames = [audio.ulaw_encode(f) for f in islice(audio.tone_frames([440.0], amplitude=3000), 5)]
    frames += audio.dtmf_tone("8", audio.Encoding.ULAW)
    frames += [audio.ulaw_encode(b"\0\0" * 160)] * 5

    async def body(bed: Bed) -> None:
        caller, trunk = bed.caller, bed.trunk
        session, to_caller_leg, to_trunk_leg, seen["offer_to_trunk"] = await bridged_call(bed, None)
        for _ in range(100):
            caller.rtp.transport.sendto(rtp_packet(1, pt=0), to_caller_leg)
            await asyncio.sleep(0.01)
            if trunk.rtp.received:
                break
        send_events(caller, digit, 101, to_caller_leg)
        for i, payload in enumerate(frames):  # the trunk's stream, paced as a phone's
            trunk.rtp.transport.sendto(rtp_packet(100 + i, payload, pt=0, ssrc=9), to_trunk_leg)
            await asyncio.sleep(0.02)
        for _ in range(150):  # both digits out (each 120 ms of packets, then settling)
            await asyncio.sleep(0.02)
            got = [rtp.parse_rtp(d) for d, _ in caller.rtp.received]
            if any(p.payload_type == 101 and p.payload[1] & 0x80 for p in got):
                break
        seen["at_trunk"] = [rtp.parse_rtp(d) for d, _ in trunk.rtp.received]
        seen["at_caller"] = [rtp.parse_rtp(d) for d, _ in caller.rtp.received]
        await hang_up(bed, session)

    run_bed(tmp_path, body, trunk_extra="dtmfmode=inband", rtp_range=(BASE, BASE + 79))
    assert "telephone-event" not in seen["offer_to_trunk"]
    at_trunk: list[RtpPacket] = seen["at_trunk"]
    assert {p.payload_type for p in at_trunk} == {0}
    heard = audio.samples_of(b"".join(p.payload for p in at_trunk), audio.Encoding.ULAW)
    assert audio.DtmfDetector().feed(heard) == ["3"]
    at_caller: list[RtpPacket] = seen["at_caller"]
    rx = dtmf.DtmfReceiver()
    events = [
        e for p in at_caller if p.payload_type == 101 for e in rx.receive(p.payload, p.timestamp)
    ]
    assert [e.digit for e in events if isinstance(e, dtmf.DtmfBegan)] == ["8"]
    assert len([p for p in at_caller if p.payload_type == 0]) >= 5  # the trunk's audio
