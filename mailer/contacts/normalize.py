"""From what a reader read (`Entry`) to a `Contact` or a `Rejected`; merging two records.

Everything that decides what a contact *is* lives here, so the vCard and CSV
readers only have to report what the file says:

- sanitising: every text field goes through `sanitize.clean`;
- who it is: the display name (name, "File As", organisation) apart from a
  person's name for the salutation ("" for a company's entry);
- addresses: a cell may hold several (`split_cell`); each is checked by
  `addresses.normalize_address`, the one validator;
- phones: E.164 via phonenumbers when the number parses, else as read;
- duplicates: `merge` makes one record of two that share an address, keeping
  the richer values (`dedupe.py` decides which records share one).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace

import phonenumbers

from ..addresses import InvalidAddress, normalize_address
from ..errors import ConfigError
from ..language import text_language
from ..models import Contact, Rejected
from ..sanitize import clean, problem

# A field longer than this is no name, title or address but an attack or a broken file:
# the entry is rejected, so no later stage (preview, journal) ever holds such a value.
MAX_FIELD = 64 * 1024

_LANGUAGE_NAMES = {
    "english": "en", "englisch": "en", "german": "de", "deutsch": "de",
    "french": "fr", "französisch": "fr", "francais": "fr", "français": "fr",
    "spanish": "es", "spanisch": "es", "español": "es", "italian": "it",
    "italienisch": "it", "dutch": "nl", "niederländisch": "nl",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Entry:
    """One vCard or CSV record exactly as read (decoded and unescaped, not yet checked).
    `emails` is in file order with preferred addresses first; `problem` is set when
    the record itself could not be read completely."""

    source: str
    name: str = ""
    given: str = ""
    family: str = ""
    emails: tuple[str, ...] = ()
    org: str = ""
    title: str = ""
    phones: tuple[str, ...] = ()
    website: str = ""
    lang: str = ""
    problem: str = ""
    file_as: str = ""  # Google's/Outlook's "File As": how the address book lists it
    card_text: str = ""  # a business card's OCR text (a reviewed `cards review` file)
    company: bool = False  # the source says the entry is an organisation (vCard KIND:org)

    @property
    def display(self) -> str:
        """Who the entry is, for reports: its name, "File As" or organisation."""
        return clean(self.name) or clean(self.file_as) or clean(self.org)

    def as_fields(self) -> dict[str, str]:
        """The non-empty values under the column names the CSV reader maps back
        (`email`, `email2`, ...), so a rejects file can be fixed and re-imported."""
        out: dict[str, str] = {}
        for key in ("name", "given", "family"):
            out[key] = getattr(self, key)
        for i, value in enumerate(self.emails, 1):
            out["email" if i == 1 else f"email{i}"] = value
        out["org"], out["title"] = self.org, self.title
        for i, value in enumerate(self.phones, 1):
            out["phone" if i == 1 else f"phone{i}"] = value
        out["website"], out["lang"] = self.website, self.lang
        out["raw_text"] = self.card_text
        return {k: clean(v) for k, v in out.items() if clean(v)}


def unicode_encoding(head: bytes) -> str | None:
    """The codec a byte-order mark announces, or UTF-16 sniffed from NUL bytes
    (Apple writes UTF-16BE vCards without a BOM: 00 42 00 45 = "BE"); else None."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return codec
    if len(head) >= 4 and head[0] == 0 and head[2] == 0 and head[1] and head[3]:
        return "utf-16-be"
    if len(head) >= 4 and head[1] == 0 and head[3] == 0 and head[0] and head[2]:
        return "utf-16-le"
    return None


def check_region(region: str) -> str:
    """The phone region as phonenumbers wants it ("DE"), or a ConfigError."""
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            f"--region {region!r} is not a known country code; use a two-letter code "
            f"such as DE, AT, CH, GB or US."
        )
    return code


