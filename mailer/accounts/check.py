"""`mailer check`: connect, secure, log in and read what the server offers, sending nothing.

Each step reports as it goes (`say`), and each failure raises an `SmtpError`
that names the setting to change.  The report covers the certificate (subject,
issuer, expiry), the extensions mailer cares about (SIZE, SMTPUTF8, PIPELINING,
8BITMIME, AUTH) and whether the largest message the profile produces fits
SIZE.  With a test draft, one message goes to the user's own address.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiosmtplib

from ..config import SmtpSettings
from ..errors import ConnectError, SmtpError, TlsError
from ..models import Contact, Draft
from ..sanitize import clean
from ..smtp.login import authenticate
from .credentials import PasswordSource
from .oauth import TokenSource

PORT_HINT = ("Check MAILER_SMTP_HOST, MAILER_SMTP_PORT and MAILER_SMTP_SECURITY "
             "(submission is port 587 with starttls, or 465 with tls).")


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
    """Run the checks; raises ConnectError, TlsError or AuthError with what to change."""
    s = settings
    where = f"{s.host}:{s.port}"
    if tls_context is None and s.security != "none":
        tls_context = ssl.create_default_context()
    smtp = aiosmtplib.SMTP(hostname=s.host, port=s.port, use_tls=s.security == "tls",
                           start_tls=False, tls_context=tls_context, timeout=s.timeout)
    try:
        try:
            banner = await smtp.connect()
        except aiosmtplib.SMTPConnectError as err:
            cause = err.__cause__
            if isinstance(cause, ssl.SSLError):
                raise TlsError(f"TLS with {where} failed: {clean(str(cause))}. "
                               f"{PORT_HINT}") from None
            raise ConnectError(f"Cannot connect to {where}: {clean(str(err))}. "
                               f"{connect_hint(err)}") from None
        except (aiosmtplib.SMTPException, OSError) as err:
            raise ConnectError(f"Cannot connect to {where}: {clean(str(err))}. {PORT_HINT}") \
                from None
        say(f"Connected to {where} ({s.security}): {clean(banner.message)[:120]}")
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPException as err:
            raise ConnectError(f"{where} does not accept EHLO: {clean(str(err))}") from None
        if s.security == "starttls":
            if not smtp.supports_extension("starttls"):
                raise TlsError(f"{where} does not offer STARTTLS. {PORT_HINT}")
            try:
                await smtp.starttls()
            except (aiosmtplib.SMTPException, OSError) as err:
                cause = err.__cause__ or err
                raise TlsError(
                    f"STARTTLS with {where} failed: {clean(str(cause))}. The certificate must "
                    f"match MAILER_SMTP_HOST: use the name your provider documents."
                ) from None
            await smtp.ehlo()
        if s.security != "none":
            tls = smtp.get_transport_info("ssl_object")
            cert = tls.getpeercert() if tls is not None else None
            if cert:
                text, left = describe_certificate(cert, time.time())
                say(f"TLS: {tls.version()}, {text}")
                if left < 14 * 86400:
                    say("  warning: the certificate expires within two weeks")
        else:
            say("TLS: none (plain text; allowed on loopback only)")
        extensions = {k.lower(): v for k, v in smtp.esmtp_extensions.items()}
        size_limit: int | None = None
        if "size" in extensions:
            try:
                size_limit = int(extensions["size"].split()[0] or 0)
            except (ValueError, IndexError):
                size_limit = 0
        flags = {name: ("yes" if name.lower() in extensions else "no")
                 for name in ("SMTPUTF8", "PIPELINING", "8BITMIME")}
        size_text = (f"{size_limit / 1048576:.1f} MiB" if size_limit else
                     "no limit" if size_limit == 0 else "not announced")
        say(f"Server offers: SIZE {size_text}, " + ", ".join(f"{k} {v}" for k, v in
                                                             flags.items())
            + f", AUTH {clean(extensions.get('auth', '')) or '(none)'}")
        mechanism = ""
        if s.username:
            mechanism = await authenticate(smtp, s)
            say(f"Logged in as {s.username} with {mechanism} ({_origin(s)})")
        elif "auth" in extensions:
            say("No login configured (MAILER_SMTP_USERNAME is empty); the server offers AUTH, "
                "and most providers require it for sending.")
        fits = True
        if largest is not None:
            fits = not size_limit or largest <= size_limit
            verdict = "fits" if fits else "does NOT fit"
            say(f"Largest message the profile produces: {largest / 1024:.1f} kB, {verdict} "
                f"the server's SIZE limit" + ("" if size_limit else " (none announced)"))
        if test_message is not None:
            try:
                _, reply = await smtp.sendmail(test_message.sender, [test_message.recipient],
                                               test_message.wire())
            except aiosmtplib.SMTPResponseException as err:
                raise SmtpError(f"{where} refused the test message: {err.code} "
                                f"{clean(err.message)}") from None
            except aiosmtplib.SMTPException as err:
                raise SmtpError(f"Sending the test message failed: {clean(str(err))}") \
                    from None
            say(f"Sent a test message to {test_message.recipient}: {clean(reply)[:120]}")
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.quit()
        return CheckResult(extensions, size_limit, mechanism, fits)
    finally:
        smtp.close()


def connect_hint(err: Exception) -> str:
    """The setting a failed connection most likely points at."""
    cause = err.__cause__
    if isinstance(cause, socket.gaierror):
        return "Check MAILER_SMTP_HOST: the name does not resolve (a typo, or no network)."
    if isinstance(cause, ConnectionRefusedError):
        return "Check MAILER_SMTP_PORT: nothing listens there (submission is 587 or 465)."
    if isinstance(err, aiosmtplib.SMTPConnectTimeoutError):
        return ("No greeting came: check MAILER_SMTP_SECURITY and MAILER_SMTP_PORT (port 465 "
                "wants tls, 587 starttls), or a firewall blocking the port.")
    return PORT_HINT


def _origin(settings: SmtpSettings) -> str:
    creds = settings.credentials
    if isinstance(creds, TokenSource):
        return f"OAuth2 token for {creds.settings.provider.name}, refresh token from the keyring"
    if isinstance(creds, PasswordSource):
        return f"password from {creds.origin()}"
    return "password from the settings"
