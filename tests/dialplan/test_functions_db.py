"""astdb in SQLite and the DB, DB_EXISTS, DB_DELETE functions (Asterisk main/db.c,
funcs/func_db.c)."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from pypbx.config.conf import parse_text
from pypbx.dialplan.astdb import AstDb
from pypbx.dialplan.dryrun import DryRunResult, dry_run
from pypbx.dialplan.parser import parse_dialplan


@pytest.fixture
def db(tmp_path: Path) -> Iterator[AstDb]:
    store = AstDb.in_data_dir(tmp_path / "data")
    yield store
    store.close()


def run(text: str, store: AstDb | None) -> DryRunResult:
    dp = parse_dialplan(parse_text(textwrap.dedent(text), "extensions.conf"))
    return dry_run(dp, "test", "s", astdb=store, clock=lambda: 0.0, rng=random.Random(0), tz=UTC)


def test_astdb_put_get_delete_tree(db: AstDb, tmp_path: Path) -> None:
    assert (tmp_path / "data" / "astdb.sqlite3").exists()
    db.put("cidname", "2000", "Alice")
    db.put("cidname", "2000", "Alice B")  # overwrite
    db.put("cf/busy", "100", "200")
    db.put("cf/busy", "101", "201")
    db.put("cfx", "1", "not under cf")
    assert db.get("cidname", "2000") == "Alice B"
    assert db.get("cidname", "nope") is None
    assert db.show("cf") == [("/cf/busy/100", "200"), ("/cf/busy/101", "201")]
    assert db.delete_tree("cf") == 2
    assert db.get("cfx", "1") == "not under cf"
    assert db.delete("cidname", "2000") is True
    assert db.delete("cidname", "2000") is False
    assert db.show() == [("/cfx/1", "not under cf")]


def test_astdb_persists_across_connections(tmp_path: Path) -> None:
    first = AstDb(tmp_path / "x.sqlite3")
    first.put("a", "b", "c")
    first.close()
    second = AstDb(tmp_path / "x.sqlite3")
    assert second.get("a", "b") == "c"
    second.close()


def test_db_functions(db: AstDb) -> None:
    result = run(
        """
        [test]
        exten => s,1,Set(DB(cidname/${CALLERID(num)}2000)=Alice)
        same => n,Set(DB(cf/busy/100)=200)
        same => n,NoOp(${DB(cidname/2000)}|${DB(cf/busy/100)}|[${DB(cidname/9)}])
        same => n,NoOp(${DB_EXISTS(cidname/2000)} ${DB_RESULT} ${DB_EXISTS(cidname/9)})
        same => n,NoOp(${DB_DELETE(cidname/2000)} ${DB_EXISTS(cidname/2000)})
        same => n,NoOp([${DB(nokey)}])
        """,
        db,
    )
    assert [s.args for s in result.steps if s.app == "NoOp"] == [
        "Alice|200|[]",
        "1 Alice 0",
        "Alice 0",
        "[]",
    ]
    assert db.get("cf/busy", "100") == "200"
    assert db.get("cidname", "2000") is None
    assert any("DB requires an argument" in m for m in result.log)


def test_dry_run_without_astdb_uses_a_throwaway_one(db: AstDb) -> None:
    db.put("x", "y", "real")
    result = run(
        """
        [test]
        exten => s,1,NoOp([${DB(x/y)}])
        same => n,Set(DB(x/y)=dry)
        same => n,NoOp([${DB(x/y)}])
        """,
        None,
    )
    assert [s.args for s in result.steps if s.app == "NoOp"] == ["[]", "[dry]"]
    assert db.get("x", "y") == "real"
