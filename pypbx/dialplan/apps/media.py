"""Media applications: Playback, Background, Echo, Read, PlayTones, StopPlayTones,
MusicOnHold (Asterisk apps/app_playback.c, main/pbx_builtins.c Background, apps/app_echo.c,
apps/app_read.c, main/indications.c, res/res_musiconhold.c). The sound work is the channel's;
these parse arguments, answer when Asterisk would, and set the status variables.

A channel that can tell a missing file (:class:`SoundChannel`, the SIP channel) lets Playback
and Background report ``FAILED`` as Asterisk does; others only have ``ChannelApi.play``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pypbx.dialplan.apps.basic import parse_seconds
from pypbx.dialplan.args import split_args
from pypbx.dialplan.registry import AppResult, Flag, application

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution

CONTINUE = AppResult.CONTINUE
HANGUP = AppResult.HANGUP
DTMF = "0123456789*#"


class PlayOutcome(Protocol):
    """How a play ended: the digit that interrupted it, the first file that was missing."""

    @property
    def digit(self) -> str: ...

    @property
    def missing(self) -> str | None: ...


@runtime_checkable
class SoundChannel(Protocol):
    """A channel that reports missing sound files (beyond ``ChannelApi.play``)."""

    async def play_sounds(
        self, files: list[str], *, stop_digits: str = "", keep_going: bool = False
    ) -> PlayOutcome: ...


@runtime_checkable
class HoldMusicChannel(Protocol):
    """A channel that plays a music-on-hold class."""

    async def music_on_hold(self, klass: str, seconds: float | None) -> None: ...


async def play_sounds(
    x: Execution, files: list[str], *, stop_digits: str = "", keep_going: bool = False
) -> tuple[str, str | None]:
    """Play ``files`` on the call: (interrupting digit, first missing file or None).

    Without ``keep_going`` a missing file ends the play (``ast_streamfile`` failing); with it
    the file is skipped (the ``say`` functions)."""
    channel = x.channel
    if isinstance(channel, SoundChannel):
        out = await channel.play_sounds(files, stop_digits=stop_digits, keep_going=keep_going)
        return out.digit, out.missing
    return await channel.play(files, stop_digits=stop_digits), None


def sound_files(text: str) -> list[str]:
    """``file1&file2`` → ``[file1, file2]`` (empty names dropped)."""
    return [f.strip() for f in text.split("&") if f.strip()]


async def _skipped(x: Execution, *, skip: bool, noanswer: bool) -> bool:
    """Answer an unanswered channel first, unless ``noanswer``; True when ``skip`` says to
    do nothing on an unanswered channel."""
    if x.channel.answered:
        return False
    if skip:
        return True
    if not noanswer:
        await x.channel.answer()
    return False


@application(
    "Playback", syntax="Playback(filename[&filename2[&...]][,options])", flags=(Flag.NEEDS_CALL,)
)
async def playback(x: Execution, data: str) -> AppResult:
    """Play one or more sound files; answers first unless ``noanswer``.

    Options: ``skip`` (do nothing if the channel is not answered), ``noanswer``.
    Sets ``PLAYBACKSTATUS`` to SUCCESS or FAILED.
    """
    args = split_args(data)
    if not args or not args[0].strip():
        x.warn("Playback requires an argument (filename)")
        return HANGUP
    options = args[1].lower() if len(args) > 1 else ""
    if await _skipped(x, skip="skip" in options, noanswer="noanswer" in options):
        x.vars.set("PLAYBACKSTATUS", "SUCCESS")
        return CONTINUE
    _, missing = await play_sounds(x, sound_files(args[0]))
    if missing is not None:
        x.warn(f"Playback failed on {x.channel.name} for {args[0]}")
    x.vars.set("PLAYBACKSTATUS", "FAILED" if missing is not None else "SUCCESS")
    return HANGUP if x.channel.hung_up else CONTINUE


@application(
    "Background",
    syntax="Background(filename[&filename2...][,options[,langoverride[,context]]])",
    flags=(Flag.NEEDS_CALL,),
)
async def background(x: Execution, data: str) -> AppResult:
    """Play sound files while listening for digits; a digit starts dialling an extension.

    Options: ``s``/``skip`` (skip if not answered), ``n``/``noanswer``. The dialled digits go
    to their extension in ``context`` (default: ``${MACRO_CONTEXT}``, else the current one).
    """
    args = split_args(data)
    if not args or not args[0].strip():
        x.warn("Background requires an argument (filename)")
        return HANGUP
    options = args[1].strip() if len(args) > 1 else ""
    skip, noanswer = options.lower() == "skip", options.lower() == "noanswer"
    if not skip and not noanswer:
        skip, noanswer = "s" in options, "n" in options
    context = args[3].strip() if len(args) > 3 and args[3].strip() else None
    # pbx_builtin_background: digits are looked up in the Macro's caller context if any
    context = context or x.vars.get("MACRO_CONTEXT") or x.context
    if await _skipped(x, skip=skip, noanswer=noanswer):
        x.vars.set("BACKGROUNDSTATUS", "SUCCESS")
        return CONTINUE
    digit, missing = await play_sounds(x, sound_files(args[0]), stop_digits=DTMF)
    if missing is not None:
        x.warn(f"ast_streamfile failed on {x.channel.name} for {args[0]}")
        x.vars.set("BACKGROUNDSTATUS", "FAILED")
        return HANGUP if x.channel.hung_up else CONTINUE
    x.vars.set("BACKGROUNDSTATUS", "SUCCESS")
    if x.channel.hung_up:
        return HANGUP
    if not digit:
        return CONTINUE
    digits = await x.collect_extension(digit, x.digit_timeout, context)
    pos = x.route_digits(digits, context)
    if pos is None:
        return HANGUP
    x.goto(pos.context, pos.exten, pos.priority)
    return CONTINUE


@application("Echo", syntax="Echo()", flags=(Flag.NEEDS_CALL,))
async def echo(x: Execution, data: str) -> AppResult:
    """Echo media, DTMF and frames back to the caller until ``#`` or hangup."""
    await x.channel.echo()
    return HANGUP if x.channel.hung_up else CONTINUE


