"""Dial plan applications; each module registers its applications on import."""

from pypbx.dialplan.apps import basic, dial, flow, loops, media, say

__all__ = ["basic", "dial", "flow", "loops", "media", "say"]
