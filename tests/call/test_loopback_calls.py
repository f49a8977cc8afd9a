"""Calls through pypbx on loopback: scripted phones ↔ SipService + CallService (glue tests)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from pypbx.call.sip_env import media_address
from pypbx.check import load_config_dir
from pypbx.control.cdr import show_last
from pypbx.control.channel import show_channel
from pypbx.control.sip import show_channels as show_sip_channels
from pypbx.sip.auth import ClientAuthState
from pypbx.sip.events import (
    ReinviteAnswered,
    ReinviteReceived,
    SessionAnswered,
    SessionCancelled,
    SessionOffered,
    SessionProgressed,
    SessionRejected,
    SessionTerminated,
)
from pypbx.sip.sdp import Direction, build_offer, direction, parse_sdp
from pypbx.sip.session import Session
from tests.call.loopback import Bed, Phone, last_cdr, run_bed


def call(
    bed: Bed,
    number: str,
    *,
    auth: bool = True,
    phone: Phone | None = None,
    user: str = "1000",
    codecs: tuple[str, ...] | None = None,
) -> Session:
    p = phone or bed.caller
    session = p.ua.invite(
        f"sip:{number}@127.0.0.1:{bed.port}",
        to=f"<sip:{number}@127.0.0.1:{bed.port}>",
        from_=f'"Alice" <sip:{user}@{p.ip}>',
        dest=bed.addr,
        body=p.offer() if codecs is None else p.offer(codecs),
        content_type="application/sdp",
        auth=ClientAuthState("1000", "pw1000") if auth else None,
        now=p.now(),
    )
    flush(p)
    return session


async def answered_call(bed: Bed, number: str) -> Session:
    """Call ``number`` from the caller phone and wait for the 200 OK."""
    session = call(bed, number)
    await bed.caller.wait_for(SessionAnswered)
    return session


def flush(p: Phone) -> None:
    assert p.stack is not None
    p.stack.flush()


async def settle(seconds: float = 0.2) -> None:
    await asyncio.sleep(seconds)


def test_outbound_call_is_authenticated_relayed_and_recorded(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        session = call(bed, "18005551234")
        answered = await bed.caller.wait_for(SessionAnswered)
        assert isinstance(answered, SessionAnswered)
        offered = await bed.trunk.wait_for(SessionOffered)
        assert isinstance(offered, SessionOffered)
        inv = offered.request
        seen["ruri"] = inv.uri_text
        seen["from"] = str(inv.from_.uri)
        # SDP on each leg names pypbx, not the other phone
        to_caller = parse_sdp(answered.response.body)
        to_trunk = parse_sdp(inv.body)
        a_pbx, b_pbx = media_address(to_caller), media_address(to_trunk)
        assert a_pbx is not None
        assert b_pbx is not None
        assert a_pbx[0] == b_pbx[0] == "127.0.0.1"
        assert a_pbx[1] != b_pbx[1]
        assert a_pbx[1] % 2 == 0
        seen["channels"] = len(bed.pbx.channels)
        bed.caller.send_rtp(a_pbx, 10)
        bed.trunk.send_rtp(b_pbx, 10)
        await settle()
        seen["trunk_rtp"] = {addr for _, addr in bed.trunk.rtp.received}
        seen["caller_rtp"] = {addr for _, addr in bed.caller.rtp.received}
        seen["n_trunk"] = len(bed.trunk.rtp.received)
        seen["n_caller"] = len(bed.caller.rtp.received)
        session.bye(now=bed.caller.now())
        flush(bed.caller)
        ended = await bed.trunk.wait_for(SessionTerminated)
        assert isinstance(ended, SessionTerminated)
        seen["trunk_remote_end"] = ended.remote
        await settle()
        assert bed.service.manager is not None
        assert bed.service.manager.ports is not None
        seen["ports_in_use"] = bed.service.manager.ports.in_use
        seen["channels_after"] = len(bed.pbx.channels)
        seen["cdr_show"] = await show_last(bed.pbx, ["1"])

    bed = run_bed(tmp_path, body)
    assert seen["ruri"] == f"sip:18005551234@127.0.0.32:{bed.trunk.port}"
    assert seen["from"] == "sip:acct1@127.0.0.1:" + str(bed.port)
    assert seen["channels"] == 2
    # latching needs probation: the first packets are learnt, then relayed from pypbx's port
    assert seen["n_trunk"] >= 5
    assert seen["n_caller"] >= 5
    assert all(addr[0] == "127.0.0.1" for addr in seen["trunk_rtp"])  # type: ignore[attr-defined]
    assert all(addr[0] == "127.0.0.1" for addr in seen["caller_rtp"])  # type: ignore[attr-defined]
    assert seen["trunk_remote_end"] is True
    assert seen["ports_in_use"] == 0
    assert seen["channels_after"] == 0
    shown = str(seen["cdr_show"])
    assert "18005551234" in shown
    assert "ANSWERED" in shown
    assert shown.endswith("1 call detail record.")
    cdr = last_cdr(bed)
    assert cdr.disposition.value == "ANSWERED"
    assert cdr.src == "1000"
    assert cdr.dst == "18005551234"
    assert cdr.dcontext == "internal"
    assert cdr.channel.startswith("SIP/1000-")
    assert cdr.dstchannel.startswith("SIP/trunk-")
    assert cdr.lastapp == "Dial"
    master = next(bed.pbx.dirs.datadir.rglob("Master.csv"))
    assert "18005551234" in master.read_text()


def test_busy_callee_gives_486_and_plan_continues(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        call(bed, "18005551234")
        rejected = await bed.caller.wait_for(SessionRejected)
        assert isinstance(rejected, SessionRejected)
        seen["status"] = rejected.status
        await settle()

    bed = run_bed(tmp_path, body, trunk_answer="486")
    # Dial → BUSY, the plan continues to Hangup(17) → 486 to the caller
    assert seen["status"] == 486
    cdr = last_cdr(bed)
    assert cdr.disposition.value == "BUSY"


def test_unknown_extension_gets_404(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        call(bed, "555")
        rejected = await bed.caller.wait_for(SessionRejected)
        assert isinstance(rejected, SessionRejected)
        seen["status"] = rejected.status

    run_bed(tmp_path, body)
    assert seen["status"] == 404


def test_wrong_password_is_refused(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        p = bed.caller
        p.ua.invite(
            f"sip:18005551234@127.0.0.1:{bed.port}",
            to="<sip:18005551234@pbx>",
            from_=f"<sip:1000@{p.ip}>",
            dest=bed.addr,
            body=p.offer(),
            content_type="application/sdp",
            auth=ClientAuthState("1000", "wrong"),
            now=p.now(),
        )
        flush(p)
        rejected = await p.wait_for(SessionRejected)
        assert isinstance(rejected, SessionRejected)
        seen["status"] = rejected.status
        await settle()
        seen["trunk_events"] = len(bed.trunk.events)

    run_bed(tmp_path, body)
    assert seen["status"] == 403
    assert seen["trunk_events"] == 0


def test_stranger_cannot_reach_the_trunk(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        stranger = Phone("127.0.0.34")
        stranger.changed = asyncio.Event()
        await stranger.start()
        try:
            call(bed, "18002223333", auth=False, phone=stranger)
            flush(stranger)
            rejected = await stranger.wait_for(SessionRejected)
            assert isinstance(rejected, SessionRejected)
            seen["status"] = rejected.status
            await settle()
            seen["trunk_events"] = len(bed.trunk.events)
        finally:
            await stranger.close()

    run_bed(tmp_path, body)
    assert seen["status"] in (403, 407)
    assert seen["trunk_events"] == 0


def test_no_answer_times_out_and_cancels(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        call(bed, "18005551234")
        progressed = await bed.caller.wait_for(
            SessionProgressed,
            where=lambda ev: isinstance(ev, SessionProgressed) and ev.response.status > 100,
        )
        assert isinstance(progressed, SessionProgressed)
        seen["ring"] = progressed.response.status
        rejected = await bed.caller.wait_for(SessionRejected, timeout=6)
        assert isinstance(rejected, SessionRejected)
        seen["status"] = rejected.status
        seen["trunk_cancelled"] = await bed.trunk.wait_for(SessionCancelled)

    bed = run_bed(tmp_path, body, trunk_answer="ring", timeout=1)
    assert seen["ring"] == 180
    assert seen["status"] == 486  # NOANSWER, then Hangup(17)
    cdr = last_cdr(bed)
    assert cdr.disposition.value == "NO ANSWER"


def test_caller_cancel_cancels_the_callee(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        session = call(bed, "18005551234")
        await bed.trunk.wait_for(SessionOffered)
        await bed.caller.wait_for(SessionProgressed)
        session.cancel(now=bed.caller.now())
        flush(bed.caller)
        rejected = await bed.caller.wait_for(SessionRejected)
        assert isinstance(rejected, SessionRejected)
        seen["status"] = rejected.status
        seen["trunk_end"] = await bed.trunk.wait_for(SessionCancelled)
        await settle()
        assert bed.service.manager is not None
        assert bed.service.manager.ports is not None
        seen["ports"] = bed.service.manager.ports.in_use

    bed = run_bed(tmp_path, body, trunk_answer="ring", timeout=10)
    assert seen["status"] == 487
    assert seen["ports"] == 0
    cdr = last_cdr(bed)
    assert cdr.disposition.value == "NO ANSWER"


def test_parallel_ringing_first_answer_wins(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        session = await answered_call(bed, "3000")
        seen["loser_end"] = await bed.trunk.wait_for(SessionCancelled)
        assert bed.callee2.incoming
        seen["winner_state"] = bed.callee2.incoming[0].state.value
        session.bye(now=bed.caller.now())
        flush(bed.caller)
        await bed.callee2.wait_for(SessionTerminated)

    run_bed(tmp_path, body, trunk_answer="ring")
    assert isinstance(seen["loser_end"], SessionCancelled)
    assert seen["winner_state"] == "confirmed"


def test_callee_bye_hangs_up_the_caller(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        await answered_call(bed, "18005551234")
        await settle(0.1)
        callee = bed.trunk.incoming[0]
        callee.bye(now=bed.trunk.now())
        flush(bed.trunk)
        ended = await bed.caller.wait_for(SessionTerminated)
        assert isinstance(ended, SessionTerminated)
        seen["caller_remote"] = ended.remote

    run_bed(tmp_path, body)
    assert seen["caller_remote"] is True


def test_did_from_the_trunk_rings_the_extension_without_auth(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        t = bed.trunk
        session = call(bed, "18182223333", auth=False, phone=t, user="13105550100")
        offered = await bed.caller.wait_for(SessionOffered)
        assert isinstance(offered, SessionOffered)
        seen["from_user"] = offered.request.from_.uri.user  # type: ignore[union-attr]
        await t.wait_for(SessionAnswered)
        session.bye(now=t.now())
        flush(t)
        await bed.caller.wait_for(SessionTerminated)

    bed = run_bed(tmp_path, body)
    assert seen["from_user"] == "13105550100"
    cdr = last_cdr(bed)
    assert (cdr.src, cdr.dst, cdr.dcontext) == ("13105550100", "18182223333", "from-trunk")
    assert cdr.channel.startswith("SIP/trunk-")
    assert cdr.dstchannel.startswith("SIP/1000-")
    assert cdr.disposition.value == "ANSWERED"


async def sip_channels(bed: Bed) -> list[list[str]]:
    """``sip show channels`` as its rows' columns (split where two spaces are)."""
    out = await show_sip_channels(bed.pbx, [])
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["Peer", "User/ANR"]
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[1:-1]]
    assert lines[-1] == f"{len(rows)} active SIP dialog{'' if len(rows) == 1 else 's'}"
    return sorted(rows)


