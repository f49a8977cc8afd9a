"""Dial plan functions; each module registers its functions on import."""

from pypbx.dialplan.functions import arith, channel, clock, db, logic, strings, vars

__all__ = ["arith", "channel", "clock", "db", "logic", "strings", "vars"]
