"""SQLite persistence for registrations (the role of Asterisk's astdb ``SIP/Registry`` keys).

One ``bindings`` table keyed by (aor, contact), in WAL mode with ``synchronous=NORMAL``:
every committed write survives the process being killed (``kill -9``); only an OS crash or
power loss may lose the last transactions, never corrupt the file. :meth:`LocationStore.apply`
writes a batch of :class:`~pypbx.location.Change` in one transaction (the glue batches per
event-loop tick); :meth:`~LocationStore.load` returns live bindings and deletes expired rows.

Checkpoints (copying the WAL back into the database file, with its fsync) do not run inside
a commit, where SQLite's automatic checkpoint would stall the caller -- the event loop --
for tens of milliseconds every thousand pages: after every ``checkpoint_every`` written
changes a worker thread runs a PASSIVE checkpoint on a connection of its own (WAL lets it
run beside the writer). The automatic checkpoint stays as a backstop at ``_BACKSTOP`` pages.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from pypbx.location import Binding, Change, ChangeKind

__all__ = ["SCHEMA_VERSION", "LocationStore"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bindings (
    aor TEXT NOT NULL,
    contact TEXT NOT NULL,
    expires_at REAL NOT NULL,
    call_id TEXT NOT NULL,
    cseq INTEGER NOT NULL,
    registered_at REAL NOT NULL,
    received_host TEXT,
    received_port INTEGER,
    transport TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    q TEXT,
    PRIMARY KEY (aor, contact)
) WITHOUT ROWID
"""
_COLUMNS = (
    "aor, contact, expires_at, call_id, cseq, registered_at, "
    "received_host, received_port, transport, user_agent, q"
)
_UPSERT = f"INSERT OR REPLACE INTO bindings ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
_DELETE = "DELETE FROM bindings WHERE aor = ? AND contact = ?"
_BACKSTOP = 20_000  # pages (about 80 MB of WAL) before a commit checkpoints by itself
CHECKPOINT_EVERY = 2_000
"""Written changes between two background checkpoints."""

Row = tuple[str, str, float, str, int, float, str | None, int | None, str, str, str | None]


def _row(b: Binding) -> Row:
    host, port = b.received if b.received is not None else (None, None)
    return (
        b.aor,
        b.contact,
        b.expires_at,
        b.call_id,
        b.cseq,
        b.registered_at,
        host,
        port,
        b.transport,
        b.user_agent,
        b.q,
    )


def _binding(r: Row) -> Binding:
    aor, contact, expires_at, call_id, cseq, registered_at, host, port, transport, ua, q = r
    received = (host, int(port)) if host is not None and port is not None else None
    return Binding(
        aor=aor,
        contact=contact,
        expires_at=float(expires_at),
        call_id=call_id,
        cseq=int(cseq),
        registered_at=float(registered_at),
        received=received,
        transport=transport,
        user_agent=ua,
        q=q,
    )


class LocationStore:
    """The ``bindings`` table of ``<data dir>/location.sqlite3`` (or any path)."""

    def __init__(self, path: str | Path, *, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self.path = Path(path)
        self.checkpoint_every = checkpoint_every
        self.checkpoints = 0
        """Background checkpoints completed."""
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(f"PRAGMA wal_autocheckpoint={_BACKSTOP}")
        self._db.execute(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._written = 0  # changes since the last background checkpoint started
        self._worker: threading.Thread | None = None

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> LocationStore:
        """The store under a pypbx data directory."""
        return cls(Path(data_dir) / "location.sqlite3")

    def save(self, binding: Binding) -> None:
        """Insert or replace one binding (its own transaction)."""
        self._db.execute(_UPSERT, _row(binding))

    def delete(self, aor: str, contact: str) -> None:
        self._db.execute(_DELETE, (aor, contact))

    def apply(self, changes: Iterable[Change]) -> int:
        """Write a batch of location changes in one transaction; returns how many."""
        count = 0
        with self._transaction():
            # runs of the same statement go through executemany, in the batch's order
            sql: str | None = None
            rows: list[tuple[object, ...]] = []
            for change in changes:
                b = change.binding
                row: tuple[object, ...]
                if change.kind is ChangeKind.REMOVED:
                    this, row = _DELETE, (b.aor, b.contact)
                else:
                    this, row = _UPSERT, _row(b)
                if this is not sql and rows:
                    assert sql is not None
                    self._db.executemany(sql, rows)
                    rows = []
                sql = this
                rows.append(row)
                count += 1
            if rows:
                assert sql is not None
                self._db.executemany(sql, rows)
        self._wrote(count)
        return count

    def _wrote(self, count: int) -> None:
        self._written += count
        if self._written < self.checkpoint_every:
            return
        if self._worker is not None and self._worker.is_alive():
            return  # the last one is still copying: the next commit asks again
        self._written = 0
        self._worker = threading.Thread(
            target=self._checkpoint, name="location-checkpoint", daemon=True
        )
        self._worker.start()

    def _checkpoint(self) -> None:
        """Worker thread: one PASSIVE checkpoint on a short-lived connection of its own."""
        try:
            db = sqlite3.connect(str(self.path), isolation_level=None)
            try:
                db.execute("PRAGMA busy_timeout=5000")
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            return  # the backstop checkpoint and the next attempt remain
        self.checkpoints += 1

    def wait_checkpoint(self, timeout: float | None = None) -> None:
        """Wait for a running background checkpoint (tests, shutdown)."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def load(self, now: float) -> list[Binding]:
        """Every binding still alive at ``now``; expired rows are deleted."""
        with self._transaction():
            self._db.execute("DELETE FROM bindings WHERE expires_at <= ?", (now,))
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM bindings ORDER BY aor, contact")
        return [_binding(r) for r in rows.fetchall()]

    def count(self) -> int:
        (n,) = self._db.execute("SELECT count(*) FROM bindings").fetchone()
        return int(n)

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        (result,) = self._db.execute("PRAGMA integrity_check").fetchone()
        return str(result)

    def close(self) -> None:
        self.wait_checkpoint(10.0)
        self._db.close()

    def __enter__(self) -> LocationStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
