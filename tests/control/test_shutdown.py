"""Shutdown modes on an in-process Pbx: ``core stop now|gracefully|when convenient`` and
``core abort shutdown`` (Asterisk main/asterisk.c semantics), SIGTERM during a graceful wait.

No service runs (the factories are emptied): the channel list stands in for live calls.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pypbx.check import load_config_dir
from pypbx.control import load_commands
from pypbx.control.commands import REGISTRY
from pypbx.server import Pbx, Shutdown, stricter
from tests.control.pbxproc import TUTORIAL


@dataclass
class Chan:
    name: str


@pytest.fixture
def pbx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pbx:
    monkeypatch.setattr("pypbx.server.SERVICE_FACTORIES", [])
    monkeypatch.setattr("pypbx.server._load_builtin_services", lambda: None)
    load_commands()
    cfg = Path(shutil.copytree(TUTORIAL, tmp_path / "cfg"))
    p = Pbx(load_config_dir(cfg))
    p.channels = [Chan("SIP/1000-00000001"), Chan("SIP/2000-00000002")]
    return p


def drive(pbx: Pbx, script: Callable[[asyncio.Task[int]], Awaitable[None]]) -> int:
    """Run the PBX and ``script(task)`` beside it; the exit code (within 3 s)."""

    async def main() -> int:
        task = asyncio.create_task(pbx.run())
        for _ in range(300):
            if pbx.dirs.control_socket.exists() or task.done():
                break
            await asyncio.sleep(0.01)
        await script(task)
        return await asyncio.wait_for(task, 3)

    return asyncio.run(main())


async def cli(pbx: Pbx, line: str) -> tuple[bool, str]:
    out = await REGISTRY.execute(pbx, line)
    await asyncio.sleep(0.15)  # the request is applied after the reply, and run() polls
    return out.ok, out.output


@pytest.mark.parametrize(
    ("current", "mode", "applies"),
    [
        (None, Shutdown.WHEN_CONVENIENT, Shutdown.WHEN_CONVENIENT),
        (None, Shutdown.NOW, Shutdown.NOW),
        (Shutdown.WHEN_CONVENIENT, Shutdown.GRACEFULLY, Shutdown.GRACEFULLY),
        (Shutdown.GRACEFULLY, Shutdown.WHEN_CONVENIENT, Shutdown.GRACEFULLY),
        (Shutdown.GRACEFULLY, Shutdown.NOW, Shutdown.NOW),
        (Shutdown.NOW, Shutdown.GRACEFULLY, Shutdown.NOW),
    ],
)
def test_a_stricter_request_wins(
    current: Shutdown | None, mode: Shutdown, applies: Shutdown
) -> None:
    assert stricter(current, mode) is applies


@pytest.mark.parametrize(
    ("second", "reply"),
    [
        ("core stop now", "Shutting down pypbx now (calls are hung up)."),
        ("SIGTERM", None),
    ],
)
def test_now_cuts_a_graceful_wait_short(pbx: Pbx, second: str, reply: str | None) -> None:
    async def script(task: asyncio.Task[int]) -> None:
        ok, out = await cli(pbx, "core stop gracefully")
        assert (ok, out) == (
            True,
            "Shutting down pypbx gracefully: 2 active channels to finish; new calls are refused.",
        )
        assert not task.done()
        assert not pbx.accepting_calls
        if second == "SIGTERM":
            pbx.request_stop()  # what the SIGTERM handler calls
        else:
            assert await cli(pbx, second) == (True, reply)
        await asyncio.sleep(0.2)
        assert task.done()  # the channels are still there: stopping hangs them up
        assert pbx.shutdown is Shutdown.NOW

    assert drive(pbx, script) == 0


def test_when_convenient_keeps_accepting_calls_until_idle(pbx: Pbx) -> None:
    async def script(task: asyncio.Task[int]) -> None:
        ok, out = await cli(pbx, "core stop when convenient")
        assert (ok, out) == (
            True,
            "Shutting down pypbx when convenient: 2 active channels to finish.",
        )
        assert pbx.accepting_calls
        pbx.channels.pop()
        await asyncio.sleep(0.2)
        assert not task.done()
        pbx.channels.clear()
        await asyncio.sleep(0.2)
        assert task.done()

    assert drive(pbx, script) == 0


def test_gracefully_after_when_convenient_stops_accepting_calls(pbx: Pbx) -> None:
    async def script(task: asyncio.Task[int]) -> None:
        await cli(pbx, "core stop when convenient")
        ok, out = await cli(pbx, "core stop gracefully")
        assert ok
        assert "gracefully" in out
        assert not pbx.accepting_calls
        ok, out = await cli(pbx, "core stop when convenient")  # milder: the graceful one stays
        assert out.startswith("Shutting down pypbx gracefully")
        assert pbx.shutdown is Shutdown.GRACEFULLY
        pbx.channels.clear()

    assert drive(pbx, script) == 0


def test_abort_shutdown_carries_on(pbx: Pbx) -> None:
    async def script(task: asyncio.Task[int]) -> None:
        assert await cli(pbx, "core abort shutdown") == (False, "No shutdown is pending.")
        await cli(pbx, "core stop gracefully")
        assert await cli(pbx, "core abort shutdown") == (
            True,
            "Shutdown aborted: pypbx carries on and accepts calls again.",
        )
        assert pbx.accepting_calls
        assert pbx.shutdown is None
        pbx.channels.clear()  # idle now: an aborted shutdown must not stop it anyway
        await asyncio.sleep(0.3)
        assert not task.done()
        pbx.request_stop()

    assert drive(pbx, script) == 0


def test_a_shutdown_under_way_cannot_be_aborted(pbx: Pbx) -> None:
    pbx.channels.clear()
    pbx.request_shutdown(Shutdown.NOW)
    assert not pbx.abort_shutdown()
    assert pbx.shutdown is Shutdown.NOW

    async def script(task: asyncio.Task[int]) -> None:
        # run() saw the request at once: it is stopping, or already stopped
        await asyncio.sleep(0)

    assert drive(pbx, script) == 0
    out = asyncio.run(REGISTRY.execute(pbx, "core abort shutdown"))
    assert (out.ok, out.output) == (
        False,
        "The shutdown is already under way: it cannot be aborted.",
    )
