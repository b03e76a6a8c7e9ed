"""The mail providers mailer knows, in one table: what `mailer init` fills in, the
IMAP preset, the OAuth2 provider, the published sending limits (the `--provider`
rate presets), and the SMTP hosts that recognise a provider when no `--provider` is
given."""

from __future__ import annotations

from dataclasses import dataclass

from ..smtp.pace import Rate


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
    rates: tuple[Rate, ...] = ()  # published sending limits; sources in the README


PROVIDERS: dict[str, Provider] = {
    "gmail": Provider("Gmail", "smtp.gmail.com", oauth_provider="google",
                      hint="an app password (myaccount.google.com/apppasswords; needs 2-step "
                           "verification)",
                      imap_host="imap.gmail.com", copies_sent=True,
                      other_hosts=("smtp.googlemail.com",),
                      # 500 recipients a day (support.google.com/mail/answer/22839)
                      rates=(Rate(20, 60.0), Rate(500, 86400.0))),
    "workspace": Provider("Google Workspace", "smtp.gmail.com", oauth_provider="google",
                          hint="an app password, if your admin allows them",
                          imap_host="imap.gmail.com", copies_sent=True,
                          # 2,000 messages a day per user (support.google.com/a/answer/166852)
                          rates=(Rate(30, 60.0), Rate(2000, 86400.0))),
    "outlook": Provider("Outlook.com / Hotmail", "smtp-mail.outlook.com", auth="oauth2",
                        oauth_provider="microsoft", tenant="consumers",
                        imap_host="outlook.office365.com", other_hosts=("smtp.outlook.com",),
                        # 1,000 non-relationship recipients a day for Microsoft 365
                        # subscribers, "lower for non-subscribers" (support.microsoft.com
                        # "Sending limits in Outlook.com"); 300 is what free accounts report
                        rates=(Rate(30, 60.0), Rate(300, 86400.0))),
    "m365": Provider("Microsoft 365", "smtp.office365.com", auth="oauth2",
                     oauth_provider="microsoft", tenant="organizations",
                     imap_host="outlook.office365.com",
                     # Exchange Online: 30 messages a minute, 10,000 recipients a day
                     # (learn.microsoft.com/.../exchange-online-limits#sending-limits)
                     rates=(Rate(30, 60.0), Rate(10000, 86400.0))),
    "ionos": Provider("IONOS", "smtp.ionos.de", hint="your mailbox password",
                      imap_host="imap.ionos.de", other_hosts=("smtp.ionos.com",),
                      # 500 e-mails an hour once the contract is 30 days old (50 in the
                      # first week) (ionos.com/help "What are the mass mailing limits?")
                      rates=(Rate(30, 60.0), Rate(500, 3600.0))),
    "generic": Provider("another provider", "",
                        hint="your mail password, or an app password where offered",
                        # unknown: modest, like a person sending by hand
                        rates=(Rate(20, 60.0), Rate(1000, 86400.0))),
}


def by_smtp_host(host: str) -> str | None:
    """The provider whose submission server this is (the first one listed, where
    two share a server); None for one mailer does not know."""
    host = _host(host)
    for name, provider in PROVIDERS.items():
        if host and (host == provider.host or host in provider.other_hosts):
            return name
    return None


def oauth_provider_of_smtp(host: str) -> str | None:
    """The OAuth2 provider ("google", "microsoft") of a known submission server."""
    known = by_smtp_host(host)
    return (PROVIDERS[known].oauth_provider or None) if known else None


def oauth_provider_of_imap(host: str) -> str:
    """The OAuth2 provider whose IMAP server this is, "" for none: where a token of
    that provider may go."""
    host = _host(host)
    return next((p.oauth_provider for p in PROVIDERS.values() if p.imap_host == host), "")


def _host(host: str) -> str:
    return host.strip().lower().rstrip(".")
