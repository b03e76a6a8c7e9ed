"""The demo and its stand-in provider, a local capture SMTP server."""
