"""Sending: K SMTP connections, the pace, the login step, outcomes per message."""
