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

from ..accounts.oauth import TokenSource
from ..config import SmtpSettings
from ..errors import AuthError
from ..sanitize import clean

OAUTH_MECHANISMS = ("oauthbearer", "xoauth2")  # the RFC 7628 one first where offered


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


async def _oauth_login(
    smtp: aiosmtplib.SMTP, settings: SmtpSettings, mechanism: str, token: str
) -> None:
    if mechanism == "oauthbearer":
        await _oauthbearer(smtp, settings, token)
    else:
        await smtp.auth_xoauth2(settings.username, token)


async def authenticate(smtp: aiosmtplib.SMTP, settings: SmtpSettings) -> str:
    """Log in on a connected, greeted session; returns the mechanism used."""
    where = f"{settings.host}:{settings.port}"
    methods = smtp.server_auth_methods
    offered = " ".join(m.upper() for m in methods) or "none"
    credentials = settings.credentials
    try:
        if isinstance(credentials, TokenSource):
            mechanism = next((m for m in OAUTH_MECHANISMS if m in methods), "")
            if not mechanism:
                raise AuthError(
                    f"{where} offers no OAuth2 login (XOAUTH2, OAUTHBEARER), only: {offered}. "
                    f"Check MAILER_SMTP_HOST, or set MAILER_SMTP_AUTH=password."
                )
            token = await asyncio.to_thread(credentials.access_token)
            try:
                await _oauth_login(smtp, settings, mechanism, token)
            except aiosmtplib.SMTPAuthenticationError as err:
                if err.code not in (334, 535):
                    raise
                token = await asyncio.to_thread(credentials.renew, token)  # once
                await _oauth_login(smtp, settings, mechanism, token)
            return mechanism.upper()
        if not methods:  # aiosmtplib would say "try connecting via TLS", often wrong here
            raise AuthError(
                f"{where} offers no login (no AUTH after EHLO), but MAILER_SMTP_USERNAME is "
                f"set. For a server that needs none (a local relay, `mailer capture`) remove "
                f"it; else check MAILER_SMTP_PORT and MAILER_SMTP_SECURITY (submission: 587 "
                f"with starttls, or 465 with tls)."
            )
        password = (
            settings.password if credentials is None
            else await asyncio.to_thread(credentials.password)
        )
        if "plain" in methods:
            await smtp.auth_plain(settings.username, password)
            return "PLAIN"
        if "login" in methods:
            await smtp.auth_login(settings.username, password)
            return "LOGIN"
        await smtp.login(settings.username, password)
        return "AUTH"
    except aiosmtplib.SMTPAuthenticationError as err:
        if isinstance(credentials, TokenSource):
            hint = ("the account must be allowed to use SMTP AUTH (Microsoft 365: "
                    "'Authenticated SMTP' in the mailbox's settings) and MAILER_SMTP_USERNAME "
                    "must be the address you signed in with")
        else:
            origin = credentials.origin() if credentials is not None else "MAILER_SMTP_PASSWORD"
            hint = (f"check MAILER_SMTP_USERNAME and the password (from {origin}); Gmail and "
                    f"many others want an app password")
        raise AuthError(f"{where} refused the login for {settings.username}: {err.code} "
                        f"{clean(err.message)}; {hint}.") from None
    except (aiosmtplib.SMTPException, OSError) as err:
        raise AuthError(f"Cannot log in to {where}: {clean(str(err))}") from None
