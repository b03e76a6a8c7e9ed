"""Commands: contacts (being built)."""