def test_hold_reinvite_is_passed_across(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        session = await answered_call(bed, "18005551234")
        await settle(0.1)
        # caller leg (1000 at .31) and trunk leg (.32): codec, no hold, the last request
        caller_row = ["127.0.0.31", "1000", session.call_id[:15], "ulaw", "No", "Rx: ACK"]
        trunk_row = ["127.0.0.32", "trunk"]
        rows = await sip_channels(bed)
        assert rows[0] == caller_row
        assert rows[1][:2] == trunk_row
        assert rows[1][3:] == ["ulaw", "No", "Tx: ACK"]
        # the caller's channel in detail, with its relay leg
        chan = next(c for c in bed.pbx.channels if c.name.startswith("SIP/1000-"))
        pbx_side = media_address(chan.local_sdp)  # where pypbx's 200 OK asked for RTP
        assert pbx_side is not None
        bed.caller.send_rtp(pbx_side, 3)
        await settle(0.1)
        shown = (await show_channel(bed.pbx, [chan.name])).splitlines()
        assert f"           Name: {chan.name}" in shown
        assert "          State: Up (6)" in shown
        assert "  NativeFormats: (ulaw)" in shown
        assert "    Application: Dial" in shown
        assert f"  Direct Bridge: {chan.bridged.name}" in shown
        assert "DIALSTATUS=ANSWER" not in shown  # set when Dial returns, not yet
        rtp = shown[shown.index(" --   RTP   --") :]
        assert f"     Local port: {chan.leg.port} (RTCP {chan.leg.port + 1})" in rtp
        assert f"        Sending: 127.0.0.31:{bed.caller.rtp_port}" in rtp
        assert "     Packets in: 3 (0 on the fast path)" in rtp  # still learning the source
        hold = build_offer(
            bed.caller.ip,
            bed.caller.rtp_port,
            ("ulaw",),
            session_id=1,
            version=2,
            way=Direction.SENDONLY,
        )
        session.reinvite(body=hold.to_bytes(), content_type="application/sdp", now=bed.caller.now())
        flush(bed.caller)
        answered = await bed.caller.wait_for(ReinviteAnswered)
        assert isinstance(answered, ReinviteAnswered)
        seen["status"] = answered.response.status
        seen["answer_dir"] = direction(parse_sdp(answered.response.body), 0)
        passed = await bed.trunk.wait_for(ReinviteReceived)
        assert isinstance(passed, ReinviteReceived)
        offer = parse_sdp(passed.request.body)
        seen["passed_dir"] = direction(offer, 0)
        seen["passed_addr"] = media_address(offer)
        rows = await sip_channels(bed)
        assert rows[0][4:] == ["Yes", "Rx: INVITE"]  # the caller holds
        assert rows[1][4:] == ["No", "Tx: INVITE"]  # pypbx passed the hold on
        session.bye(now=bed.caller.now())
        flush(bed.caller)
        await bed.trunk.wait_for(SessionTerminated)
        await settle(0.1)
        assert await sip_channels(bed) == []

    run_bed(tmp_path, body)
    assert seen["status"] == 200
    assert seen["answer_dir"] is Direction.RECVONLY
    assert seen["passed_dir"] is Direction.SENDONLY
    addr = seen["passed_addr"]
    assert isinstance(addr, tuple)
    assert addr[0] == "127.0.0.1"  # still pypbx's relay, not the caller


def test_rtptimeout_hangs_up_a_silent_call(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        await answered_call(bed, "18005551234")
        start = asyncio.get_running_loop().time()
        ended = await bed.caller.wait_for(SessionTerminated, timeout=6)
        assert isinstance(ended, SessionTerminated)
        seen["remote"] = ended.remote
        seen["after"] = asyncio.get_running_loop().time() - start
        await bed.trunk.wait_for(SessionTerminated)

    run_bed(tmp_path, body, trunk_extra="rtptimeout=1")
    assert seen["remote"] is True
    assert 1.0 <= seen["after"] <= 4.0  # type: ignore[operator]


def test_codecs_follow_each_peers_allow_order(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        p = bed.caller
        # PCMA first; peer 1000 allows ulaw only
        session = call(bed, "2000", codecs=("alaw", "ulaw"))
        answered = await p.wait_for(SessionAnswered)
        assert isinstance(answered, SessionAnswered)
        seen["caller_formats"] = parse_sdp(answered.response.body).media[0].formats
        offered = await bed.callee2.wait_for(SessionOffered)
        assert isinstance(offered, SessionOffered)
        seen["callee_formats"] = parse_sdp(offered.request.body).media[0].formats
        session.bye(now=p.now())
        flush(p)
        await bed.callee2.wait_for(SessionTerminated)

    run_bed(tmp_path, body)
    assert seen["caller_formats"][0] == "0"  # type: ignore[index]
    assert "8" not in seen["caller_formats"]  # type: ignore[operator]
    # 2000 allows ulaw,alaw; only what the caller can use is offered, in 2000's order
    assert seen["callee_formats"][0] == "0"  # type: ignore[index]


def test_early_media_183_is_passed_back_and_relayed(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        session = call(bed, "18005551234")
        early = await bed.caller.early_media()
        caller_side = media_address(parse_sdp(early.response.body))
        offered = await bed.trunk.wait_for(SessionOffered)
        assert isinstance(offered, SessionOffered)
        trunk_side = media_address(parse_sdp(offered.request.body))
        assert trunk_side is not None
        bed.trunk.send_rtp(trunk_side, 10)  # ringback from the far end
        await settle()
        seen["caller_addr"] = caller_side
        seen["heard"] = len(bed.caller.rtp.received)
        session.cancel(now=bed.caller.now())
        flush(bed.caller)
        await bed.trunk.wait_for(SessionCancelled)

    run_bed(tmp_path, body, trunk_answer="183")
    addr = seen["caller_addr"]
    assert isinstance(addr, tuple)
    assert addr[0] == "127.0.0.1"
    assert seen["heard"] >= 5  # after strictrtp's probation


@pytest.mark.parametrize(
    ("number", "status", "trunk_rings"),
    [
        ("18005551234", 404, False),  # only in [internal]: a guest never reaches it
        ("18002223333", 200, True),  # what [guests] itself offers
    ],
)
def test_guests_run_in_the_general_context_only(
    tmp_path: Path, number: str, status: int, trunk_rings: bool
) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        guest = Phone("127.0.0.35")
        guest.changed = asyncio.Event()
        await guest.start()
        try:
            session = call(bed, number, auth=False, phone=guest, user="guest")
            flush(guest)
            done = await guest.wait_for(SessionAnswered | SessionRejected)  # type: ignore[arg-type]
            seen["status"] = done.status if isinstance(done, SessionRejected) else 200
            await settle()
            seen["trunk"] = any(isinstance(e, SessionOffered) for e in bed.trunk.events)
            if isinstance(done, SessionAnswered):
                session.bye(now=guest.now())
                flush(guest)
                await bed.trunk.wait_for(SessionTerminated)
        finally:
            await guest.close()

    run_bed(tmp_path, body, general_extra="allowguest=yes")
    assert seen["status"] == status
    assert seen["trunk"] is trunk_rings


def test_no_rtp_ports_left_fails_the_call_and_frees_everything(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        call(bed, "18005551234")
        rejected = await bed.caller.wait_for(SessionRejected)
        assert isinstance(rejected, SessionRejected)
        seen["status"] = rejected.status
        await bed.trunk.wait_for(SessionTerminated)  # the answered callee got BYE
        await settle()
        assert bed.service.manager is not None
        assert bed.service.manager.ports is not None
        seen["ports"] = bed.service.manager.ports.in_use
        seen["channels"] = len(bed.pbx.channels)

    run_bed(tmp_path, body, rtp_range=(30100, 30101))  # one pair: the callee's leg takes it
    assert seen["status"] == 503
    assert seen["ports"] == 0
    assert seen["channels"] == 0


def test_incoming_calls_over_the_peers_call_limit_get_480(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        t = bed.trunk
        first = call(bed, "18182223333", auth=False, phone=t, user="13105550100")
        await t.wait_for(SessionAnswered)
        call(bed, "18182223333", auth=False, phone=t, user="13105550101")
        rejected = await t.wait_for(SessionRejected)
        assert isinstance(rejected, SessionRejected)
        seen["second"] = rejected.status
        first.bye(now=t.now())
        flush(t)
        await bed.caller.wait_for(SessionTerminated)
        await settle()
        bed.caller.events.clear()
        third = call(bed, "18182223333", auth=False, phone=t, user="13105550102")
        await t.wait_for(  # the slot was released at hangup
            SessionAnswered, where=lambda ev: ev.session is third
        )
        third.bye(now=t.now())
        flush(t)
        await bed.caller.wait_for(SessionTerminated)

    run_bed(tmp_path, body, trunk_extra="call-limit=1")
    assert seen["second"] == 480


def test_rtp_reload_moves_new_calls_to_the_new_range(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def body(bed: Bed) -> None:
        (tmp_path / "rtp.conf").write_text("[general]\nrtpstart=31000\nrtpend=31099\n")
        seen["lines"] = await bed.service.reload(load_config_dir(tmp_path))
        session = await answered_call(bed, "18005551234")
        assert bed.service.manager is not None
        seen["ports"] = sorted(
            c.leg.port for c in bed.service.manager.channels if c.leg is not None
        )
        session.bye(now=bed.caller.now())
        flush(bed.caller)
        await bed.trunk.wait_for(SessionTerminated)

    run_bed(tmp_path, body)
    assert any("31000-31099" in line for line in seen["lines"]), seen  # type: ignore[attr-defined]
    ports = seen["ports"]
    assert isinstance(ports, list)
    assert len(ports) == 2
    assert all(31000 <= p <= 31099 for p in ports), ports
