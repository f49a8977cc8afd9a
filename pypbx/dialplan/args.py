"""Application argument splitting, as Asterisk does it.

Three small pieces of Asterisk's dial plan grammar live here:

* ``split_args``: ``AST_STANDARD_APP_ARGS`` / ``__ast_app_separate_args`` (main/app.c). Separators
  inside ``()``, ``[]`` and double quotes do not split; a backslash takes the next character
  literally; with ``remove_chars`` the quotes and backslashes are dropped. ``|`` is not a
  separator (it stopped being one in Asterisk 1.6).
* ``split_application``: the ``App(data)`` part of an ``exten =>`` line (pbx/pbx_config.c
  ``pbx_load_config``): the name ends at the first ``(`` and the data at the last ``)``; a missing
  ``)`` is warned about and the rest is taken as data.
* ``split_assignment``: ``Set(name=value)`` (main/pbx_variables.c ``pbx_builtin_setvar``): split
  at the first ``=``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Warn = Callable[[str], None]


def _ignore(_message: str) -> None:
    """The default warning sink: drop the message."""


def split_args(
    text: str,
    sep: str = ",",
    *,
    remove_chars: bool = True,
    max_args: int | None = None,
) -> list[str]:
    """Split application data into arguments exactly as ``__ast_app_separate_args`` does.

    An empty ``text`` gives no arguments; a trailing separator gives a trailing empty argument.
    With ``max_args`` the last argument holds the unsplit, unprocessed rest, as Asterisk's
    fixed-size argument array does (``AST_DECLARE_APP_ARGS``).
    """
    if len(sep) != 1:
        raise ValueError("sep must be one character")
    if max_args is not None and max_args < 1:
        return []
    args: list[str] = []
    n = len(text)
    i = 0
    paren = bracket = 0
    quoted = False
    last_ended_by_sep = False
    while i < n and (max_args is None or len(args) < max_args - 1):
        current: list[str] = []
        last_ended_by_sep = False
        while i < n:
            c = text[i]
            if c == "(":
                paren += 1
            elif c == ")":
                paren = max(0, paren - 1)
            elif c == "[":
                bracket += 1
            elif c == "]":
                bracket = max(0, bracket - 1)
            elif c == '"' and sep != '"':
                quoted = not quoted
                if remove_chars:
                    i += 1
                    continue
            elif c == "\\":
                # The next character is literal: it neither splits nor nests nor quotes.
                if remove_chars:
                    current.append(text[i + 1 : i + 2])
                else:
                    current.append(text[i : i + 2])
                i += 2
                continue
            elif c == sep and not paren and not quoted and not bracket:
                i += 1
                last_ended_by_sep = True
                break
            current.append(c)
            i += 1
        args.append("".join(current))
    if i < n:
        args.append(text[i:])
    elif last_ended_by_sep:
        args.append("")
    return args


@dataclass(frozen=True, slots=True)
class ApplicationCall:
    """An application line split into its name and raw (unsubstituted) data."""

    name: str
    data: str


def split_application(text: str, *, warn: Warn | None = None) -> ApplicationCall:
    """Split ``App(data)`` the way pbx_config.c does when it loads an ``exten =>`` line.

    Without ``(`` the whole text is the name (``Answer``). A ``${`` or ``$[`` before the first
    ``(`` means there is no application at all (a hint such as ``SIP/${X}``): the whole text is
    the name and the data is empty. The data ends at the last ``)``; text after it is dropped.
    """
    say = warn or _ignore
    if "(" not in text:
        return ApplicationCall(_skip_blanks(text), "")
    name, rest = text.split("(", 1)
    if "${" in name or "$[" in name:
        return ApplicationCall(_skip_blanks(text), "")
    end = rest.rfind(")")
    if end >= 0:
        data = rest[:end]
    else:
        say(f"No closing parenthesis found? '{name}({rest}'")
        data = rest
    return ApplicationCall(_skip_blanks(name), data)


def _skip_blanks(text: str) -> str:
    """``ast_skip_blanks``: drop leading characters with codes below 33."""
    i = 0
    while i < len(text) and ord(text[i]) < 33:
        i += 1
    return text[i:]


def split_assignment(text: str, *, warn: Warn | None = None) -> tuple[str, str] | None:
    """Split ``Set`` data at the first ``=`` into ``(name, value)``; ``None`` when invalid.

    The value keeps everything after the first ``=``, commas and quotes included (Asterisk
    1.6+ Set). Spaces in the name draw the same warning Asterisk logs.
    """
    say = warn or _ignore
    if not text:
        say("Set requires one variable name/value pair.")
        return None
    if "=" not in text:
        say("Set requires an '=' to be a valid assignment.")
        return None
    name, value = text.split("=", 1)
    if " " in name:
        say(
            "Please avoid unnecessary spaces on variables as it may lead to unexpected "
            f"results ('{name}' set to '{value}')."
        )
    return name, value
