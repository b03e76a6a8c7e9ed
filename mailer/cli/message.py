"""Commands: `card` (print the sender's vCard) and `preview` (the dry run)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..campaign.plan import Status
from ..compose.profile import VCARD_VERSIONS, load_profile
from ..sanitize import clean
from .app import (
    composer_for,
    console,
    handle_errors,
    main,
    map_option,
    message_options,
    parse_mappings,
    paths_argument,
    profile_here,
    profile_option,
)

if TYPE_CHECKING:
    from ..campaign.preview import PreviewSummary


@main.command()
@profile_option()
@click.option(
    "--version",
    "version",
    type=click.Choice(VCARD_VERSIONS),
    default="3.0",
    show_default=True,
    help="vCard version: 3.0 is what most address books import.",
)
@handle_errors
def card(profile_path: Path | None, version: str) -> None:
    """Print your vCard, as the mail attaches it."""
    from ..compose.sender_vcard import sender_vcard

    click.echo(sender_vcard(load_profile(profile_here(profile_path)), version), nl=False)


@main.command()
@paths_argument
@profile_option()
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the .eml files and index.html.",
)
@message_options
@click.option("--campaign", "campaign_name",
              help="Campaign a send would fill [default: the first contacts file's name].")
@click.option("--again", is_flag=True, help="Include people mailed in an earlier campaign.")
@map_option
@handle_errors
def preview(
    paths: tuple[Path, ...],
    profile_path: Path | None,
    out: Path,
    templates: Path | None,
    lang: str | None,
    campaign_name: str | None,
    again: bool,
    mappings: tuple[str, ...],
) -> None:
    """Write the mails a send would send as .eml files plus index.html; send nothing."""
    from ..campaign.preview import write_preview
    from .send import campaigns_service

    region, composer = composer_for(profile_path, templates, lang)
    campaign = campaign_name or clean(paths[0].stem)  # the campaign a send would fill
    with campaigns_service().plan(paths, composer, campaign=campaign,
                                  mapping=parse_mappings(mappings), region=region,
                                  again=again) as items:
        summary = write_preview(items, out)
    _print_summary(summary, campaign)


def _print_summary(summary: PreviewSummary, campaign: str) -> None:
    from rich.table import Table
    from rich.text import Text

    out = console()
    table = Table(title=f"Preview of campaign {campaign!r}: nothing was sent")
    for column in ("#", "status", "address", "name", "language", "from", "note"):
        table.add_column(column, overflow="fold", no_wrap=column in ("status", "address"))
    for number, item in enumerate(summary.items, 1):
        language = f"{item.draft.lang}: {item.draft.lang_why}" if item.draft else ""
        cells = (item.email or "-", item.name, language, item.source, item.reason)
        # Text(), not str: a "[bold]" in a contact's field is data, not rich markup
        table.add_row(str(number), item.status.value, *(Text(cell) for cell in cells))
    out.print(table)
    out.print(Text(summary.line()))
    out.print(f"A send would mail {summary.counts.get(Status.NEW, 0)} new message(s) in "
              f"campaign {campaign!r}; {summary.messages} .eml file(s) written, nothing sent.")
    out.print(f"Open {summary.index}", markup=False)
