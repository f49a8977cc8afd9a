"""The control CLI's command registry, in the spirit of Asterisk's ``ast_cli_entry`` (main/cli.c).

A command is a tuple of words (``("sip", "show", "peers")``), a one-line summary, a usage text,
an async handler ``(pbx, args) -> str`` and an optional completer for its arguments. A line is
dispatched to the command whose words are the longest prefix of the line's words (compared
case-insensitively, as Asterisk does); the words after it are the handler's ``args``. Command
modules register themselves on import with the :func:`command` decorator; there is no
``if/elif`` on names anywhere.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pypbx.server import Pbx, ReloadResult

__all__ = [
    "REGISTRY",
    "Command",
    "CommandError",
    "CommandRegistry",
    "Completer",
    "Handler",
    "Outcome",
    "ShowUsage",
    "command",
    "current_console",
    "reload_output",
]

Handler = Callable[["Pbx", list[str]], Awaitable[str]]
Completer = Callable[["Pbx", list[str], str], Iterable[str]]
"""``(pbx, args typed so far, word being completed) -> candidates``."""


class CommandError(Exception):
    """A command ran and failed: the message is shown and ``-rx`` exits 1."""


def reload_output(result: ReloadResult) -> str:
    """A reload's report lines as command output; a refused reload is a :class:`CommandError`."""
    text = "\n".join(result.lines)
    if not result.ok:
        raise CommandError(text)
    return text


class ShowUsage(Exception):
    """The arguments are wrong: the registry answers with the command's usage text."""


@dataclass(frozen=True, slots=True)
class Command:
    """One CLI entry: words, summary (``help`` listing), usage text, handler and completer."""

    words: tuple[str, ...]
    summary: str
    usage: str
    handler: Handler
    completer: Completer | None = None

    @property
    def name(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command line produced: the text to print and whether it succeeded."""

    ok: bool
    output: str


current_console: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "current_console", default=None
)
"""The console session a command runs for (set by the control server), or None for ``-rx``."""


def split_line(line: str) -> list[str]:
    """Split a command line into words (whitespace separated; double quotes group words)."""
    words: list[str] = []
    cur: list[str] = []
    quoted = False
    started = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            started = True
        elif ch.isspace() and not quoted:
            if started:
                words.append("".join(cur))
                cur, started = [], False
        else:
            cur.append(ch)
            started = True
    if started:
        words.append("".join(cur))
    return words


class CommandRegistry:
    """All known commands, matched by longest word prefix."""

    def __init__(self) -> None:
        self._commands: dict[tuple[str, ...], Command] = {}

    def add(self, cmd: Command) -> Command:
        key = tuple(w.lower() for w in cmd.words)
        if not key:
            raise ValueError("a command needs at least one word")
        if key in self._commands:
            raise ValueError(f"command {cmd.name!r} registered twice")
        self._commands[key] = cmd
        return cmd

    def command(
        self, words: str, *, summary: str, usage: str = "", completer: Completer | None = None
    ) -> Callable[[Handler], Handler]:
        """Decorator: ``@command("core show uptime", summary=..., usage=...)``."""

        def register(handler: Handler) -> Handler:
            w = tuple(words.split())
            self.add(Command(w, summary, usage or f"Usage: {' '.join(w)}", handler, completer))
            return handler

        return register

    def commands(self) -> list[Command]:
        return [self._commands[k] for k in sorted(self._commands)]

    def find(self, words: list[str]) -> tuple[Command, list[str]] | None:
        """The command whose words are the longest prefix of ``words``, and the rest."""
        low = [w.lower() for w in words]
        for n in range(len(low), 0, -1):
            cmd = self._commands.get(tuple(low[:n]))
            if cmd is not None:
                return cmd, words[n:]
        return None

    def matching(self, words: list[str]) -> list[Command]:
        """Commands whose words start with ``words`` (for ``help sip show``)."""
        low = tuple(w.lower() for w in words)
        return [c for k, c in sorted(self._commands.items()) if k[: len(low)] == low]

    async def execute(self, pbx: Pbx, line: str) -> Outcome:
        words = split_line(line)
        if not words:
            return Outcome(True, "")
        found = self.find(words)
        if found is None:
            return Outcome(
                False, f"No such command '{' '.join(words)}' (type 'help' for a list of commands)"
            )
        cmd, args = found
        try:
            return Outcome(True, await cmd.handler(pbx, args))
        except ShowUsage:
            return Outcome(False, cmd.usage)
        except CommandError as exc:
            return Outcome(False, str(exc))

    def complete(self, pbx: Pbx | None, line: str) -> list[str]:
        """Candidates for the last word of ``line`` (empty word when ``line`` ends in a space)."""
        words = split_line(line)
        if not line or line[-1].isspace():
            words.append("")
        done, word = [w.lower() for w in words[:-1]], words[-1]
        out: set[str] = set()
        for key, cmd in self._commands.items():
            n = len(done)
            if n < len(key):
                if key[:n] == tuple(done) and key[n].startswith(word.lower()):
                    out.add(key[n])
            elif key == tuple(done[: len(key)]) and cmd.completer is not None and pbx is not None:
                args = words[len(key) : -1]
                out.update(c for c in cmd.completer(pbx, args, word) if c.startswith(word))
        return sorted(out)


REGISTRY = CommandRegistry()
command = REGISTRY.command
