"""What the SIP channels of one PBX share (:class:`CallEnv`), what an outgoing leg reports to
the dialer (:class:`LegNews`), and the reading of a leg's SDP they all need: where its audio
goes, its codecs and its telephone-event payload type (RFC 4566 §5.14, RFC 4733 §7.1).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pypbx.call.channel import ChannelNamer, ChannelTable
from pypbx.call.media_ops import SoundLibrary
from pypbx.dialplan.channel_api import DialResult, DialTarget
from pypbx.media.relay import LegOptions
from pypbx.sip.events import Addr
from pypbx.sip.sdp import Codec, Direction, SessionDescription, codecs, direction, telephone_event
from pypbx.sip.session import Session
from pypbx.sip.useragent import UserAgent

if TYPE_CHECKING:
    from pypbx.call.sip_channel import SipChannel
    from pypbx.media.ports import PortAllocator
    from pypbx.peers import PeerDirectory

__all__ = [
    "CallEnv",
    "DialFn",
    "LegNews",
    "audio_codecs",
    "audio_index",
    "event_type_of",
    "media_address",
    "offered_direction",
]


@dataclass(frozen=True, slots=True)
class LegNews:
    """What an outgoing leg tells the dialer: ``progress`` (1xx), ``answer`` or ``fail``."""

    leg: SipChannel
    kind: str
    status: int
    sdp: SessionDescription | None = None


DialFn = Callable[
    ["SipChannel", list[DialTarget], float | None, dict[str, str], dict[str, str] | None],
    Awaitable[DialResult],
]


@dataclass(slots=True)
class CallEnv:
    """What SIP channels share: the user agent, peers, RTP ports, addresses, clocks."""

    ua: UserAgent
    directory: PeerDirectory
    ports: PortAllocator
    media_host: str
    sip_host: str
    namer: ChannelNamer
    channels: ChannelTable
    loop_time: Callable[[], float]
    wall_time: Callable[[], float]
    flush: Callable[[], None]
    register_session: Callable[[Session, SipChannel], None]
    strict: LegOptions = field(default_factory=LegOptions)
    default_allow: tuple[str, ...] = ("ulaw", "alaw")
    dial: DialFn | None = None
    relayed: dict[str, int] = field(default_factory=dict)
    """Totals of finished legs: packets_in/out, dropped (for tests, benches, the CLI)."""
    sounds: SoundLibrary | None = None
    """Playback's files (``sounddir``); None plays nothing (every file is missing)."""
    ssrc: Callable[[], int] = field(default=lambda: random.getrandbits(32))
    """The SSRC of a leg's own RTP stream (Playback, tones, Echo)."""


def media_address(sd: SessionDescription) -> Addr | None:
    """Where the first live audio stream of ``sd`` wants RTP (None if none, or held with
    ``c=0.0.0.0``)."""
    for m in sd.media:
        if m.kind == "audio" and m.port != 0:
            conn = m.connection or sd.connection
            if conn is None or conn.host == "0.0.0.0":
                return None
            return conn.host, m.port
    return None


def audio_index(sd: SessionDescription) -> int | None:
    return next((i for i, m in enumerate(sd.media) if m.kind == "audio" and m.port != 0), None)


def offered_direction(sd: SessionDescription) -> Direction:
    """The direction ``sd`` asks for its live audio (sendrecv when it has none); ``sendrecv``
    to the address 0.0.0.0 is RFC 2543's hold, read as ``sendonly``."""
    index = audio_index(sd)
    way = direction(sd, index) if index is not None else Direction.SENDRECV
    if media_address(sd) is None and way is Direction.SENDRECV:
        way = Direction.SENDONLY
    return way


def audio_codecs(sd: SessionDescription) -> list[Codec]:
    i = audio_index(sd)
    return [] if i is None else codecs(sd.media[i])


def event_type_of(sd: SessionDescription | None) -> int | None:
    """The telephone-event payload type of ``sd``'s live audio stream, if it has one."""
    i = None if sd is None else audio_index(sd)
    if sd is None or i is None:
        return None
    codec = telephone_event(sd.media[i])
    return None if codec is None else codec.payload_type