@application(
    "Read",
    syntax="Read(variable[,filename[&filename2...]][,maxdigits][,options][,attempts][,timeout])",
    flags=(Flag.NEEDS_CALL,),
)
async def read(x: Execution, data: str) -> AppResult:
    """Read digits into a variable after an optional prompt; ``#`` ends the input.

    ``maxdigits`` 0 means up to 255. Options: ``s`` (return if not answered), ``n`` (read
    even if not answered), ``i`` (prompt is an indication tone), ``t(chars)`` (the digits
    that end the input, ``#`` by default). Sets ``READSTATUS``.
    """
    args = split_args(data)
    if not args or not args[0].strip():
        x.warn("Read requires an argument (variable)")
        return CONTINUE
    var = args[0].strip()
    files = sound_files(args[1]) if len(args) > 1 else []
    maxd = int(args[2]) if len(args) > 2 and args[2].strip().isdigit() else 0
    options = args[3] if len(args) > 3 else ""
    attempts = int(args[4]) if len(args) > 4 and args[4].strip().isdigit() else 1
    timeout = parse_seconds(args[5]) if len(args) > 5 else None
    if maxd <= 0 or maxd > 255:
        maxd = 255
    # t(chars): the digits that end the input (default '#'; t() for none)
    m = re.search(r"t\(([^)]*)\)", options)
    terminators = m.group(1) if m else "#"
    options = re.sub(r"t\([^)]*\)", "", options)
    if await _skipped(x, skip="s" in options, noanswer="n" in options):
        x.vars.set("READSTATUS", "SKIPPED")
        x.vars.set(var, "")
        return CONTINUE
    got = ""
    for _ in range(max(1, attempts)):
        first = ""
        if files:
            if "i" in options:
                await x.channel.play_tones(args[1])
            else:
                first = await x.channel.play(files, stop_digits=DTMF)
        if first and first in terminators:
            break
        got = first + await x.channel.read_digits(
            maxd - len(first), timeout or x.response_timeout, terminator=terminators
        )
        if got:
            break
    x.vars.set(var, got)
    if x.channel.hung_up:
        x.vars.set("READSTATUS", "HANGUP")
        return HANGUP
    x.vars.set("READSTATUS", "OK" if got else "TIMEOUT")
    return CONTINUE


@application("PlayTones", syntax="PlayTones(arg)", flags=(Flag.NEEDS_CALL,))
async def play_tones(x: Execution, data: str) -> AppResult:
    """Play a tone list (``busy``, ``ring`` or ``440+480/2000,0/4000``) while the plan goes on."""
    if not data.strip():
        x.warn("PlayTones requires an argument (the tone name or tone list)")
        return CONTINUE
    await x.channel.play_tones(data.strip())
    return CONTINUE


@application("StopPlayTones", syntax="StopPlayTones()", flags=(Flag.NEEDS_CALL,))
async def stop_play_tones(x: Execution, data: str) -> AppResult:
    """Stop the tones PlayTones started."""
    await x.channel.stop_tones()
    return CONTINUE


@application("MusicOnHold", syntax="MusicOnHold(class[,duration])", flags=(Flag.NEEDS_CALL,))
async def music_on_hold(x: Execution, data: str) -> AppResult:
    """Play hold music of ``class`` (``default`` when empty) for ``duration`` seconds, or
    until hangup. A class is the files of ``sounddir/moh/<class>``; pypbx generates a tune
    when there are none. Channels without hold music just wait."""
    args = split_args(data)
    klass = args[0].strip() if args and args[0].strip() else "default"
    seconds = parse_seconds(args[1]) if len(args) > 1 and args[1].strip() else None
    if seconds is not None and seconds <= 0:
        seconds = None
    channel = x.channel
    if isinstance(channel, HoldMusicChannel):
        await channel.music_on_hold(klass, seconds)
    else:
        await channel.sleep(seconds if seconds is not None else 86400.0)
    return HANGUP if x.channel.hung_up else CONTINUE
