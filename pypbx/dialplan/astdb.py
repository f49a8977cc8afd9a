"""The Asterisk database (astdb, main/db.c) kept in SQLite.

Keys are stored as Asterisk stores them since 10: one table ``astdb(key, value)`` with
``key = "/family/key"`` (families may contain ``/``). ``DB()``, ``DB_EXISTS()`` and
``DB_DELETE()`` use it; ``database show/put/del/deltree`` in the control CLI can too.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["AstDb"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS astdb (key VARCHAR(256) PRIMARY KEY, value VARCHAR(256))"


def _full(family: str, key: str) -> str:
    return f"/{family.strip('/')}/{key}"


class AstDb:
    """A family/key/value store in one SQLite file (``:memory:`` for tests)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute(_SCHEMA)
        self._db.commit()

    @classmethod
    def in_data_dir(cls, data_dir: str | Path) -> AstDb:
        """The database at ``DATA_DIR/astdb.sqlite3`` (Asterisk's name)."""
        return cls(Path(data_dir) / "astdb.sqlite3")

    def close(self) -> None:
        self._db.close()

    def get(self, family: str, key: str) -> str | None:
        row = self._db.execute(
            "SELECT value FROM astdb WHERE key = ?", (_full(family, key),)
        ).fetchone()
        return None if row is None else str(row[0])

    def put(self, family: str, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO astdb (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (_full(family, key), value),
        )
        self._db.commit()

    def delete(self, family: str, key: str) -> bool:
        cur = self._db.execute("DELETE FROM astdb WHERE key = ?", (_full(family, key),))
        self._db.commit()
        return cur.rowcount > 0

    def delete_tree(self, family: str, subfamily: str = "") -> int:
        """``ast_db_deltree``: every key under ``/family[/subfamily]/``; returns how many."""
        prefix = "/" + family.strip("/") + (f"/{subfamily.strip('/')}" if subfamily else "")
        cur = self._db.execute(
            "DELETE FROM astdb WHERE key = ? OR substr(key, 1, ?) = ?",
            (prefix, len(prefix) + 1, prefix + "/"),
        )
        self._db.commit()
        return cur.rowcount

    def show(self, family: str = "") -> list[tuple[str, str]]:
        """``database show [family]``: (full key, value) sorted by key."""
        if family:
            prefix = "/" + family.strip("/") + "/"
            rows = self._db.execute(
                "SELECT key, value FROM astdb WHERE substr(key, 1, ?) = ? ORDER BY key",
                (len(prefix), prefix),
            ).fetchall()
        else:
            rows = self._db.execute("SELECT key, value FROM astdb ORDER BY key").fetchall()
        return [(str(k), str(v)) for k, v in rows]
