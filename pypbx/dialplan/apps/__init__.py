"""Dial plan applications; each module registers its applications on import."""
