"""Command-line interface: `mailer.cli:main` is the console script.

Each area's commands live in their own module and register on the group
when imported here.
"""

from . import (  # noqa: F401  (register)
    account,
    campaigns,
    capture,
    contacts,
    demo,
    inbox,
    message,
    scans,
    schedule,
    send,
)
from .app import main

__all__ = ["main"]
