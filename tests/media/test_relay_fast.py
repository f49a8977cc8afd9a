"""The relay's fast path on loopback: a joined leg whose source is locked reads a socket
connected to that source, and gives the same results as the slow path — forwarding, counters,
routes — while the slow path comes back for anything else (tap, unjoined, relearn, close).

Each test runs on plain asyncio and on uvloop when installed; waits are bounded.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import pytest

from pypbx.config.rtpconf import StrictRtp
from pypbx.media import rtp
from pypbx.media.codecs import route_between
from pypbx.media.poller import FastTable, MediaPoller
from pypbx.media.ports import PortAllocator
from pypbx.media.relay import LegOptions, Relay, RelayLeg, SourceState
from pypbx.sip.sdp import Codec
from tests.media.test_relay import BASE, LOOPS, QUIET, Clock, endpoint, make_leg, pkt, run

PCMU, PCMA = [Codec(0, "PCMU", 8000)], [Codec(8, "PCMA", 8000)]


def allocator(offset: int) -> PortAllocator:
    return PortAllocator(BASE + offset, BASE + offset + 7, "127.0.0.1")


async def locked_pair(alloc: PortAllocator, clock: Clock, **kw: Any) -> tuple[Any, ...]:
    """Two phones, two legs joined; each phone has sent once after the learning window."""
    a_phone, b_phone = await endpoint(), await endpoint()
    a = await make_leg(alloc, remote=a_phone.addr, clock=clock)
    b = await make_leg(alloc, remote=b_phone.addr, clock=clock)
    relay = Relay(a, b, **kw)
    clock.now += 5.0
    a_phone.send(pkt(1), a.port)
    b_phone.send(pkt(1, ssrc=2), b.port)
    await b_phone.recv()
    await a_phone.recv()
    return a_phone, b_phone, a, b, relay


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_locked_joined_leg_takes_the_fast_path_with_the_same_results(loop_name: str) -> None:
    async def main() -> None:
        clock = Clock()
        a_phone, b_phone, a, b, relay = await locked_pair(allocator(88), clock)
        assert a.source_state(clock.now) is SourceState.LOCKED
        assert a.fast
        assert b.fast
        for seq in range(2, 12):
            a_phone.send(pkt(seq, m=seq == 2), a.port)
        got = [await b_phone.recv() for _ in range(10)]
        assert [rtp.sequence_of(d) for d, _ in got] == list(range(2, 12))
        assert {addr for _, addr in got} == {("127.0.0.1", b.port)}  # symmetric: from B's port
        assert got[0][0] == pkt(2, m=True)  # untouched
        size = len(pkt(1))
        sa, sb = a.stats(), b.stats()
        assert (sa.packets_in, sa.bytes_in, sb.packets_out, sb.bytes_out) == (
            11,
            11 * size,
            11,
            11 * size,
        )
        clock.now += 7.0
        b_phone.send(pkt(2, ssrc=2), b.port)
        await a_phone.recv()
        assert b.idle_for(clock.now) == 0.0  # the fast path keeps last_rx for rtptimeout
        assert a.idle_for(clock.now) == 7.0
        poller = MediaPoller.of(asyncio.get_running_loop())
        assert len(poller) == 2
        relay.close()
        assert len(poller) == 0
        a_phone.close()
        b_phone.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_the_kernel_keeps_other_senders_out_and_queued_ones_are_checked(loop_name: str) -> None:
    async def main() -> None:
        clock = Clock()
        alloc = allocator(88)
        a_phone, b_phone = await endpoint(), await endpoint()
        intruder = await endpoint("127.0.0.3")
        a = await make_leg(alloc, remote=a_phone.addr, clock=clock)
        b = await make_leg(alloc, remote=b_phone.addr, clock=clock)
        relay = Relay(a, b)
        a_phone.send(pkt(1), a.port)  # accepted at once (the SDP address), still learning
        await b_phone.recv()
        assert not a.fast
        clock.now += 5.0
        # queued together: the phone's packet locks the leg; the intruder's, read after the
        # socket is connected, still go through the source check
        a_phone.send(pkt(2), a.port)
        for seq in range(3, 8):
            intruder.send(pkt(seq, ssrc=0x6666), a.port)
        a_phone.send(pkt(8), a.port)
        assert rtp.sequence_of((await b_phone.recv())[0]) == 2
        assert rtp.sequence_of((await b_phone.recv())[0]) == 8
        await b_phone.quiet()
        assert a.fast
        assert a.stats().dropped_strict == 5
        for seq in range(9, 14):  # now the kernel drops them before they reach the socket
            intruder.send(pkt(seq, ssrc=0x6666), a.port)
        a_phone.send(pkt(14), a.port)
        assert rtp.sequence_of((await b_phone.recv())[0]) == 14
        await b_phone.quiet()
        assert a.stats().packets_in == 4  # 1, 2, 8 and 14
        # an SDP change: back to the slow path, learning, and a newcomer at the new address
        a.set_remote(intruder.addr)
        assert not a.fast
        assert a.source_state(clock.now) is SourceState.LEARNING
        intruder.send(pkt(20, ssrc=0x6666), a.port)
        assert rtp.ssrc_of((await b_phone.recv())[0]) == 0x6666
        relay.close()
        for ep in (a_phone, b_phone, intruder):
            ep.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_tap_unjoin_and_a_closed_peer_leave_the_fast_path(loop_name: str) -> None:
    async def main() -> None:
        clock = Clock()
        a_phone, b_phone, a, b, relay = await locked_pair(allocator(88), clock)
        assert a.fast
        seen: list[bytes] = []
        a.set_tap(lambda data: seen.append(data) or True, 101)
        assert not a.fast
        a_phone.send(pkt(2, pt=101, payload=b"\x01\x0a\x00\xa0"), a.port)
        a_phone.send(pkt(3), a.port)
        assert rtp.sequence_of((await b_phone.recv())[0]) == 3
        assert [rtp.sequence_of(d) for d in seen] == [2]  # consumed by the tap
        a.clear_tap()
        assert a.fast
        relay.unjoin()
        assert not a.fast
        sunk: list[bytes] = []
        a.sink = sunk.append
        a_phone.send(pkt(4), a.port)
        await asyncio.sleep(QUIET)
        assert [rtp.sequence_of(d) for d in sunk] == [4]
        await b_phone.quiet()
        joined = Relay(a, b)
        assert a.fast
        b.close()
        assert not a.fast
        assert a.peer is None
        a_phone.send(pkt(5), a.port)
        await asyncio.sleep(QUIET)
        assert [rtp.sequence_of(d) for d in sunk] == [4, 5]
        joined.close()
        a_phone.close()
        b_phone.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_routes_apply_on_the_fast_path(loop_name: str) -> None:
    async def main() -> None:
        clock = Clock()
        a_phone, b_phone, a, _b, relay = await locked_pair(
            allocator(88),
            clock,
            a_to_b=route_between(PCMU, PCMA),
            b_to_a=route_between(PCMA, PCMU),
        )
        assert a.fast
        a_phone.send(pkt(2, payload=b"\xff" * 160), a.port)  # µ-law silence
        data, _ = await b_phone.recv()
        assert data[1] & 0x7F == 8
        assert data[12:] == b"\xd5" * 160  # A-law silence
        relay.close()
        a_phone.close()
        b_phone.close()

    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_latched_leg_whose_phone_answers_elsewhere_still_gets_its_packets(
    loop_name: str,
) -> None:
    """Without latching, a phone may send from one port and take packets on another (the
    SDP's): the connected socket then sends with an explicit address."""

    async def main() -> None:
        clock = Clock()
        alloc = allocator(88)
        sender, listener, b_phone = await endpoint(), await endpoint(), await endpoint()
        a = await make_leg(alloc, remote=listener.addr, clock=clock)
        a.options = LegOptions(strict=StrictRtp.YES, probation=1)
        b = await make_leg(alloc, remote=b_phone.addr, clock=clock)
        relay = Relay(a, b)
        sender.send(pkt(1), a.port)  # qualifies at once (probation 1)
        await b_phone.recv()
        clock.now += 5.0
        sender.send(pkt(2), a.port)
        await b_phone.recv()
        assert a.fast
        b_phone.send(pkt(1, ssrc=2), b.port)
        data, addr = await listener.recv()
        assert (rtp.ssrc_of(data), addr) == (2, ("127.0.0.1", a.port))
        assert a.send(pkt(9, ssrc=3))  # a player's packet goes to the SDP address too
        assert rtp.ssrc_of((await listener.recv())[0]) == 3
        await sender.quiet()
        relay.close()
        for ep in (sender, listener, b_phone):
            ep.close()

    run(loop_name, main)


def test_the_poller_serves_a_socket_it_was_given_and_forgets_it() -> None:
    async def main() -> None:
        alloc = allocator(88)
        leg = RelayLeg(alloc.allocate(), on_close=alloc.release)
        await leg.open()
        poller = MediaPoller.of(asyncio.get_running_loop())
        assert poller.batched
        assert len(poller) == 1
        leg.close()
        leg.close()
        assert len(poller) == 0
        assert alloc.in_use == 0

    asyncio.run(main())


# --- the C table (pypbx/media/_fastrelay.c) --------------------------------------------------

needs_c = pytest.mark.skipif(FastTable is None, reason="the C extension is not built")
NOW = LegOptions(strict=StrictRtp.YES, learning_window=0.0)  # locked at the first packet


def test_the_c_fast_path_is_built_where_a_compiler_and_headers_are() -> None:
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if shutil.which("cc") and headers.exists() and sys.platform == "linux":
        assert FastTable is not None, "pip install -e . should have built _fastrelay"


@needs_c
@pytest.mark.parametrize("loop_name", LOOPS)
def test_c_forwards_counts_and_keeps_time_like_python(loop_name: str) -> None:
    async def main() -> None:
        alloc = allocator(88)
        a_phone, b_phone, intruder = await endpoint(), await endpoint(), await endpoint("127.0.0.3")
        a = await make_leg(alloc, remote=a_phone.addr, options=NOW)
        b = await make_leg(alloc, remote=b_phone.addr, options=NOW)
        relay = Relay(a, b)
        a_phone.send(pkt(1), a.port)
        b_phone.send(pkt(1, ssrc=2), b.port)
        await b_phone.recv()
        await a_phone.recv()
        assert a.in_c
        assert b.in_c
        for seq in range(2, 7):
            intruder.send(pkt(seq, ssrc=0x6666), a.port)  # the kernel keeps these out
            a_phone.send(pkt(seq, m=seq == 2), a.port)
        got = [await b_phone.recv() for _ in range(5)]
        assert [d for d, _ in got] == [pkt(s, m=s == 2) for s in range(2, 7)]
        assert {addr for _, addr in got} == {("127.0.0.1", b.port)}
        await b_phone.quiet()
        size = len(pkt(1))
        sa, sb = a.stats(), b.stats()
        assert (sa.packets_in, sa.bytes_in, sa.fast_in) == (6, 6 * size, 5)
        assert (sb.packets_out, sb.bytes_out) == (6, 6 * size)
        assert (sb.packets_in, sa.packets_out) == (1, 1)
        assert a.idle_for(time.monotonic()) < 1.0
        # b's phone moves (a re-INVITE): a's C entry sends to the new address at once
        mover = await endpoint()
        b.set_remote(mover.addr)
        assert a.in_c
        assert not b.in_c  # learning again
        a_phone.send(pkt(7), a.port)
        data, addr = await mover.recv()
        assert (rtp.sequence_of(data), addr) == (7, ("127.0.0.1", b.port))
        # closing b: a stops forwarding there, and the counts C kept stay with the legs
        b.close()
        assert not a.in_c
        assert b.stats().packets_out == 7
        a_phone.send(pkt(8), a.port)
        await mover.quiet()
        assert a.stats().packets_in == 8
        assert a.stats().dropped_unroutable == 0  # not joined any more: not an error
        relay.close()
        assert alloc.in_use == 0
        for ep in (a_phone, b_phone, intruder, mover):
            ep.close()

    run(loop_name, main)


@needs_c
def test_c_sends_with_an_address_to_a_phone_that_listens_elsewhere() -> None:
    async def main() -> None:
        alloc = allocator(88)
        sender, listener, b_phone = await endpoint(), await endpoint(), await endpoint()
        a = await make_leg(alloc, remote=listener.addr, options=LegOptions(probation=1))
        b = await make_leg(alloc, remote=b_phone.addr, options=NOW)
        relay = Relay(a, b)
        a.relearn()  # learning_window 5 s from now: too long for a test
        a._learn_until = 0.0
        sender.send(pkt(1), a.port)  # qualifies (probation 1) and locks
        await b_phone.recv()
        b_phone.send(pkt(1, ssrc=2), b.port)
        await listener.recv()
        assert a.in_c
        assert b.in_c  # b sends through a's socket with a's SDP address
        b_phone.send(pkt(2, ssrc=2), b.port)
        data, addr = await listener.recv()
        assert (rtp.sequence_of(data), addr) == (2, ("127.0.0.1", a.port))
        await sender.quiet()
        relay.close()
        for ep in (sender, listener, b_phone):
            ep.close()

    asyncio.run(main())


@needs_c
def test_a_route_or_a_test_clock_keeps_packets_in_python() -> None:
    async def main() -> None:
        alloc = allocator(88)
        a_phone, b_phone = await endpoint(), await endpoint()
        a = await make_leg(alloc, remote=a_phone.addr, options=NOW)
        b = await make_leg(alloc, remote=b_phone.addr, options=NOW, clock=Clock())
        relay = Relay(a, b, a_to_b=route_between(PCMU, PCMA))
        a_phone.send(pkt(1), a.port)
        b_phone.send(pkt(1, ssrc=2), b.port)
        assert (await b_phone.recv())[0][12:] == b"\xd5" * 160
        await a_phone.recv()
        assert a.fast
        assert b.fast
        assert not a.in_c  # the route is applied in Python
        assert not b.in_c  # its clock is not the monotonic one C keeps
        a.set_route(None)
        assert a.in_c
        relay.close()
        a_phone.close()
        b_phone.close()

    asyncio.run(main())


@needs_c
def test_the_c_table_refuses_bad_descriptors_and_knows_nothing_of_strangers() -> None:
    assert FastTable is not None
    table = FastTable()
    assert table.counters(5) == (0, 0, 0, 0, 0, 0.0)
    table.deactivate(70_000)  # never seen: nothing to do
    table.reset(3)
    for bad in (-1, 2**40):
        with pytest.raises((ValueError, OverflowError)):
            table.counters(bad)
    with pytest.raises(ValueError, match="destination"):
        table.activate(4, 5, bytes(200))  # longer than any sockaddr
    with pytest.raises(ValueError):
        table.activate(-1, 5, b"")
