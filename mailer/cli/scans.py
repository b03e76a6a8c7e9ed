"""Commands: mailer cards review PATH... --out reviewed.csv - read card photos for review."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from .app import handle_errors, main, paths_argument


@main.group()
def cards() -> None:
    """Business cards photographed or scanned: read them, review them, import the result."""


@cards.command()
@paths_argument
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="CSV to write: one row per card, every field with its confidence and the raw text.",
)
@click.option(
    "--html",
    "page",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Review page to write: each card's photo beside its editable fields, with a button "
    "that saves the corrected CSV.  [default: the CSV's name with .html]",
)
@click.option(
    "--region",
    default="DE",
    show_default=True,
    help="Country for phone numbers printed without +country code, when the card itself "
    "names none (its address, +codes or web site).",
)
@click.option(
    "--duplex",
    is_flag=True,
    help="The scans are front, back, front, back ... (a sheet-fed scanner's duplex PDF): "
    "each back side is merged into the card before it.",
)
@handle_errors
def review(
    paths: tuple[Path, ...], out: Path, page: Path | None, region: str, duplex: bool
) -> None:
    """Read card images and PDF scans (or folders of them) into a CSV, and a page to check
    and correct them in a browser (or correct the CSV in a spreadsheet);
    `mailer contacts/preview/send reviewed.csv` then uses your version."""
    from ..contacts.normalize import check_region
    from ..contacts.review_page import write_page
    from ..contacts.scans import read_cards, review_row, write_review

    files = card_files(paths)
    phone_region = check_region(region)
    backs: list[str] = []  # the front's source for a merged back, "" for a blank one
    cards = read_cards(
        files, region=phone_region, duplex=duplex, on_back=lambda _, front: backs.append(front)
    )
    rows = [review_row(*card) for card in cards]
    write_review(out, rows)
    page = page if page is not None else out.with_suffix(".html")
    write_page(page, rows, out.name)
    statuses = [row["status"] for row in rows]
    ready, flagged = statuses.count("ok"), statuses.count("needs review")
    click.echo(
        f"{len(rows)} cards: {ready} read with confidence, {flagged} need review, "
        f"{len(rows) - ready - flagged} without a readable e-mail -> {out}",
        err=True,
    )
    if backs:
        merged = sum(1 for front in backs if front)
        click.echo(
            f"{len(backs)} back sides: {merged} merged into their front, "
            f"{len(backs) - merged} without a name, number or address left out.",
            err=True,
        )
    click.echo(
        f"Open {page} in a browser: correct the cards (yellow: low confidence, red: the QR "
        "code and the print differ), press 'Save corrected CSV', then use the saved file "
        "with `mailer preview` / `mailer send`.  (Or correct the CSV in a spreadsheet.)",
        err=True,
    )


def card_files(paths: tuple[Path, ...]) -> list[Path]:
    """The card images/PDFs named, and those directly inside the folders named."""
    from ..contacts import expand_folders
    from ..contacts.kinds import CARD_SUFFIXES

    files = expand_folders(paths, CARD_SUFFIXES, "card images or PDF scans")
    for path in files:
        if path.suffix.lower() not in CARD_SUFFIXES:
            raise InputError(
                f"{path}: not a card image or PDF scan (expected {', '.join(CARD_SUFFIXES)})."
            )
    return files

