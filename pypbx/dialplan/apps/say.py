"""SayDigits, SayNumber, SayAlpha, SayUnixTime (Asterisk main/say.c, English rules).

Each turns its argument into the list of sound files Asterisk's English ``say`` functions
play (``digits/2``, ``digits/hundred`` ...) and hands it to the channel; a missing file is
skipped, as say.c skips what ``ast_streamfile`` cannot open.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pypbx.dialplan.apps.media import play_sounds
from pypbx.dialplan.args import split_args
from pypbx.dialplan.registry import AppResult, Flag, application

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution

CONTINUE = AppResult.CONTINUE
HANGUP = AppResult.HANGUP
_DIGIT_FILES = {"*": "digits/star", "#": "digits/pound", "-": "digits/minus"}
DEFAULT_TIME_FORMAT = "ABdY 'digits/at' IMp"


def digit_files(text: str) -> list[str]:
    """Files for ``SayDigits``: one per digit, ``*``/``#``/``-`` named; others skipped."""
    out = []
    for c in text:
        if c.isdigit() and c.isascii():
            out.append(f"digits/{c}")
        elif c in _DIGIT_FILES:
            out.append(_DIGIT_FILES[c])
    return out


def alpha_files(text: str) -> list[str]:
    """Files for ``SayAlpha``: letters, digits and a few named symbols."""
    out = []
    for c in text.lower():
        if c.isdigit() and c.isascii():
            out.append(f"digits/{c}")
        elif "a" <= c <= "z":
            out.append(f"letters/{c}")
        elif c in _DIGIT_FILES:
            out.append(_DIGIT_FILES[c])
        elif c == " ":
            out.append("letters/space")
        elif c == ".":
            out.append("letters/dot")
        elif c == "@":
            out.append("letters/at")
    return out


def number_files(n: int) -> list[str]:
    """Files for ``SayNumber`` in English (``ast_say_number_full_en``)."""
    if n == 0:
        return ["digits/0"]
    out: list[str] = []
    if n < 0:
        out.append("digits/minus")
        n = -n
    for size, word in ((1_000_000_000, "billion"), (1_000_000, "million"), (1000, "thousand")):
        if n >= size:
            out += [*number_files(n // size), f"digits/{word}"]
            n %= size
    if n >= 100:
        out += [f"digits/{n // 100}", "digits/hundred"]
        n %= 100
    if n >= 20:
        out.append(f"digits/{n - n % 10}")
        n %= 10
    if n:
        out.append(f"digits/{n}")
    return out


def time_files(when: datetime, fmt: str) -> list[str]:
    """Files for ``SayUnixTime`` with Asterisk's format letters (English)."""
    out: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "'":
            end = fmt.find("'", i + 1)
            end = len(fmt) if end < 0 else end
            out.append(fmt[i + 1 : end])
            i = end + 1
            continue
        if c in "Aa":
            out.append(f"digits/day-{(when.weekday() + 1) % 7}")
        elif c in "Bbh":
            out.append(f"digits/mon-{when.month - 1}")
        elif c == "m":
            out.append(f"digits/h-{when.month}")
        elif c in "de":
            out.append(f"digits/h-{when.day}")
        elif c == "Y":
            # say.c en 'Y': "two thousand twenty three"; "nineteen oh five"
            y = when.year
            if y >= 2000:
                out += ["digits/2", "digits/thousand"] + (
                    number_files(y - 2000) if y > 2000 else []
                )
            else:
                yy = y % 100
                out += ["digits/19"] + (["digits/oh"] if 0 < yy <= 9 else []) + number_files(yy)
        elif c in "Il":
            out += number_files(when.hour % 12 or 12)
        elif c in "Hk":
            out += number_files(when.hour)
        elif c == "M":
            if when.minute == 0:
                out.append("digits/oclock")
            else:
                if when.minute < 10:
                    out.append("digits/oh")
                out += number_files(when.minute)
        elif c in "pP":
            out.append("digits/p-m" if when.hour >= 12 else "digits/a-m")
        elif c == "S":
            out += [*number_files(when.second), "seconds"]
        elif c == "R":
            out += time_files(when, "HM")
        elif c == "T":
            out += time_files(when, "HMS")
        i += 1
    return out


@application("SayDigits", syntax="SayDigits(digits)", flags=(Flag.NEEDS_CALL,))
async def say_digits(x: Execution, data: str) -> AppResult:
    """Say the digits of the argument one by one (other characters are skipped)."""
    await play_sounds(x, digit_files(data), keep_going=True)
    return HANGUP if x.channel.hung_up else CONTINUE


@application("SayAlpha", syntax="SayAlpha(string)", flags=(Flag.NEEDS_CALL,))
async def say_alpha(x: Execution, data: str) -> AppResult:
    """Spell the argument letter by letter."""
    await play_sounds(x, alpha_files(data), keep_going=True)
    return HANGUP if x.channel.hung_up else CONTINUE


@application("SayNumber", syntax="SayNumber(digits[,gender])", flags=(Flag.NEEDS_CALL,))
async def say_number(x: Execution, data: str) -> AppResult:
    """Say a number ("one hundred twenty three"); gender is f, m, c or n."""
    if not data:
        x.warn("SayNumber requires an argument (number)")
        return HANGUP
    text, _, rest = data.partition(",")
    m = re.match(r"\s*([+-]?\d+)", text)
    if m is None:
        x.warn(f"argument '{text}' to SayNumber could not be parsed as a number.")
        return CONTINUE
    gender = rest.partition(",")[0]
    if rest and gender.lower() not in ("f", "m", "c", "n"):
        x.warn("SayNumber gender option is either 'f', 'm', 'c' or 'n'")
        return HANGUP
    await play_sounds(x, number_files(int(m.group(1))), keep_going=True)
    return HANGUP if x.channel.hung_up else CONTINUE


def zone(name: str) -> tzinfo | None:
    """A time zone by IANA name; None (local time) when empty or unknown."""
    if not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


@application(
    "SayUnixTime",
    syntax="SayUnixTime([unixtime[,timezone[,format[,options]]]])",
    flags=(Flag.NEEDS_CALL,),
)
async def say_unix_time(x: Execution, data: str) -> AppResult:
    """Say a date and time (now when no time is given), in Asterisk's format letters."""
    args = split_args(data)
    stamp = args[0].strip() if args else ""
    try:
        epoch = float(stamp) if stamp else x.clock()
    except ValueError:
        epoch = x.clock()
    tz = zone(args[1]) if len(args) > 1 else None
    fmt = args[2] if len(args) > 2 and args[2] else DEFAULT_TIME_FORMAT
    await play_sounds(
        x, time_files(datetime.fromtimestamp(epoch, tz or x.tz), fmt), keep_going=True
    )
    return HANGUP if x.channel.hung_up else CONTINUE
