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
  `--map COLUMN=FIELD` overrides.  Unknown columns are ignored and reported
  (`ColumnReport`: which column was used for what, which were ignored); a
  layout with no e-mail column is an error that lists the headers seen and how
  to map one, a file with a header and no records is an error too;
- a cell may hold several addresses (`normalize.split_cell`).

Source lines are physical lines (LF-terminated) where a record starts, so an
entry can be found in an editor even when earlier records span several lines.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from pathlib import Path

from ..csvsafe import write_csv
from ..errors import ConfigError, InputError
from ..models import Rejected
from ..sanitize import clean
from .fields import FIELDS
from .normalize import Entry, split_cell, unicode_encoding

_SAMPLE = 1 << 16
_HEADER_SEARCH_ROWS = 30
_DELIMITERS = (",", ";", "\t")
_LEGACY_ENCODINGS = ("cp1252", "cp932")  # what Western and Japanese exporters write

_SYNONYMS = {
    "name": {"name", "fullname", "displayname", "anzeigename", "formattedname", "fn",
             "vollständigername", "contactname", "kontaktname", "kontakt", "contact",
             "person", "personname", "ansprechpartner", "ansprechperson"},
    "file_as": {"fileas", "speichernunter", "ablegenunter"},
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
    "card_text": {"rawtext", "ocrtext", "cardtext"},  # `cards review`: what the card says
}  # fmt: skip
# "Title" is the job title in scanner and generic lists but the salutation ("Mr.")
# in Outlook, which also has "Job Title": it counts only when no better column exists.
_WEAK_TITLE = {"title", "titel"}
# Columns mailer's own files have for the reader, not for the import (rejects: source,
# reason; `cards review`: file, status, confidences, the numbers that are no phone).
_OWN_UNUSED = re.compile(
    r"source|reason|file|status|morenumbers|fax|\w*confidence|numberregion|e164guess"
)
_EMAIL = re.compile(
    r"(primary|secondary|additional|other|home|work|business|personal|private|privat)?"
    r"e?mails?\d*(address(es)?|adressen?|addr|values?|werte?)?\d*(privat|geschäftlich|home|work)?"
)
_EMAIL_TYPE = re.compile(r"e?mail(\d+)(type|label)")  # Google: "* Home" marks the primary one
_DESCRIBES = re.compile(r"(.+?)(type|typ|label|bezeichnung)")  # "Phone 1 - Label": about a column
_PHONE = re.compile(r".*(phone|telefon|mobil|handy).*|(tel|cell)\w*|\w*(tel|cell)\d*")
_NOT_PHONE = re.compile(r".*(fax|type|typ|label|pager|phonetic).*")
# What address-book exports hold besides a contact's name, addresses, organisation, title,
# phones, website and language (Google, Outlook, Apple, Thunderbird, card scanners, in
# English and German): mailer knows these columns and has no use for them, so ignoring
# them is no news.  A column matching none of these is one the user may want (--map).
_NOT_FOR_MAIL = re.compile(
    # the postal address
    r"address|adresse|street|stra(ss|ß)e|city|^(weitere[rs]?)?ort(privat|geschäftlich)?\d*$|"
    r"zip|postal|postcode|postleitzahl|^plz|pobox|postfach|country|^(weiteres?/?e?)?land|"
    r"region|^(home|work|business|other)?state\d*$|province|bundesland|kanton|location|standort|"
    # dates and private life
    r"birth|geburt|anniversary|jahrestag|gender|geschlecht|hobby|children|kinder|spouse|"
    r"partner|relation|^event|"
    # notes and grouping
    r"note|notiz|comment|kommentar|bemerkung|label|group|gruppe|categor|kategorie|stichw|"
    r"keyword|"
    # other channels mailer does not use
    r"fax|pager|isdn|telex|callback|screenname|^im\d*(service|value|type)?$|"
    # inside the organisation
    r"department|abteilung|office|büro|manager|vorgesetzte|assist|occupation|beruf|"
    r"profession|jobdescription|symbol|"
    # parts and forms of a name the salutation does not use
    r"prefix|präfix|suffix|nickname|spitzname|phonetic|phonetisch|yomi|initial|maidenname|"
    r"shortname|anrede|salutation|^title$|^titel$|displayname|angezeigtername|"
    # pictures, bookkeeping and the exporter's own fields
    r"photo|foto|picture|avatar|^bild|sensitivity|vertraulichkeit|priorit|^privat[e]?$|"
    r"mileage|reisekilometer|billing|abrechnung|directoryserver|verzeichnisserver|freebusy|"
    r"freigebucht|^(user|benutzer|custom)\d*$|^subject$|^account$|^konto$|referredby|"
    r"empfohlen|rückmeldung|organisationsnr|organizationalid|governmentid|"
    r"sozialversicherung|connectedon|^id$|created|modified|updated"
)
_WEBSITE = re.compile(r"\w*url|web(site|page|seite|adresse)?\d*(value)?|homepage\d*|internet")


def compact(header: str) -> str:
    """ "E-Mail 2: Adresse" -> "email2adresse": what header synonyms are compared on."""
    return "".join(ch for ch in header.casefold() if ch.isalnum())


