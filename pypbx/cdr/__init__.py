"""Call detail records."""
