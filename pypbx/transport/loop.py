"""Event loop selection for the pypbx daemon and its glue tests.

uvloop (a libuv-based asyncio loop, issue 3 item 9) when it is installed, the stdlib
asyncio loop otherwise. Nothing else in pypbx chooses a loop: ``run(main)`` is the one
entry point, and ``new_event_loop()`` is the factory handed to ``asyncio.Runner``.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_name", "new_event_loop", "run", "uvloop_available"]

T = TypeVar("T")


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        module = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = module.new_event_loop
    return factory


def uvloop_available() -> bool:
    """True when ``uvloop`` can be imported."""
    return _uvloop_factory() is not None


def new_event_loop(*, prefer_uvloop: bool = True) -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when installed (and preferred), else asyncio's."""
    factory = _uvloop_factory() if prefer_uvloop else None
    return factory() if factory is not None else asyncio.new_event_loop()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: what the daemon logs at start-up."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(
    main: Coroutine[Any, Any, T], *, prefer_uvloop: bool = True, debug: bool | None = None
) -> T:
    """Run ``main`` to completion on a fresh loop from :func:`new_event_loop`."""
    with asyncio.Runner(
        debug=debug, loop_factory=lambda: new_event_loop(prefer_uvloop=prefer_uvloop)
    ) as runner:
        return runner.run(main)
