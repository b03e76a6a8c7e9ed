"""Commands: demo (being built)."""
