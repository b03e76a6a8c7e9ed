"""One IMAP connection to the user's own mailbox, over IMAPClient.

Used for the way back: appending copies of sent mail to the folder marked
`\\Sent` (RFC 6154 SPECIAL-USE) and reading the inbox for bounces, replies and
unsubscribe requests.  The inbox is opened with EXAMINE (read-only) and
fetched with BODY.PEEK, so reading it changes no flag, not even `\\Seen`.

TLS is required for every host but loopback (`config.imap_settings` refuses
the rest) and certificates are verified.  Every library or socket error
becomes an `ImapError` with a message for the user; the password never
appears in one.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from types import TracebackType

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from ..config import ImapSettings
from ..errors import ImapError, MailerError

FETCH_LIMIT = 1 << 20  # bytes of each inbox message read: enough for any bounce or reply
FETCH_BATCH = 50  # messages per FETCH, so memory stays bounded
SEARCH_PAGE = 5000  # messages per SEARCH: a reply of UIDs stays far below imaplib's 1 MB line
SENT = b"\\Sent"
_LITERAL = re.compile(rb"\{(\d{1,20})\}\r?\n?$")  # a line announcing a literal of n bytes

_ERRORS = (IMAPClientError, OSError)  # OSError covers timeouts and ssl.SSLError


_CHECK = ("Check MAILER_IMAP_HOST, MAILER_IMAP_PORT and MAILER_IMAP_SECURITY (tls is usually "
          "port 993, starttls port 143).")


class Mailbox:
    """`with Mailbox(settings) as box:` connects, secures and logs in."""

    def __init__(self, settings: ImapSettings, *,
                 tls_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self._tls = tls_context
        self._client: IMAPClient | None = None

    @property
    def where(self) -> str:
        return f"the IMAP server {self.settings.host}:{self.settings.port}"

    def __enter__(self) -> Mailbox:
        s = self.settings
        tls = self._tls or ssl.create_default_context()  # verifies the certificate
        try:
            client = IMAPClient(s.host, port=s.port, ssl=s.security == "tls",
                                ssl_context=tls, timeout=s.timeout)
        except ssl.SSLError as err:
            raise ImapError(f"TLS with {self.where} failed: {err}. {_CHECK}") from None
        except _ERRORS as err:
            raise ImapError(f"Cannot connect to {self.where}: {err}. {_CHECK}") from None
        try:
            if s.security == "starttls":
                client.starttls(tls)
        except _ERRORS as err:
            client.shutdown()
            raise ImapError(f"STARTTLS with {self.where} failed: {err}. Check "
                            f"MAILER_IMAP_SECURITY and MAILER_IMAP_PORT (tls is usually port "
                            f"993, starttls port 143).") from None
        self._log_in(client)
        self._client = client
        return self

    def _log_in(self, client: IMAPClient) -> None:
        """LOGIN, or AUTHENTICATE XOAUTH2 with a token; the secret comes from the run's
        login (accounts.credentials), asked only now that the server is reached."""
        s, login = self.settings, self.settings.login
        try:
            secret = s.password if login is None else login.secret()
            if login is not None and login.oauth:
                client.oauth2_login(s.username, secret)
            else:
                client.login(s.username, secret)
        except LoginError:
            client.shutdown()
            raise ImapError(f"{self.where} refused the login for {s.username}. "
                            f"Check {self._refused_hint()}.") from None
        except _ERRORS as err:
            client.shutdown()
            raise ImapError(f"Cannot log in to {self.where}: {err}") from None
        except MailerError:
            client.shutdown()
            raise

    def _refused_hint(self) -> str:
        login = self.settings.login
        if login is not None and login.oauth:
            return "the OAuth2 sign-in (`mailer login`)"
        origin = login.origin() if login is not None else "password from MAILER_IMAP_PASSWORD"
        return f"MAILER_IMAP_USERNAME and the {origin} (many providers want an app password)"

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.logout()
            except _ERRORS:
                client.shutdown()

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise ImapError(f"Not connected to {self.where}.")
        return self._client

    def _fail(self, what: str, err: BaseException) -> ImapError:
        return ImapError(f"{self.where}: {what} failed: {err}")

    # -- Sent copies -----------------------------------------------------------

    def sent_folder(self) -> str:
        """The folder marked \\Sent, else MAILER_IMAP_SENT; an error if neither."""
        try:
            found = self.client.find_special_folder(SENT)
        except _ERRORS as err:
            raise self._fail("LIST", err) from None
        if found:
            return str(found)
        if self.settings.sent_folder:
            return self.settings.sent_folder
        raise ImapError(f"{self.where} marks no folder as \\Sent: name yours with "
                        f"MAILER_IMAP_SENT (e.g. MAILER_IMAP_SENT=Sent), or pass --no-sent-copy.")

    def has_message(self, folder: str, message_id: str) -> bool:
        """Whether the folder holds a message with this Message-ID header."""
        try:
            self.client.select_folder(folder, readonly=True)
            return bool(self.client.search(["HEADER", "Message-ID", message_id]))
        except _ERRORS as err:
            raise self._fail(f"searching {folder}", err) from None

    def append(self, folder: str, raw: bytes, when: datetime) -> None:
        """Store a message in the folder, flagged \\Seen, dated `when`."""
        try:
            self.client.append(folder, raw, flags=(b"\\Seen",), msg_time=when)
        except _ERRORS as err:
            raise self._fail(f"APPEND to {folder}", err) from None

    # -- the inbox -------------------------------------------------------------

    def examine(self, since: date, folder: str = "INBOX") -> tuple[int, list[int]]:
        """Open the folder read-only; its UIDVALIDITY and the UIDs of messages
        that arrived since that day (the server's internal date), searched
        page by page of SEARCH_PAGE messages."""
        try:
            status = self.client.select_folder(folder, readonly=True)
            count = int(status.get(b"EXISTS", 0))
            uids: set[int] = set()
            for first in range(1, count + 1, SEARCH_PAGE):
                last = min(first + SEARCH_PAGE - 1, count)
                uids.update(int(u) for u in self.client.search([f"{first}:{last}",
                                                                "SINCE", since]))
        except _ERRORS as err:
            raise self._fail(f"reading {folder}", err) from None
        self._bound_literals()
        return int(status.get(b"UIDVALIDITY", 0)), sorted(uids)

    def _bound_literals(self) -> None:
        """Enforce FETCH_LIMIT while reading: a literal announced larger than
        that is announced as FETCH_LIMIT bytes to the parser, and the rest is
        read in small pieces and dropped, so a hostile server's 400 MiB message
        costs time (bounded by `deadline`), not memory."""
        imap = self.client._imap
        readline: Callable[[], bytes] = imap.readline
        read: Callable[[int], bytes] = imap.read
        excess = 0

        def bounded_line() -> bytes:
            nonlocal excess
            line = readline()
            found = _LITERAL.search(line)
            if found and int(found[1]) > FETCH_LIMIT:
                excess = int(found[1]) - FETCH_LIMIT
                line = line[:found.start()] + b"{%d}\r\n" % FETCH_LIMIT
            return line

        def bounded_read(size: int) -> bytes:
            nonlocal excess
            data = read(size)
            while excess > 0:
                piece = read(min(excess, 1 << 16))
                if not piece:
                    break
                excess -= len(piece)
            return data

        imap.readline, imap.read = bounded_line, bounded_read

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """After `seconds`, cut the connection, even in the middle of a read
        (a server trickling a byte a second never times out a single read);
        the read in progress then fails with an ImapError."""

        def cut() -> None:
            with contextlib.suppress(OSError, AttributeError):
                self.client.socket().shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(seconds, cut)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def mark_read(self, folder: str, uids: list[int]) -> None:
        """Flag these messages \\Seen: the one change to the inbox, only when asked."""
        try:
            self.client.select_folder(folder)
            self.client.add_flags(uids, [b"\\Seen"])
        except _ERRORS as err:
            raise self._fail(f"flagging messages in {folder}", err) from None

    def fetch(self, uids: Iterable[int]) -> Iterator[tuple[int, bytes]]:
        """(uid, the message's first FETCH_LIMIT bytes) of the examined folder."""
        return ((uid, body) for uid, body, _ in self.fetch_dated(uids))

    def fetch_dated(self, uids: Iterable[int]) -> Iterator[tuple[int, bytes, datetime | None]]:
        """(uid, the message's first FETCH_LIMIT bytes, when it arrived) of the
        examined folder, read with BODY.PEEK so that no \\Seen flag is set."""
        wanted = list(uids)
        items = [f"BODY.PEEK[]<0.{FETCH_LIMIT}>".encode(), b"INTERNALDATE"]
        for start in range(0, len(wanted), FETCH_BATCH):
            batch = wanted[start:start + FETCH_BATCH]
            try:
                fetched = self.client.fetch(batch, items)
            except _ERRORS as err:
                raise self._fail("FETCH", err) from None
            for uid in batch:
                data = fetched.get(uid, {})
                body = next((v for k, v in data.items() if k.startswith(b"BODY[]")), None)
                arrived = data.get(b"INTERNALDATE")
                if isinstance(body, bytes):
                    yield uid, body, arrived if isinstance(arrived, datetime) else None
