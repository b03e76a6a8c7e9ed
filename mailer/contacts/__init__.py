"""Contact import: vCard and CSV files, card images, folders of them.

    load_contacts(paths, mapping=None, region="DE") -> ImportResult   (deduplicated)
    iter_contacts(paths, mapping=None, region="DE") -> Contact | Rejected, streaming

Each path is read by the reader for its kind (`vcard.py`, `csvfile.py`, and
`scans.py` for card photos and scans); `normalize.py` turns what was read into a
validated, sanitised `Contact` or a `Rejected` with the reason.  A folder
stands for the supported files directly inside it (sorted by name, not
recursive).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..models import Contact, Duplicate, ImportResult, Rejected
from .kinds import CARD_SUFFIXES, CSV_SUFFIXES, SPREADSHEET_SUFFIXES, TEXT_SUFFIXES, VCARD_SUFFIXES

if TYPE_CHECKING:
    from .csvfile import Columns
    from .normalize import Entry, Flag

__all__ = ["expand_folders", "iter_contacts", "load_contacts"]


def load_contacts(
    paths: Sequence[Path],
    *,
    mapping: Mapping[str, str] | None = None,
    region: str = "DE",
    on_flag: Flag | None = None,
    on_columns: Columns | None = None,
) -> ImportResult:
    """Every entry of every file, with contacts sharing an address merged (`dedupe.py`)."""
    from .dedupe import merged

    result = ImportResult()
    items = iter_contacts(
        paths, mapping=mapping, region=region, on_flag=on_flag, on_columns=on_columns
    )
    for item in merged(items):
        if isinstance(item, Contact):
            result.contacts.append(item)
        elif isinstance(item, Duplicate):
            result.duplicates.append(item)
        else:
            result.rejected.append(item)
    return result


def iter_contacts(
    paths: Sequence[Path],
    *,
    mapping: Mapping[str, str] | None = None,
    region: str = "DE",
    on_flag: Flag | None = None,
    on_columns: Columns | None = None,
) -> Iterator[Contact | Rejected]:
    """Validated, sanitised contacts and rejected entries in file order, not deduplicated.
    `on_flag` hears of contacts kept although invalid e-mail values were dropped,
    `on_columns` how each CSV file's columns were read.
    Raises InputError for a file that cannot be used at all (before or while streaming)."""
    # The readers load when contacts are read, not when the package is imported (the
    # command line imports `contacts.fields` for its help), and the OCR engine's module
    # only for card images: see docs/benchmarks.md.
    from . import normalize
    from .csvfile import check_mapping

    columns = check_mapping(mapping)
    phone_region = normalize.check_region(region)
    supported = CARD_SUFFIXES | VCARD_SUFFIXES | CSV_SUFFIXES | TEXT_SUFFIXES
    files = expand_folders(paths, supported, "contacts files")
    for is_image, group in groupby(files, key=lambda f: f.suffix.lower() in CARD_SUFFIXES):
        if is_image:
            from .scans import iter_cards

            for item in iter_cards(list(group), region=phone_region):
                yield normalize.sanitise(item)
            continue
        for path in group:
            for entry in _entries(path, columns, on_columns):
                yield normalize.check(entry, phone_region, on_flag)


def expand_folders(paths: Sequence[Path], suffixes: frozenset[str], what: str) -> list[Path]:
    """The paths, each folder replaced by the files directly inside it whose suffix is
    one of `suffixes` (sorted by name; hidden files and sub-folders are not read).
    A folder without any is an InputError naming `what` was looked for."""
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(
            p for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
        )  # fmt: skip
        if not found:
            raise InputError(
                f"{path}: no {what} in this folder (looked for "
                f"{', '.join(sorted(suffixes))}; sub-folders are not searched)."
            )
        files.extend(found)
    return files


def _entries(path: Path, columns: Mapping[str, str], on_columns: Columns | None) -> Iterator[Entry]:
    from .csvfile import read_csv
    from .vcard import read_vcards

    label = str(path)
    if not path.exists():
        raise InputError(f"{label}: no such file.")
    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        raise InputError(
            f"{label}: spreadsheet files cannot be read directly; save the sheet as CSV "
            f"(UTF-8) in your spreadsheet program and import that file."
        )
    if _is_vcard(path):
        return read_vcards(path, label)
    return read_csv(path, label, columns, on_columns)


def _is_vcard(path: Path) -> bool:
    """By suffix; other files (.txt, no suffix) by whether a card begins near the top."""
    suffix = path.suffix.lower()
    if suffix in VCARD_SUFFIXES or suffix in CSV_SUFFIXES:
        return suffix in VCARD_SUFFIXES
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as err:
        raise InputError(f"{path}: cannot read the file ({err.strerror or err}).") from None
    from .normalize import unicode_encoding

    codec = unicode_encoding(head) or "latin-1"
    text = head.decode(codec.replace("-sig", ""), errors="replace").replace("\x00", "")
    return "BEGIN:VCARD" in text.upper()
