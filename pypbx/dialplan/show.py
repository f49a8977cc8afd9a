"""``dialplan show [[exten@]context]`` text, laid out as Asterisk's ``pbx.c`` CLI prints it.

Per context: a ``[ Context 'name' created by 'pbx_config' ]`` header, every extension in match
order (the first line ``'name' =>`` or ``'name' (CID match 'cid') =>``, then one line per
priority, a ``[label]`` in the first column of the later ones, ``hint: ...`` for a hint), each
with the ``[file:line]`` it came from; then ``Include =>``, ``Ignore pattern =>`` and
``Alt. Switch =>`` lines, a blank line, and finally the
``-= N extensions (M priorities) in K contexts. =-`` summary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pypbx.config.conf import Origin
from pypbx.dialplan.model import Context, Dialplan, Extension
from pypbx.dialplan.pattern import compile_pattern

__all__ = ["show_dialplan"]

REGISTRAR = "pbx_config"


@dataclass(slots=True)
class _Counts:
    extensions: int = 0
    priorities: int = 0
    contexts: int = 0


def _where(origin: Origin | None) -> str:
    if origin is None:
        return REGISTRAR
    return f"{os.path.basename(origin.file)}:{origin.line}"


def _row(first: str, second: str, origin: Origin | None) -> str:
    return f"  {first:<17} {second:<45} [{_where(origin)}]"


def _tail(label: str, text: str) -> str:
    return f"  {label}{text:<45} [{REGISTRAR}]"


def _extension_lines(ext: Extension, counts: _Counts) -> list[str]:
    counts.extensions += 1
    if ext.cid is not None:
        head = f"'{ext.name}' (CID match '{ext.cid}') => "
    else:
        head = f"'{ext.name}' =>"
    lines: list[str] = []
    if ext.hint is not None:
        lines.append(_row(head, f"hint: {ext.hint}", ext.hint_origin))
        counts.priorities += 1
        head = ""
    for step in ext.priorities.values():
        counts.priorities += 1
        if not lines:
            first = head
        else:
            first = f"   [{step.label}]" if step.label else ""
        lines.append(_row(first, f"{step.number}. {step.app}({step.args})", step.origin))
    return lines


def _context_lines(
    dp: Dialplan,
    ctx: Context,
    exten: str | None,
    counts: _Counts,
    included: bool,
    seen: set[str],
) -> list[str]:
    body: list[str] = []
    for ext in dp.ordered_extensions(ctx.name):
        if exten is not None and not compile_pattern(ext.name).matches(exten):
            continue
        body.extend(_extension_lines(ext, counts))
    nested: list[str] = []
    for inc in ctx.includes:
        if exten is None:
            body.append(_tail("Include =>        ", f"'{inc.name}'"))
        elif inc.name.lower() not in seen and inc.name in dp.contexts:
            seen.add(inc.name.lower())
            nested.extend(_context_lines(dp, dp.contexts[inc.name], exten, counts, True, seen))
    for pat in ctx.ignorepats:
        if exten is None or compile_pattern(f"_{pat}.").matches(exten):
            body.append(_tail("Ignore pattern => ", f"'{pat}'"))
    if not included and (exten is None or body):
        for sw in ctx.switches:
            body.append(_tail("Alt. Switch =>    ", f"'{sw.module}/{sw.data}'"))
    lines: list[str] = []
    if body:
        counts.contexts += 1
        kind = "Included context" if included else "Context"
        lines.append(f"[ {kind} '{ctx.name}' created by '{REGISTRAR}' ]")
        lines.extend(body)
        lines.append("")
    return lines + nested


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def show_dialplan(dp: Dialplan, context: str | None = None, exten: str | None = None) -> str:
    """The ``dialplan show`` output for every context, one context, or ``exten@context``.

    ``context`` may be written ``exten@context`` as on the Asterisk CLI; ``exten`` then shows
    only the extensions matching it, searching the included contexts too.
    """
    if context is not None and "@" in context and exten is None:
        exten, _, context = context.partition("@")
        exten = exten or None
        context = context or None
    if context is not None and context not in dp.contexts:
        return f"There is no existence of '{context}' context\n"
    counts = _Counts()
    lines: list[str] = []
    names = [context] if context is not None else dp.context_names()
    for name in names:
        seen = {name.lower()}
        lines.extend(_context_lines(dp, dp.contexts[name], exten, counts, False, seen))
    if exten is not None and counts.extensions == 0:
        where = f"{exten}@{context}" if context is not None else exten
        return f"There is no existence of {where} extension\n"
    summary = (
        f"-= {_plural(counts.extensions, 'extension', 'extensions')} "
        f"({_plural(counts.priorities, 'priority', 'priorities')}) in "
        f"{_plural(counts.contexts, 'context', 'contexts')}. =-"
    )
    return "\n".join([*lines, summary]) + "\n"
