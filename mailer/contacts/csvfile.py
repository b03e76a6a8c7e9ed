"""Contact CSV files -> `Entry` records, streamed row by row with the `csv` module.

What is detected, from the first 64 KB (the rest of the file is never held):
- the encoding: BOM (UTF-8, UTF-16, UTF-32), UTF-16 without BOM, UTF-8 (checked
  over the whole file, chunk by chunk, so a late Latin-1 byte cannot surprise
  us half-way), else a legacy code page (see `_legacy_encoding`);
- the line end: LF (with or without CR), or bare CR for classic Mac files;
  a bare CR or LF inside a quoted field is data, not a new line;
- the delimiter (",", ";" or tab) and the header row, which may follow
  preamble lines (LinkedIn's Connections.csv starts with notes): the row,
  delimiter by delimiter, whose cells name an e-mail column, else the one
  naming most known columns;
- which column is which: header synonyms in English and German for Google
  (both generations), Outlook (English and German), Thunderbird, LinkedIn,
  card scanners (CamCard, ABBYY, generic Name/Company/Title/Email/Mobile/Web),
  German Excel lists, mailer's own rejects and card-review files;
  `--map COLUMN=FIELD` overrides.  Unknown columns are ignored; a layout with
  no e-mail column is an error that lists the headers seen and how to map one.

Source lines are physical lines (LF-terminated) where a record starts, so an
entry can be found in an editor even when earlier records span several lines.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from pathlib import Path

import charset_normalizer

from ..csvsafe import write_csv
from ..errors import ConfigError, InputError
from ..models import Rejected
from .fields import FIELDS
from .normalize import Entry, unicode_encoding

_SAMPLE = 1 << 16
_HEADER_SEARCH_ROWS = 30
_DELIMITERS = (",", ";", "\t")
_LEGACY_ENCODINGS = ("cp1252", "cp932")  # what Western and Japanese exporters write

_SYNONYMS = {
    "name": {"name", "fullname", "displayname", "anzeigename", "formattedname", "fn",
             "vollständigername", "contactname", "kontaktname", "kontakt", "contact"},
    "given": {"firstname", "givenname", "vorname", "first", "given", "forename", "rufname"},
    "middle": {"middlename", "additionalname", "weiterevornamen", "middle", "zweitervorname"},
    "family": {"lastname", "familyname", "nachname", "surname", "last", "family", "zuname",
               "familienname"},
    "org": {"company", "organization", "organisation", "org", "firma", "unternehmen",
            "companyname", "organizationname", "organization1name", "organisationname",
            "firmenname", "employer", "arbeitgeber"},
    "title": {"jobtitle", "position", "organizationtitle", "organization1title", "function",
              "funktion", "berufsbezeichnung", "role", "rolle", "jobposition"},
    "lang": {"language", "sprache", "lang", "preferredlanguage", "bevorzugtesprache", "locale"},
}  # fmt: skip
# "Title" is the job title in scanner and generic lists but the salutation ("Mr.")
# in Outlook, which also has "Job Title": it counts only when no better column exists.
_WEAK_TITLE = {"title", "titel"}
_EMAIL = re.compile(
    r"(primary|secondary|additional|other|home|work|business|personal|private|privat)?"
    r"e?mail\d*(address|adresse|addr|value|wert)?\d*(privat|geschäftlich|home|work)?"
)
_EMAIL_TYPE = re.compile(r"e?mail(\d+)(type|label)")  # Google: "* Home" marks the primary one
_PHONE = re.compile(r".*(phone|telefon|mobil|handy).*|(tel|cell)\w*|\w*(tel|cell)\d*")
_NOT_PHONE = re.compile(r".*(fax|type|typ|label|pager).*")
_WEBSITE = re.compile(r"\w*url|web(site|page|seite|adresse)?\d*(value)?|homepage\d*|internet")
_GOOGLE_SEPARATOR = " ::: "  # Google joins several values in one cell with it


def compact(header: str) -> str:
    """ "E-Mail 2: Adresse" -> "email2adresse": what header synonyms are compared on."""
    return "".join(ch for ch in header.casefold() if ch.isalnum())


def field_for(header: str) -> str | None:
    """The contact field a column header names, or None when it is not one we use."""
    key = compact(header)
    for name, synonyms in _SYNONYMS.items():
        if key in synonyms:
            return name
    if key in _WEAK_TITLE:
        return "title"
    if _EMAIL.fullmatch(key):
        return "email"
    if _PHONE.fullmatch(key) and not _NOT_PHONE.fullmatch(key):
        return "phone"
    if _WEBSITE.fullmatch(key):
        return "website"
    return None


def check_mapping(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """`--map` pairs as {compacted column: field}; fields may be given by any synonym
    ("Firma", "company" -> org).  Raises ConfigError for a field we do not know."""
    checked: dict[str, str] = {}
    for column, wanted in (mapping or {}).items():
        name = wanted.strip().lower()
        target = name if name in FIELDS else field_for(wanted)
        if target is None:
            raise ConfigError(
                f"--map {column}={wanted}: unknown field {wanted!r}; use one of "
                f"{', '.join(FIELDS)}."
            )
        checked[compact(column)] = target
    return checked


@dataclass(frozen=True, slots=True)
class Layout:
    """Which column indexes hold which field, for one header row."""

    headers: tuple[str, ...]
    emails: tuple[int, ...] = ()
    email_types: Mapping[int, int] = field(default_factory=dict)  # value column -> type column
    phones: tuple[int, ...] = ()
    single: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # first non-empty wins

    @classmethod
    def of(cls, headers: Sequence[str], mapping: Mapping[str, str]) -> Layout:
        columns: dict[str, list[int]] = {}
        weak_title: list[int] = []
        types: dict[str, int] = {}
        for index, header in enumerate(headers):
            key = compact(header)
            if match := _EMAIL_TYPE.fullmatch(key):
                types[match.group(1)] = index
            target = mapping.get(key) or field_for(header)
            if target == "title" and key in _WEAK_TITLE and key not in mapping:
                weak_title.append(index)
            elif target is not None and target != "ignore":
                columns.setdefault(target, []).append(index)
        if weak_title and "title" not in columns:
            columns["title"] = weak_title
        emails = tuple(columns.pop("email", ()))
        email_types = {}
        for index in emails:
            number = re.search(r"\d+", compact(headers[index]))
            if number and number.group() in types:
                email_types[index] = types[number.group()]
        return cls(
            headers=tuple(headers),
            emails=emails,
            email_types=email_types,
            phones=tuple(columns.pop("phone", ())),
            single={name: tuple(indexes) for name, indexes in columns.items()},
        )

    @property
    def known(self) -> int:
        return len(self.emails) + len(self.phones) + sum(len(c) for c in self.single.values())

    def entry(self, row: Sequence[str], source: str) -> Entry:
        def cell(index: int) -> str:
            return row[index].strip() if index < len(row) else ""

        def first(name: str) -> str:
            return next((v for v in map(cell, self.single.get(name, ())) if v), "")

        preferred: list[str] = []
        others: list[str] = []
        for index in self.emails:
            marked = index in self.email_types and cell(self.email_types[index]).startswith("*")
            values = [v.strip() for v in cell(index).split(_GOOGLE_SEPARATOR) if v.strip()]
            (preferred if marked else others).extend(values)
        given, middle, family = first("given"), first("middle"), first("family")
        return Entry(
            source=source,
            name=first("name") or " ".join(p for p in (given, middle, family) if p),
            given=given,
            family=family,
            emails=(*preferred, *others),
            org=first("org"),
            title=first("title"),
            phones=tuple(v for v in map(cell, self.phones) if v),
            website=first("website"),
            lang=first("lang"),
        )


def read_csv(path: Path, label: str, mapping: Mapping[str, str]) -> Iterator[Entry]:
    """One Entry per non-empty data record; source "label:LINE".  `mapping` comes
    from `check_mapping`.  Raises InputError for a file that cannot be used at all."""
    try:
        encoding = _encoding(path)
        with path.open(encoding=encoding, errors="replace", newline="") as fh:
            sample = fh.read(_SAMPLE)
        if "\x00" in sample.split("\n", 1)[0]:  # images, zip files: NUL in the "header"
            raise InputError(
                f"{label}: this is not a text file, so neither CSV nor vCard. Export the "
                f"contacts as CSV or vCard (.vcf) and import that file."
            )
        newline = "\r" if "\r" in sample and "\n" not in sample else "\n"
        delimiter, skip, layout = _find_layout(sample, newline, mapping, label)
        with path.open(encoding=encoding, errors="replace", newline=newline) as fh:
            yield from _records(fh, delimiter, skip, layout, label)
    except OSError as err:
        raise InputError(f"{label}: cannot read the file ({err.strerror or err}).") from None


def _records(
    lines: Iterable[str], delimiter: str, skip: int, layout: Layout, label: str
) -> Iterator[Entry]:
    reader = csv.reader(lines, delimiter=delimiter)
    for _ in _rows(reader, skip + 1):  # preamble and header
        pass
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield Entry(source=f"{label}:{start}", problem=f"unreadable CSV record ({err})")
            continue
        if any(cell.strip() for cell in row):
            yield layout.entry(row, f"{label}:{start}")


def _rows(reader: Iterator[list[str]], limit: int) -> Iterator[list[str]]:
    """Up to `limit` rows, stopping early at a row the csv module cannot parse
    (the sample may end inside a quoted field)."""
    for _ in range(limit):
        try:
            yield next(reader)
        except (StopIteration, csv.Error):
            return


def _find_layout(
    sample: str, newline: str, mapping: Mapping[str, str], label: str
) -> tuple[str, int, Layout]:
    """(delimiter, rows before the header, layout) or an InputError saying what to do."""
    best: tuple[tuple[bool, int, int], str, int, Layout] | None = None
    for delimiter in _DELIMITERS:
        reader = csv.reader(io.StringIO(sample, newline=newline), delimiter=delimiter)
        for index, row in enumerate(_rows(reader, _HEADER_SEARCH_ROWS)):
            if not any(cell.strip() for cell in row):
                continue
            layout = Layout.of(row, mapping)
            score = (bool(layout.emails), layout.known, len(row))
            if best is None or score > best[0]:
                best = (score, delimiter, index, layout)
            if layout.emails:
                break
    if best is None:
        raise InputError(f"{label}: the file is empty; there are no contacts to read.")
    _score, delimiter, index, layout = best
    if not layout.emails:
        seen = ", ".join(repr(h.strip()) for h in layout.headers if h.strip())[:600]
        raise InputError(
            f"{label}: no e-mail column found. Columns seen: {seen}. Name the column that "
            f"holds the addresses with --map, e.g. --map 'Mail=email' (fields: "
            f"{', '.join(FIELDS)}), or export the contacts as vCard."
        )
    return delimiter, index, layout


def _encoding(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(_SAMPLE)
        announced = unicode_encoding(head)
        if announced:
            return announced
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            for chunk in chain([head], iter(partial(fh.read, _SAMPLE), b"")):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return _legacy_encoding(head)
    return "utf-8"


def _legacy_encoding(sample: bytes) -> str:
    """The code page of a non-UTF-8 file.  charset_normalizer mis-ranks short
    exports (it calls a 500-byte Shift_JIS file cp1252 or cp949), so the code
    pages contact exporters actually write are tried first and the one that
    decodes the sample into the most letters wins; charset_normalizer decides
    only when neither decodes at all."""
    scored: list[tuple[float, int, str]] = []
    for rank, encoding in enumerate(_LEGACY_ENCODINGS):
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(sample)
        except UnicodeDecodeError:
            continue
        foreign = [ch for ch in text if not ch.isascii()]
        letters = sum(ch.isalpha() for ch in foreign) / len(foreign) if foreign else 1.0
        scored.append((letters, -rank, encoding))
    if scored:
        return max(scored)[2]
    guess = charset_normalizer.from_bytes(sample).best()
    return guess.encoding if guess else "latin-1"


_REJECT_COLUMNS = ("name", "given", "family", "email", "org", "title", "phone", "website", "lang")


def write_rejects(path: Path, rejected: Iterable[Rejected]) -> None:
    """Write rejected entries as a CSV the user can fix and import again: source and
    reason (ignored on import), then the fields read under names `read_csv` maps."""
    rows = [{"source": r.source, "reason": r.reason, **r.fields} for r in rejected]
    extra = sorted({k for row in rows for k in row} - {"source", "reason", *_REJECT_COLUMNS},
                   key=lambda k: (k.rstrip("0123456789"), len(k), k))  # fmt: skip
    columns = ["source", "reason", *_REJECT_COLUMNS, *extra]
    try:
        write_csv(path, columns, rows)
    except OSError as err:
        reason = err.strerror or err
        raise ConfigError(f"--rejects {path}: cannot write the file ({reason}).") from None
