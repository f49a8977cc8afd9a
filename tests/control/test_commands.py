"""The command registry: longest-prefix dispatch, usage and errors, completion; pure."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from pypbx.control import load_commands
from pypbx.control.commands import (
    REGISTRY,
    Command,
    CommandError,
    CommandRegistry,
    ShowUsage,
    split_line,
)


def make_registry() -> tuple[CommandRegistry, list[tuple[str, list[str]]]]:
    reg = CommandRegistry()
    calls: list[tuple[str, list[str]]] = []

    def handler(name: str) -> Any:
        async def run(pbx: Any, args: list[str]) -> str:
            calls.append((name, args))
            if args == ["usage"]:
                raise ShowUsage
            if args == ["fail"]:
                raise CommandError("it failed")
            return f"{name} ran"

        return run

    reg.command("sip show peers", summary="peers", usage="Usage: sip show peers")(handler("peers"))
    reg.command("sip show peer", summary="peer", completer=lambda p, a, w: ["alice", "bob"])(
        handler("peer")
    )
    reg.command("sip show", summary="bare")(handler("bare"))
    reg.command("core show uptime", summary="uptime")(handler("uptime"))
    return reg, calls


@pytest.mark.parametrize(
    ("line", "called"),
    [
        ("sip show peers", ("peers", [])),
        ("SIP Show PEERS", ("peers", [])),
        ("  sip   show peers  ", ("peers", [])),
        ("sip show peer alice", ("peer", ["alice"])),
        ("sip show peers like 10", ("peers", ["like", "10"])),
        ("sip show registry", ("bare", ["registry"])),
        ('sip show peer "with space"', ("peer", ["with space"])),
        ("core show uptime seconds", ("uptime", ["seconds"])),
    ],
)
def test_longest_prefix_dispatch(line: str, called: tuple[str, list[str]]) -> None:
    reg, calls = make_registry()
    outcome = asyncio.run(reg.execute(None, line))  # type: ignore[arg-type]
    assert outcome.ok
    assert calls == [called]
    assert outcome.output == f"{called[0]} ran"


@pytest.mark.parametrize(
    ("line", "ok", "output"),
    [
        ("", True, ""),
        ("sip", False, "No such command 'sip' (type 'help' for a list of commands)"),
        ("core show", False, "No such command 'core show' (type 'help' for a list of commands)"),
        ("sip show peers usage", False, "Usage: sip show peers"),
        ("sip show peer usage", False, "Usage: sip show peer"),
        ("sip show peers fail", False, "it failed"),
    ],
)
def test_errors_and_usage(line: str, ok: bool, output: str) -> None:
    reg, _ = make_registry()
    outcome = asyncio.run(reg.execute(None, line))  # type: ignore[arg-type]
    assert (outcome.ok, outcome.output) == (ok, output)


@pytest.mark.parametrize(
    ("line", "matches"),
    [
        ("", ["core", "sip"]),
        ("s", ["sip"]),
        ("sip ", ["show"]),
        ("sip sh", ["show"]),
        ("sip show ", ["peer", "peers"]),
        ("sip show pe", ["peer", "peers"]),
        ("sip show peers", ["peers"]),
        ("sip show peer ", ["alice", "bob"]),
        ("sip show peer a", ["alice"]),
        ("sip show peer alice ", ["alice", "bob"]),
        ("Core SHOW u", ["uptime"]),
        ("nothing ", []),
    ],
)
def test_completion(line: str, matches: list[str]) -> None:
    reg, _ = make_registry()
    assert reg.complete(SimpleNamespace(), line) == matches  # type: ignore[arg-type]


def test_duplicate_and_empty_commands_are_refused() -> None:
    reg, _ = make_registry()

    async def h(pbx: Any, args: list[str]) -> str:
        return ""

    with pytest.raises(ValueError, match="registered twice"):
        reg.add(Command(("SIP", "show", "peers"), "again", "", h))
    with pytest.raises(ValueError, match="at least one word"):
        reg.add(Command((), "nothing", "", h))


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("a b  c", ["a", "b", "c"]),
        ('database put fam key "two words"', ["database", "put", "fam", "key", "two words"]),
        ('x ""', ["x", ""]),
        ("", []),
        ("\tx\n", ["x"]),
    ],
)
def test_split_line(line: str, words: list[str]) -> None:
    assert split_line(line) == words


def test_matching_lists_a_command_family() -> None:
    reg, _ = make_registry()
    assert [c.name for c in reg.matching(["sip", "show"])] == [
        "sip show",
        "sip show peer",
        "sip show peers",
    ]
    assert reg.matching(["nope"]) == []


REQUIRED = [
    "core show version",
    "core show uptime",
    "core show channels",
    "core show channel",
    "core show calls",
    "core show applications",
    "core show application",
    "core show functions",
    "core show function",
    "core set verbose",
    "core stop now",
    "core stop gracefully",
    "core stop when convenient",
    "core abort shutdown",
    "core reload",
    "sip show peers",
    "sip show peer",
    "sip show registry",
    "sip show channels",
    "sip show users",
    "sip reload",
    "sip set debug",
    "dialplan show",
    "dialplan reload",
    "channel request hangup",
    "database show",
    "database get",
    "database put",
    "database del",
    "module reload",
    "cdr show last",
    "cdr show status",
    "help",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_builtin_commands_are_registered_with_usage(name: str) -> None:
    load_commands()
    found = REGISTRY.find(name.split())
    assert found is not None
    cmd, rest = found
    assert (cmd.name, rest) == (name, [])
    assert cmd.usage.startswith(f"Usage: {name}")
    assert cmd.summary


def test_builtin_completion_of_peer_and_context_names() -> None:
    load_commands()
    pbx: Any = SimpleNamespace(
        sip=SimpleNamespace(peers={"1000": None, "1001": None, "flowroute": None}),
        dialplan=SimpleNamespace(contexts={"outgoing": None, "inbound": None}),
        channels=[],
    )
    assert REGISTRY.complete(pbx, "sip show peer 10") == ["1000", "1001"]
    assert REGISTRY.complete(pbx, "sip set debug peer f") == ["flowroute"]
    assert REGISTRY.complete(pbx, "dialplan show ") == ["inbound", "outgoing"]
    assert REGISTRY.complete(pbx, "help sip show p") == ["peer", "peers"]
    assert REGISTRY.complete(pbx, "module reload ") == [
        "chan_sip.so",
        "pbx_config.so",
        "res_rtp_asterisk.so",
    ]
