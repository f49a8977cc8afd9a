"""Channel functions: CALLERID, CHANNEL, HANGUPCAUSE, DIALPLAN_EXISTS, TIMEOUT, CDR, EXCEPTION
(Asterisk funcs/func_callerid.c, func_channel.c, func_hangupcause.c, func_dialplan.c,
func_timeout.c, func_cdr.c).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pypbx.dialplan.args import split_args
from pypbx.dialplan.registry import function

if TYPE_CHECKING:
    from pypbx.dialplan.interpreter import Execution


def split_callerid(text: str) -> tuple[str, str]:
    """``"Name" <num>`` / ``Name <num>`` / ``num`` → (name, num) (ast_callerid_split)."""
    t = text.strip()
    if "<" in t and t.endswith(">"):
        name, _, num = t[:-1].rpartition("<")
        return name.strip().strip('"').strip(), num.strip()
    if t and all(c.isdigit() or c in "+*#" for c in t):
        return "", t
    return t.strip('"'), ""


_NUM = ("num", "number", "ani", "ani-num")
_NAME = ("name", "ani-name")
_EXTRA = ("dnid", "rdnis", "num-pres", "name-pres", "pres", "ton", "subaddr", "tag")


@function("CALLERID", syntax="CALLERID(datatype)")
def callerid(x: Execution, args: str) -> str | None:
    """Caller id: ``num``, ``name``, ``all`` (``"name" <num>``), ``ani``, ``dnid``, ``rdnis``,
    ``num-pres``/``name-pres`` (datatype compared case-insensitively)."""
    what = split_args(args)[0].strip().lower() if args.strip() else ""
    if what in _NUM:
        return x.callerid_num
    if what in _NAME:
        return x.callerid_name
    if what == "all":  # ast_callerid_merge
        if x.callerid_name and x.callerid_num:
            return f'"{x.callerid_name}" <{x.callerid_num}>'
        return x.callerid_name or x.callerid_num
    if what in ("num-pres", "name-pres", "pres"):
        return x.callerid_extra.get(what, "allowed_not_screened")
    if what in _EXTRA:
        return x.callerid_extra.get(what, "")
    x.warn(f"Unknown callerid data type '{what}'.")
    return None


@callerid.writer
def _callerid_write(x: Execution, args: str, value: str) -> None:
    what = split_args(args)[0].strip().lower() if args.strip() else ""
    if what in _NUM:
        x.callerid_num = value
    elif what in _NAME:
        x.callerid_name = value
    elif what == "all":
        name, num = split_callerid(value)
        x.callerid_name, x.callerid_num = name, num
    elif what in _EXTRA:
        x.callerid_extra[what] = value
    else:
        x.warn(f"Unknown callerid data type '{what}'.")


@function("CHANNEL", syntax="CHANNEL(item)")
def channel_func(x: Execution, args: str) -> str | None:
    """Channel information: name, uniqueid, state, language, context, exten, priority ...

    Writable: language, musicclass, tonezone, accountcode, hangupcause and the hangup
    handler stack (``hangup_handler_push``/``_pop``/``_wipe`` = ``context,exten,priority(args)``,
    run as Gosubs after the ``h`` extension, last pushed first).
    """
    item = args.strip().lower()
    values = {
        "name": x.channel.name,
        "uniqueid": x.channel.uniqueid,
        "linkedid": x.channel.uniqueid,
        "state": "Up" if x.channel.answered else "Ring",
        "language": x.vars.get("CHANNEL_LANGUAGE") or "en",
        "musicclass": x.vars.get("CHANNEL_MUSICCLASS") or "default",
        "context": x.context,
        "exten": x.exten,
        "priority": str(x.priority),
        "channeltype": x.channel.name.partition("/")[0],
        "hangupcause": str(x.hangup_cause),
        "accountcode": x.cdr.get("accountcode", ""),
        "peername": "",
        "peerip": "",
        "audioreadformat": "ulaw",
        "audionativeformat": "ulaw",
        "audiowriteformat": "ulaw",
        "tonezone": x.vars.get("CHANNEL_TONEZONE") or "us",
        "hangupsource": "",
        "callgroup": "",
        "pickupgroup": "",
    }
    if item in values:
        return values[item]
    x.warn(f"Unknown or unavailable item requested: '{args}'")
    return None


@channel_func.writer
def _channel_write(x: Execution, args: str, value: str) -> None:
    item = args.strip().lower()
    if item in ("language", "musicclass", "tonezone"):
        x.vars.set(f"CHANNEL_{item.upper()}", value)
    elif item == "hangupcause":
        x.set_cause(int(value) if value.isdigit() else 0)
    elif item == "accountcode":
        x.cdr["accountcode"] = value
    elif item == "hangup_handler_push":
        x.hangup_handlers.append(value)
    elif item in ("hangup_handler_pop", "hangup_handler_wipe"):
        if item.endswith("wipe"):
            x.hangup_handlers.clear()
        elif x.hangup_handlers:
            x.hangup_handlers.pop()
        if value:
            x.hangup_handlers.append(value)
    else:
        x.warn(f"Unknown or unavailable item requested: '{args}'")


@function("HANGUPCAUSE", syntax="HANGUPCAUSE([channel[,type]])")
def hangupcause(x: Execution, args: str) -> str:
    """The hangup cause of this channel (or of a dialled one, once calls exist)."""
    return str(x.hangup_cause)


@function("DIALPLAN_EXISTS", syntax="DIALPLAN_EXISTS(context[,extension[,priority]])")
def dialplan_exists(x: Execution, args: str) -> str:
    """1 if the context (and extension, and priority or label) exists, else 0."""
    a = [s.strip() for s in split_args(args)]
    if not a or not a[0]:
        x.warn("DIALPLAN_EXISTS() requires an argument")
        return "0"
    context = a[0]
    if len(a) < 2 or not a[1]:
        return "1" if context in x.dialplan.contexts else "0"
    exten = a[1]
    prio_text = a[2] if len(a) > 2 and a[2] else "1"
    if prio_text.isdigit():
        priority = int(prio_text)
    else:
        label = x.dialplan.find_label(context, exten, prio_text, callerid=x.callerid)
        if label is None:
            return "0"
        priority = label
    return "1" if x.exists(context, exten, priority) else "0"


_TIMEOUTS = ("absolute", "digit", "response")


@function("TIMEOUT", syntax="TIMEOUT(timeouttype)")
def timeout(x: Execution, args: str) -> str | None:
    """The channel's ``absolute``, ``digit`` or ``response`` timeout, in seconds."""
    kind = args.strip().lower()
    if kind == "absolute":
        return "" if x.absolute_timeout is None else f"{x.absolute_timeout:g}"
    if kind == "digit":
        return f"{x.digit_timeout:g}"
    if kind == "response":
        return f"{x.response_timeout:g}"
    x.warn(f"Unknown timeout type specified: '{args}'")
    return None


