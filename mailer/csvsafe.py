"""The one CSV writer: every CSV mailer writes (`--rejects`, `cards review`, the
problems report) goes through `write_csv`.

Cells that a spreadsheet would run as a formula (leading `=`, `+`, `-`, `@`,
tab or CR; OWASP "CSV injection") get a leading `'`, which spreadsheets show as
text.  A phone number as mailer writes it ("+49 171 1234567") is left alone:
it is what the importer reads back, and no spreadsheet evaluates it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .files import private_file

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PHONE = re.compile(r"\+[\d ]+")

Cell = str | int | float | None


def safe_cell(value: Cell) -> str:
    """The text of one cell, with a formula-looking start neutralised."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _PHONE.fullmatch(text):
        return "'" + text
    return text


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Cell]]) -> None:
    """Write a header and rows (missing keys are empty cells), UTF-8 with a BOM so
    spreadsheet programs read it as UTF-8; whole or not at all (a temporary file
    renamed into place, a symlink at `path` replaced, never written through),
    readable by the owner only.  Raises OSError."""
    with private_file(path, encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([safe_cell(c) for c in columns])
        for row in rows:
            writer.writerow([safe_cell(row.get(c)) for c in columns])
