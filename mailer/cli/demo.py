"""Command: `demo`, the whole path on the bundled example data (README quick start)."""

from __future__ import annotations

from pathlib import Path

import click

from ..models import State
from .app import handle_errors, main


@main.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("mailer-demo"),
    show_default=True,
    help="Folder for the demo's Maildir, preview and journal (recreated on every run).",
)
@handle_errors
def demo(workdir: Path) -> None:
    """Send the example mail to the example contacts through a local capture server.

    Nothing leaves this machine: mailer starts an SMTP server on 127.0.0.1 that
    stores every message it receives in a Maildir."""
    from ..demo.run import run_demo  # the importers and the engine load only when needed

    report = run_demo(workdir)
    for item in report.preview.items:
        if item.reason:
            click.echo(f"  {item.status.value:>14}  {item.source}: {item.reason}")
    click.echo(report.preview.line())
    sent = report.send.counts[State.SENT]
    click.echo(
        f"Delivered {sent} message(s) over SMTP to the capture server mailer started on "
        f"127.0.0.1; nothing left this machine:"
    )
    for item in report.preview.items:
        if item.draft is not None and item.status.value == "new":
            click.echo(f"  {item.email:<32} [{item.draft.lang}] {item.draft.subject}")
    click.echo(
        f"Inputs:             {workdir / 'contacts.csv.example'}, "
        f"{workdir / 'profile.example.toml'}"
    )
    click.echo(f"Messages (Maildir): {report.maildir}")
    click.echo(f"Preview page:       {report.preview.index} (the dry run, before sending)")
    click.echo(f"Journal:            {report.journal}")
    click.echo("Next: write your own profile.toml and .env, then `mailer preview` (see README).")
