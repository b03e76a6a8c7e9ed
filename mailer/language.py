"""Which language a contact's mail is written in, and why.

`decide()` takes the first of these that names a language there are templates for:

1. the contact's own language (a language column, vCard LANG);
2. the country of a phone number written with its country code ("+49 ...",
   "0049 ..."; a national number's country was only assumed on import);
3. the country of an address's country-code TLD (".fr", ".co.uk");
4. the language of a business card's printed text (OCR);
5. the profile's `lang`.

A country stands for the languages that most of its people speak officially
(CLDR's territory data, through Babel): German for DE, AT, CH, LI and LU,
French for FR, ...  When there are no templates for that language, a known
country means English: a person we know is abroad is better served by English
than by the sender's own language.  So with the shipped de/en templates every
country but the German-speaking ones gets English, and a new template folder
(`fr/`) is picked up by the same rule without a change here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

import phonenumbers

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

    from .models import Contact

LINGUA_FRANCA = "en"
MAJORITY = 50.0  # percent of a country's people who speak a language, per CLDR
TEXT_CONFIDENCE = 0.5  # py3langid's normalised probability for a card's text
# IANA delegated .uk to the United Kingdom, whose ISO 3166 code is GB.
_TLD_COUNTRY = {"uk": "GB"}
# Addresses, URLs and numbers say nothing about the language of a card's words.
_NOT_WORDS = re.compile(r"\S*[@/:]\S*|\S*\.(com|org|net|io)\b\S*|[\d+()\-./]+", re.IGNORECASE)


class Decision(NamedTuple):
    lang: str
    why: str  # "+49 phone", ".fr address", "profile default", ...

    def __str__(self) -> str:
        # no lang: the profile's, not known here (`mailer contacts` without --profile)
        return f"{self.lang}: {self.why}" if self.lang else self.why


def decide(contact: Contact, profile_lang: str, available: Collection[str]) -> Decision:
    """The language of `contact`'s mail among the `available` template languages
    (see the module docstring for the order); `profile_lang` must be available."""
    if contact.lang:
        lang = _usable(contact.lang, available)
        if lang:
            return Decision(lang, f"language {contact.lang}")
    if contact.phone_country:
        lang = country_language(contact.phone_country, available)
        if lang:
            code = phonenumbers.country_code_for_region(contact.phone_country)
            return Decision(lang, f"+{code} phone")
    for address in contact.emails or (contact.email,):
        tld, country = address_country(address)
        if country:
            lang = country_language(country, available)
            if lang:
                return Decision(lang, f".{tld} address")
    if contact.text_lang:
        lang = _usable(contact.text_lang, available)
        if lang:
            return Decision(lang, f"card text in {contact.text_lang}")
    return Decision(profile_lang, "profile default")


def _usable(lang: str, available: Collection[str]) -> str | None:
    """`lang` when there are templates for it, else the lingua franca when there are."""
    code = lang.strip().lower().replace("_", "-").split("-")[0]
    if code in available:
        return code
    return LINGUA_FRANCA if LINGUA_FRANCA in available else None


def address_country(address: str) -> tuple[str, str | None]:
    """(top-level domain, ISO country or None when it is not a country's)."""
    tld = address.rpartition("@")[2].rstrip(".").rpartition(".")[2].lower()
    country = _TLD_COUNTRY.get(tld, tld.upper())
    if len(tld) != 2 or country not in _territories():
        return tld, None
    return tld, country


def country_language(country: str, available: Collection[str]) -> str | None:
    """The first of the country's majority languages with templates, else the lingua
    franca (when there are templates for it), else None."""
    for lang in country_languages(country):
        if lang in available:
            return lang
    return LINGUA_FRANCA if LINGUA_FRANCA in available else None


@cache
def country_languages(country: str) -> tuple[str, ...]:
    """The official languages spoken by a majority of the country, most spoken first
    ("LU" -> fr, lb, de; "BE" -> nl; "IN" -> none)."""
    ranked: list[tuple[float, str]] = []
    for code, info in _territories().get(country.upper(), {}).items():
        percent = float(info.get("population_percent", 0.0))
        if info.get("official_status") in ("official", "de_facto_official") and (
            percent >= MAJORITY
        ):
            ranked.append((percent, code.split("_")[0]))
    return tuple(dict.fromkeys(code for _percent, code in sorted(ranked, reverse=True)))


@cache
def _territories() -> Mapping[str, Mapping[str, Mapping[str, float | str]]]:
    """CLDR's languages per territory: {"CH": {"de": {"population_percent": 76.0,
    "official_status": "official"}, ...}, ...}."""
    from babel.core import get_global

    return get_global("territory_languages")


def text_language(text: str) -> str:
    """The language of a card's words ("de", "fr", ...), "" when unclear or when the
    optional identifier (py3langid, part of the OCR extra) is not installed."""
    words = _NOT_WORDS.sub(" ", text.replace("|", " "))
    if sum(ch.isalpha() for ch in words) < 12:
        return ""
    identifier = _identifier()
    if identifier is None:
        return ""
    lang, probability = identifier.classify(words)
    return str(lang) if probability >= TEXT_CONFIDENCE else ""


@cache
def _identifier() -> LanguageIdentifier | None:
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError:
        return None
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
