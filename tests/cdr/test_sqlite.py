"""The SQLite CDR store: schema, WAL, last(n) round trip."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pypbx.cdr import record
from pypbx.cdr.record import AmaFlags, Cdr, Disposition
from pypbx.cdr.sqlite import SqliteBackend

T0 = 1_700_000_000.25


def make(i: int) -> Cdr:
    return Cdr(
        T0 + i, T0 + i + 1.5 if i % 2 else None, T0 + i + 30.75, clid=f"<{1000 + i}>",
        src=str(1000 + i), dst="2000", dcontext="internal", channel=f"SIP/{1000 + i}-0{i}",
        lastapp="Dial", lastdata="SIP/2000,30",
        disposition=Disposition.ANSWERED if i % 2 else Disposition.BUSY,
        amaflags=AmaFlags.OMIT, accountcode="acct", uniqueid=f"{T0}.{i}", userfield="u",
    )  # fmt: skip


def test_write_and_read_back(tmp_path: Path) -> None:
    store = SqliteBackend.in_dir(tmp_path / "data")
    records = [make(i) for i in range(5)]
    for cdr in records:
        store.write(cdr)
    assert store.count() == 5
    assert store.last(3) == records[2:]
    assert store.last(100) == records
    assert store.last(0) == []
    store.close()
    # Reopening keeps what was written.
    again = SqliteBackend(tmp_path / "data" / "cdr.sqlite3")
    assert again.last(1) == records[-1:]
    again.close()


def test_schema_columns_and_wal(tmp_path: Path) -> None:
    store = SqliteBackend(tmp_path / "cdr.sqlite3")
    store.write(make(1))
    store.close()
    db = sqlite3.connect(tmp_path / "cdr.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = [row[1] for row in db.execute("PRAGMA table_info(cdr)")]
    asterisk = ["calldate", "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp",
                "lastdata", "duration", "billsec", "disposition", "amaflags", "accountcode",
                "uniqueid", "userfield"]  # fmt: skip
    assert columns[1 : 1 + len(asterisk)] == asterisk
    row = db.execute(
        "SELECT duration, billsec, disposition, amaflags, calldate FROM cdr"
    ).fetchone()
    assert row[:4] == (30, 29, "ANSWERED", "OMIT")
    assert row[4] == record.format_time(T0 + 1)
    db.close()


def test_registered_as_default_backend(tmp_path: Path) -> None:
    factory, doc = record.BACKENDS["sqlite"]
    store = factory(tmp_path)
    assert isinstance(store, SqliteBackend)
    assert store.path == tmp_path / "cdr.sqlite3"
    assert "SQLite" in doc
    store.close()
