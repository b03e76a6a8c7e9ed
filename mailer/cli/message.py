"""Commands: message (being built)."""
