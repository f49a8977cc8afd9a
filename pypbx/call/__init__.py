"""Channels, channel technologies and bridges."""
