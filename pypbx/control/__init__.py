"""The control interface: socket server, client and CLI commands (Asterisk main/cli.c)."""

from __future__ import annotations

import importlib

COMMAND_MODULES = ("core", "channel", "dialplan", "sip", "database", "cdr")
"""Modules that register CLI commands when imported (``pypbx.control.<name>``)."""


def load_commands() -> None:
    """Import every command module once, so the registry is complete."""
    for name in COMMAND_MODULES:
        importlib.import_module(f"pypbx.control.{name}")
