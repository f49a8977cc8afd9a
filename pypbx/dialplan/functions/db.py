"""astdb functions: DB, DB_EXISTS, DB_DELETE (Asterisk funcs/func_db.c), on :mod:`astdb`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pypbx.dialplan.registry import Flag, function

if TYPE_CHECKING:
    from pypbx.dialplan.astdb import AstDb
    from pypbx.dialplan.interpreter import Execution


def _family_key(x: Execution, args: str, what: str) -> tuple[str, str] | None:
    family, sep, key = args.strip().rpartition("/")
    if not sep or not family or not key:
        x.warn(f"{what} requires an argument, {what}(<family>/<key>)")
        return None
    return family, key


def _db(x: Execution, what: str) -> AstDb | None:
    if x.astdb is None:
        x.warn(f"{what}: no astdb configured")
    return x.astdb


@function("DB", syntax="DB(family/key)")
def db(x: Execution, args: str) -> str | None:
    """Read or write a value in the Asterisk database."""
    fk = _family_key(x, args, "DB")
    store = _db(x, "DB")
    if fk is None or store is None:
        return None
    value = store.get(*fk)
    if value is None:
        x.note(20, f"DB: {args} not found in database.")
        return ""
    return value


@db.writer
def _db_write(x: Execution, args: str, value: str) -> None:
    fk = _family_key(x, args, "DB")
    store = _db(x, "DB")
    if fk is not None and store is not None:
        store.put(fk[0], fk[1], value)


@function("DB_EXISTS", syntax="DB_EXISTS(family/key)")
def db_exists(x: Execution, args: str) -> str | None:
    """1 if the key exists (its value is left in ``${DB_RESULT}``), else 0."""
    fk = _family_key(x, args, "DB_EXISTS")
    store = _db(x, "DB_EXISTS")
    if fk is None or store is None:
        return None
    value = store.get(*fk)
    if value is None:
        return "0"
    x.vars.set("DB_RESULT", value)
    return "1"


@function("DB_DELETE", syntax="DB_DELETE(family/key)", flags=(Flag.DANGEROUS,))
def db_delete(x: Execution, args: str) -> str | None:
    """Delete a key and return the value it had."""
    fk = _family_key(x, args, "DB_DELETE")
    store = _db(x, "DB_DELETE")
    if fk is None or store is None:
        return None
    value = store.get(*fk)
    if value is None:
        x.note(20, f"DB_DELETE: {args} could not be found in the database.")
        return ""
    store.delete(*fk)
    x.vars.set("DB_RESULT", value)
    return value
