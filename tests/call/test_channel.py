"""Channel states, names, the technology registry and DIALSTATUS aggregation (pure)."""

from __future__ import annotations

import pytest

from pypbx.call.channel import (
    TRANSITIONS,
    Channel,
    ChannelNamer,
    ChannelState,
    ChannelTable,
    IllegalChannelState,
)
from pypbx.call.dial import aggregate_status
from pypbx.call.sip_env import media_address
from pypbx.call.tech import TechRegistry, UnknownTech
from pypbx.dialplan.channel_api import DialStatus, HangupCause
from pypbx.sip.sdp import parse_sdp

S = ChannelState


def test_names_count_up_in_hex_per_pbx() -> None:
    namer = ChannelNamer()
    assert namer.next("SIP", "1000", 1700000000.5) == ("SIP/1000-00000001", "1700000000.1")
    assert namer.next("SIP", "flowroute", 1700000001.0)[0] == "SIP/flowroute-00000002"
    assert ChannelNamer(255).next("SIP", "x", 0)[0] == "SIP/x-000000ff"


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ([S.RING, S.UP, S.HUNGUP], True),
        ([S.DIALING, S.RINGING, S.RINGING, S.UP, S.HUNGUP], True),
        ([S.DIALING, S.HUNGUP], True),
        ([S.UP, S.RING], False),
        ([S.HUNGUP, S.UP], False),
        ([S.RING, S.DIALING], False),
    ],
)
def test_state_table(path: list[ChannelState], ok: bool) -> None:
    ch = Channel("SIP/1000-00000001", "1.1", created=0.0)
    try:
        for state in path:
            before = ch.state
            ch.set_state(state)
    except IllegalChannelState:
        assert not ok
        assert ch.state is before  # an illegal move leaves the state alone
    else:
        assert ok
        assert ch.state is path[-1]


def test_hungup_is_final() -> None:
    assert TRANSITIONS[S.HUNGUP] == frozenset()


def test_table_tracks_live_channels() -> None:
    changes: list[int] = []
    table = ChannelTable()
    table.on_change = lambda _ch, _added: changes.append(len(table))
    a, b = Channel("SIP/a-1", "1", created=0), Channel("SIP/b-2", "2", created=0)
    table.add(a)
    table.add(b)
    table.remove(a)
    table.remove(a)  # twice: no second notification
    assert [c.name for c in table] == ["SIP/b-2"]
    assert changes == [1, 2, 1]


class _Tech:
    name = "SIP"
    description = "test"

    def request(
        self, resource: str, caller: Channel, *, inherit: dict[str, str] | None = None
    ) -> Channel | None:
        return None


def test_registry_is_case_insensitive_and_refuses_twins() -> None:
    reg = TechRegistry()
    reg.register(_Tech())
    assert reg.get("sip").name == "SIP"
    with pytest.raises(UnknownTech):
        reg.get("IAX2")
    with pytest.raises(ValueError, match="twice"):
        reg.register(_Tech())


@pytest.mark.parametrize(
    ("causes", "status"),
    [
        ([HangupCause.USER_BUSY, HangupCause.NO_ANSWER], DialStatus.BUSY),
        ([HangupCause.NORMAL_CIRCUIT_CONGESTION, HangupCause.UNALLOCATED], DialStatus.CONGESTION),
        ([HangupCause.UNALLOCATED, HangupCause.NO_ANSWER], DialStatus.CHANUNAVAIL),
        ([HangupCause.NO_ANSWER], DialStatus.NOANSWER),
        ([], DialStatus.NOANSWER),
    ],
)
def test_dialstatus_of_several_failed_legs(causes: list[int], status: DialStatus) -> None:
    assert aggregate_status([int(c) for c in causes]) is status


@pytest.mark.parametrize(
    ("sdp", "addr"),
    [
        ("c=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", ("10.0.0.5", 4000)),
        ("c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", None),  # RFC 2543 hold
        ("c=IN IP4 10.0.0.5\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 0 RTP/AVP 0\r\n", None),
        (
            "c=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\nc=IN IP4 10.0.0.9\r\n",
            ("10.0.0.9", 6000),
        ),
    ],
)
def test_media_address(sdp: str, addr: tuple[str, int] | None) -> None:
    text = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\n" + sdp
    assert media_address(parse_sdp(text)) == addr
