"""Variable functions: GLOBAL, LOCAL, HASH, HASHKEYS (Asterisk funcs/func_global.c,
apps/app_stack.c LOCAL, funcs/func_strings.c HASH).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pypbx.dialplan.args import split_args
from pypbx.dialplan.interpreter import Frame, FrameKind
from pypbx.dialplan.registry import function

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution


@function("GLOBAL", syntax="GLOBAL(varname)")
def global_func(x: Execution, args: str) -> str | None:
    """Read or write a global variable (shared by every channel)."""
    return x.globals.values.get(args.strip())


@global_func.writer
def _global_write(x: Execution, args: str, value: str) -> None:
    x.globals.values[args.strip()] = value


def _gosub_frame(x: Execution) -> Frame | None:
    return next((f for f in reversed(x.frames) if f.kind is FrameKind.GOSUB), None)


@function("LOCAL", syntax="LOCAL(varname)")
def local(x: Execution, args: str) -> str | None:
    """A variable local to the current Gosub, restored when it Returns.

    Reading gives the value only for a variable made local in this Gosub, else nothing.
    """
    frame = _gosub_frame(x)
    name = args.strip()
    if frame is None or name not in frame.saved:
        return ""
    return x.get_var(name) or ""


@local.writer
def _local_write(x: Execution, args: str, value: str) -> None:
    frame = _gosub_frame(x)
    if frame is None:
        x.note(40, f"Tried to set LOCAL({args}), but we aren't within a Gosub routine")
        return
    x.save_and_set(frame, args.strip(), value)


def _hash_var(name: str, key: str) -> str:
    return f"~HASH~{name}~{key}~"


def hash_keys(x: Execution, name: str) -> list[str]:
    prefix = f"~HASH~{name}~"
    # Asterisk keeps channel variables newest first: HASHKEYS lists the last set key first
    names = [k for k, _ in reversed(x.vars.items())]
    return [k[len(prefix) : -1] for k in names if k.startswith(prefix) and k.endswith("~")]


@function("HASH", syntax="HASH(hashname[,hashkey])")
def hash_func(x: Execution, args: str) -> str | None:
    """An associative array: ``HASH(name,key)`` reads/writes one entry; ``HASH(name)`` reads
    all values (in HASHKEYS order, comma-separated)."""
    a = split_args(args)
    name = a[0].strip() if a else ""
    if len(a) > 1:
        return x.vars.get(_hash_var(name, a[1].strip())) or ""
    return ",".join(x.vars.get(_hash_var(name, k)) or "" for k in hash_keys(x, name))


@hash_func.writer
def _hash_write(x: Execution, args: str, value: str) -> None:
    a = split_args(args)
    name = a[0].strip() if a else ""
    if len(a) > 1:
        x.vars.set(_hash_var(name, a[1].strip()), value)
        return
    for k, v in zip(hash_keys(x, name), split_args(value), strict=False):
        x.vars.set(_hash_var(name, k), v)


@function("HASHKEYS", syntax="HASHKEYS(hashname)")
def hashkeys(x: Execution, args: str) -> str:
    """The keys of a HASH, comma-separated."""
    return ",".join(hash_keys(x, args.strip()))
