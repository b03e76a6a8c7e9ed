"""Command: mailer contacts PATH... - import contacts and show what a send would use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .app import handle_errors, main, map_option, parse_mappings, paths_argument

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..models import ImportResult, Rejected

TABLE_LIMIT = 200  # beyond that a terminal table helps nobody; --json has everything


@main.command()
@paths_argument
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@map_option
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the rejected entries to this CSV, to fix and import again.",
)
@click.option(
    "--region",
    default="DE",
    metavar="CC",
    show_default=True,
    help="Country for phone numbers written without +country code.",
)
@handle_errors
def contacts(
    paths: tuple[Path, ...], as_json: bool, mappings: tuple[str, ...], rejects: Path | None,
    region: str,
) -> None:  # fmt: skip
    """Read contacts from vCard/CSV files, card images or folders (the supported
    files directly inside, not sub-folders); list what was accepted, merged and
    rejected, and why.  Ends with: read N = accepted + duplicate + rejected."""
    from rich.console import Console

    from ..contacts import load_contacts
    from ..contacts.csvfile import write_rejects

    flagged: list[Rejected] = []
    result = load_contacts(
        list(paths), mapping=parse_mappings(mappings), region=region, on_flag=flagged.append
    )
    if rejects is not None:
        write_rejects(rejects, result.rejected)
    if as_json:
        # "flagged": kept contacts from which an invalid value was dropped, so that
        # nothing read disappears silently from the JSON either
        report = {**result.to_json(), "flagged": [f.to_json() for f in flagged]}
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    show(result, flagged, Console(highlight=False, soft_wrap=False))
    if rejects is not None:
        click.echo(f"rejected entries written to {rejects}")
    click.echo(counts_line(result))


def counts_line(result: ImportResult) -> str:
    return (
        f"read {result.read} = accepted {len(result.contacts)} + duplicate "
        f"{len(result.duplicates)} + rejected {len(result.rejected)}"
    )


def show(result: ImportResult, flagged: list[Rejected], console: Console) -> None:
    """Tables of accepted, merged and rejected entries, and of contacts kept without
    some invalid value.  Every value is wrapped in Text so contact data can never
    be read as rich markup."""
    from rich.text import Text

    accepted = _table("Accepted", "source", "name", "e-mail", "organisation")
    for contact in result.contacts[:TABLE_LIMIT]:
        more = len(contact.emails) - 1
        emails = contact.email + (f" (+{more})" if more else "")
        accepted.add_row(Text(contact.source), Text(contact.name), Text(emails), Text(contact.org))
    console.print(accepted)
    if len(result.contacts) > TABLE_LIMIT:
        console.print(f"... and {len(result.contacts) - TABLE_LIMIT} more (--json lists all)")
    if result.duplicates:
        merged = _table("Duplicates (merged)", "source", "merged into", "shared address")
        for dup in result.duplicates:
            merged.add_row(Text(dup.source), Text(dup.kept), Text(dup.email))
        console.print(merged)
    if flagged:
        notes = _table("Accepted, invalid values dropped", "source", "note")
        for item in flagged:
            notes.add_row(Text(item.source), Text(item.reason))
        console.print(notes)
    if result.rejected:
        rejected = _table("Rejected", "source", "reason")
        for item in result.rejected:
            rejected.add_row(Text(item.source), Text(item.reason))
        console.print(rejected)


def _table(title: str, *columns: str) -> Table:
    """Long sources and addresses fold instead of being cut: the line number is at the end."""
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table
