"""A ``register =>`` line whose provider host does not resolve: it asks again after 10 s,
then waits twice as long each time up to a minute, logs each failure with the next wait, and
goes on as soon as the name resolves."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pypbx import sipservice_register
from pypbx.config.conf import Origin
from pypbx.config.sipconf import General, Registration
from pypbx.sipservice_register import RESOLVE_RETRY_MAX, RegistrationLine


def test_an_unresolved_provider_is_asked_again_with_a_growing_wait(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    failures = 7
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if len(asked) <= failures:
            raise OSError(-2, "Name or service not known")
        return ["192.0.2.40"]

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(sipservice_register, "resolve_host", resolve)
    reg = Registration("acct1", "sip.provider.test", Origin("sip.conf", 3))
    line = RegistrationLine(reg, General(), None, clock=lambda: 0.0, sleep=sleep)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="pypbx.sip.registry"):
        dest = asyncio.run(line._resolve_dest())
    assert dest == ("192.0.2.40", 5060)
    assert waits == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0, 60.0]
    assert RESOLVE_RETRY_MAX == 60.0
    assert asked == ["sip.provider.test"] * (failures + 1)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == failures
    assert lines[0] == (
        "Could not resolve 'sip.provider.test' for registration: "
        "[Errno -2] Name or service not known (next try in 10 s)"
    )
    assert lines[-1].endswith("(next try in 60 s)")
