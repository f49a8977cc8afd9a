"""Log fan-out to remote consoles: which verbosity reaches an attached sink."""

from __future__ import annotations

import logging

import pytest

from pypbx.log import FanoutHandler


@pytest.mark.parametrize(
    ("levels", "verbosity", "reached"),
    [
        ((), 0, False),  # nobody attached
        ((3,), 3, True),
        ((3,), 4, False),
        ((0, 5), 4, True),
        ((1, 2), 3, False),
    ],
)
def test_reaches_says_whether_a_line_would_be_written(
    levels: tuple[int, ...], verbosity: int, reached: bool
) -> None:
    fanout = FanoutHandler()
    lines: list[str] = []
    for level in levels:
        fanout.attach(lines.append, level)
    assert fanout.reaches(verbosity) is reached
    record = logging.LogRecord("pypbx", logging.INFO, __file__, 1, "hello", None, None)
    record.verbosity = verbosity
    fanout.emit(record)
    assert bool(lines) is reached  # the answer matches what emit() does


def test_reaches_follows_detach_and_level_changes() -> None:
    fanout = FanoutHandler()
    sink = fanout.attach(lambda line: None, 1)
    assert not fanout.reaches(3)
    sink.level = 3  # core set verbose 3 on that console
    assert fanout.reaches(3)
    fanout.detach(sink)
    assert not fanout.reaches(0)
