"""Commands: schedule (being built)."""
