"""The one e-mail address validator, and the one key addresses are compared by.

Import, the profile and `mailer suppress add` all ask `normalize_address`, so an
address is either valid everywhere or nowhere.  The journal, the plan's
duplicate merging and the suppression list all compare by `address_key`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from .sanitize import problem

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList


class InvalidAddress(ValueError):
    """An e-mail value that is not a usable address; str() says why."""


# RFC 2606 section 2 (and RFC 6761): top-level names reserved for tests, documentation
# and invalid addresses.  Exporters write them for placeholder contacts and examples use
# them, so an address under one is kept and the user sees it in the import.  "localhost"
# is reserved too, but it names this computer (RFC 6761 section 6.3): no contact's domain.
RESERVED_TLDS = frozenset({"example", "test", "invalid"})
# "invalid" alone is a placeholder written on purpose ("sure to be invalid and obviously
# so at a glance", RFC 2606), as Thunderbird's export does for a contact without an
# address; a bare "example" or "test" is rather a domain cut short ("@example" for
# "@example.com"), so the no-dot rule refuses those.
_DOTLESS_PLACEHOLDER = "invalid"
_STAND_IN = ".example.com"  # a neutral domain that email-validator's policy accepts


def normalize_address(raw: str) -> str:
    """A validated address, trimmed, domain lower-cased (IDN in Unicode form).

    The domain must have a dot and end in a real top-level domain (the ICANN part of
    the Public Suffix List, which carries every TLD of IANA's root zone): `klaus@gmx`,
    `klaus@gmx.d` and `klaus@example` can never be delivered.  Names under a
    RESERVED_TLDS top level (".invalid", ".test", ".example") and the placeholder
    "@invalid" are kept: email-validator refuses them by policy, so they are validated
    with a neutral stand-in domain.

    A value with a control or format character or "=?" is refused, never cleaned:
    removing characters from an address can turn it into someone else's."""
    # slow to import; not for `status`
    from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

    text = raw.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].strip()
    if not text:
        raise InvalidAddress("empty")
    why = problem(text)
    if why:
        raise InvalidAddress(why)
    local, at, domain = text.rpartition("@")
    # special-use names get mailer's own reason below, not email-validator's
    special = bool(at) and _top_label(domain) in {*RESERVED_TLDS, *SPECIAL_USE_DOMAIN_NAMES}
    candidate = f"{local}@{domain}{_STAND_IN}" if special else text
    try:
        result = validate_email(
            candidate,
            check_deliverability=False,
            allow_smtputf8=True,
            allow_display_name=True,  # "Ada Lovelace <ada@example.com>" in one cell
            globally_deliverable=False,  # mailer says why in its own words: _domain_problem
        )
    except EmailNotValidError as err:
        raise InvalidAddress(str(err)) from None
    ascii_domain = result.ascii_domain.removesuffix(_STAND_IN) if special else result.ascii_domain
    why = _domain_problem(ascii_domain)
    if why:
        raise InvalidAddress(why)
    if special:
        return f"{result.local_part}@{result.domain.removesuffix(_STAND_IN)}"
    return result.normalized


def _top_label(domain: str) -> str:
    return domain.strip().rstrip(".").rpartition(".")[2].lower()


def _domain_problem(ascii_domain: str) -> str:
    """Why no mail can reach this (syntactically valid) domain, or ""."""
    from email_validator import SPECIAL_USE_DOMAIN_NAMES

    top = _top_label(ascii_domain)
    if "." not in ascii_domain.rstrip(".") and ascii_domain != _DOTLESS_PLACEHOLDER:
        return (
            f"the domain '{ascii_domain}' has no dot; a mail domain ends in a top-level "
            f"domain such as '.com' or '.de' (a typo?)"
        )
    if top in RESERVED_TLDS:
        return ""
    if top in SPECIAL_USE_DOMAIN_NAMES:  # .localhost, .local, .onion, .arpa
        return f"'.{top}' is a special-use name (IANA's registry of them) that no mail reaches"
    if not is_top_level_domain(top):
        return (
            f"'.{top}' is not a top-level domain that mail is delivered to (a typo? "
            f"placeholders use '.invalid' or '.example')"
        )
    return ""


def is_top_level_domain(label: str) -> bool:
    """Is this lower-case ASCII label a delegated top-level domain.  An internationalised
    one ("xn--p1ai") is looked up in the Unicode form the list writes ("рф")."""
    if label.startswith("xn--"):
        try:
            label = label.encode("ascii").decode("idna")  # checks that it round-trips
        except UnicodeError:
            return False
    return _top_level_domains().is_public(label)


@cache
def _top_level_domains() -> PublicSuffixList:
    """The ICANN section of the Public Suffix List, shipped inside `publicsuffixlist`:
    every delegated TLD and nothing guessed for the rest.  Read as the list writes it,
    without an ASCII copy of each of its ~7,000 names: a third of the time (~8 ms
    instead of ~23 ms at every send's start), and only a TLD is ever looked up."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True, accept_unknown=False, accept_encoded_idn=False)


def address_key(email: str) -> str:
    """The key for dedupe, "mailed before" and suppression: the whole address,
    case-folded.  RFC 5321 lets a server treat local parts case-sensitively, but
    mail providers do not, and erring this way never mails anyone twice and
    never mails a suppressed "Ben@" as "ben@"."""
    return email.strip().lower()
