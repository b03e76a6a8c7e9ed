"""Business-card fields from OCR text lines: pure functions, no OCR engine needed.

Input is what an OCR engine returns for one card: text lines with their boxes
and recognition scores.  Output is a `CardFields` with a confidence per field
in 0..1, so that the caller can hold back a guess the user has not seen.

The rules come from the typical ways OCR misreads cards ("@" read as "©" or
"(a", a dot lost before the domain ending) and from how cards are laid out
(the name is printed large, next to the title, and usually agrees with the
e-mail's local part; the company carries a legal suffix or the e-mail domain).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache

import phonenumbers

from ..addresses import InvalidAddress, normalize_address
from ..sanitize import clean
from .names import PrintedName, is_latin, parse_name, parse_one_word, person_evidence
from .qr import QrContact

# An e-mail read with less confidence than this is held back until reviewed.
EMAIL_REVIEW_THRESHOLD = 0.9

# Confidence multipliers for each repair: a repaired address is a guess.
_REPAIR_AT = 0.8
_REPAIR_DOT = 0.8
_REPAIR_DOT_CONFIRMED = 0.92  # the web site printed on the card spells the same domain
_REPAIR_DOMAIN = 0.85
_REPAIR_SPACES = 0.95
_REPAIR_LETTER = 0.85


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One recognised text line; `box` holds four (x, y) corners, clockwise from top-left."""

    text: str
    box: tuple[tuple[float, float], ...]
    score: float

    @property
    def height(self) -> float:
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self.box[:4]
        return (math.dist((x0, y0), (x3, y3)) + math.dist((x1, y1), (x2, y2))) / 2

    @property
    def center(self) -> tuple[float, float]:
        return (
            sum(x for x, _ in self.box) / len(self.box),
            sum(y for _, y in self.box) / len(self.box),
        )


@dataclass(frozen=True, slots=True)
class Field:
    value: str = ""
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Phone:
    number: str  # E.164
    kind: str  # "mobile", "phone" or "fax"
    confidence: float
    printed: str = ""  # as on the card ("(11) 91234-5678"); "" from a QR code


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A field the card's QR code and its printed text give differently (the code wins)."""

    field: str  # "name", "email", ...
    code: str
    printed: str


@dataclass(frozen=True, slots=True)
class CardFields:
    name: Field  # without honorific, suffix kept, in mixed case
    title: Field
    company: Field
    emails: tuple[Field, ...]  # valid addresses, in reading order
    phones: tuple[Phone, ...]
    website: Field
    raw_text: str  # every line, top to bottom, " | " between lines
    honorific: Field = Field()  # "Dr.", "Prof.", "TS."
    region: str = ""  # the country phone numbers without +prefix were read for
    region_assumed: bool = False  # the card names no country: `region` is the profile's
    disagreements: tuple[Disagreement, ...] = ()
    qr: tuple[str, ...] = ()  # kinds of the QR codes read ("vcard", "mailto", ...)

    @property
    def email(self) -> Field:
        return self.emails[0] if self.emails else Field()

    @property
    def needs_review(self) -> bool:
        return self.email.confidence < EMAIL_REVIEW_THRESHOLD


