"""The Master.csv CDR backend, line for line as Asterisk's ``cdr/cdr_csv.c`` writes it.

Columns: accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata, start,
answer, end, duration, billsec, disposition, amaflags, then uniqueid and userfield only with
``loguniqueid``/``loguserfield`` (cdr.conf ``[csv]``; both off by default in the code).

Quoting follows ``append_string``/``append_int``/``append_date`` there, which is not RFC 4180:
text fields are always in double quotes with inner quotes doubled; ``duration`` and ``billsec``
are bare integers; a time is quoted ``YYYY-MM-DD HH:MM:SS`` (local time, or UTC with
``usegmtime``), and a time that never happened (no answer) is an empty, unquoted field. Lines end
in ``\\n``. The file is opened, appended and closed for every record, as cdr_csv does for safety.
With ``accountlogs`` a record with an account code also goes to ``<accountcode>.csv``, unless
the code contains ``/`` or starts with ``.``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pypbx.cdr.record import Cdr, format_time, register_backend

__all__ = ["CSV_DIR", "MASTER", "CsvBackend", "CsvOptions", "csv_line"]

CSV_DIR = "cdr-csv"
MASTER = "Master.csv"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CsvOptions:
    """cdr.conf ``[csv]``: the defaults of cdr_csv.c's ``load_config``."""

    usegmtime: bool = False
    loguniqueid: bool = False
    loguserfield: bool = False
    accountlogs: bool = True


def _text(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _time(when: float | None, utc: bool) -> str:
    return "" if when is None else _text(format_time(when, utc=utc))


def csv_line(cdr: Cdr, options: CsvOptions = CsvOptions()) -> str:
    """One Master.csv line, newline included."""
    fields = [
        _text(cdr.accountcode),
        _text(cdr.src),
        _text(cdr.dst),
        _text(cdr.dcontext),
        _text(cdr.clid),
        _text(cdr.channel),
        _text(cdr.dstchannel),
        _text(cdr.lastapp),
        _text(cdr.lastdata),
        _time(cdr.start, options.usegmtime),
        _time(cdr.answer, options.usegmtime),
        _time(cdr.end, options.usegmtime),
        str(cdr.duration),
        str(cdr.billsec),
        _text(cdr.disposition.value),
        _text(cdr.amaflags.value),
    ]
    if options.loguniqueid:
        fields.append(_text(cdr.uniqueid))
    if options.loguserfield:
        fields.append(_text(cdr.userfield))
    return ",".join(fields) + "\n"


class CsvBackend:
    """Appends to ``<directory>/Master.csv`` (and per-account files)."""

    def __init__(self, directory: str | Path, options: CsvOptions | None = None) -> None:
        self.directory = Path(directory)
        self.options = options or CsvOptions()
        self.directory.mkdir(parents=True, exist_ok=True)

    @classmethod
    def in_dir(cls, data_dir: Path) -> CsvBackend:
        """The default place: ``<data_dir>/cdr-csv/Master.csv``."""
        return cls(Path(data_dir) / CSV_DIR)

    @property
    def master(self) -> Path:
        return self.directory / MASTER

    def write(self, cdr: Cdr) -> None:
        line = csv_line(cdr, self.options)
        self._append(self.master, line)
        account = cdr.accountcode
        if self.options.accountlogs and account:
            if "/" in account or account.startswith("."):
                log.warning("Account code '%s' insecure for writing file", account)
            else:
                self._append(self.directory / f"{account}.csv", line)

    @staticmethod
    def _append(path: Path, line: str) -> None:
        with path.open("a", encoding="utf-8", newline="") as f:
            f.write(line)

    def close(self) -> None:
        """Nothing stays open between records."""


register_backend("csv", "Master.csv as cdr_csv writes it")(CsvBackend.in_dir)
