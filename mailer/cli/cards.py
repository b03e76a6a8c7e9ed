"""Commands: mailer cards review PATH... --out reviewed.csv - read card photos for review."""

from __future__ import annotations

import csv
import os
import re
import tempfile
from pathlib import Path

import click

from ..contacts.cards import CARD_SUFFIXES, REVIEW_COLUMNS, read_cards, review_row
from ..contacts.normalize import check_region
from ..contacts.review_page import write_page
from ..errors import InputError
from .app import handle_errors, main, paths_argument

_PHONE = re.compile(r"\+[\d ]+")  # how review_row writes numbers: not a formula


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
    help="Country for phone numbers printed without +country code.",
)
@handle_errors
def review(paths: tuple[Path, ...], out: Path, page: Path | None, region: str) -> None:
    """Read card images and PDF scans (or folders of them) into a CSV, and a page to check
    and correct them in a browser (or correct the CSV in a spreadsheet);
    `mailer contacts/preview/send reviewed.csv` then uses your version."""
    files = card_files(paths)
    phone_region = check_region(region)
    rows = [review_row(*card) for card in read_cards(files, region=phone_region)]
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
    click.echo(
        f"Open {page} in a browser: correct the cards (yellow: low confidence, red: the QR "
        "code and the print differ), press 'Save corrected CSV', then use the saved file "
        "with `mailer preview` / `mailer send`.  (Or correct the CSV in a spreadsheet.)",
        err=True,
    )


def card_files(paths: tuple[Path, ...]) -> list[Path]:
    """The card images/PDFs named, and those directly inside the folders named."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in CARD_SUFFIXES
            )
            if not found:
                raise InputError(f"{path}: no card images or PDF scans in this folder.")
            files.extend(found)
        elif path.suffix.lower() in CARD_SUFFIXES:
            files.append(path)
        else:
            raise InputError(
                f"{path}: not a card image or PDF scan (expected {', '.join(CARD_SUFFIXES)})."
            )
    return files


def write_review(out: Path, rows: list[dict[str, str]]) -> None:
    """Write the CSV whole or not at all (a temporary file renamed into place), with a BOM
    so that spreadsheet programs open it as UTF-8."""
    target = out.resolve()
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8-sig", newline="", dir=target.parent, delete=False, suffix=".tmp"
        ) as handle:
            writer = csv.DictWriter(handle, fieldnames=REVIEW_COLUMNS)
            writer.writeheader()
            writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
        os.replace(handle.name, target)
    except OSError as err:
        raise InputError(f"Cannot write {out}: {err.strerror}") from None


def _cell(value: str) -> str:
    """Keep OCR text from running as a spreadsheet formula (a leading ' shows it as text)."""
    if value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PHONE.fullmatch(value):
        return "'" + value
    return value
