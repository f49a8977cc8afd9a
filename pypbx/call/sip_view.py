"""What ``sip show channels`` shows of a SIP call leg (chan_sip's dialog list): the far end's
signalling address, the peer (or caller number), Call-ID, the codec in use by its Asterisk name,
whether the far end holds the call, and the last SIP request received (``Rx:``) or sent
(``Tx:``) on the leg.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pypbx.call.sip_env import audio_index, media_address, offered_direction
from pypbx.sip.sdp import Direction, SessionDescription
from pypbx.sip.sdp_offer import ASTERISK_CODECS

if TYPE_CHECKING:
    from pypbx.call.sip_channel import SipChannel

__all__ = ["SipDialogRow", "asterisk_codec", "dialog_rows", "holds"]

_BY_ENCODING = {enc.upper(): name for name, (enc, rate, _ch) in ASTERISK_CODECS.items() if rate}


@dataclass(frozen=True, slots=True)
class SipDialogRow:
    """One line of ``sip show channels``."""

    peer_address: str
    user: str
    call_id: str
    codec: str
    on_hold: bool
    last_method: str


def asterisk_codec(encoding: str) -> str:
    """``PCMU`` → ``ulaw``: the name Asterisk's ``allow=`` and CLI use (else lower case)."""
    return _BY_ENCODING.get(encoding.upper(), encoding.lower())


def holds(sd: SessionDescription | None) -> bool:
    """Whether the far end's SDP puts the call on hold: its audio is ``sendonly`` or
    ``inactive``, or its address is 0.0.0.0 (RFC 2543 hold)."""
    if sd is None or audio_index(sd) is None:
        return False
    held = offered_direction(sd) in (Direction.SENDONLY, Direction.INACTIVE)
    return held or media_address(sd) is None


def dialog_rows(channels: Iterable[object]) -> list[SipDialogRow]:
    """The rows for the SIP channels among ``channels`` that have a SIP session."""
    from pypbx.call.sip_channel import SipChannel

    rows = []
    for chan in channels:
        if isinstance(chan, SipChannel) and chan.session is not None and not chan.hung_up:
            rows.append(_row(chan))
    return rows


def _row(chan: SipChannel) -> SipDialogRow:
    session = chan.session
    assert session is not None
    codec = next((c for c in chan.codecs if c.name.lower() != "telephone-event"), None)
    return SipDialogRow(
        peer_address=str(session.origin[0]),
        user=chan.peer.name if chan.peer is not None else chan.callerid_num,
        call_id=session.call_id,
        codec=asterisk_codec(codec.name) if codec is not None else "",
        on_hold=holds(chan.remote_sdp),
        last_method=chan.last_message,
    )
