"""Dial(SIP/...) resources → the INVITE SipTech plans (R-URI, To, From, next hop, auth)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from pypbx.call.channel import ChannelNamer, ChannelTable
from pypbx.call.sip_channel import SipChannel
from pypbx.call.sip_env import CallEnv
from pypbx.call.sip_tech import SipTech
from pypbx.config.conf import parse_text
from pypbx.config.sipconf import parse_sip_conf
from pypbx.location import Location
from pypbx.peers import PeerDirectory

CONF = """[general]
context=guests

[flowroute]
type=peer
host=127.0.0.21
port=5070
username=acct1
fromuser=acct1
fromdomain=pbx.example
secret=trunksecret
insecure=port,invite

[plain]
type=peer
host=10.0.0.9

[1000]
type=friend
host=dynamic
secret=pw
"""


def tech() -> tuple[SipTech, ChannelTable]:
    directory = PeerDirectory(parse_sip_conf(parse_text(CONF, "sip.conf")), Location())
    table = ChannelTable()
    env = CallEnv(
        ua=cast(Any, None),
        directory=directory,
        ports=cast(Any, None),
        media_host="192.0.2.1",
        sip_host="192.0.2.1",
        namer=ChannelNamer(),
        channels=table,
        loop_time=lambda: 0.0,
        wall_time=lambda: 1_800_000_000.0,
        flush=lambda: None,
        register_session=lambda _s, _c: None,
    )
    return SipTech(env), table


def caller() -> SipChannel:
    t, _ = tech()
    ch = SipChannel(t.env, "SIP/1000-00000001", "1.1", peer=None, outgoing=False)
    ch.callerid_num, ch.callerid_name = "1000", "Alice"
    return ch


@pytest.mark.parametrize(
    ("resource", "uri", "to", "from_", "dest", "auth_user"),
    [
        (
            "flowroute/18002223333",
            "sip:18002223333@127.0.0.21:5070",
            "<sip:18002223333@127.0.0.21:5070>",
            '"Alice" <sip:acct1@pbx.example>',
            ("127.0.0.21", 5070),
            "acct1",
        ),
        (
            "18002223333@flowroute",
            "sip:18002223333@127.0.0.21:5070",
            "<sip:18002223333@127.0.0.21:5070>",
            '"Alice" <sip:acct1@pbx.example>',
            ("127.0.0.21", 5070),
            "acct1",
        ),
        (
            "plain",
            "sip:plain@10.0.0.9:5060",
            "<sip:plain@10.0.0.9:5060>",
            '"Alice" <sip:1000@192.0.2.1>',  # no fromuser: the caller's number
            ("10.0.0.9", 5060),
            None,
        ),
    ],
)
def test_planned_invite(
    resource: str, uri: str, to: str, from_: str, dest: tuple[str, int], auth_user: str | None
) -> None:
    t, table = tech()
    leg = t.request(resource, caller())
    assert leg is not None
    assert leg.invite_plan is not None
    p_uri, p_to, p_from, p_dest, p_auth = leg.invite_plan
    assert (p_uri, p_to, p_from, p_dest) == (uri, to, from_, dest)
    assert (p_auth.username if p_auth else None) == auth_user
    assert leg.outgoing
    assert leg.name.startswith("SIP/")
    assert table.get(leg.name) is leg


@pytest.mark.parametrize("resource", ["nosuchpeer", "1000", "555@nosuchpeer"])
def test_unknown_or_unregistered_peer_gives_no_channel(resource: str) -> None:
    t, table = tech()
    assert t.request(resource, caller()) is None  # Dial: CHANUNAVAIL
    assert len(table) == 0
