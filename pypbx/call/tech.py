"""Channel technologies: the ``TECH`` of ``Dial(TECH/resource)`` (Asterisk
``ast_channel_register`` / ``ast_request``). A technology turns a resource string into a new
outgoing leg; the registry maps names case-insensitively, so ``Dial(sip/1000)`` works too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pypbx.call.channel import Channel

__all__ = ["ChannelTech", "TechRegistry", "UnknownTech"]


class UnknownTech(LookupError):
    """``Dial`` named a technology nobody registered (app_dial: CHANUNAVAIL)."""


class ChannelTech(Protocol):
    """One technology. ``request`` makes an outgoing leg for ``resource`` on behalf of
    ``caller`` (not yet calling), or returns None and sets nothing when the resource is
    unusable (unknown peer, not registered): the dial then says CHANUNAVAIL."""

    name: str
    description: str

    def request(
        self, resource: str, caller: Channel, *, inherit: dict[str, str] | None = None
    ) -> Channel | None: ...


class TechRegistry:
    """Registered technologies by name (case-insensitive)."""

    def __init__(self) -> None:
        self._techs: dict[str, ChannelTech] = {}

    def register(self, tech: ChannelTech) -> None:
        key = tech.name.upper()
        if key in self._techs:
            raise ValueError(f"channel technology {tech.name} registered twice")
        self._techs[key] = tech

    def get(self, name: str) -> ChannelTech:
        tech = self._techs.get(name.upper())
        if tech is None:
            raise UnknownTech(name)
        return tech

    def __iter__(self) -> Iterator[ChannelTech]:
        return iter(list(self._techs.values()))
