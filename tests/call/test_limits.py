"""call-limit: per-peer call counting (chan_sip ``update_call_counter``) and its use by Dial
for outgoing legs (over the limit: cause 17, DIALSTATUS=BUSY, no INVITE sent)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pypbx.call.limits import CallLimits
from pypbx.sip.auth import ClientAuthState
from pypbx.sip.events import SessionAnswered, SessionOffered, SessionRejected, SessionTerminated
from pypbx.sip.session import Session
from tests.call.loopback import Bed, Phone, run_bed


def flush(p: Phone) -> None:
    assert p.stack is not None
    p.stack.flush()


def call(bed: Bed, number: str, body: bytes | None = None) -> Session:
    """INVITE ``number`` from phone 1000 (digest credentials ready for the 407)."""
    p = bed.caller
    session = p.ua.invite(
        f"sip:{number}@127.0.0.1:{bed.port}",
        to=f"<sip:{number}@127.0.0.1:{bed.port}>",
        from_=f'"Alice" <sip:1000@{p.ip}>',
        dest=bed.addr,
        body=p.offer() if body is None else body,
        content_type="application/sdp",
        auth=ClientAuthState("1000", "pw1000"),
        now=p.now(),
    )
    flush(p)
    return session


@pytest.mark.parametrize(
    ("limit", "attempts", "granted"),
    [
        (None, 5, 5),  # no call-limit: never refused
        (0, 3, 3),  # 0 means no limit, as in sip.conf
        (1, 3, 1),
        (2, 3, 2),
    ],
)
def test_acquire_up_to_the_limit(limit: int | None, attempts: int, granted: int) -> None:
    limits = CallLimits()
    results = [limits.acquire("trunk", limit) for _ in range(attempts)]
    assert results == [True] * granted + [False] * (attempts - granted)
    assert limits.in_use("trunk") == granted


def test_peers_are_counted_apart_and_release_frees_a_slot() -> None:
    limits = CallLimits()
    assert limits.acquire("a", 1)
    assert limits.acquire("b", 1)
    assert not limits.acquire("a", 1)
    limits.release("a")
    assert limits.in_use("a") == 0
    assert limits.acquire("a", 1)
    assert limits.snapshot() == {"a": 1, "b": 1}


def test_release_never_goes_below_zero() -> None:
    limits = CallLimits()
    limits.release("a")
    assert limits.in_use("a") == 0
    assert limits.acquire("a", 1)
    assert limits.snapshot() == {"a": 1}


def test_hold_gives_an_idempotent_release() -> None:
    limits = CallLimits()
    release = limits.hold("a", 2)
    assert release is not None
    assert limits.hold("a", 2) is not None
    assert limits.hold("a", 2) is None
    release()
    release()  # a second call must not free the other call's slot
    assert limits.in_use("a") == 1


def test_dial_over_the_trunk_call_limit_is_busy(tmp_path: Path) -> None:
    """call-limit=1 on the trunk: the second call while the first is up gets no INVITE out,
    Dial ends BUSY (the plan hangs up with 17 → 486), and the slot frees at hangup."""
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        first = call(bed, "18005550001")
        await bed.caller.wait_for(SessionAnswered, where=lambda ev: ev.session is first)
        second = call(bed, "18005550002")
        rejected = await bed.caller.wait_for(SessionRejected, where=lambda ev: ev.session is second)
        assert isinstance(rejected, SessionRejected)
        seen["status"] = rejected.status
        seen["invites"] = sum(isinstance(ev, SessionOffered) for ev in bed.trunk.events)
        manager = bed.service.manager
        assert manager is not None
        seen["in_use"] = manager.dialer.limits.in_use("trunk")
        # hang the first call up: the trunk's slot is free again and a new call goes out
        first.bye(now=bed.caller.now())
        flush(bed.caller)
        await bed.trunk.wait_for(SessionTerminated)
        for _ in range(100):
            if manager.dialer.limits.in_use("trunk") == 0:
                break
            await asyncio.sleep(0.01)
        seen["after"] = manager.dialer.limits.in_use("trunk")
        third = call(bed, "18005550003")
        await bed.caller.wait_for(SessionAnswered, where=lambda ev: ev.session is third)
        seen["invites_end"] = sum(isinstance(ev, SessionOffered) for ev in bed.trunk.events)
        third.bye(now=bed.caller.now())
        flush(bed.caller)
        await asyncio.sleep(0.1)

    run_bed(tmp_path, body, trunk_extra="call-limit=1")
    assert seen["status"] == 486
    assert seen["invites"] == 1
    assert seen["in_use"] == 1
    assert seen["after"] == 0
    assert seen["invites_end"] == 2
