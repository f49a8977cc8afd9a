"""The control interface: socket server, client and CLI commands."""
