"""Accounts: where secrets come from, OAuth2, the providers, `init` and `check`."""
