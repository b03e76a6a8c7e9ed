"""vCard 2.1 / 3.0 / 4.0 files -> `Entry` records, streamed one card at a time.

vobject does the parsing: `parseLine` splits each content line into group,
name, parameters and value, `stringToTextValues` splits structured values and
undoes backslash escapes.  vobject's component reader (`readComponents`) is
not used, because real exports break it in ways that can only be repaired on
the raw bytes of a card *before* anything is decoded (it unescapes before it
decodes charsets, needs one text encoding per file, and stops at the first
broken card).  Every such repair is in this module, each with its reason:

file level (`_utf8_chunks`, `_lines`)
  - UTF-8 BOM, UTF-16/32 with BOM, UTF-16BE *without* BOM (Apple): transcoded
    to UTF-8 bytes as the file streams in;
  - line ends CRLF, LF, CR CR LF (iOS 5) or bare CR only (classic Mac, Palm):
    lines are split on LF, or on CR when the file has no LF at all, so a stray
    CR inside a value (Thunderbird 4.0 X-CUSTOM3) does not break a card;
card level (`_cards`)
  - lower-case "begin:vcard", blank lines and stray text between cards
    ("ENCODING:UTF-8" before the first card, Mac);
  - a 2.1 AGENT card embedded on the following lines is skipped as a unit; a
    one-line 3.0 AGENT:BEGIN:VCARD\\n... value is just a value;
  - a card that never reaches END:VCARD is reported, not merged into the next;
  - a card nested in a card (not as a 2.1 AGENT) is reported as that;
line level (`_logical_lines`)
  - folding with space or tab, unfolded *as bytes* so a fold inside a
    multi-byte UTF-8 sequence (ownCloud folds at 75 octets) decodes whole;
  - quoted-printable soft line breaks, also when the continuation lines are
    not indented (Outlook, Android) and when an empty line follows (Android);
  - PHOTO/KEY/SOUND and other unused properties, their base64 continuation
    lines and lines without a colon ("21255 Bad Vilbel" under a broken LABEL)
    are skipped without being decoded: photos cost nothing;
value level (`_value`)
  - ENCODING=QUOTED-PRINTABLE (also bare 2.1 "QUOTED-PRINTABLE") decoded on bytes;
  - CHARSET= (Shift_JIS, ISO-8859-1, windows-1252, ...) decoded *before*
    backslash unescaping: a Shift_JIS trail byte 0x5C is not an escape;
  - no or a wrong CHARSET: UTF-8, else windows-1252, else Latin-1 (raw Latin-1
    in 3.0 cards, raw UTF-8 in 2.1 cards, The Bat!'s undeclared 8-bit QP);
  - 2.1 bare type parameters (EMAIL;PREF;INTERNET), 3.0 TYPE=pref, 4.0 PREF=n
    (lowest wins, RFC 6350 5.3): the preferred address becomes the primary one
    whatever the order of the lines; all are kept.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import chain
from pathlib import Path
from typing import BinaryIO

from vobject.base import ParseError, parseLine
from vobject.icalendar import stringToTextValues

from ..errors import InputError
from .normalize import Entry, unicode_encoding

_CHUNK = 1 << 16
_WANTED = frozenset(
    {b"FN", b"N", b"EMAIL", b"ORG", b"TITLE", b"TEL", b"URL", b"LANG", b"KIND", b"X-ABSHOWAS"}
)
_COMPANY_KINDS = frozenset({"org", "group", "location"})  # RFC 6350 6.1.4: no person to greet
_UNRANKED = 101  # RFC 6350 5.3: PREF is 1..100, and a value without one is least preferred
_ESCAPABLE = '\\;,:nN"'  # vobject's list plus ":" (Apple writes "http\://")
_CHARSET_ALIASES = {"shift_jis": "cp932", "sjis": "cp932", "x-sjis": "cp932"}  # phones write cp932

_INCOMPLETE = "incomplete card: no END:VCARD before the next card or the end of the file"
_NESTED = "a card nested inside this card (BEGIN:VCARD at line {}): a vCard cannot hold another"
# No name, address or title is this long: a longer property line rejects its card, and
# no line is held beyond it (a 200 MB one-line FN costs 64 KB, not 200 MB).
MAX_LINE = 64 * 1024
_TOO_LONG = f"a property line is longer than {MAX_LINE // 1024} KB"
# vobject's content-line grammar with possessive quantifiers, so it runs in linear time.
# vobject's own regex backtracks exponentially on a line it does *not* match
# ("FN;X=a=a=a...", 40 pairs: days), so parseLine only ever sees lines this matches.
_NAME = r"[a-zA-Z0-9_-]+"
_PARAM_VALUE = r'(?:"[^"]*+"|[^";:,]*+)'
_CONTENT_LINE = re.compile(rf"(?:{_NAME}\.)?{_NAME};?(?:;{_NAME}(?:[=,]{_PARAM_VALUE})*+)*+:")

Params = dict[str, list[str]]


def read_vcards(path: Path, label: str) -> Iterator[Entry]:
    """One Entry per top-level card, in file order; source "label:LINE of BEGIN:VCARD".
    Raises InputError when the file cannot be read or holds no card at all."""
    try:
        with path.open("rb") as fh:
            yield from read_vcard_stream(fh, label)
    except OSError as err:
        raise InputError(f"{label}: cannot read the file ({err.strerror or err}).") from None


def read_vcard_stream(fh: BinaryIO, label: str) -> Iterator[Entry]:
    """`read_vcards` over an open binary stream (a file, or a QR code's payload)."""
    cards = 0
    for start, body, problem in _cards(_lines(_utf8_chunks(fh))):
        cards += 1
        yield _entry(f"{label}:{start}", body, problem)
    if not cards:
        raise InputError(
            f"{label}: no vCard found (no BEGIN:VCARD ... END:VCARD). Export the contacts "
            f"as vCard (.vcf) or CSV and try again."
        )


def _utf8_chunks(fh: BinaryIO) -> Iterator[bytes]:
    head = fh.read(_CHUNK)
    rest = iter(partial(fh.read, _CHUNK), b"")
    codec = unicode_encoding(head)
    if codec is None:
        yield head
        yield from rest
    elif codec == "utf-8-sig":
        yield head[len(codecs.BOM_UTF8) :]
        yield from rest
    else:
        decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        for chunk in chain([head], rest):
            yield decoder.decode(chunk).encode("utf-8")
        yield decoder.decode(b"", final=True).encode("utf-8")


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Physical lines without their line ends (see the module docstring); a line
    longer than MAX_LINE is cut to MAX_LINE + 1 bytes, so that it is still seen as
    too long but never held whole."""
    sep = b""
    pending: list[bytes] = []
    held = 0
    for chunk in chunks:
        if not sep:
            if not chunk:
                continue
            sep = b"\r" if b"\r" in chunk and b"\n" not in chunk else b"\n"
        *complete, tail = chunk.split(sep)
        if complete:
            complete[0] = b"".join((*pending, complete[0]))
            pending.clear()
            held = 0
            for line in complete:
                yield line[: MAX_LINE + 1].rstrip(b"\r")
        if held <= MAX_LINE:
            pending.append(tail[: MAX_LINE + 1 - held])
            held += len(pending[-1])
    last = b"".join(pending)
    if last:
        yield last.rstrip(b"\r")


def _tag(line: bytes) -> bytes:
    return line.strip().upper() if len(line) < 40 else b""


def _opens_agent(line: bytes) -> bool:
    """A 2.1 "AGENT:" line whose value is the card on the following lines."""
    return line.upper().startswith(b"AGENT") and line.rstrip()[-1:] == b":"


def _cards(lines: Iterable[bytes]) -> Iterator[tuple[int, list[bytes], str]]:
    """(line number of BEGIN:VCARD, body lines, problem or "") per top-level card.

    A BEGIN:VCARD inside a card is either a card nested in it (the outer card's
    END:VCARD follows the inner one's) or the start of the next card after one
    that lacks its END:VCARD (another BEGIN or the end of the file follows).
    The inner card is held until the next tag tells which: a nested card is
    reported as such and is no entry of its own (entries are top-level cards);
    otherwise both cards are entries, the first one incomplete."""
    body: list[bytes] | None = None
    inner: list[bytes] | None = None  # a card begun inside `body`
    start = inner_start = depth = 0  # depth > 0: inside a 2.1 AGENT card embedded in this one
    inner_closed = False
    previous = b""
    for number, line in enumerate(lines, 1):
        tag = _tag(line)
        if tag == b"BEGIN:VCARD":
            if body is not None and inner is None and _opens_agent(previous):
                depth += 1
                continue
            if body is not None and inner is None and not depth:
                inner, inner_start, inner_closed = [], number, False
                continue
            if body is not None:
                yield start, body, _INCOMPLETE
            if inner is not None:
                yield inner_start, inner, "" if inner_closed else _INCOMPLETE
            body, inner, start, depth, previous = [], None, number, 0, b""
        elif tag == b"END:VCARD" and body is not None:
            if depth:
                depth -= 1
            elif inner is not None and not inner_closed:
                inner_closed = True
            elif inner is not None:
                yield start, body, _NESTED.format(inner_start)
                body, inner = None, None
            else:
                yield start, body, ""
                body = None
        elif inner is not None and not inner_closed:
            inner.append(line)
        elif body is not None and not depth:
            body.append(line)
            if line.strip():
                previous = line
    if body is not None:
        yield start, body, _INCOMPLETE
    if inner is not None:
        yield inner_start, inner, "" if inner_closed else _INCOMPLETE


def _logical_lines(body: Iterable[bytes]) -> Iterator[bytes]:
    """Unfolded content lines of the wanted properties, still as bytes."""
    current: list[bytes] = []
    opened = wanted = qp = soft_break = False
    held = 0
    for line in body:
        if soft_break and line.strip():
            piece = line  # QP continuation: taken as is, indented or not
        elif opened and line[:1] in (b" ", b"\t"):
            piece = line[1:]
        else:
            if wanted and current:
                yield b"".join(current)
            current, held = [], 0
            opened = bool(line.strip())
            wanted = qp = soft_break = False
            if not opened:
                continue
            head = line.split(b":", 1)[0]
            name = head.split(b";", 1)[0].rsplit(b".", 1)[-1].strip().upper()
            wanted = name in _WANTED
            qp = b"QUOTED-PRINTABLE" in head.upper()
            piece = line
        soft_break = qp and piece.endswith(b"=")
        if wanted and held <= MAX_LINE:  # beyond: enough to be refused as too long
            current.append(piece[:-1] if soft_break else piece)
            held += len(current[-1])
    if wanted and current:
        yield b"".join(current)


def _parse(logical: bytes) -> tuple[str, Params, set[str], str] | None:
    """(NAME, parameters, bare 2.1 parameters, value decoded and unescaped) or None."""
    text = logical.decode("latin-1")  # lossless: charsets are decoded per value below
    if not _CONTENT_LINE.match(text):
        # A broken parameter list (Outlook's "LABEL,TYPE=HOME:") must not lose the
        # value: parse the line again with its parameters dropped.
        head, colon, value = text.partition(":")
        text = head.replace(",", ";").split(";")[0] + ":" + value
        if not colon or not _CONTENT_LINE.match(text):
            return None
    try:
        name, param_list, value, _group = parseLine(text)
    except ParseError:
        return None
    params: Params = {}
    bare: set[str] = set()
    for item in param_list:
        if len(item) == 1:
            bare.add(item[0].upper())
        else:
            params.setdefault(item[0].upper(), []).extend(
                v for values in item[1:] for v in values.split(",")
            )
    return name.upper(), params, bare, _value(value, params, bare)


def _value(value: str, params: Params, bare: set[str]) -> str:
    raw = value.encode("latin-1")
    encoding = {e.upper() for e in params.get("ENCODING", [])} | bare
    if "QUOTED-PRINTABLE" in encoding:
        raw = binascii.a2b_qp(raw)
    if raw.isascii():
        return raw.decode("ascii")
    declared = [c.strip().lower() for c in params.get("CHARSET", [])[:1]]
    for charset in (*(_CHARSET_ALIASES.get(c, c) for c in declared), "utf-8", "cp1252"):
        try:
            return raw.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("latin-1")


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    values: list[str] = stringToTextValues(text, listSeparator=None, charList=_ESCAPABLE)
    return values[0]


def _components(text: str) -> list[str]:
    """Split a structured value (N, ORG) on unescaped ";" only: commas stay text
    (Outlook writes "Company, The;Department" unescaped)."""
    return [_unescape(c) for c in stringToTextValues(text, listSeparator=";", charList=";")]


def _preference(params: Params, bare: set[str]) -> int:
    """1 (most preferred) .. 100 from 4.0 PREF=n; 2.1 bare PREF and 3.0 TYPE=pref
    mean most preferred; none: _UNRANKED."""
    for value in params.get("PREF", []):
        if value.strip().isdigit():
            return min(max(int(value.strip()), 1), _UNRANKED - 1)
    types = {t.strip().upper() for t in params.get("TYPE", [])}
    if "PREF" in bare or "PREF" in params or "PREF" in types:
        return 1
    return _UNRANKED


def _entry(source: str, body: list[bytes], problem: str) -> Entry:
    first: dict[str, str] = {}
    names: list[str] = []
    emails: list[tuple[int, str]] = []  # (preference, address); sorted stably below
    langs: list[tuple[int, str]] = []  # 4.0 allows several LANG, ranked by PREF too
    phones: list[str] = []
    for logical in _logical_lines(body):
        if len(logical) > MAX_LINE:
            problem = _TOO_LONG
            continue
        try:
            parsed = _parse(logical)
        except (ValueError, ParseError) as err:  # binascii and codec errors are ValueErrors
            problem = f"unreadable line in the card ({err})"
            continue
        if parsed is None:
            continue
        name, params, bare, value = parsed
        if name == "EMAIL":
            emails.append((_preference(params, bare), _unescape(value).strip()))
        elif name == "LANG":
            langs.append((_preference(params, bare), _unescape(value).strip()))
        elif name == "TEL":
            phones.append(_unescape(value))
        elif name in ("N", "ORG") and name not in first:
            parts = _components(value)
            if name == "N":
                names = parts
            first[name] = parts[0]
        elif name not in first:
            first[name] = _unescape(value)
    family, given, additional, prefix, suffix = (*names, "", "", "", "", "")[:5]
    built = " ".join(p.strip() for p in (prefix, given, additional, family, suffix) if p.strip())
    return Entry(
        source=source,
        name=first.get("FN", "").strip() or built,
        given=given.strip(),
        family=family.strip(),
        emails=tuple(e for _rank, e in sorted(emails, key=lambda pair: pair[0]) if e),
        org=first.get("ORG", "").strip(),
        title=first.get("TITLE", "").strip(),
        phones=tuple(phones),
        website=first.get("URL", "").strip(),
        lang=min(langs, key=lambda pair: pair[0])[1] if langs else "",
        problem=problem,
        company=first.get("KIND", "").strip().lower() in _COMPANY_KINDS
        or first.get("X-ABSHOWAS", "").strip().upper() == "COMPANY",
    )
