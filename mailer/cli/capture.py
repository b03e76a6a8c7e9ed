"""Command: `capture`, the local capture SMTP server as a stand-in provider.

It accepts every message on 127.0.0.1 and stores it in a Maildir, so that a
walk-through (send, schedule, run-due) can be followed without an account.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from .app import handle_errors, main


@main.command()
@click.option("--port", default=2525, show_default=True, type=click.IntRange(1, 65535),
              help="Port on 127.0.0.1 to listen on.")
@click.option("--maildir", default=Path("captured"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where received messages go (a Maildir: one file per message in new/).")
@click.option("--max-seconds", type=click.FloatRange(min=0), hidden=True,
              help="Stop after this long (tests).")
@handle_errors
def capture(port: int, maildir: Path, max_seconds: float | None) -> None:
    """Run a local SMTP server that captures mail instead of delivering it (Ctrl-C stops)."""
    from ..demo.capture import CaptureServer

    with CaptureServer(maildir, port=port) as server:
        click.echo(f"Capturing mail on {server.host}:{server.port}; messages go to "
                   f"{(maildir / 'new').resolve()}/")
        click.echo(f"Point mailer at it with MAILER_SMTP_HOST={server.host} "
                   f"MAILER_SMTP_PORT={server.port} MAILER_SMTP_SECURITY=none. "
                   f"Ctrl-C stops it.")
        try:
            if max_seconds is not None:
                time.sleep(max_seconds)
            else:
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass
    click.echo(f"Stopped; {server.handler.received} message(s) captured.")
