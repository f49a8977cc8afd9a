"""Channels: one per call leg, named as Asterisk names them (``SIP/1000-00000001``), with a
state moved by a table, variables, a hangup cause and a live table for ``core show channels``
(Asterisk main/channel.c: ``ast_channel_alloc``, ``ast_setstate``, channel states of
include/asterisk/channelstate.h).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from enum import StrEnum

from pypbx.dialplan.channel_api import ChannelVars

__all__ = [
    "TRANSITIONS",
    "Channel",
    "ChannelNamer",
    "ChannelState",
    "ChannelTable",
    "IllegalChannelState",
]


class ChannelState(StrEnum):
    """Asterisk's channel states (the ones a SIP leg goes through)."""

    DOWN = "Down"  # created, nothing sent or answered yet
    DIALING = "Dialing"  # outgoing: INVITE sent
    RING = "Ring"  # incoming: INVITE received, not answered
    RINGING = "Ringing"  # outgoing: the far end rings (180/183)
    UP = "Up"  # answered
    HUNGUP = "Hungup"


class IllegalChannelState(RuntimeError):
    """A state change the table does not allow; the state stays put."""


_S = ChannelState
TRANSITIONS: dict[ChannelState, frozenset[ChannelState]] = {
    _S.DOWN: frozenset({_S.DIALING, _S.RING, _S.UP, _S.HUNGUP}),
    _S.DIALING: frozenset({_S.RINGING, _S.UP, _S.HUNGUP}),
    _S.RING: frozenset({_S.UP, _S.HUNGUP}),
    _S.RINGING: frozenset({_S.RINGING, _S.UP, _S.HUNGUP}),
    _S.UP: frozenset({_S.HUNGUP}),
    _S.HUNGUP: frozenset(),
}
del _S


class ChannelNamer:
    """Names and unique ids: ``TECH/peer-%08x`` with one counter per PBX (as Asterisk's
    ``ast_atomic_fetchadd_int(&uniqueint, 1)``), uniqueid ``<epoch>.<n>``."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    def next(self, tech: str, peer: str, now: float) -> tuple[str, str]:
        n = next(self._counter)
        return f"{tech}/{peer}-{n:08x}", f"{int(now)}.{n}"


class Channel:
    """What every technology's channel shares: name, state, variables, cause, times."""

    def __init__(self, name: str, uniqueid: str, *, created: float) -> None:
        self.name = name
        self.uniqueid = uniqueid
        self.created = created
        self.state = ChannelState.DOWN
        self.vars = ChannelVars()
        self.hangup_cause = 0
        self.answered_at: float | None = None
        self.context = ""
        self.exten = ""
        self.app = ""
        self.app_data = ""
        self.bridged: Channel | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.state}>"

    def set_state(self, state: ChannelState) -> None:
        """Move by :data:`TRANSITIONS`; an illegal move raises and changes nothing."""
        if state is self.state:
            return
        if state not in TRANSITIONS[self.state]:
            raise IllegalChannelState(f"{self.name}: {self.state} -> {state} not allowed")
        self.state = state

    @property
    def created_at(self) -> float:
        """When the channel was made (``core show channels`` duration)."""
        return self.created

    @property
    def data(self) -> str:
        """The running application's data (``core show channels``)."""
        return self.app_data

    @property
    def is_up(self) -> bool:
        return self.state is ChannelState.UP

    @property
    def is_hungup(self) -> bool:
        return self.state is ChannelState.HUNGUP


class ChannelTable:
    """The live channels, in creation order; ``on_change(channel, added)`` runs after every
    add and every effective remove."""

    def __init__(self, on_change: Callable[[Channel, bool], None] | None = None) -> None:
        self._live: dict[str, Channel] = {}
        self.on_change = on_change

    def add(self, channel: Channel) -> None:
        self._live[channel.name] = channel
        if self.on_change is not None:
            self.on_change(channel, True)

    def remove(self, channel: Channel) -> None:
        if self._live.pop(channel.name, None) is not None and self.on_change is not None:
            self.on_change(channel, False)

    def get(self, name: str) -> Channel | None:
        return self._live.get(name)

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[Channel]:
        return iter(list(self._live.values()))
