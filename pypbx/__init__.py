"""pypbx: a telephone exchange that reads Asterisk's configuration files."""

__version__ = "0.1.0"
