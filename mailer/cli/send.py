"""Commands: send (being built)."""
