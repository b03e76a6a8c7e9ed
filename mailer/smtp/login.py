"""The SMTP login step: PLAIN or LOGIN with a password, XOAUTH2 or OAUTHBEARER with a token.

One AUTH attempt with a password (trying every mechanism with a wrong password
only adds failed logins to the account's record).  With OAuth2, a refused
token (535, after the 334 error challenge of RFC 7628) is renewed once and
tried again: a token the provider revoked early, or one that expired while a
connection was idle, costs one refresh, not the run.  Every failure raises
`AuthError` with what to change; no message carries the secret.
"""

from __future__ import annotations

import asyncio
import base64

import aiosmtplib

from ..config import SmtpSettings
from ..errors import AuthError
from ..sanitize import clean

OAUTH_MECHANISMS = ("oauthbearer", "xoauth2")  # the RFC 7628 one first where offered
PASSWORD_MECHANISMS = ("plain", "login")


def _saslname(name: str) -> str:
    """RFC 5801's escaping of the authorization identity in the GS2 header."""
    return name.replace("=", "=3D").replace(",", "=2C")


async def _oauthbearer(smtp: aiosmtplib.SMTP, settings: SmtpSettings, token: str) -> None:
    """RFC 7628 section 3.1; on failure the server sends a 334 error challenge,
    answered with a lone %x01, and then its final 535."""
    message = (f"n,a={_saslname(settings.username)},\x01host={settings.host}\x01"
               f"port={settings.port}\x01auth=Bearer {token}\x01\x01")
    response = await smtp.execute_command(
        b"AUTH", b"OAUTHBEARER", base64.b64encode(message.encode())
    )
    if response.code == 334:
        response = await smtp.execute_command(base64.b64encode(b"\x01"))
    if response.code != 235:
        raise aiosmtplib.SMTPAuthenticationError(response.code, response.message)


async def authenticate(smtp: aiosmtplib.SMTP, settings: SmtpSettings) -> str:
    """Log in on a connected, greeted session; returns the mechanism used."""
    where = f"{settings.host}:{settings.port}"
    login = settings.login
    try:
        mechanism = _mechanism(smtp, settings, oauth=login is not None and login.oauth)
        secret = settings.password if login is None else await asyncio.to_thread(login.secret)
        try:
            await _login(smtp, settings, mechanism, secret)
        except aiosmtplib.SMTPAuthenticationError as err:
            again = None
            if login is not None and err.code in (334, 535):
                again = await asyncio.to_thread(login.renew, secret)  # a token: once
            if again is None:
                raise
            await _login(smtp, settings, mechanism, again)
        return mechanism.upper()
    except aiosmtplib.SMTPAuthenticationError as err:
        raise AuthError(f"{where} refused the login for {settings.username}: {err.code} "
                        f"{clean(err.message)}; {_refused_hint(settings)}.") from None
    except (aiosmtplib.SMTPException, OSError) as err:
        raise AuthError(f"Cannot log in to {where}: {clean(str(err))}") from None


def _mechanism(smtp: aiosmtplib.SMTP, settings: SmtpSettings, *, oauth: bool) -> str:
    """The SASL mechanism to use with this login, of those the server offers."""
    where = f"{settings.host}:{settings.port}"
    methods = smtp.server_auth_methods
    if oauth:
        mechanism = next((m for m in OAUTH_MECHANISMS if m in methods), "")
        if not mechanism:
            offered = " ".join(m.upper() for m in methods) or "none"
            raise AuthError(
                f"{where} offers no OAuth2 login (XOAUTH2, OAUTHBEARER), only: {offered}. "
                f"Check MAILER_SMTP_HOST, or set MAILER_SMTP_AUTH=password."
            )
        return mechanism
    if not methods:  # aiosmtplib would say "try connecting via TLS", often wrong here
        raise AuthError(
            f"{where} offers no login (no AUTH after EHLO), but MAILER_SMTP_USERNAME is "
            f"set. For a server that needs none (a local relay, `mailer capture`) remove "
            f"it; else check MAILER_SMTP_PORT and MAILER_SMTP_SECURITY (submission: 587 "
            f"with starttls, or 465 with tls)."
        )
    return next((m for m in PASSWORD_MECHANISMS if m in methods), "auth")


async def _login(smtp: aiosmtplib.SMTP, settings: SmtpSettings, mechanism: str,
                 secret: str) -> None:
    if mechanism == "oauthbearer":
        await _oauthbearer(smtp, settings, secret)
    elif mechanism == "xoauth2":
        await smtp.auth_xoauth2(settings.username, secret)
    elif mechanism == "plain":
        await smtp.auth_plain(settings.username, secret)
    elif mechanism == "login":
        await smtp.auth_login(settings.username, secret)
    else:
        await smtp.login(settings.username, secret)


def _refused_hint(settings: SmtpSettings) -> str:
    login = settings.login
    if login is not None and login.oauth:
        return ("the account must be allowed to use SMTP AUTH (Microsoft 365: 'Authenticated "
                "SMTP' in the mailbox's settings) and MAILER_SMTP_USERNAME must be the address "
                "you signed in with")
    origin = login.origin() if login is not None else "password from MAILER_SMTP_PASSWORD"
    return (f"check MAILER_SMTP_USERNAME and the {origin}; Gmail and many others want an app "
            f"password")
