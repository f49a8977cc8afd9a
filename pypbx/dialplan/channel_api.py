"""What a channel offers to dial plan applications (Asterisk include/asterisk/channel.h, causes.h).

Applications never touch SIP or RTP: they await the methods of :class:`ChannelApi`. A real
channel (pypbx.call) implements them with calls and media; :class:`RecordingChannel` implements
them instantly and records what would have happened, for tests and ``pypbx dialplan run``.

Caller-supplied text (the dialled extension, the caller number) is *neutralised* before the
dial plan sees it: ASCII characters outside ``[0-9A-Za-z*#+._-]`` become private-use code
points (1:1), so they can never act as syntax: ``Dial(SIP/${EXTEN}@trunk)`` cannot be turned
into two destinations by an ``EXTEN`` holding ``&``, ``,``, ``/`` or ``@`` (issue 9 item 2).
:func:`reveal` maps them back for logs and display.

Hangup causes are Q.850 numbers with Asterisk's names (``AST_CAUSE_*`` in causes.h).
Dial results carry the ``DIALSTATUS`` contract of app_dial.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Protocol, runtime_checkable

__all__ = [
    "ChannelApi",
    "ChannelVars",
    "DialResult",
    "DialStatus",
    "DialTarget",
    "HangupCause",
    "Indication",
    "RecordingChannel",
    "cause_from_text",
    "is_neutralized",
    "neutralize",
    "reveal",
]


class HangupCause(IntEnum):
    """Q.850 cause codes as named in Asterisk's causes.h."""

    NOTDEFINED = 0
    UNALLOCATED = 1
    NO_ROUTE_TRANSIT_NET = 2
    NO_ROUTE_DESTINATION = 3
    MISDIALLED_TRUNK_PREFIX = 5
    CHANNEL_UNACCEPTABLE = 6
    CALL_AWARDED_DELIVERED = 7
    NUMBER_PORTED_NOT_HERE = 14
    NORMAL_CLEARING = 16
    USER_BUSY = 17
    NO_USER_RESPONSE = 18
    NO_ANSWER = 19
    SUBSCRIBER_ABSENT = 20
    CALL_REJECTED = 21
    NUMBER_CHANGED = 22
    PRE_EMPTED = 25
    ANSWERED_ELSEWHERE = 26
    DESTINATION_OUT_OF_ORDER = 27
    INVALID_NUMBER_FORMAT = 28
    FACILITY_REJECTED = 29
    RESPONSE_TO_STATUS_ENQUIRY = 30
    NORMAL_UNSPECIFIED = 31
    NORMAL_CIRCUIT_CONGESTION = 34
    NETWORK_OUT_OF_ORDER = 38
    NORMAL_TEMPORARY_FAILURE = 41
    SWITCH_CONGESTION = 42
    ACCESS_INFO_DISCARDED = 43
    REQUESTED_CHAN_UNAVAIL = 44
    FACILITY_NOT_SUBSCRIBED = 50
    OUTGOING_CALL_BARRED = 52
    INCOMING_CALL_BARRED = 54
    BEARERCAPABILITY_NOTAUTH = 57
    BEARERCAPABILITY_NOTAVAIL = 58
    BEARERCAPABILITY_NOTIMPL = 65
    CHAN_NOT_IMPLEMENTED = 66
    FACILITY_NOT_IMPLEMENTED = 69
    INVALID_CALL_REFERENCE = 81
    INCOMPATIBLE_DESTINATION = 88
    INVALID_MSG_UNSPECIFIED = 95
    MANDATORY_IE_MISSING = 96
    MESSAGE_TYPE_NONEXIST = 97
    WRONG_MESSAGE = 98
    IE_NONEXIST = 99
    INVALID_IE_CONTENTS = 100
    WRONG_CALL_STATE = 101
    RECOVERY_ON_TIMER_EXPIRE = 102
    MANDATORY_IE_LENGTH_ERROR = 103
    PROTOCOL_ERROR = 111
    INTERWORKING = 127


def cause_from_text(text: str) -> int | None:
    """``Hangup()``'s cause: a name from Asterisk's cause table (``ast_str2cause``: compared
    case-insensitively as a prefix, ``NORMAL_CLEARING``), else a leading number; None if neither.
    """
    upper = text.upper()
    for cause in HangupCause:
        if cause.value and upper.startswith(cause.name):
            return int(cause)
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else None