def split_addresses(values: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """(valid normalised addresses without repeats, [(invalid value, why)])."""
    valid: list[str] = []
    seen: set[str] = set()
    invalid: list[tuple[str, str]] = []
    for raw in values:
        if not clean(raw):
            continue
        try:
            address = normalize_address(raw)
        except InvalidAddress as err:
            invalid.append((raw.strip(), str(err)))  # shown with repr(): escaped
            continue
        if address.casefold() not in seen:
            seen.add(address.casefold())
            valid.append(address)
    return valid, invalid


_DIALLED = frozenset(
    {
        phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_PLUS_SIGN,
        phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_IDD,  # "0049 ...", "011 33 ..."
    }
)


def _phone(raw: str, region: str) -> tuple[str, str]:
    """(E.164 or the text as read, the number's country when it was written with its
    country code, else "": a national number's country is only the assumed `region`)."""
    text = clean(raw)
    if not text:
        return "", ""
    try:
        number = phonenumbers.parse(text, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return text, ""
    if not phonenumbers.is_possible_number(number):
        return text, ""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if number.country_code_source not in _DIALLED:
        return e164, ""
    country = phonenumbers.region_code_for_number(number) or (
        phonenumbers.region_code_for_country_code(number.country_code or 0)
    )
    return e164, country if country.isalpha() and country != phonenumbers.UNKNOWN_REGION else ""


def normalize_lang(raw: str) -> str:
    """ "de", "en", ... from "de-DE", "Deutsch", "English"; "" when unclear."""
    text = clean(raw).casefold()
    if text in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[text]
    primary = text.replace("_", "-").split("-")[0]
    return primary if primary.isascii() and primary.isalpha() and len(primary) in (2, 3) else ""


def _not_local_part(name: str, addresses: list[str], *, nor_address: bool = False) -> str:
    """ "" when the name is what an exporter copied from an address: a local part such
    as "john.doe" or "jdoe84" (a plain word like "Lars" may well be the real name), or,
    for the display name, one of the contact's own addresses."""
    folded = name.casefold()
    for address in addresses:
        local = address.rpartition("@")[0].casefold()
        if folded == local and not local.isalpha():
            return ""
        if nor_address and folded == address.casefold():
            return ""
    return name


_COMMENT = re.compile(r"\([^()]*\)")  # RFC 5322 3.2.2; an unquoted address has no "("
_SEPARATORS = frozenset(";,\r\n(")


def split_cell(value: str) -> list[str]:
    """The addresses in one cell or value: card scanners and contact managers join
    several with ";", ",", a line break or Google's " ::: ", or only spaces.
    Separators inside quotes or angle brackets belong to an address with its
    display name (`"Doe, Jane" <jane@example.com>`), as in an RFC 5322 address
    list; spaces separate only when every word is an address ("a@x b@y").  RFC 5322
    comments go ("ada@example.com (work)")."""
    if value.count("@") < 2 and not _SEPARATORS.intersection(value) and " ::: " not in value:
        return [value.strip()] if value.strip() else []  # the usual cell: one address
    parts: list[str] = []
    current: list[str] = []
    quoted = angled = False
    for ch in value.replace(" ::: ", "\n"):
        if ch == '"' and not angled:
            quoted = not quoted
        elif ch == "<" and not quoted:
            angled = True
        elif ch == ">" and not quoted:
            angled = False
        elif ch in ";,\r\n" and not quoted and not angled:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    values: list[str] = []
    for part in parts:
        if '"' not in part and "@" in part:
            part = _COMMENT.sub(" ", part)
        words = part.split()
        spaced = len(words) > 1 and all(w.count("@") == 1 and '"' not in w for w in words)
        values.extend(words if spaced else [part.strip()] if words else [])
    return values


def identify(
    name: str, given: str, family: str, org: str, file_as: str = "", *, company: bool = False
) -> tuple[str, str]:
    """(display name, person's name) from cleaned values.  The person's name is the
    entry's name unless the entry is a company's: marked so (vCard KIND:org, Apple's
    X-ABShowAs:COMPANY), or named only by its organisation; a name that is an
    address is no person's name, given + family then are."""
    composed = " ".join(p for p in (given, family) if p)
    display = name or composed or file_as or org
    if company:
        return display, ""
    person = name if name and "@" not in name else composed
    if person and not (given or family) and org and person.casefold() == org.casefold():
        person = ""
    return display, person


Flag = Callable[[Rejected], None]


def check(entry: Entry, region: str, on_flag: Flag | None = None) -> Contact | Rejected:
    """Validate and sanitise one entry: a Contact, or a Rejected saying why not.
    A contact kept although some of its e-mail values were invalid is also passed
    to `on_flag` (as a Rejected-shaped note; it is not an entry of its own)."""
    source = clean(entry.source)
    if entry.problem:
        return Rejected(source, clean(entry.problem), entry.as_fields(), entry.display)
    too_long = _too_long(entry)
    if too_long:
        reason = f"{too_long} is longer than {MAX_FIELD // 1024} KB"
        fields_read = {k: v for k, v in entry.as_fields().items() if len(v) <= MAX_FIELD}
        name = entry.display if len(entry.display) <= MAX_FIELD else ""
        return Rejected(source, reason, fields_read, clean(name))
    valid, invalid = split_addresses(entry.emails)
    if not valid:
        if invalid:
            value, why = invalid[0]
            reason = f"invalid e-mail address {value!r}: {why}"
        else:
            reason = "no e-mail address"
        return Rejected(source, reason, entry.as_fields(), entry.display)
    if invalid and on_flag is not None:
        values = ", ".join(repr(value) for value, _why in invalid)
        reason = f"invalid e-mail value(s) dropped, contact kept: {values}"
        on_flag(Rejected(source, reason, entry.as_fields(), entry.display))
    phones: list[str] = []
    countries: list[str] = []
    for raw in entry.phones:
        phone, country = _phone(raw, region)
        if phone and phone not in phones:
            phones.append(phone)
        if country:
            countries.append(country)
    name = _not_local_part(clean(entry.name), valid, nor_address=True)
    given = _not_local_part(clean(entry.given), valid)
    family = _not_local_part(clean(entry.family), valid)
    org = clean(entry.org)
    file_as = _not_local_part(clean(entry.file_as), valid, nor_address=True)
    display, person = identify(name, given, family, org, file_as, company=entry.company)
    return Contact(
        email=valid[0],
        name=name,
        given=given,
        family=family,
        emails=tuple(valid),
        org=org,
        title=clean(entry.title),
        phones=tuple(phones),
        website=clean(entry.website),
        lang=normalize_lang(entry.lang),
        source=source,
        display=display,
        person=person,
        text_lang=text_language(entry.card_text) if entry.card_text else "",
        phone_country=countries[0] if countries else "",
    )


_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))  # once: fields() per entry costs more


