"""QR codes on business cards -> exact contact data.

zxing-cpp (offline, in the `ocr` extra) finds and decodes every QR code in the
card image; this module reads what the codes say:

- a vCard (``BEGIN:VCARD``) goes through the project's own vCard reader
  (`vcard.read_vcard_stream`), so a QR vCard gets every repair a file gets;
- MeCard (``MECARD:N:Family,Given;EMAIL:...;;``, NTT Docomo's format, written
  by most QR generators) and BIZCARD (``BIZCARD:N:Given;X:Family;E:...;;``) are
  small ``KEY:value;`` lists with backslash escapes, parsed here;
- ``mailto:`` gives an address (RFC 6068: percent-encoded, ``?`` starts headers);
- an http(s) URL gives the web site.

Anything else (Wi-Fi credentials, plain text) is ignored.

Addresses are passed on as the code spells them, never cleaned: the one validator
(`addresses.normalize_address`, which `extract.with_codes` asks) accepts or rejects
them as it does a CSV's, since removing a character can make someone else's address.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ..errors import InputError
from ..sanitize import clean
from .vcard import read_vcard_stream

if TYPE_CHECKING:
    from PIL import Image

# A QR code holds at most 7,089 characters; anything longer is not from a QR code.
MAX_PAYLOAD = 8000


@dataclass(frozen=True, slots=True)
class QrContact:
    """What one code says; "" / () where it says nothing."""

    kind: str  # "vcard", "mecard", "bizcard", "mailto" or "url"
    name: str = ""
    given: str = ""
    family: str = ""
    org: str = ""
    title: str = ""
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()  # as written in the code
    website: str = ""


def decode_qr(image: Image.Image) -> tuple[str, ...]:
    """The text of every QR code in the image, in the decoder's order (also rotated or
    partly covered codes, as far as their error correction reaches)."""
    import zxingcpp
    from PIL import ImageFilter

    formats = zxingcpp.barcode_formats_from_str("QRCode,MicroQRCode")
    found = zxingcpp.read_barcodes(image, formats=formats)
    if not found:  # a phone photo's soft focus blurs the modules of a dense code together
        sharpened = image.filter(ImageFilter.UnsharpMask(radius=3, percent=200, threshold=0))
        found = zxingcpp.read_barcodes(sharpened, formats=formats)
    return tuple(code.text for code in found if code.valid and code.text)


def parse_payload(text: str) -> QrContact | None:
    """The contact data in one code's text, or None when it holds none."""
    payload = text.strip()[:MAX_PAYLOAD]
    head = payload[:12].upper()
    if head.startswith("BEGIN:VCARD"):
        return _vcard(payload)
    if head.startswith("MECARD:"):
        return _mecard(payload[7:])
    if head.startswith("BIZCARD:"):
        return _bizcard(payload[8:])
    if head.startswith("MAILTO:"):
        address = unquote(payload[7:].split("?", 1)[0]).split(",")[0].strip()
        return QrContact("mailto", emails=(address,)) if address else None
    if re.match(r"https?://\S+$", payload, re.IGNORECASE):
        return QrContact("url", website=clean(payload))
    return None


def parse_payloads(texts: Iterable[str]) -> tuple[QrContact, ...]:
    return tuple(c for c in map(parse_payload, texts) if c is not None)


def _vcard(payload: str) -> QrContact | None:
    """Through the vCard reader that reads files, with every repair a file gets."""
    try:
        entry = next(read_vcard_stream(io.BytesIO(payload.encode("utf-8")), "QR code"), None)
    except InputError:
        return None
    if entry is None:
        return None
    return _built(
        "vcard",
        clean(entry.name),
        clean(entry.given),
        clean(entry.family),
        clean(entry.org),
        clean(entry.title),
        list(entry.emails),
        [clean(p) for p in entry.phones],
        clean(entry.website),
    )


def _fields(body: str) -> list[tuple[str, str]]:
    """``KEY:value;KEY:value;;`` with ``\\;``, ``\\:``, ``\\,`` and ``\\\\`` escapes."""
    pairs: list[tuple[str, str]] = []
    for raw in re.split(r"(?<!\\);", body):
        key, colon, value = raw.partition(":")
        if colon and key.strip():
            pairs.append((key.strip().upper(), re.sub(r"\\(.)", r"\1", value).strip()))
    return pairs


def _mecard(body: str) -> QrContact | None:
    name = given = family = org = title = website = ""
    emails: list[str] = []
    phones: list[str] = []
    for key, value in _fields(body):
        if key == "N" and not name:
            # "Family,Given"; without a comma, the whole name
            family, comma, given = (clean(part) for part in value.partition(","))
            name = f"{given} {family}".strip() if comma else family
            family = family if comma else ""
        elif key == "EMAIL":
            emails.append(value)
        elif key == "TEL":
            phones.append(clean(value))
        elif key == "URL" and not website:
            website = clean(value)
        elif key == "ORG" and not org:
            org = clean(value)
        elif key == "TITLE" and not title:
            title = clean(value)
    return _built("mecard", name, given, family, org, title, emails, phones, website)


def _bizcard(body: str) -> QrContact | None:
    """BIZCARD: N given, X family, T title, C company, E e-mail, B/M phone and mobile."""
    parts: dict[str, str] = {}
    emails: list[str] = []
    phones: list[str] = []
    for key, value in _fields(body):
        if key == "E":
            emails.append(value)
        elif key in ("B", "M"):
            phones.append(clean(value))
        else:
            parts.setdefault(key, clean(value))
    given, family = parts.get("N", ""), parts.get("X", "")
    name = f"{given} {family}".strip()
    return _built("bizcard", name, given, family, parts.get("C", ""), parts.get("T", ""),
                  emails, phones, "")  # fmt: skip


def _built(
    kind: str,
    name: str,
    given: str,
    family: str,
    org: str,
    title: str,
    emails: list[str],
    phones: list[str],
    website: str,
) -> QrContact | None:
    if not (name or org or emails or phones or website):
        return None
    return QrContact(kind, name, given, family, org, title, tuple(e for e in emails if e),
                     tuple(p for p in phones if p), website)  # fmt: skip
