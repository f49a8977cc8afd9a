"""Configuration: the Asterisk .conf dialect and the typed models read from it."""
