"""The mail providers mailer knows, in one table: what `mailer init` fills in, the
IMAP preset, the OAuth2 provider, and the SMTP hosts that recognise a provider when
no `--provider` is given.  The keys double as the `--provider` rate presets
(`ratelimit.PRESETS`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Provider:
    label: str
    host: str  # SMTP submission server; "" asks
    port: int = 587
    security: str = "starttls"
    auth: str = "password"  # the default: "password" or "oauth2"
    oauth_provider: str = ""  # "google" or "microsoft" when OAuth2 is possible
    tenant: str = ""
    hint: str = ""  # what the user needs for the password
    imap_host: str = ""
    copies_sent: bool = False  # files a copy of every mail sent through it in Sent itself
    other_hosts: tuple[str, ...] = ()  # more SMTP hosts of the same provider


PROVIDERS: dict[str, Provider] = {
    "gmail": Provider("Gmail", "smtp.gmail.com", oauth_provider="google",
                      hint="an app password (myaccount.google.com/apppasswords; needs 2-step "
                           "verification)",
                      imap_host="imap.gmail.com", copies_sent=True,
                      other_hosts=("smtp.googlemail.com",)),
    "workspace": Provider("Google Workspace", "smtp.gmail.com", oauth_provider="google",
                          hint="an app password, if your admin allows them",
                          imap_host="imap.gmail.com", copies_sent=True),
    "outlook": Provider("Outlook.com / Hotmail", "smtp-mail.outlook.com", auth="oauth2",
                        oauth_provider="microsoft", tenant="consumers",
                        imap_host="outlook.office365.com", other_hosts=("smtp.outlook.com",)),
    "m365": Provider("Microsoft 365", "smtp.office365.com", auth="oauth2",
                     oauth_provider="microsoft", tenant="organizations",
                     imap_host="outlook.office365.com"),
    "ionos": Provider("IONOS", "smtp.ionos.de", hint="your mailbox password",
                      imap_host="imap.ionos.de", other_hosts=("smtp.ionos.com",)),
    "generic": Provider("another provider", "",
                        hint="your mail password, or an app password where offered"),
}


def by_smtp_host(host: str) -> str | None:
    """The provider whose submission server this is (the first one listed, where
    two share a server); None for one mailer does not know."""
    host = host.strip().lower().rstrip(".")
    for name, provider in PROVIDERS.items():
        if host and (host == provider.host or host in provider.other_hosts):
            return name
    return None
