"""RTP port pairs on loopback: even/odd, skipping ports in use, immediate release, exhaustion."""

from __future__ import annotations

import os
import socket

import pytest

from pypbx.media.ports import PortAllocator, PortsExhausted

# A per-process range below the Linux ephemeral range, so parallel runs do not collide.
BASE = 20000 + (os.getpid() % 150) * 20


def _bound(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def test_pairs_are_even_odd_and_bound() -> None:
    alloc = PortAllocator(BASE + 1, BASE + 11, "127.0.0.1")  # odd start rounds up
    pairs = [alloc.allocate() for _ in range(3)]
    try:
        assert [p.port for p in pairs] == [BASE + 2, BASE + 4, BASE + 6]
        for p in pairs:
            assert _bound(p.rtp) == p.port
            assert _bound(p.rtcp) == p.rtcp_port == p.port + 1
            assert not p.rtp.getblocking()
        assert alloc.in_use == 3
        assert alloc.capacity == 5
    finally:
        for p in pairs:
            alloc.release(p)
    assert alloc.in_use == 0
    assert pairs[0].rtp.fileno() == -1


def test_skips_ports_held_elsewhere() -> None:
    foreign = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    foreign.bind(("127.0.0.1", BASE + 1))  # only the odd port of the first pair
    try:
        alloc = PortAllocator(BASE, BASE + 9, "127.0.0.1")
        pair = alloc.allocate()
        assert pair.port == BASE + 2
        alloc.release(pair)
    finally:
        foreign.close()


def test_allocate_and_release_ten_thousand_times() -> None:
    alloc = PortAllocator(BASE, BASE + 3, "127.0.0.1")  # two pairs: each reuse is immediate
    seen = set()
    for _ in range(10_000):
        pair = alloc.allocate()
        seen.add(pair.port)
        alloc.release(pair)
    assert seen == {BASE, BASE + 2}
    assert alloc.in_use == 0


def test_next_search_starts_after_last_pair() -> None:
    alloc = PortAllocator(BASE, BASE + 7, "127.0.0.1")
    a = alloc.allocate()
    alloc.release(a)
    b = alloc.allocate()
    assert b.port == a.port + 2  # the pair just freed is not reused first
    alloc.release(b)


def test_exhaustion_by_limit_and_by_range() -> None:
    alloc = PortAllocator(BASE, BASE + 9, "127.0.0.1", limit=2)
    pairs = [alloc.allocate(), alloc.allocate()]
    with pytest.raises(PortsExhausted, match="all 2 RTP port pairs"):
        alloc.allocate()
    alloc.release(pairs.pop())
    pairs.append(alloc.allocate())  # a released pair makes room again
    for p in pairs:
        alloc.release(p)

    small = PortAllocator(BASE, BASE + 3, "127.0.0.1")
    held = [small.allocate(), small.allocate()]
    with pytest.raises(PortsExhausted, match=f"{BASE}-{BASE + 3}"):
        small.allocate()
    for p in held:
        small.release(p)


def test_range_held_by_another_program() -> None:
    foreign = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    foreign.bind(("127.0.0.1", BASE + 12))
    try:
        with pytest.raises(PortsExhausted, match="held by other programs"):
            PortAllocator(BASE + 12, BASE + 13, "127.0.0.1").allocate()
    finally:
        foreign.close()


def test_empty_range_rejected() -> None:
    with pytest.raises(ValueError, match="no even/odd pair"):
        PortAllocator(BASE + 1, BASE + 2, "127.0.0.1")


def test_release_is_idempotent() -> None:
    alloc = PortAllocator(BASE, BASE + 3, "127.0.0.1")
    pair = alloc.allocate()
    alloc.release(pair)
    alloc.release(pair)
    assert alloc.in_use == 0


def _rcvbuf(sock: socket.socket) -> int:
    size: int = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return size


def test_rcvbuf_is_set_on_the_rtp_socket_only() -> None:
    default = PortAllocator(BASE, BASE + 3, "127.0.0.1")
    plain = default.allocate()
    sized = PortAllocator(BASE + 4, BASE + 7, "127.0.0.1", rcvbuf=65536)
    pair = sized.allocate()
    try:
        assert _rcvbuf(pair.rtp) == 2 * 65536  # Linux doubles the request for its overhead
        assert _rcvbuf(pair.rtcp) == _rcvbuf(plain.rtcp)  # RTCP keeps the system default
        assert _rcvbuf(plain.rtp) == _rcvbuf(plain.rtcp)
    finally:
        sized.release(pair)
        default.release(plain)
