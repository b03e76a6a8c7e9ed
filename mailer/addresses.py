"""The one e-mail address validator, and the one key addresses are compared by.

Import, the profile and `mailer suppress add` all ask `normalize_address`, so an
address is either valid everywhere or nowhere.  The journal, the plan's
duplicate merging and the suppression list all compare by `address_key`.
"""

from __future__ import annotations

from .sanitize import problem


class InvalidAddress(ValueError):
    """An e-mail value that is not a usable address; str() says why."""


def normalize_address(raw: str) -> str:
    """A validated address, trimmed, domain lower-cased (IDN in Unicode form).

    Special-use domains (".invalid", "@invalid", ".test", ...) are syntactically
    fine, and exporters write them for placeholder contacts; email-validator
    refuses them by policy, so they are validated with a neutral stand-in
    domain and kept: the user sees them in the import and decides.

    A value with a control or format character or "=?" is refused, never cleaned:
    removing characters from an address can turn it into someone else's."""
    from email_validator import EmailNotValidError, validate_email  # slow; not for `status`

    text = raw.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].strip()
    if not text:
        raise InvalidAddress("empty")
    why = problem(text)
    if why:
        raise InvalidAddress(why)
    local, at, domain = text.rpartition("@")
    special = bool(at) and _is_special_use(domain)
    candidate = f"{local}@{domain}.example.com" if special else text
    try:
        result = validate_email(
            candidate,
            check_deliverability=False,
            allow_smtputf8=True,
            allow_display_name=True,  # "Ada Lovelace <ada@example.com>" in one cell
            globally_deliverable=False,
        )
    except EmailNotValidError as err:
        raise InvalidAddress(str(err)) from None
    if special:
        return f"{result.local_part}@{result.domain.removesuffix('.example.com')}"
    return result.normalized


def _is_special_use(domain: str) -> bool:
    from email_validator import SPECIAL_USE_DOMAIN_NAMES

    name = domain.strip().rstrip(".").lower()
    return any(name == d or name.endswith("." + d) for d in SPECIAL_USE_DOMAIN_NAMES)


def address_key(email: str) -> str:
    """The key for dedupe, "mailed before" and suppression: the whole address,
    case-folded.  RFC 5321 lets a server treat local parts case-sensitively, but
    mail providers do not, and erring this way never mails anyone twice and
    never mails a suppressed "Ben@" as "ben@"."""
    return email.strip().lower()
