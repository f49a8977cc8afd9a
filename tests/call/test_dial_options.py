"""Dial options acted on by the call layer: ``L(x[:y][:z])`` (call duration limit, warnings
logged), ``r``, and ``t``/``T`` refused with a warning (Asterisk apps/app_dial.c)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import textwrap
import time
from pathlib import Path

import pytest

from pypbx.config.conf import parse_text
from pypbx.dialplan.apps.dial import DurationLimit, parse_duration_limit
from pypbx.dialplan.parser import parse_dialplan
from pypbx.sip.events import SessionAnswered, SessionProgressed, SessionTerminated
from tests.call.loopback import Bed, last_cdr, run_bed
from tests.call.test_limits import call


@pytest.mark.parametrize(
    ("text", "limit", "problem"),
    [
        ("60000", DurationLimit(60.0), False),
        ("60000:30000", DurationLimit(60.0, 30.0), False),
        ("60000:30000:5000", DurationLimit(60.0, 30.0, 5.0), False),
        ("1500::", DurationLimit(1.5), False),
        ("0", None, True),
        ("-5", None, True),
        ("abc", None, True),
        ("", None, True),
        ("1000:1000", DurationLimit(1.0), True),  # warning not below the limit: dropped
        ("1000:x:5", DurationLimit(1.0), True),
    ],
)
def test_parse_duration_limit(text: str, limit: DurationLimit | None, problem: bool) -> None:
    got, why = parse_duration_limit(text)
    assert got == limit
    assert bool(why) is problem


@pytest.mark.parametrize(
    ("limit", "times"),
    [
        (DurationLimit(60.0), []),
        (DurationLimit(60.0, 30.0), [30.0]),
        (DurationLimit(60.0, 30.0, 10.0), [30.0, 40.0, 50.0]),
        (DurationLimit(1.0, 0.4, 0.15), [0.6, 0.75, 0.9]),
    ],
)
def test_warning_times(limit: DurationLimit, times: list[float]) -> None:
    assert limit.warnings() == pytest.approx(times)


def with_plan(bed: Bed, text: str) -> None:
    """Swap the bed's dial plan (the call manager reads it for every new call)."""
    plan = parse_dialplan(parse_text(textwrap.dedent(text), "extensions.conf"))
    bed.pbx.config = dataclasses.replace(bed.pbx.config, dialplan=plan)


LIMITED = """
[internal]
exten => _1NXXNXXXXXX,1,Dial(SIP/trunk/${EXTEN},5,L(800:500:200))
same => n,Playback(not-without-g)
exten => 2000,1,Dial(SIP/2000,5,rtT)
exten => 3000,1,Dial(SIP/trunk/18005551234,5,gL(500))
same => n,Playback(after-the-limit)
"""


def test_time_limit_hangs_up_both_legs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pypbx.call")
    seen: dict[str, float] = {}

    async def body(bed: Bed) -> None:
        with_plan(bed, LIMITED)
        session = call(bed, "18005551234")
        await bed.caller.wait_for(SessionAnswered, where=lambda ev: ev.session is session)
        t0 = time.monotonic()
        await bed.trunk.wait_for(SessionTerminated, timeout=5)
        caller_end = await bed.caller.wait_for(SessionTerminated, timeout=5)
        assert isinstance(caller_end, SessionTerminated)
        assert caller_end.remote  # pypbx sent the BYE
        seen["elapsed"] = time.monotonic() - t0
        await asyncio.sleep(0.1)

    bed = run_bed(tmp_path, body)
    assert 0.6 <= seen["elapsed"] <= 2.5, seen
    assert last_cdr(bed).lastapp == "Dial"  # without g the plan ends with the call
    text = caplog.text
    assert "Dial time limit" in text
    warnings = [r for r in caplog.records if "left of the Dial time limit" in r.getMessage()]
    # 0.5 s left, then every 0.2 s: at 0.3, 0.5 and 0.7 s
    assert len(warnings) == 3, [r.getMessage() for r in warnings]
    assert "0.5 seconds left" in warnings[0].getMessage()


def test_transfer_options_are_refused_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def body(bed: Bed) -> None:
        with_plan(bed, LIMITED)
        session = call(bed, "2000")
        ringing = await bed.caller.wait_for(
            SessionProgressed, where=lambda ev: ev.session is session
        )
        assert isinstance(ringing, SessionProgressed)
        await bed.caller.wait_for(SessionAnswered, where=lambda ev: ev.session is session)
        session.bye(now=bed.caller.now())
        assert bed.caller.stack is not None
        bed.caller.stack.flush()
        await bed.callee2.wait_for(SessionTerminated)

    run_bed(tmp_path, body)
    lines = [r.getMessage() for r in caplog.records]
    assert any("option 't'" in m and "not supported" in m for m in lines), lines
    assert any("option 'T'" in m and "not supported" in m for m in lines), lines


def test_time_limit_with_g_goes_on_in_the_dial_plan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The callee is hung up at the limit; with ``g`` the caller's plan continues."""
    caplog.set_level(logging.INFO)

    async def body(bed: Bed) -> None:
        with_plan(bed, LIMITED)
        session = call(bed, "3000")
        await bed.caller.wait_for(SessionAnswered, where=lambda ev: ev.session is session)
        await bed.trunk.wait_for(SessionTerminated, timeout=5)
        caller_end = await bed.caller.wait_for(SessionTerminated, timeout=5)
        assert isinstance(caller_end, SessionTerminated)

    bed = run_bed(tmp_path, body)
    lines = [r.getMessage() for r in caplog.records]
    assert any("Dial time limit" in m for m in lines), lines
    cdr = last_cdr(bed)
    assert (cdr.lastapp, cdr.lastdata) == ("Playback", "after-the-limit")
    assert cdr.disposition == "ANSWERED"


RINGING_PLAN = """
[internal]
exten => 18005550001,1,Dial(SIP/trunk/${EXTEN},1,r)
exten => 18005550002,1,Dial(SIP/trunk/${EXTEN},1)
"""


@pytest.mark.parametrize(("number", "rings"), [("18005550001", True), ("18005550002", False)])
def test_r_rings_the_caller_before_the_callee_says_anything(
    tmp_path: Path, number: str, rings: bool
) -> None:
    """The trunk answers only 183 with SDP: with ``r`` the caller still gets a 180 at once."""
    statuses: list[int] = []

    async def body(bed: Bed) -> None:
        with_plan(bed, RINGING_PLAN)
        session = call(bed, number)
        await bed.caller.early_media()
        await asyncio.sleep(0.1)
        statuses.extend(
            ev.response.status
            for ev in bed.caller.events
            if isinstance(ev, SessionProgressed) and ev.session is session
        )

    run_bed(tmp_path, body, trunk_answer="183")
    assert (180 in statuses) is rings, statuses
    assert 183 in statuses
