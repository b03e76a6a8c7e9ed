"""Commands: cards (being built)."""
