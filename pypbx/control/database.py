"""``database show|get|put|del|deltree`` (Asterisk main/db.c) on the PBX's astdb."""

from __future__ import annotations
