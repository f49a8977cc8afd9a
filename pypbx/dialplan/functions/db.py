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


def _open(x: Execution, args: str, what: str) -> tuple[AstDb, str, str] | None:
    """The store and (family, key) for ``args``, or None (logged) when either is missing."""
    fk = _family_key(x, args, what)
    if x.astdb is None:
        x.warn(f"{what}: no astdb configured")
    if fk is None or x.astdb is None:
        return None
    return x.astdb, fk[0], fk[1]


@function("DB", syntax="DB(family/key)")
def db(x: Execution, args: str) -> str | None:
    """Read or write a value in the Asterisk database."""
    found = _open(x, args, "DB")
    if found is None:
        return None
    store, family, key = found
    value = store.get(family, key)
    if value is None:
        x.note(20, f"DB: {args} not found in database.")
        return ""
    return value


@db.writer
def _db_write(x: Execution, args: str, value: str) -> None:
    found = _open(x, args, "DB")
    if found is not None:
        store, family, key = found
        store.put(family, key, value)


@function("DB_EXISTS", syntax="DB_EXISTS(family/key)")
def db_exists(x: Execution, args: str) -> str | None:
    """1 if the key exists (its value is left in ``${DB_RESULT}``), else 0."""
    found = _open(x, args, "DB_EXISTS")
    if found is None:
        return None
    store, family, key = found
    value = store.get(family, key)
    if value is None:
        return "0"
    x.vars.set("DB_RESULT", value)
    return "1"


@function("DB_DELETE", syntax="DB_DELETE(family/key)", flags=(Flag.DANGEROUS,))
def db_delete(x: Execution, args: str) -> str | None:
    """Delete a key and return the value it had."""
    found = _open(x, args, "DB_DELETE")
    if found is None:
        return None
    store, family, key = found
    value = store.get(family, key)
    if value is None:
        x.note(20, f"DB_DELETE: {args} could not be found in the database.")
        return ""
    store.delete(family, key)
    x.vars.set("DB_RESULT", value)
    return value