class DialStatus(StrEnum):
    """The values app_dial leaves in ``${DIALSTATUS}``."""

    ANSWER = "ANSWER"
    BUSY = "BUSY"
    NOANSWER = "NOANSWER"
    CANCEL = "CANCEL"
    CONGESTION = "CONGESTION"
    CHANUNAVAIL = "CHANUNAVAIL"
    DONTCALL = "DONTCALL"
    TORTURE = "TORTURE"
    INVALIDARGS = "INVALIDARGS"


class Indication(StrEnum):
    """In-band/out-of-band call progress a channel can signal (AST_CONTROL_*)."""

    PROGRESS = "progress"
    PROCEEDING = "proceeding"
    RINGING = "ringing"
    BUSY = "busy"
    CONGESTION = "congestion"


@dataclass(frozen=True, slots=True)
class DialTarget:
    """One ``TECH/resource`` of a Dial string, e.g. ``SIP`` + ``18002223333@flowroute``."""

    tech: str
    resource: str

    def __str__(self) -> str:
        return f"{self.tech}/{self.resource}"


@dataclass(frozen=True, slots=True)
class DialResult:
    """What a dial attempt came to.

    ``dialed_time``/``answered_time`` are seconds (``DIALEDTIME``/``ANSWEREDTIME``);
    ``peer_hung_up`` tells, after an answered call, whether the called party ended it
    (Dial's ``g`` option continues the dial plan only then).
    """

    status: DialStatus
    dialed_time: int = 0
    answered_time: int = 0
    peer: str = ""
    peer_hung_up: bool = True
    cause: int = 0


@runtime_checkable
class ChannelApi(Protocol):
    """The operations applications await on the channel they run on."""

    @property
    def name(self) -> str: ...

    @property
    def uniqueid(self) -> str: ...

    @property
    def answered(self) -> bool: ...

    @property
    def hung_up(self) -> bool: ...

    @property
    def hangup_cause(self) -> int:
        """The Q.850 cause the far end (or pypbx) hung up with; 0 while the call is up."""
        ...

    async def answer(self) -> None: ...

    async def hangup(self, cause: int) -> None: ...

    async def indicate(self, what: Indication) -> None: ...

    async def sleep(self, seconds: float) -> None: ...

    async def play(self, files: list[str], *, stop_digits: str = "") -> str:
        """Play sound files in order; returns the digit that interrupted, or ''."""
        ...

    async def read_digits(self, max_digits: int, timeout: float, *, terminator: str = "#") -> str:
        """Collect DTMF digits until ``max_digits``, the terminator, or ``timeout`` seconds."""
        ...

    async def echo(self) -> None: ...

    async def play_tones(self, tones: str) -> None: ...

    async def stop_tones(self) -> None: ...

    async def dial(
        self,
        targets: list[DialTarget],
        timeout: float | None,
        options: dict[str, str],
        *,
        inherit: dict[str, str] | None = None,
    ) -> DialResult:
        """Call the targets; ``inherit`` is what the new channels start with (``_X``/``__X``)."""
        ...


