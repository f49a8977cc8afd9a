"""``database show|get|put|del|deltree`` (Asterisk main/db.c) on the PBX's astdb.

The database is :class:`pypbx.dialplan.astdb.AstDb` in the data directory, the same one the
dial plan's ``DB()`` function uses; wording as Asterisk's CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pypbx.control.commands import CommandError, ShowUsage, command

if TYPE_CHECKING:
    from pypbx.server import Pbx


@command(
    "database show",
    summary="Shows database contents",
    usage="Usage: database show [family [keytree]]\n"
    "       Shows Asterisk database contents, optionally restricted to a family or key tree.",
)
async def db_show(pbx: Pbx, args: list[str]) -> str:
    if len(args) > 2:
        raise ShowUsage
    rows = pbx.astdb.show("/".join(args))
    lines = [f"{key:<50}: {value:<25}".rstrip() for key, value in rows]
    lines.append(f"{len(rows)} result{'' if len(rows) == 1 else 's'} found.")
    return "\n".join(lines)


@command(
    "database get",
    summary="Gets database value",
    usage="Usage: database get <family> <key>\n       Retrieves an entry in the database.",
)
async def db_get(pbx: Pbx, args: list[str]) -> str:
    if len(args) != 2:
        raise ShowUsage
    value = pbx.astdb.get(args[0], args[1])
    if value is None:
        raise CommandError("Database entry not found.")
    return f"Value: {value}"


@command(
    "database put",
    summary="Adds/updates database value",
    usage="Usage: database put <family> <key> <value>\n"
    "       Adds or updates an entry in the database.",
)
async def db_put(pbx: Pbx, args: list[str]) -> str:
    if len(args) != 3:
        raise ShowUsage
    pbx.astdb.put(args[0], args[1], args[2])
    return "Updated database successfully"


@command(
    "database del",
    summary="Removes database key/value",
    usage="Usage: database del <family> <key>\n       Deletes an entry in the database.",
)
async def db_del(pbx: Pbx, args: list[str]) -> str:
    if len(args) != 2:
        raise ShowUsage
    if not pbx.astdb.delete(args[0], args[1]):
        raise CommandError("Database entry does not exist.")
    return "Database entry removed."


@command(
    "database deltree",
    summary="Removes database keytree/values",
    usage="Usage: database deltree <family> [keytree]\n"
    "       Deletes a family or a key tree below it.",
)
async def db_deltree(pbx: Pbx, args: list[str]) -> str:
    if len(args) not in (1, 2):
        raise ShowUsage
    n = pbx.astdb.delete_tree(args[0], args[1] if len(args) == 2 else "")
    if n == 0:
        raise CommandError("Database entries do not exist.")
    return f"{n} database entries removed."