def field_for(header: str) -> str | None:
    """The contact field a column header names, or None when it is not one we use.
    A number after a name counts as the same column ("Firma 2" is a company)."""
    key = compact(header)
    for name, synonyms in _SYNONYMS.items():
        if key in synonyms or key.rstrip("0123456789") in synonyms:
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
class ColumnReport:
    """How a CSV file's columns were read: (header, field) per column used, and the
    non-empty headers ignored, so that nothing is dropped without a word."""

    source: str
    used: tuple[tuple[str, str], ...]
    ignored: tuple[str, ...]

    @property
    def unknown(self) -> tuple[str, ...]:
        """The ignored columns mailer does not know: the ones the user may want to --map
        (an address, birthday or notes column of an export is known and of no use)."""
        return tuple(h for h in self.ignored if not _NOT_FOR_MAIL.search(compact(h)))

    @property
    def nameless(self) -> bool:
        """No column names the contact: every entry will be known by its address only."""
        return not {"name", "given", "family", "file_as", "org"} & {f for _h, f in self.used}

    def text(self, limit: int = 12, *, unknown_only: bool = False) -> str:
        """The report in one line; `unknown_only` leaves out the ignored columns mailer
        knows it has no use for."""
        used = ", ".join(f"{header!r} -> {name}" for header, name in self.used)
        line = f"{self.source}: columns used: {used}"
        ignored = self.unknown if unknown_only else self.ignored
        if ignored:
            shown = ", ".join(repr(h) for h in ignored[:limit])
            more = len(ignored) - limit
            line += f"; ignored: {shown}" + (f" and {more} more" if more > 0 else "")
            example = ignored[0].replace("'", "")
            line += f". To use one, add e.g. --map '{example}=FIELD' ({', '.join(FIELDS)})"
        return line + "."

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "used": [{"column": header, "field": name} for header, name in self.used],
            "ignored": list(self.ignored),
        }


Columns = Callable[[ColumnReport], None]


@dataclass(frozen=True, slots=True)
class Layout:
    """Which column indexes hold which field, for one header row."""

    headers: tuple[str, ...]
    emails: tuple[int, ...] = ()
    email_types: Mapping[int, int] = field(default_factory=dict)  # value column -> type column
    phones: tuple[int, ...] = ()
    single: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # first non-empty wins
    helpers: tuple[int, ...] = ()  # describe another column ("Phone 1 - Label"), not a contact

    @classmethod
    def of(cls, headers: Sequence[str], mapping: Mapping[str, str]) -> Layout:
        columns: dict[str, list[int]] = {}
        weak_title: list[int] = []
        types: dict[str, int] = {}
        helpers: list[int] = []
        for index, header in enumerate(headers):
            key = compact(header)
            if match := _EMAIL_TYPE.fullmatch(key):
                types[match.group(1)] = index
            if (about := _DESCRIBES.fullmatch(key)) and field_for(about.group(1)) is not None:
                helpers.append(index)
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
            helpers=tuple(helpers),
        )

    @property
    def known(self) -> int:
        return len(self.emails) + len(self.phones) + sum(len(c) for c in self.single.values())

    def report(self, source: str) -> ColumnReport:
        names = {i: "email" for i in self.emails} | {i: "phone" for i in self.phones}
        for name, indexes in self.single.items():
            names.update(dict.fromkeys(indexes, name))
        used = tuple((clean(self.headers[i]), names[i]) for i in sorted(names))
        ignored = tuple(
            clean(header)
            for i, header in enumerate(self.headers)
            if header.strip()
            and i not in names
            and i not in self.helpers
            and not _OWN_UNUSED.fullmatch(compact(header))
        )
        return ColumnReport(source, used, ignored)

    def entry(self, row: Sequence[str], source: str) -> Entry:
        def cell(index: int) -> str:
            return row[index].strip() if index < len(row) else ""

        def first(name: str) -> str:
            return next((v for v in map(cell, self.single.get(name, ())) if v), "")

        preferred: list[str] = []
        others: list[str] = []
        for index in self.emails:
            marked = index in self.email_types and cell(self.email_types[index]).startswith("*")
            (preferred if marked else others).extend(split_cell(cell(index)))
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
            file_as=first("file_as"),
            card_text=first("card_text"),
        )


def read_csv(
    path: Path, label: str, mapping: Mapping[str, str], on_columns: Columns | None = None
) -> Iterator[Entry]:
    """One Entry per non-empty data record; source "label:LINE".  `mapping` comes
    from `check_mapping`; `on_columns` hears how the columns were read.  Raises
    InputError for a file that cannot be used at all or holds no record."""
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
        if on_columns is not None:
            on_columns(layout.report(label))
        records = 0
        with path.open(encoding=encoding, errors="replace", newline=newline) as fh:
            for entry in _records(fh, delimiter, skip, layout, label):
                records += 1
                yield entry
    except OSError as err:
        raise InputError(f"{label}: cannot read the file ({err.strerror or err}).") from None
    if not records:
        raise InputError(
            f"no contacts in {label}: the file has a header row ({len(layout.headers)} "
            f"columns) but no records below it."
        )


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
        if any(field == "email" for field in mapping.values()):  # a --map that matched nothing
            raise InputError(
                f"{label}: the column that --map names for email is not in this file. "
                f"Columns seen: {seen}. Spell it as in the header row, e.g. --map 'Mail=email'."
            )
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
    import charset_normalizer  # the last resort, so a UTF-8 file never waits for its import

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
