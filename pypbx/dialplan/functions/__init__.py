"""Dial plan functions; each module registers its functions on import."""