def transliterate(text: str) -> str:
    """Lower-case ASCII for comparing a name with an address: ü -> ue, é -> e, ß -> ss."""
    text = text.lower()
    for umlaut, ascii_ in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(umlaut, ascii_)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _letters(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", transliterate(text))


# ---------------------------------------------------------------- e-mail and web

# OCR readings of "@" (the copyright sign, "(a)", "(a") and spelled-out forms.
_AT_LOOKALIKES = re.compile(r"\s*(?:\(at\)|\[at\]|\(a\)|\(a|©|®)\s*", re.IGNORECASE)
_EMAIL = re.compile(
    r"(?<![\w.+'-])[A-Za-z0-9][A-Za-z0-9._%+'-]*@[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9](?!\w)"
)
_EMAIL_LABEL = re.compile(r"^\s*(?:e-?mail|mail|e)\s*[:.]?\s*", re.IGNORECASE)


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_TLDS = _wordset(
    "com net org de at ch eu uk io co info biz br fr it es nl be pl us ca au in jp cn ru se "
    "no dk fi cz pt ar mx tr app dev ai me tv gov edu online shop tech berlin"
)
# Second-level endings under a country code ("beltis.com.br", "acme.co.uk", "iij.ad.jp").
_SECOND_LEVEL = ("com", "co", "org", "net", "gov", "edu", "ac", "or", "ne", "go", "ad", "gob",
                 "nom", "ltd", "plc")  # fmt: skip
_TLD_MISREADS = {"corn": "com", "c0m": "com", "ccm": "com", "dc": "de"}
_WEBSITE = re.compile(
    r"(?<![@\w.])((?:https?://)?(?:www\.)?[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*"
    r"\.([a-z]{2,})(?:/[^\s]*)?)(?![\w@])",
    re.IGNORECASE,
)


def _domain_of(website: str) -> str:
    host = re.sub(r"^https?://", "", website.lower()).split("/")[0]
    return host.removeprefix("www.")


def find_website(lines: Sequence[OcrLine]) -> Field:
    """The first web address: "www."/"http" forms beat bare domains."""
    best = Field()
    for line in lines:
        # an address, perhaps misread, is no web site: leave out every word with an "@"
        words = _AT_LOOKALIKES.sub("@", line.text).split()
        text = " ".join(word for word in words if "@" not in word)
        for match in _WEBSITE.finditer(text):
            if match.group(2).lower() not in _TLDS:
                continue
            url = match.group(1).rstrip(".,;").lower()
            explicit = url.startswith(("www.", "http"))
            confidence = line.score * (0.95 if explicit else 0.75)
            if confidence > best.confidence:
                best = Field(url, round(confidence, 3))
    return best


def _restore_dot(domain: str) -> tuple[str, bool]:
    """Put back a dot the OCR lost before the domain ending ("contosocom" -> "contoso.com")."""
    labels = domain.split(".")
    if labels[-1] in _TLD_MISREADS:
        labels[-1] = _TLD_MISREADS[labels[-1]]
        return ".".join(labels), True
    if len(labels) == 1:
        for tld in sorted(_TLDS, key=len, reverse=True):
            if domain.endswith(tld) and len(domain) - len(tld) >= 2:
                return f"{domain[: -len(tld)]}.{tld}", True
        return domain, False
    if len(labels[-1]) == 2 and labels[-2] not in _SECOND_LEVEL:
        for ending in _SECOND_LEVEL:
            stem = labels[-2]
            if stem.endswith(ending) and len(stem) - len(ending) >= 2:
                labels[-2:] = [stem[: -len(ending)], ending, labels[-1]]
                return ".".join(labels), True
    return domain, False


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _repair_email(candidate: str, site_domain: str) -> tuple[str, float]:
    """Fix the domain against the card's web site and common OCR slips; return (address, factor)."""
    local, _, domain = candidate.rpartition("@")
    domain = domain.lower().rstrip(".")
    factor = 1.0
    if "I" in local and local.replace("I", "").islower():
        # a capital I among lower-case letters is an l the OCR misread ("novak.I")
        local, factor = local.replace("I", "l"), _REPAIR_LETTER
    if site_domain and domain != site_domain:
        if domain.replace(".", "") == site_domain.replace(".", ""):
            return f"{local}@{site_domain}", factor * _REPAIR_DOT_CONFIRMED
        if len(site_domain) >= 6 and _edit_distance(domain, site_domain) <= 2:
            return f"{local}@{site_domain}", factor * _REPAIR_DOMAIN
    if "." not in domain or domain.split(".")[-1] not in _TLDS:
        domain, repaired = _restore_dot(domain)
        if repaired:
            factor *= _REPAIR_DOT
    return f"{local}@{domain}", factor


def _validated(address: str) -> str | None:
    try:
        return normalize_address(address)
    except InvalidAddress:
        return None


def find_emails(lines: Sequence[OcrLine], website: Field) -> tuple[Field, ...]:
    """Every valid address on the card, repaired where OCR slipped, in reading order."""
    site_domain = _domain_of(website.value) if website.value else ""
    found: dict[str, Field] = {}
    for line in lines:
        text = _EMAIL_LABEL.sub("", line.text)
        factor = 1.0
        if "@" not in text:
            repaired = _AT_LOOKALIKES.sub("@", text)
            if repaired == text or not _EMAIL.search(repaired):
                continue
            text, factor = repaired, _REPAIR_AT
        squeezed = re.sub(r"\s*([@.])\s*", r"\1", text)
        if squeezed != text and not _EMAIL.search(text):
            text, factor = squeezed, factor * _REPAIR_SPACES
        for match in _EMAIL.finditer(text):
            address, repair = _repair_email(match.group(0).rstrip("."), site_domain)
            valid = _validated(address)
            if valid is None or "." not in valid.rpartition("@")[2]:
                continue  # a social-media handle ("@Name") or an unrepairable domain
            confidence = min(1.0, line.score * factor * repair)
            if valid not in found or found[valid].confidence < confidence:
                found[valid] = Field(valid, round(confidence, 3))
    return tuple(found.values())


# ------------------------------------------------------------------------ phones

# A label is a whole word ("M:" but not the "m" of "Mitte"), letters only around it.
_LABEL = re.compile(
    r"(?<![^\W\d_])(?:(?P<mobile>mobil\w*|mob|handy|cell\w*|cel|m)|(?P<fax>fax|telefax|f)"
    r"|(?P<phone>tel\w*|phone|fon|fone|t|p|office|büro))(?![^\W\d_])",
    re.IGNORECASE,
)


def _label_kind(prefix: str) -> str | None:
    """The kind named by the labels just before a number ("Tel./Fax" counts as a phone)."""
    kinds = [match.lastgroup for match in _LABEL.finditer(prefix)]
    if not kinds:
        return None
    if "phone" in kinds and "fax" in kinds:
        return "phone"
    return kinds[-1]


_POSTCODE_LABEL = re.compile(r"(?:cep|plz|zip|postcode)\W*$", re.IGNORECASE)


def find_phones(lines: Sequence[OcrLine], region: str) -> tuple[Phone, ...]:
    """Numbers in E.164 with their kind, from the label or else the numbering plan.
    Numbers that are possible but not valid (fictitious, or an outdated plan) are kept
    with a lower confidence when they carry an area code: the card printed them as such."""
    phones: dict[str, Phone] = {}
    for line in lines:
        if "@" in line.text or re.search(r"www\.|https?://", line.text, re.I):
            continue
        start = 0
        matches = phonenumbers.PhoneNumberMatcher(
            line.text, region, leniency=phonenumbers.Leniency.POSSIBLE
        )
        for match in matches:
            prefix, start = line.text[start : match.start], match.end
            if _POSTCODE_LABEL.search(prefix):
                continue
            kind = _label_kind(prefix)
            valid = phonenumbers.is_valid_number(match.number)
            digits = sum(ch.isdigit() for ch in match.raw_string)
            if not valid and not (match.raw_string[0] in "+(0" or digits >= 10):
                continue  # a local number without its area code: no E.164 form to give
            confidence = line.score * (1.0 if kind else 0.9) * (1.0 if valid else 0.7)
            if kind is None:
                mobile = (
                    phonenumbers.number_type(match.number) == phonenumbers.PhoneNumberType.MOBILE
                )
                kind = "mobile" if mobile else "phone"
            number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            if number not in phones:
                phones[number] = Phone(number, kind, round(confidence, 3), match.raw_string)
    return tuple(phones.values())


# ------------------------------------------------------------- name, title, company

_LEGAL_SUFFIX = re.compile(
    r"(?<!\w)(?:GmbH|mbH|AG|KG|KGaA|OHG|UG|GbR|SE|e\.\s?V\.|e\.\s?K\.|Ltd\.?|Limited|Inc\.?"
    r"|LLC|LLP|plc|Corp\.?|Co\.|S\.A\.|SA|S\.L\.|Ltda\.?|S/A|EIRELI|B\.V\.|N\.V\.|Oy|AB|ApS"
    r"|S\.r\.l\.|S\.p\.A\.|SARL|SAS|Pty|Pte\.?|Pvt\.?|JSC"
    r"|LTD\.?|LIMITED|INC\.?|CO\.|CORP\.?|GMBH|PTE\.?|PVT\.?|LTDA\.?)(?!\w)"  # in capitals
)
_TITLE_WORDS = _wordset(
    "manager managerin director head lead engineer developer researcher scientist consultant "
    "advisor officer ceo cto cfo coo cmo founder co-founder owner partner president vp "
    "architect designer analyst specialist assistant professor student intern sales account "
    "geschäftsführer geschäftsführerin leiter leiterin berater beraterin entwickler "
    "entwicklerin ingenieur ingenieurin inhaber inhaberin vertrieb referent referentin "
    "projektleiter projektleiterin vorstand prokurist sachbearbeiter diretor diretora gerente "
    "consultor consultora analista coordenador coordenadora sócio sócia vendedor "
    "representante directeur directrice responsable jefe"
)
_NOT_NAME_WORDS = _wordset(
    "solutions solution services service consulting security systems software technologies "
    "technology group holding department abteilung gmbh street straße strasse str weg platz "
    "allee road avenue lane rua avenida av department team office büro the und and"
)
_FREEMAIL = _wordset(
    "gmail googlemail hotmail outlook live yahoo gmx web t-online icloud me mail aol posteo "
    "freenet proton protonmail terra uol bol r7 ig example"
)  # plain example.com names no company either


def _has_title_word(text: str) -> bool:
    words = re.findall(r"[^\W\d_][\w-]*", text.lower())
    return any(word in _TITLE_WORDS for word in words)


def split_name(name: str) -> tuple[str, str]:
    """(given, family) of a printed name, without honorific or suffix."""
    parsed = parse_name(name)
    return (parsed.given, parsed.family) if parsed else ("", "")


def name_agreement(name: str, local_part: str) -> int:
    """How many words of the name (transliterated, three letters or more) the address contains."""
    local = transliterate(local_part)
    parsed = parse_name(name)
    words = [transliterate(w).strip(".,") for w in (parsed.name if parsed else name).split()]
    return sum(1 for w in words if len(w) >= 3 and w in local)


def _company_like(line: OcrLine, domains: Sequence[str], *, containing: bool = True) -> bool:
    """The line spells (part of) the e-mail or web domain, as a logo usually does;
    `containing=False` leaves out lines that merely contain it ("Lena Krämer" for kraemer)."""
    letters = _letters(line.text)
    return len(letters) >= 3 and any(
        letters in d or (containing and d in letters) for d in domains if d
    )


def _registered_label(host: str) -> str:
    """The label a company registers: "acme" in mail.acme.co.uk, never the TLD ("vn")
    nor a second-level ending ("com" in .com.br, "ad" in .ad.jp)."""
    parts = host.lower().split(".")[:-1]  # the last label is always the TLD
    while len(parts) > 1 and parts[-1] in _SECOND_LEVEL:
        parts.pop()
    if len(parts) >= 2 and parts[-1] == "example":
        parts.pop()  # under the reserved example.com/.org/.net the label before counts
    return parts[-1] if parts else ""


def _domain_labels(emails: Sequence[Field], website: Field) -> list[str]:
    """Letters of the domains' registered labels ("contoso" for www.contoso.com),
    freemail left out."""
    labels = []
    hosts = [e.value.rpartition("@")[2] for e in emails]
    if website.value:
        hosts.append(_domain_of(website.value))
    for host in hosts:
        label = _registered_label(host)
        if len(label) >= 2 and label not in _FREEMAIL:
            labels.append(_letters(label))
    return labels


def _is_other_field(line: OcrLine, region: str) -> bool:
    """A phone, e-mail, web or street-address line: neither a name nor a title."""
    text = line.text
    return (
        "@" in text
        or bool(_WEBSITE.search(text) and re.search(r"www|http|\.(com|de|net|org)\b", text, re.I))
        or any(True for _ in phonenumbers.PhoneNumberMatcher(text, region))
        or sum(ch.isdigit() for ch in text) >= 4
    )


@dataclass(frozen=True, slots=True)
class NameWeights:
    """What makes a line the name, and how much each piece of evidence counts (added to
    person_evidence: a known given name 1.0, the classifier's "Person" 0.4, ...)."""

    tallest: float = 0.5  # its height against the tallest line that is not the company's
    above_body: float = 0.5  # taller than the body text (full at 1.5 times the median)
    address_agrees: float = 2.0  # a word of it is in the e-mail's local part
    address_agrees_more: float = 0.5  # each further word
    title_beside: float = 0.6  # a job title is one of its two nearest lines
    above_contacts: float = 0.7  # right above the phone/e-mail block
    capitals: float = -0.3  # in capitals without a known given name: often a logo
    one_word: float = -1.0  # one word ("Vijay") needs a title or the contacts beside it
    enough: float = 1.5  # below this nothing on the card is taken for the name
    sure: float = 2.5  # from here the name needs no review


NAME_WEIGHTS = NameWeights()


def find_name(
    lines: Sequence[OcrLine], emails: Sequence[Field], website: Field, region: str
) -> tuple[Field, Field, OcrLine | None]:
    """(name, honorific, its line): a line with a name's shape, scored by what the words
    say (given-name dictionary, person-or-company classifier), its size, agreement with
    the e-mail's local part, a job title beside it and the contact block below it."""
    if not lines:
        return Field(), Field(), None
    domains = _domain_labels(emails, website)
    locals_ = [e.value.rpartition("@")[0] for e in emails]
    plain = [
        ln
        for ln in lines
        if not _company_like(ln, [*domains, *map(_letters, locals_)], containing=False)
    ]
    sizes = (
        max((ln.height for ln in plain), default=max(ln.height for ln in lines)),
        sorted(ln.height for ln in lines)[len(lines) // 2],
    )
    best, best_score, best_line = None, 0.0, None
    for line in lines:
        parsed = _name_shape(line, domains, region)
        if parsed is None:
            continue
        score = _name_score(line, parsed, lines, locals_, sizes, region)
        if score is not None and score > best_score:
            best, best_score, best_line = parsed, score, line
    w = NAME_WEIGHTS
    if best is None or best_line is None or best_score < w.enough:
        return Field(), Field(), None
    sureness = 0.95 if best_score >= w.sure else 0.5 + 0.2 * min(best_score - w.enough, 1.0)
    confidence = round(sureness * best_line.score, 3)
    honorific = Field(best.honorific, confidence) if best.honorific else Field()
    return Field(best.name, confidence), honorific, best_line


def _name_shape(line: OcrLine, domains: Sequence[str], region: str) -> PrintedName | None:
    """The line taken apart as a name, unless it is a company, a contact field, a job
    title or has words no name has."""
    if (
        _company_like(line, domains, containing=False)
        or _LEGAL_SUFFIX.search(line.text)
        or _is_other_field(line, region)
    ):
        return None
    parsed = parse_name(line.text) or parse_one_word(line.text)
    if parsed is None or _has_title_word(parsed.name):
        return None
    if any(w.lower().strip(".,") in _NOT_NAME_WORDS for w in parsed.name.split()):
        return None
    return parsed


def _name_score(
    line: OcrLine,
    parsed: PrintedName,
    lines: Sequence[OcrLine],
    locals_: Sequence[str],
    sizes: tuple[float, float],
    region: str,
) -> float | None:
    """The line's score as the name (NameWeights), or None when it is a logo."""
    w = NAME_WEIGHTS
    tallest, median_height = sizes
    evidence = person_evidence(parsed)
    score = w.tallest * min(1.0, line.height / tallest)
    score += w.above_body * min(1.0, max(0.0, (line.height / median_height - 1) / 0.5))
    score += evidence
    # one word in the address is as often a shop's name ("flores@") as a person's
    agreement = max((name_agreement(parsed.name, local) for local in locals_), default=0)
    agreement = agreement if parsed.family else 0
    score += w.address_agrees * min(agreement, 1) + w.address_agrees_more * max(agreement - 1, 0)
    neighbours = sorted(
        (ln for ln in lines if ln is not line),
        key=lambda ln: abs(ln.center[1] - line.center[1]) + abs(ln.center[0] - line.center[0]) / 4,
    )[:2]
    if any(_has_title_word(ln.text) for ln in neighbours):
        score += w.title_beside
    if any(_is_other_field(ln, region) for ln in neighbours[:1]):
        score += w.above_contacts
    if line.text.isupper() and evidence < 1.0:
        if line.height >= 1.5 * median_height and evidence < 0.5:
            return None  # big capitals with no known given name in them: a logo
        score += w.capitals
    if not parsed.family:
        score += w.one_word
    return score


def find_title(lines: Sequence[OcrLine], name_line: OcrLine | None, region: str) -> Field:
    """The job title: the line nearest the name, or failing a name a line with a title word.
    A line in another script is a title only with a title word in it (a kanji name is not)."""
    candidates = [
        ln
        for ln in lines
        if ln is not name_line
        and not _is_other_field(ln, region)
        and not _LEGAL_SUFFIX.search(ln.text)
        and re.search(r"[^\W\d_]{2}", ln.text)
        and (is_latin(ln.text) or _has_title_word(ln.text))
    ]
    if name_line is None:
        titled = [ln for ln in candidates if _has_title_word(ln.text)]
        return Field(titled[0].text, round(0.6 * titled[0].score, 3)) if titled else Field()
    nx, ny = name_line.center

    def distance(line: OcrLine) -> float:
        return abs(line.center[1] - ny) + abs(line.center[0] - nx) / 4

    near = [ln for ln in candidates if distance(ln) <= 2.5 * name_line.height]
    if not near:
        return Field()
    titled = [ln for ln in near if _has_title_word(ln.text)]
    line = min(titled or near, key=distance)
    return Field(line.text, round((0.9 if titled else 0.6) * line.score, 3))


def _without_repeats(text: str) -> str:
    """ "ASAHI ASAHI SANGYO" -> "ASAHI SANGYO": a logo read together with the name it spells."""
    words = text.split()
    changed = True
    while changed:
        changed = False
        for size in range(len(words) // 2, 0, -1):
            for i in range(len(words) - 2 * size + 1):
                if [w.casefold() for w in words[i : i + size]] == [
                    w.casefold() for w in words[i + size : i + 2 * size]
                ]:
                    del words[i : i + size]
                    changed = True
                    break
            if changed:
                break
    return " ".join(words)


def find_company(
    lines: Sequence[OcrLine],
    emails: Sequence[Field],
    website: Field,
    region: str,
    name_line: OcrLine | None = None,
) -> Field:
    """A line with a legal suffix, else the line(s) spelling the domain (a logo split over
    consecutive lines is joined, a logo repeating the next line is not doubled), else the
    e-mail domain's registered label itself."""
    for line in lines:
        if _LEGAL_SUFFIX.search(line.text) and "@" not in line.text:
            return Field(_without_repeats(line.text), round(0.9 * line.score, 3))
    domains = _domain_labels(emails, website)
    spelled = [
        i
        for i, ln in enumerate(lines)
        if ln is not name_line and _company_like(ln, domains) and not _is_other_field(ln, region)
    ]
    if spelled:

        def overlap(i: int) -> int:
            letters = _letters(lines[i].text)
            return max(min(len(letters), len(d)) for d in domains if letters in d or d in letters)

        best = max(spelled, key=lambda i: (overlap(i), lines[i].height))
        run = [best]
        while run[-1] + 1 in spelled:
            run.append(run[-1] + 1)
        while run[0] - 1 in spelled:
            run.insert(0, run[0] - 1)
        texts: list[str] = []
        for i in run:  # a logo line whose letters the other lines already spell is dropped
            letters = _letters(lines[i].text)
            if not any(letters in _letters(lines[j].text) for j in run if j != i) or not texts:
                texts.append(lines[i].text)
        text = _without_repeats(" ".join(texts))
        return Field(text, round(0.7 * min(lines[i].score for i in run), 3))
    email_domains = _domain_labels(emails, Field())
    if email_domains and len(email_domains[0]) >= 3:
        return Field(email_domains[0].capitalize(), 0.4)
    return Field()


# ------------------------------------------------------------------ phone region

# ccTLDs sold as generic names (.io, .co, .me, .tv, .ai): they say nothing of a country.
_GENERIC_CCTLDS = _wordset("io co me tv ai ly fm am to cc ws gg la sh so ac nu tk ag bz gs vc im")
_COUNTRY_ALIASES = {"usa": "US", "u.s.a.": "US", "uk": "GB", "u.k.": "GB", "viet nam": "VN",
                    "korea": "KR", "south korea": "KR", "brasil": "BR", "deutschland": "DE",
                    "england": "GB", "scotland": "GB"}  # fmt: skip
_COUNTRY_LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl", "pl", "vi", "ko", "ja", "zh")


@cache
def _countries() -> dict[str, str]:
    """Country name -> region, from phonenumbers' country names in the languages cards
    are printed in."""
    from phonenumbers.geodata.locale import LOCALE_DATA  # large: only when a card is read

    names: dict[str, str] = dict(_COUNTRY_ALIASES)
    for region, by_language in LOCALE_DATA.items():
        if region not in phonenumbers.SUPPORTED_REGIONS:
            continue
        for language in _COUNTRY_LANGUAGES:
            name = by_language.get(language, "")
            for _ in range(3):  # "*aa": the same as that language's name
                if name.startswith("*"):
                    name = by_language.get(name[1:], "")
            if len(name) >= 4:
                names.setdefault(name.casefold(), region)
    return names


def _country_at_end(text: str) -> str:
    """The region of a country named by the last words of an address line
    ("..., 62701, USA"), or of a line that is only a country's name; else ""."""
    names = _countries()
    words = text.replace(",", " , ").split()
    for size in range(min(4, len(words)), 0, -1):
        tail = " ".join(words[-size:]).strip(" .,").casefold()
        if tail in names and (size == len(words) or re.search(r"[\d,]", text)):
            return names[tail]
    return ""


def card_region(lines: Sequence[OcrLine], emails: Sequence[Field], website: Field) -> str:
    """The country the card's own numbers are in: a country named at the end of an address
    line, else the +prefix the card's other numbers carry, else the country-code TLD of
    its e-mail or web site; "" when the card says none of that."""
    for line in lines:
        country = _country_at_end(line.text) if "@" not in line.text else ""
        if country:
            return country
    prefixes: Counter[str] = Counter()
    for line in lines:
        if "+" in line.text:
            for found in phonenumbers.PhoneNumberMatcher(line.text, "ZZ"):
                code = phonenumbers.region_code_for_number(found.number)
                if code and code != "ZZ":
                    prefixes[code] += 1
    if prefixes:
        return prefixes.most_common(1)[0][0]
    hosts = [e.value.rpartition("@")[2] for e in emails] + [_domain_of(website.value)]
    for host in hosts:
        tld = host.rpartition(".")[2]
        code = "GB" if tld == "uk" else tld.upper()
        if len(tld) == 2 and tld not in _GENERIC_CCTLDS and code in phonenumbers.SUPPORTED_REGIONS:
            return code
    return _region_of_places(lines)


_PLACE_LANGUAGES = ("en", "pt", "es", "fr", "de")
# a number printed without +country or 00: seven characters or more, so no postcode
_NATIONAL = re.compile(r"(?<![+\d])(?!00)\(?\d[\d ()./-]{5,}\d")


def _main_region_first(region: str) -> tuple[bool, str]:
    """GB before the Isle of Man, US before the other +1 countries."""
    code = phonenumbers.country_code_for_region(region)
    return phonenumbers.region_code_for_country_code(code) != region, region


def _said(place: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(place)}(?!\w)", text) is not None
_MAX_NATIONAL = 2  # numbers tried: each is parsed for every country (~0.1 s)


def _region_of_places(lines: Sequence[OcrLine]) -> str:
    """The country in which a number printed without +country is valid and belongs to a
    place the card also names ("(11) 3456-7890" and "São Paulo": Brazil), from
    phonenumbers' own numbering plans and area descriptions; "" when none."""
    from phonenumbers import geocoder

    text = " ".join(ln.text for ln in lines if "@" not in ln.text).casefold()
    national = [
        m.group(0) for ln in lines if "@" not in ln.text for m in _NATIONAL.finditer(ln.text)
    ][:_MAX_NATIONAL]
    for raw in national:
        for region in sorted(phonenumbers.SUPPORTED_REGIONS, key=_main_region_first):
            try:
                number = phonenumbers.parse(raw, region)
            except phonenumbers.NumberParseException:
                continue
            if not phonenumbers.is_valid_number(number):
                continue
            for language in _PLACE_LANGUAGES:
                place = geocoder.description_for_valid_number(number, language)
                parts = re.split(r"\s+-\s+|,|/", place)
                if any(len(p.strip()) >= 4 and _said(p.strip().casefold(), text) for p in parts):
                    return region
    return ""


# ------------------------------------------------------------------------ QR codes


def _same(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def with_codes(fields: CardFields, codes: Sequence[QrContact]) -> CardFields:
    """The QR codes' fields win over the printed ones field by field (confidence 1.0);
    printed fields fill what the codes lack; where both say something different, the
    printed value is kept as a disagreement for the reviewer."""
    if not codes:
        return fields
    differ: list[Disagreement] = []

    def pick(
        field: str, printed: Field, coded: str, same: Callable[[str, str], bool] = _same
    ) -> Field:
        if not coded:
            return printed
        if printed.value and not same(printed.value, coded):
            differ.append(Disagreement(field, coded, printed.value))
        return Field(coded, 1.0)

    first = {
        key: next((getattr(c, key) for c in codes if getattr(c, key)), "")
        for key in ("name", "org", "title", "website")
    }
    honorific = fields.honorific
    coded_name = first["name"]
    parsed = parse_name(coded_name) if coded_name else None
    if parsed is not None:
        coded_name = parsed.name
        honorific = Field(parsed.honorific, 1.0) if parsed.honorific else honorific
    # "www.acme.example" printed and "https://www.acme.example/" coded are the same site
    website = pick(
        "website", fields.website, first["website"], lambda a, b: _domain_of(a) == _domain_of(b)
    )
    coded_emails = [v for c in codes for e in c.emails if (v := _validated(e))]
    emails = [Field(e, 1.0) for e in dict.fromkeys(coded_emails)]
    if coded_emails and fields.emails and fields.email.value not in coded_emails:
        differ.append(Disagreement("email", coded_emails[0], fields.email.value))
    emails += [e for e in fields.emails if e.value not in coded_emails]
    phones: dict[str, Phone] = {}
    for number in (p for c in codes for p in c.phones):
        try:
            parsed_number = phonenumbers.parse(number, fields.region or "DE")
        except phonenumbers.NumberParseException:
            continue
        e164 = phonenumbers.format_number(parsed_number, phonenumbers.PhoneNumberFormat.E164)
        mobile = phonenumbers.number_type(parsed_number) == phonenumbers.PhoneNumberType.MOBILE
        phones.setdefault(e164, Phone(e164, "mobile" if mobile else "phone", 1.0))
    for phone in fields.phones:
        phones.setdefault(phone.number, phone)
    return replace(
        fields,
        name=pick("name", fields.name, coded_name),
        honorific=honorific,
        title=pick("title", fields.title, first["title"]),
        company=pick("company", fields.company, first["org"]),
        emails=tuple(emails),
        phones=tuple(phones.values()),
        website=website,
        disagreements=tuple(differ),
        qr=tuple(c.kind for c in codes),
    )


def extract(
    lines: Sequence[OcrLine], *, region: str = "DE", codes: Sequence[QrContact] = ()
) -> CardFields:
    """All fields of one card from its OCR lines (any order; sorted top to bottom here)
    and the contents of its QR codes; `region` is the fallback for phone numbers."""
    ordered = sorted(
        (OcrLine(clean(ln.text), ln.box, ln.score) for ln in lines if clean(ln.text)),
        key=lambda ln: (ln.center[1], ln.center[0]),
    )
    website = find_website(ordered)
    emails = find_emails(ordered, website)
    said = card_region(ordered, emails, website)
    phone_region = said or region
    name, honorific, name_line = find_name(ordered, emails, website, phone_region)
    fields = CardFields(
        name=name,
        honorific=honorific,
        title=find_title(ordered, name_line, phone_region),
        company=find_company(ordered, emails, website, phone_region, name_line),
        emails=emails,
        phones=find_phones(ordered, phone_region),
        website=website,
        raw_text=" | ".join(ln.text for ln in ordered),
        region=phone_region,
        region_assumed=not said,
    )
    return with_codes(fields, codes)
