"""The SQLite CDR backend: table ``cdr`` with Asterisk's columns (the ``cdr`` table of
``cdr_adaptive_odbc``/``cdr_sqlite3_custom``), in WAL mode, under the data directory.

``calldate``, ``answer`` and ``end`` hold ``YYYY-MM-DD HH:MM:SS`` in local time for people and
SQL tools; ``start_ts``/``answer_ts``/``end_ts`` keep the exact times so :meth:`last` gives the
records back unchanged. Each record is committed on its own: a crash loses nothing written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pypbx.cdr.record import AmaFlags, Cdr, Disposition, format_time, register_backend

__all__ = ["DEFAULT_NAME", "SqliteBackend"]

DEFAULT_NAME = "cdr.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cdr (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    calldate TEXT NOT NULL,
    clid TEXT NOT NULL DEFAULT '',
    src TEXT NOT NULL DEFAULT '',
    dst TEXT NOT NULL DEFAULT '',
    dcontext TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL DEFAULT '',
    dstchannel TEXT NOT NULL DEFAULT '',
    lastapp TEXT NOT NULL DEFAULT '',
    lastdata TEXT NOT NULL DEFAULT '',
    duration INTEGER NOT NULL DEFAULT 0,
    billsec INTEGER NOT NULL DEFAULT 0,
    disposition TEXT NOT NULL DEFAULT '',
    amaflags TEXT NOT NULL DEFAULT '',
    accountcode TEXT NOT NULL DEFAULT '',
    uniqueid TEXT NOT NULL DEFAULT '',
    userfield TEXT NOT NULL DEFAULT '',
    answer TEXT NOT NULL DEFAULT '',
    "end" TEXT NOT NULL DEFAULT '',
    start_ts REAL NOT NULL,
    answer_ts REAL,
    end_ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cdr_calldate ON cdr (calldate);
CREATE INDEX IF NOT EXISTS cdr_uniqueid ON cdr (uniqueid);
"""

_FIELDS = (
    "calldate",
    "clid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "accountcode",
    "uniqueid",
    "userfield",
    "answer",
    '"end"',
    "start_ts",
    "answer_ts",
    "end_ts",
)
_INSERT = f"INSERT INTO cdr ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))})"
_SELECT = (
    "SELECT start_ts, answer_ts, end_ts, clid, src, dst, dcontext, channel, dstchannel, "
    "lastapp, lastdata, disposition, amaflags, accountcode, uniqueid, userfield "
    "FROM cdr ORDER BY id DESC LIMIT ?"
)


class SqliteBackend:
    """Writes records to ``path`` (created with its directory if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def in_dir(cls, data_dir: Path) -> SqliteBackend:
        """The default store: ``<data_dir>/cdr.sqlite3``."""
        return cls(Path(data_dir) / DEFAULT_NAME)

    def write(self, cdr: Cdr) -> None:
        self._db.execute(
            _INSERT,
            (
                format_time(cdr.start),
                cdr.clid,
                cdr.src,
                cdr.dst,
                cdr.dcontext,
                cdr.channel,
                cdr.dstchannel,
                cdr.lastapp,
                cdr.lastdata,
                cdr.duration,
                cdr.billsec,
                cdr.disposition.value,
                cdr.amaflags.value,
                cdr.accountcode,
                cdr.uniqueid,
                cdr.userfield,
                format_time(cdr.answer),
                format_time(cdr.end),
                cdr.start,
                cdr.answer,
                cdr.end,
            ),
        )

    def last(self, n: int) -> list[Cdr]:
        """The ``n`` most recent records, oldest first."""
        rows = self._db.execute(_SELECT, (max(0, n),)).fetchall()
        return [
            Cdr(
                start=r[0],
                answer=r[1],
                end=r[2],
                clid=r[3],
                src=r[4],
                dst=r[5],
                dcontext=r[6],
                channel=r[7],
                dstchannel=r[8],
                lastapp=r[9],
                lastdata=r[10],
                disposition=Disposition(r[11]),
                amaflags=AmaFlags(r[12]),
                accountcode=r[13],
                uniqueid=r[14],
                userfield=r[15],
            )
            for r in reversed(rows)
        ]

    def count(self) -> int:
        (value,) = self._db.execute("SELECT COUNT(*) FROM cdr").fetchone()
        return int(value)

    def close(self) -> None:
        self._db.close()


register_backend("sqlite", "SQLite table cdr under the data directory (WAL)")(SqliteBackend.in_dir)
