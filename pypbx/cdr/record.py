"""Call detail records as Asterisk writes them (``main/cdr.c``: one record per call from the
calling channel's view), built from channel events with the time passed in.

``duration`` is end minus start and ``billsec`` end minus answer, both in whole seconds rounded
down from milliseconds as Asterisk does. The disposition comes from the answer, else from the
last Dial() status or hangup cause (Asterisk ``ast_cdr_disp2str``: ANSWERED, NO ANSWER, BUSY,
FAILED, and CONGESTION only when cdr.conf says ``congestion=yes``, FAILED otherwise).

Backends (sqlite.py, csvfile.py) register a factory here by name, so cdr.conf-style
configuration picks them without an if/elif on names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pypbx.errors import PbxError

__all__ = [
    "BACKENDS",
    "AmaFlags",
    "Cdr",
    "CdrBackend",
    "CdrBuilder",
    "CdrError",
    "Disposition",
    "disposition_for_cause",
    "disposition_for_dialstatus",
    "format_table",
    "format_time",
    "register_backend",
]


class CdrError(PbxError):
    """A record that cannot be built or stored."""


class Disposition(StrEnum):
    """``ast_cdr_disp2str`` values."""

    ANSWERED = "ANSWERED"
    NO_ANSWER = "NO ANSWER"
    BUSY = "BUSY"
    FAILED = "FAILED"
    CONGESTION = "CONGESTION"


class AmaFlags(StrEnum):
    """``amaflags=`` values as Asterisk prints them (``ast_channel_amaflags2string``)."""

    OMIT = "OMIT"
    BILLING = "BILLING"
    DOCUMENTATION = "DOCUMENTATION"

    @classmethod
    def parse(cls, text: str) -> AmaFlags:
        """sip.conf's ``amaflags`` word (``default`` and ``documentation`` alike)."""
        word = text.strip().upper()
        if word == "BILL":
            word = "BILLING"
        try:
            return cls(word)
        except ValueError:
            return cls.DOCUMENTATION


