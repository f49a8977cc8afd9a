"""Address helpers and event-loop selection (pypbx.transport.addr / loop)."""

from __future__ import annotations

import asyncio
import importlib.util
import socket

import pytest

from pypbx.transport import loop as loop_mod
from pypbx.transport.addr import (
    from_sockaddr,
    hostport,
    ip_family,
    is_wildcard,
    unmap_v4,
    via_host,
)


@pytest.mark.parametrize(
    ("host", "family"),
    [
        ("127.0.0.1", socket.AF_INET),
        ("::1", socket.AF_INET6),
        ("[2001:db8::10]", socket.AF_INET6),
        ("fe80::1%eth0", socket.AF_INET6),
        ("example.com", None),
        ("192.0.2.300", None),
        ("", None),
    ],
)
def test_ip_family(host: str, family: socket.AddressFamily | None) -> None:
    assert ip_family(host) == family


@pytest.mark.parametrize(
    ("host", "expected"),
    [("0.0.0.0", True), ("::", True), ("[::]", True), ("", True), ("127.0.0.1", False)],
)
def test_is_wildcard(host: str, expected: bool) -> None:
    assert is_wildcard(host) is expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [("::1", "[::1]"), ("[::1]", "[::1]"), ("10.0.0.1", "10.0.0.1"), ("pbx.test", "pbx.test")],
)
def test_via_host_brackets_ipv6(host: str, expected: str) -> None:
    assert via_host(host) == expected


def test_hostport_and_sockaddr() -> None:
    assert hostport(("::1", 5060)) == "[::1]:5060"
    assert hostport(("127.0.0.1", 5070)) == "127.0.0.1:5070"
    assert from_sockaddr(("::1", 5060, 0, 0)) == ("::1", 5060)


def test_uvloop_used_when_installed() -> None:
    installed = importlib.util.find_spec("uvloop") is not None
    assert loop_mod.uvloop_available() is installed
    loop = loop_mod.new_event_loop()
    try:
        assert loop_mod.loop_name(loop) == ("uvloop" if installed else "asyncio")
    finally:
        loop.close()


def test_asyncio_loop_when_uvloop_not_preferred() -> None:
    loop = loop_mod.new_event_loop(prefer_uvloop=False)
    try:
        assert loop_mod.loop_name(loop) == "asyncio"
    finally:
        loop.close()


def test_uvloop_absent_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> object:
        raise ImportError(name)

    monkeypatch.setattr(importlib, "import_module", missing)
    assert not loop_mod.uvloop_available()
    loop = loop_mod.new_event_loop()
    try:
        assert loop_mod.loop_name(loop) == "asyncio"
    finally:
        loop.close()


@pytest.mark.parametrize("prefer", [True, False])
def test_run_returns_the_result(prefer: bool) -> None:
    async def main() -> str:
        await asyncio.sleep(0)
        return loop_mod.loop_name(asyncio.get_running_loop())

    name = loop_mod.run(main(), prefer_uvloop=prefer)
    assert name == ("uvloop" if prefer and loop_mod.uvloop_available() else "asyncio")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("::FFFF:127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("::ffff:zz", "::ffff:zz"),
        ("192.0.2.1", "192.0.2.1"),
    ],
)
def test_unmap_v4(host: str, expected: str) -> None:
    assert unmap_v4(host) == expected
    assert from_sockaddr((host, 5060, 0, 0)) == (expected, 5060)
