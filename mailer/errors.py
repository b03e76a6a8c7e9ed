"""The errors mailer raises, each with a message meant for the user.

    MailerError                 exit code 2 unless said otherwise
    ├── ConfigError             bad settings, options or profile.toml
    ├── InputError              a contacts file that cannot be read at all
    │   └── OcrUnavailable      an image was given but the OCR extra is missing
    ├── TemplateError           a template that does not compile or render
    ├── JournalError            the state database is unusable or locked
    │   └── JournalBusy         another process holds its write lock right now (retried)
    └── SmtpError               the SMTP server cannot be used for this run
        ├── ConnectError        cannot connect (host, port, network)
        ├── TlsError            TLS required but unavailable or failed
        └── AuthError           the server refused the login

Per-recipient SMTP replies (4xx, 5xx) are not exceptions at this level: they
become outcomes in the journal.  Third-party exceptions are translated into
this tree at the edge that calls the library, so the CLI only ever has to
catch `MailerError`.
"""

from __future__ import annotations


class MailerError(Exception):
    """Base class; `str(err)` is what the user reads."""

    exit_code = 2


class ConfigError(MailerError):
    """Settings, options or the profile are invalid."""


class InputError(MailerError):
    """A contacts file (or image) cannot be read at all."""


class OcrUnavailable(InputError):
    """Card images were given, but the optional OCR engine is not installed."""


class TemplateError(MailerError):
    """A template does not compile or does not render."""


class JournalError(MailerError):
    """The journal (SQLite state) cannot be used."""


class JournalBusy(JournalError):
    """Another process holds the journal's write lock right now (see `Journal.busy_wait`)."""


class SmtpError(MailerError):
    """The SMTP server cannot be used for this run; nobody is marked failed."""


class ConnectError(SmtpError):
    """Cannot open a connection to the SMTP server."""


class TlsError(SmtpError):
    """TLS is required but not offered, or the handshake failed."""


class AuthError(SmtpError):
    """The server refused the login."""
