"""Root of pypbx's exception tree; each package adds its own subclasses."""


class PbxError(Exception):
    """Base class for every error pypbx raises on purpose."""