@dataclass(slots=True)
class RecordingChannel:
    """A channel that does everything at once and writes down what it was asked.

    ``digits`` is what the simulated caller types (consumed by ``play``/``read_digits``);
    ``dial_status`` is the outcome every ``dial`` reports. ``actions`` holds one line per
    operation, e.g. ``"answer"``, ``"play tt-monkeys"``, ``"dial SIP/1000 timeout=20"``.
    """

    name: str = "Local/dryrun-00000001"
    uniqueid: str = "1.1"
    dial_status: DialStatus = DialStatus.ANSWER
    digits: str = ""
    answered: bool = False
    hung_up: bool = False
    hangup_cause: int = 0
    slept: float = 0.0
    actions: list[str] = field(default_factory=list)
    inherited: dict[str, str] = field(default_factory=dict)  # what the last dial passed on

    async def answer(self) -> None:
        self.actions.append("answer")
        self.answered = True

    async def hangup(self, cause: int) -> None:
        if not self.hung_up:
            self.actions.append(f"hangup cause={cause}")
            self.hung_up = True
            self.hangup_cause = cause

    async def indicate(self, what: Indication) -> None:
        self.actions.append(f"indicate {what}")

    async def sleep(self, seconds: float) -> None:
        self.actions.append(f"wait {seconds:g}")
        self.slept += seconds

    async def play(self, files: list[str], *, stop_digits: str = "") -> str:
        self.actions.append("play " + "&".join(files))
        if stop_digits and self.digits and self.digits[0] in stop_digits:
            digit, self.digits = self.digits[0], self.digits[1:]
            return digit
        return ""

    async def read_digits(self, max_digits: int, timeout: float, *, terminator: str = "#") -> str:
        self.actions.append(f"read max={max_digits} timeout={timeout:g}")
        got = ""
        while self.digits and (max_digits <= 0 or len(got) < max_digits):
            d, self.digits = self.digits[0], self.digits[1:]
            if d in terminator:
                break
            got += d
        return got

    async def echo(self) -> None:
        self.actions.append("echo")

    async def play_tones(self, tones: str) -> None:
        self.actions.append(f"tones {tones}")

    async def stop_tones(self) -> None:
        self.actions.append("tones off")

    async def dial(
        self,
        targets: list[DialTarget],
        timeout: float | None,
        options: dict[str, str],
        *,
        inherit: dict[str, str] | None = None,
    ) -> DialResult:
        self.inherited = dict(inherit or {})
        where = "&".join(str(t) for t in targets)
        opts = "".join(f"{k}({v})" if v else k for k, v in options.items())
        tmo = "" if timeout is None else f" timeout={timeout:g}"
        self.actions.append(f"dial {where}{tmo}" + (f" options={opts}" if opts else ""))
        answered = 0 if self.dial_status != DialStatus.ANSWER else 1
        return DialResult(
            status=self.dial_status,
            dialed_time=1,
            answered_time=answered,
            peer=str(targets[0]) if targets else "",
        )


_SAFE = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz*#+._-")
_PRIVATE = 0xE000
_ALL_SAFE = re.compile(r"[0-9A-Za-z*#+._-]*")
_DEFUSED = re.compile("[\ue000-\ue07f]")


def neutralize(text: str) -> str:
    """Map ASCII characters outside ``[0-9A-Za-z*#+._-]`` to private-use code points (1:1)."""
    if _ALL_SAFE.fullmatch(text):
        return text
    return "".join(c if c in _SAFE or ord(c) >= 128 else chr(_PRIVATE + ord(c)) for c in text)


def reveal(text: str) -> str:
    """Undo :func:`neutralize` (for logs, dry-run output and the wire)."""
    if not _DEFUSED.search(text):
        return text
    return "".join(
        chr(ord(c) - _PRIVATE) if _PRIVATE <= ord(c) < _PRIVATE + 128 else c for c in text
    )


def is_neutralized(text: str) -> bool:
    """True when ``text`` holds caller characters :func:`neutralize` defused."""
    return _DEFUSED.search(text) is not None


class ChannelVars:
    """Channel variables with Asterisk's inheritance markers.

    ``_X`` is inherited by channels this one creates (as ``X``), ``__X`` by all descendants
    (as ``__X``). Reading ``X`` finds ``_X``/``__X`` (ast_var_name strips the underscores).
    """

    __slots__ = ("_values",)

    def __init__(self, initial: dict[str, str] | None = None) -> None:
        self._values: dict[str, tuple[str, int]] = {}
        for k, v in (initial or {}).items():
            self.set(k, v)

    @staticmethod
    def _split(name: str) -> tuple[str, int]:
        if name.startswith("__"):
            return name[2:], 2
        if name.startswith("_"):
            return name[1:], 1
        return name, 0

    def get(self, name: str) -> str | None:
        item = self._values.get(self._split(name)[0])
        return None if item is None else item[0]

    def set(self, name: str, value: str | None) -> None:
        bare, level = self._split(name)
        self._values.pop(bare, None)
        if value is not None:
            self._values[bare] = (value, level)

    def items(self) -> list[tuple[str, str]]:
        """Variables as Asterisk lists them, with their ``_``/``__`` markers."""
        return [("_" * lvl + k, v) for k, (v, lvl) in self._values.items()]

    def inherited(self) -> dict[str, str]:
        """What a channel created by this one starts with."""
        out: dict[str, str] = {}
        for k, (v, lvl) in self._values.items():
            if lvl == 1:
                out[k] = v
            elif lvl == 2:
                out["__" + k] = v
        return out