@dataclass(frozen=True, slots=True)
class Cdr:
    """One finished call record; times are seconds since the epoch (``answer`` None if never)."""

    start: float
    answer: float | None
    end: float
    clid: str = ""
    src: str = ""
    dst: str = ""
    dcontext: str = ""
    channel: str = ""
    dstchannel: str = ""
    lastapp: str = ""
    lastdata: str = ""
    disposition: Disposition = Disposition.NO_ANSWER
    amaflags: AmaFlags = AmaFlags.DOCUMENTATION
    accountcode: str = ""
    uniqueid: str = ""
    userfield: str = ""

    @property
    def calldate(self) -> float:
        """Asterisk's name for the start time in SQL backends."""
        return self.start

    @property
    def duration(self) -> int:
        """Whole seconds from start to end (milliseconds rounded down, as ``cdr.c``)."""
        return max(0, round((self.end - self.start) * 1000) // 1000)

    @property
    def billsec(self) -> int:
        """Whole seconds from answer to end; 0 when not answered."""
        if self.answer is None:
            return 0
        return max(0, round((self.end - self.answer) * 1000) // 1000)


# --- Dial() status and hangup cause → disposition ---------------------------------------

_DIALSTATUS = {
    "ANSWER": Disposition.ANSWERED,
    "BUSY": Disposition.BUSY,
    "NOANSWER": Disposition.NO_ANSWER,
    "CANCEL": Disposition.NO_ANSWER,
    "CONGESTION": Disposition.CONGESTION,
    "CHANUNAVAIL": Disposition.FAILED,
    "DONTCALL": Disposition.FAILED,
    "TORTURE": Disposition.FAILED,
    "INVALIDARGS": Disposition.FAILED,
}

# Q.850 causes (Asterisk causes.h) that are not a plain "no answer".
_CAUSES = {
    17: Disposition.BUSY,  # user busy
    34: Disposition.CONGESTION,  # no circuit available
    42: Disposition.CONGESTION,  # switching equipment congestion
    1: Disposition.FAILED,  # unallocated number
    3: Disposition.FAILED,  # no route to destination
    20: Disposition.FAILED,  # subscriber absent
    27: Disposition.FAILED,  # destination out of order
    28: Disposition.FAILED,  # invalid number format
    38: Disposition.FAILED,  # network out of order
}


def _congestion(d: Disposition, congestion: bool) -> Disposition:
    return Disposition.FAILED if d is Disposition.CONGESTION and not congestion else d


def disposition_for_dialstatus(status: str, *, congestion: bool = False) -> Disposition:
    """``${DIALSTATUS}`` → disposition (unknown statuses count as FAILED)."""
    d = _DIALSTATUS.get(status.strip().upper(), Disposition.FAILED)
    return _congestion(d, congestion)


def disposition_for_cause(cause: int, *, congestion: bool = False) -> Disposition:
    """A Q.850 hangup cause of an unanswered call → disposition (others are NO ANSWER)."""
    return _congestion(_CAUSES.get(cause, Disposition.NO_ANSWER), congestion)


# --- building a record from channel events ----------------------------------------------


@dataclass(slots=True)
class CdrBuilder:
    """The open record of one call, fed by the calling channel's events.

    ``start`` and every later ``now`` come from the caller's clock. The first answer counts;
    ``dst``/``dcontext`` follow the dial plan until the call is answered; ``lastapp`` and
    ``lastdata`` are the last application run; ``dialed`` records the destination channel.
    """

    channel: str
    uniqueid: str
    start: float
    clid: str = ""
    src: str = ""
    dst: str = ""
    dcontext: str = ""
    accountcode: str = ""
    amaflags: AmaFlags = AmaFlags.DOCUMENTATION
    congestion: bool = False
    dstchannel: str = ""
    lastapp: str = ""
    lastdata: str = ""
    userfield: str = ""
    answer: float | None = None
    outcome: Disposition | None = None
    _done: bool = field(default=False, repr=False)

    def application(self, name: str, data: str) -> None:
        """An application started on the channel."""
        self.lastapp, self.lastdata = name, data

    def location(self, exten: str, context: str) -> None:
        """The channel moved in the dial plan (ignored once answered, as Asterisk)."""
        if self.answer is None:
            self.dst, self.dcontext = exten, context

    def dialed(self, dstchannel: str) -> None:
        """Dial() created an outgoing channel."""
        self.dstchannel = dstchannel

    def answered(self, now: float) -> None:
        """The call was answered (the first answer counts)."""
        if self.answer is None:
            self.answer = max(now, self.start)

    def dial_status(self, status: str) -> None:
        """Dial() finished with ``${DIALSTATUS}``; decides an unanswered call's disposition."""
        self.outcome = disposition_for_dialstatus(status, congestion=self.congestion)

    def hangup_cause(self, cause: int) -> None:
        """The channel hung up with a Q.850 cause (used when Dial() left no status)."""
        if self.outcome is None:
            self.outcome = disposition_for_cause(cause, congestion=self.congestion)

    def ended(self, now: float) -> Cdr:
        """Close the record; a builder ends once."""
        if self._done:
            raise CdrError(f"CDR of {self.channel} already ended")
        self._done = True
        if self.answer is not None:
            disposition = Disposition.ANSWERED
        else:
            disposition = self.outcome or Disposition.NO_ANSWER
            if disposition is Disposition.ANSWERED:  # Dial said ANSWER but we never saw it
                disposition = Disposition.NO_ANSWER
        return Cdr(
            start=self.start,
            answer=self.answer,
            end=max(now, self.start),
            clid=self.clid,
            src=self.src,
            dst=self.dst,
            dcontext=self.dcontext,
            channel=self.channel,
            dstchannel=self.dstchannel,
            lastapp=self.lastapp,
            lastdata=self.lastdata,
            disposition=disposition,
            amaflags=self.amaflags,
            accountcode=self.accountcode,
            uniqueid=self.uniqueid,
            userfield=self.userfield,
        )


# --- backends -------------------------------------------------------------------------------


class CdrBackend(Protocol):
    """Where finished records go."""

    def write(self, cdr: Cdr) -> None: ...

    def close(self) -> None: ...


BackendFactory = Callable[[Path], CdrBackend]
BACKENDS: dict[str, tuple[BackendFactory, str]] = {}


def register_backend(name: str, doc: str) -> Callable[[BackendFactory], BackendFactory]:
    """Register a backend factory (``factory(data_dir)``) under ``name``."""

    def deco(factory: BackendFactory) -> BackendFactory:
        if name in BACKENDS:
            raise CdrError(f"CDR backend {name!r} registered twice")
        BACKENDS[name] = (factory, doc)
        return factory

    return deco


# --- display --------------------------------------------------------------------------------


def format_time(when: float | None, *, utc: bool = False) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in local time (or UTC); empty for None."""
    if when is None:
        return ""
    tz = UTC if utc else None
    return datetime.fromtimestamp(when, tz).strftime("%Y-%m-%d %H:%M:%S")


_COLUMNS: Sequence[tuple[str, Callable[[Cdr], str]]] = (
    ("Call date", lambda c: format_time(c.start)),
    ("Src", lambda c: c.src),
    ("Dst", lambda c: c.dst),
    ("Context", lambda c: c.dcontext),
    ("Dur", lambda c: str(c.duration)),
    ("Bill", lambda c: str(c.billsec)),
    ("Disposition", lambda c: c.disposition.value),
    ("Channel", lambda c: c.channel),
    ("Dst channel", lambda c: c.dstchannel),
    ("Last app", lambda c: f"{c.lastapp}({c.lastdata})" if c.lastapp else ""),
)


def format_table(records: Iterable[Cdr]) -> str:
    """The text of ``cdr show last N``: a header, one line per record, and a count."""
    rows = [[get(c) for _, get in _COLUMNS] for c in records]
    header = [name for name, _ in _COLUMNS]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]  # fmt: skip
    lines.append(f"{len(rows)} call record{'s' if len(rows) != 1 else ''}")
    return "\n".join(lines)