@timeout.writer
def _timeout_write(x: Execution, args: str, value: str) -> None:
    kind = args.strip().lower()
    try:
        seconds = float(value) if value.strip() else 0.0
    except ValueError:
        x.warn(f"Cannot set timeout {args} to '{value}'")
        return
    if kind == "absolute":
        x.absolute_timeout = seconds if seconds > 0 else None
    elif kind == "digit":
        x.digit_timeout = seconds
    elif kind == "response":
        x.response_timeout = seconds
    else:
        x.warn(f"Unknown timeout type specified: '{args}'")


@function("CDR", syntax="CDR(name[,options])")
def cdr(x: Execution, args: str) -> str:
    """A field of this call's CDR (``userfield``, ``accountcode`` ... or a custom one)."""
    name = split_args(args)[0].strip().lower() if args.strip() else ""
    return x.cdr.get(name, "")


@cdr.writer
def _cdr_write(x: Execution, args: str, value: str) -> None:
    name = split_args(args)[0].strip().lower() if args.strip() else ""
    if name:
        x.cdr[name] = value


@function("EXCEPTION", syntax="EXCEPTION(field)")
def exception(x: Execution, args: str) -> str | None:
    """Why and where the channel was sent to ``e``: ``reason``, ``context``, ``exten``,
    ``priority``."""
    name = args.strip().lower()
    if name not in ("reason", "context", "exten", "priority"):
        x.warn(f"EXCEPTION: unknown field '{args}'")
        return None
    return x.exception.get(name, "")
