"""Command: mailer contacts PATH... - import contacts and show what a send would use."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .app import console, handle_errors, main, map_option, parse_mappings, paths_argument

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..contacts.csvfile import ColumnReport
    from ..language import Decision
    from ..models import Contact, ImportResult, Rejected

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
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Your profile.toml: its lang is the language of contacts nothing else decides.",
)
@click.option(
    "--templates",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Your own templates folder: its languages are the ones to choose from.",
)
@handle_errors
def contacts(
    paths: tuple[Path, ...], as_json: bool, mappings: tuple[str, ...], rejects: Path | None,
    region: str, profile_path: Path | None, templates: Path | None,
) -> None:  # fmt: skip
    """Read contacts from vCard/CSV files, card images or folders (the supported
    files directly inside, not sub-folders); list what was accepted, merged and
    rejected, and why, and each contact's mail language and why.  Ends with:
    read N = accepted + duplicate + rejected."""
    from rich.text import Text

    from ..compose.message import default_templates, template_languages
    from ..contacts import load_contacts
    from ..contacts.csvfile import write_rejects
    from ..language import decide

    flagged: list[Rejected] = []
    columns: list[ColumnReport] = []
    result = load_contacts(
        list(paths),
        mapping=parse_mappings(mappings),
        region=region,
        on_flag=flagged.append,
        on_columns=columns.append,
    )
    if rejects is not None:
        write_rejects(rejects, result.rejected)
    profile_lang = ""
    if profile_path is not None:
        from ..compose.profile import load_profile

        profile_lang = load_profile(profile_path).lang
    available = template_languages(templates or default_templates())

    def language(contact: Contact) -> Decision:
        return decide(contact, profile_lang, available)

    if as_json:
        report = result.to_json()
        for item, contact in zip(report["contacts"], result.contacts, strict=True):
            chosen = language(contact)
            item["language"] = {"lang": chosen.lang or None, "why": chosen.why}
        # "flagged": kept contacts from which an invalid value was dropped, so that
        # nothing read disappears silently from the JSON either
        report["flagged"] = [f.to_json() for f in flagged]
        report["columns"] = [c.to_json() for c in columns]
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    out = console()
    for report_line in columns:
        if report_line.ignored or report_line.nameless:
            out.print(Text(report_line.text()))
    show(result, flagged, out, language)
    if rejects is not None:
        click.echo(f"rejected entries written to {rejects}")
    click.echo(counts_line(result))


def counts_line(result: ImportResult) -> str:
    return (
        f"read {result.read} = accepted {len(result.contacts)} + duplicate "
        f"{len(result.duplicates)} + rejected {len(result.rejected)}"
    )


def show(
    result: ImportResult,
    flagged: list[Rejected],
    console: Console,
    language: Callable[[Contact], Decision] | None = None,
) -> None:
    """Tables of accepted, merged and rejected entries (with the name each carried),
    and of contacts kept without some invalid value; with `language`, each contact's
    mail language and why.  Every value is wrapped in Text so contact data can never
    be read as rich markup."""
    from rich.text import Text

    columns = ("source", "name", "e-mail", "organisation") + (("language",) if language else ())
    accepted = _table("Accepted", *columns)
    for contact in result.contacts[:TABLE_LIMIT]:
        more = len(contact.emails) - 1
        emails = contact.email + (f" (+{more})" if more else "")
        cells = [contact.source, contact.display, emails, contact.org]
        if language is not None:
            cells.append(str(language(contact)))
        accepted.add_row(*(Text(cell) for cell in cells))
    if result.contacts:  # no empty table when every entry was rejected: the counts say 0
        console.print(accepted)
    if len(result.contacts) > TABLE_LIMIT:
        console.print(f"... and {len(result.contacts) - TABLE_LIMIT} more (--json lists all)")
    if result.duplicates:
        merged = _table("Duplicates (merged)", "source", "merged into", "shared address")
        for dup in result.duplicates:
            merged.add_row(Text(dup.source), Text(dup.kept), Text(dup.email))
        console.print(merged)
    if flagged:
        notes = _table("Accepted, invalid values dropped", "source", "name", "note")
        for item in flagged:
            notes.add_row(Text(item.source), Text(item.name or "-"), Text(item.reason))
        console.print(notes)
    if result.rejected:
        rejected = _table("Rejected", "source", "name", "reason")
        for item in result.rejected:
            rejected.add_row(Text(item.source), Text(item.name or "-"), Text(item.reason))
        console.print(rejected)


def _table(title: str, *columns: str) -> Table:
    """Long sources and addresses fold instead of being cut: the line number is at the end."""
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table