def _too_long(entry: Entry) -> str:
    """The name of the first field over MAX_FIELD characters, else ""."""
    for name in _ENTRY_FIELDS:
        value = getattr(entry, name)
        if isinstance(value, tuple):
            if any(isinstance(v, str) and len(v) > MAX_FIELD for v in value):
                return name
        elif isinstance(value, str) and len(value) > MAX_FIELD:
            return name
    return ""


def sanitise(item: Contact | Rejected) -> Contact | Rejected:
    """Apply `clean` to every text field of an entry made elsewhere (card reader);
    a contact whose address is not clean as it is becomes a Rejected."""
    if isinstance(item, Rejected):
        fields_read = {clean(k): clean(v) for k, v in item.fields.items() if clean(v)}
        name = clean(item.name) or fields_read.get("name", "") or fields_read.get("company", "")
        return Rejected(clean(item.source), clean(item.reason), fields_read, name)
    for address in item.emails or (item.email,):
        why = problem(address)
        if why:
            return Rejected(clean(item.source), f"invalid e-mail address {address!r}: {why}",
                            name=clean(item.display or item.name))
    contact = _sanitise_contact(item)
    if contact.display:
        return contact
    display, person = identify(contact.name, contact.given, contact.family, contact.org)
    return replace(contact, display=display, person=person)


def _sanitise_contact(c: Contact) -> Contact:
    def each(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v for v in map(clean, values) if v)

    return replace(  # addresses were checked by `sanitise`: never changed
        c, name=clean(c.name), given=clean(c.given), family=clean(c.family), org=clean(c.org),
        title=clean(c.title), phones=each(c.phones), website=clean(c.website),
        lang=clean(c.lang), source=clean(c.source), display=clean(c.display),
        person=clean(c.person), text_lang=clean(c.text_lang),
        phone_country=clean(c.phone_country),
    )  # fmt: skip


def _richness(contact: Contact) -> tuple[bool, int]:
    """Confirmed records first, then the one with more values."""
    return not contact.needs_review, sum(
        bool(v)
        for v in (contact.name, contact.given, contact.family, contact.org, contact.title,
                  contact.website, contact.lang)
    ) + len(contact.phones) + len(contact.emails)  # fmt: skip


def merge(kept: Contact, other: Contact) -> Contact:
    """One record from two with a shared address: the richer one's values, gaps
    filled from the other, all addresses and phones; position and source of `kept`."""
    base, extra = (other, kept) if _richness(other) > _richness(kept) else (kept, other)
    emails = list(kept.emails)
    emails += [e for e in other.emails if e.casefold() not in {x.casefold() for x in emails}]
    phones = list(base.phones) + [p for p in extra.phones if p not in base.phones]
    filled = {
        name: getattr(base, name) or getattr(extra, name)
        for name in ("name", "given", "family", "org", "title", "website", "lang", "display",
                     "person", "text_lang", "phone_country")
    }  # fmt: skip
    return replace(
        base,
        **filled,
        email=emails[0],
        emails=tuple(emails),
        phones=tuple(phones),
        source=kept.source,
        needs_review=base.needs_review,
    )
