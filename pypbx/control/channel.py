"""``core show channel <name>``: one channel in detail, as Asterisk's ``handle_showchan`` lays
it out (`` -- General --`` and `` --   PBX   --`` blocks, ``Name:``-style lines, the channel
variables), followed by what pypbx adds: the channel's RTP relay leg (ports, where it sends,
the source it accepts, whether packets take the fast path, counters).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pypbx.call.sip_view import asterisk_codec
from pypbx.control.commands import CommandError, ShowUsage, command

if TYPE_CHECKING:
    from pypbx.server import Pbx

_STATE_NUMBERS = {"Down": 0, "Dialing": 3, "Ring": 4, "Ringing": 5, "Up": 6, "Hungup": 0}
"""Asterisk's ``ast_channel_state`` numbers, shown after the state name."""


def _names(pbx: Pbx, args: list[str], word: str) -> Iterable[str]:
    return [] if args else [str(getattr(c, "name", "")) for c in pbx.channels]


def _na(value: object) -> str:
    return str(value) if value else "(N/A)"


def _elapsed(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}h{s % 3600 // 60}m{s % 60}s"


def _addr(addr: Any) -> str:
    if not addr:
        return "(none)"
    host = str(addr[0])
    return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"


@command(
    "core show channel",
    summary="Display information on a specific channel",
    usage="Usage: core show channel <channel>\n"
    "       Shows lots of information about the specified channel.",
    completer=_names,
)
async def show_channel(pbx: Pbx, args: list[str]) -> str:
    if len(args) != 1:
        raise ShowUsage
    chan = next((c for c in pbx.channels if getattr(c, "name", None) == args[0]), None)
    if chan is None:
        raise CommandError(f"{args[0]} is not a known channel")
    name = str(chan.name)
    state = str(getattr(chan, "state", ""))
    codecs = [asterisk_codec(c.name) for c in getattr(chan, "codecs", [])]
    bridged = getattr(chan, "bridged", None)
    lines = [
        " -- General --",
        f"           Name: {name}",
        f"           Type: {name.split('/', 1)[0]}",
        f"       UniqueID: {getattr(chan, 'uniqueid', '')}",
        f"      Caller ID: {_na(getattr(chan, 'callerid_num', ''))}",
        f" Caller ID Name: {_na(getattr(chan, 'callerid_name', ''))}",
        f"    DNID Digits: {_na(getattr(chan, 'exten', ''))}",
        f"          State: {state} ({_STATE_NUMBERS.get(state, 0)})",
        f"  NativeFormats: ({'|'.join(codecs)})",
        f"   Elapsed Time: {_elapsed(pbx.clock() - float(getattr(chan, 'created', pbx.clock())))}",
        f"  Direct Bridge: {getattr(bridged, 'name', '') or '<none>'}",
        " --   PBX   --",
        f"        Context: {getattr(chan, 'context', '')}",
        f"      Extension: {getattr(chan, 'exten', '')}",
        f"       Priority: {getattr(chan, 'priority', 1)}",
        f"    Application: {_na(getattr(chan, 'app', ''))}",
        f"           Data: {_na(getattr(chan, 'data', ''))}",
        "      Variables:",
    ]
    variables = getattr(chan, "vars", None)
    lines += [f"{k}={v}" for k, v in (variables.items() if variables is not None else [])]
    leg = getattr(chan, "leg", None)
    if leg is not None:
        lines += _rtp_lines(leg)
    return "\n".join(lines)


def _rtp_lines(leg: Any) -> list[str]:
    st = leg.stats()
    source = leg.source_state_now()
    path = "C" if leg.in_c else ("Python" if leg.fast else "checked (slow)")
    return [
        " --   RTP   --",
        f"     Local port: {leg.port} (RTCP {leg.port + 1})",
        f"        Sending: {_addr(leg.remote)}",
        f"         Source: {_addr(leg.source)} ({source})",
        f"      Fast path: {path}",
        f"     Packets in: {st.packets_in} ({st.fast_in} on the fast path)",
        f"    Packets out: {st.packets_out}",
        f"        Dropped: {st.dropped_strict + st.dropped_learning + st.dropped_unroutable}",
        f"    RTCP in/out: {st.rtcp_in}/{st.rtcp_out}",
    ]
