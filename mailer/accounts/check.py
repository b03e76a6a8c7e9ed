"""`mailer check`: connect, secure, log in and read what the server offers, sending nothing.

Each step reports as it goes (`say`), and each failure raises an `SmtpError`
that names the setting to change.  The report covers the certificate (subject,
issuer, expiry), the extensions mailer cares about (SIZE, SMTPUTF8, PIPELINING,
8BITMIME, AUTH) and whether the largest message the profile produces fits
SIZE.  With a test draft, one message goes to the user's own address.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiosmtplib

from ..config import SmtpSettings
from ..errors import SmtpError
from ..models import Contact, Draft
from ..sanitize import clean
from ..smtp.login import authenticate
from ..smtp.transport import open_session


@dataclass(frozen=True, slots=True)
class CheckResult:
    extensions: dict[str, str]
    size_limit: int | None  # SIZE in bytes; None: not announced, 0: no limit
    mechanism: str  # the AUTH mechanism used, "" without a login
    fits: bool  # the largest message fits SIZE (True when unknown)


def _name(parts: Any) -> str:
    """An X.509 name from ssl.getpeercert() as 'CN=..., O=...'."""
    pairs = [f"{k}={v}" for rdn in parts or () for k, v in rdn
             if k in ("commonName", "organizationName")]
    return ", ".join(p.replace("commonName", "CN").replace("organizationName", "O")
                     for p in pairs) or "(none)"


def describe_certificate(cert: dict[str, Any], now: float) -> tuple[str, float]:
    """'subject, issuer, valid until' and the seconds left."""
    expires = ssl.cert_time_to_seconds(cert["notAfter"])
    left = expires - now
    until = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d")
    names = ", ".join(v for _, v in cert.get("subjectAltName", ()))[:200] or "(none)"
    return (f"certificate subject {clean(_name(cert.get('subject')))} (names: {clean(names)}), "
            f"issued by {clean(_name(cert.get('issuer')))}, valid until {until} "
            f"({int(left // 86400)} days)"), left


def largest_message(drafts: list[Draft]) -> int:
    return max((len(d.wire()) for d in drafts), default=0)


def probe_contact(lang: str) -> Contact:
    """A contact with long fields, so the measured message is an upper bound."""
    return Contact(email="a.very.long.local-part.for.sizing@subdomain.example.com",
                   name="Maximiliane Alexandra von Hohenberg-Schwarzenfeld", org="O" * 80,
                   title="T" * 80, lang=lang)


async def check_account(
    settings: SmtpSettings,
    say: Callable[[str], None],
    *,
    tls_context: ssl.SSLContext | None = None,
    largest: int | None = None,
    test_message: Draft | None = None,
) -> CheckResult:
    """Run the checks; raises ConnectError, TlsError or AuthError with what to change.
    The connection is the sender's own (smtp/transport.py), so `check` fails the way
    `send` would, with the same words."""
    s = settings
    if tls_context is None and s.security != "none":
        tls_context = ssl.create_default_context()
    smtp, banner = await open_session(s, tls_context)
    try:
        say(f"Connected to {s.host}:{s.port} ({s.security}): {clean(banner)[:120]}")
        _report_tls(smtp, s, say)
        extensions = {k.lower(): v for k, v in smtp.esmtp_extensions.items()}
        size_limit = _size_limit(extensions)
        _report_extensions(extensions, size_limit, say)
        mechanism = await _log_in(smtp, s, "auth" in extensions, say)
        fits = True
        if largest is not None:
            fits = not size_limit or largest <= size_limit
            verdict = "fits" if fits else "does NOT fit"
            say(f"Largest message the profile produces: {largest / 1024:.1f} kB, {verdict} "
                f"the server's SIZE limit" + ("" if size_limit else " (none announced)"))
        if test_message is not None:
            await _send_test(smtp, s, test_message, say)
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.quit()
        return CheckResult(extensions, size_limit, mechanism, fits)
    finally:
        smtp.close()


def _report_tls(smtp: aiosmtplib.SMTP, s: SmtpSettings, say: Callable[[str], None]) -> None:
    if s.security == "none":
        say("TLS: none (plain text; allowed on loopback only)")
        return
    tls = smtp.get_transport_info("ssl_object")
    cert = tls.getpeercert() if tls is not None else None
    if cert:
        text, left = describe_certificate(cert, time.time())
        say(f"TLS: {tls.version()}, {text}")
        if left < 14 * 86400:
            say("  warning: the certificate expires within two weeks")


def _size_limit(extensions: dict[str, str]) -> int | None:
    """SIZE in bytes; None: not announced, 0: no limit (or unreadable)."""
    if "size" not in extensions:
        return None
    try:
        return int(extensions["size"].split()[0] or 0)
    except (ValueError, IndexError):
        return 0


def _report_extensions(extensions: dict[str, str], size_limit: int | None,
                       say: Callable[[str], None]) -> None:
    flags = {name: ("yes" if name.lower() in extensions else "no")
             for name in ("SMTPUTF8", "PIPELINING", "8BITMIME")}
    size_text = (f"{size_limit / 1048576:.1f} MiB" if size_limit else
                 "no limit" if size_limit == 0 else "not announced")
    say(f"Server offers: SIZE {size_text}, " + ", ".join(f"{k} {v}" for k, v in flags.items())
        + f", AUTH {clean(extensions.get('auth', '')) or '(none)'}")


async def _log_in(smtp: aiosmtplib.SMTP, s: SmtpSettings, offers_auth: bool,
                  say: Callable[[str], None]) -> str:
    """The mechanism used, "" without a login configured."""
    if s.username:
        mechanism = await authenticate(smtp, s)
        origin = s.login.origin() if s.login is not None else "password from the settings"
        say(f"Logged in as {s.username} with {mechanism} ({origin})")
        return mechanism
    if offers_auth:
        say("No login configured (MAILER_SMTP_USERNAME is empty); the server offers AUTH, "
            "and most providers require it for sending.")
    return ""


async def _send_test(smtp: aiosmtplib.SMTP, s: SmtpSettings, message: Draft,
                     say: Callable[[str], None]) -> None:
    where = f"{s.host}:{s.port}"
    try:
        _, reply = await smtp.sendmail(message.sender, [message.recipient], message.wire())
    except aiosmtplib.SMTPResponseException as err:
        raise SmtpError(f"{where} refused the test message: {err.code} "
                        f"{clean(err.message)}") from None
    except aiosmtplib.SMTPException as err:
        raise SmtpError(f"Sending the test message failed: {clean(str(err))}") from None
    say(f"Sent a test message to {message.recipient}: {clean(reply)[:120]}")
