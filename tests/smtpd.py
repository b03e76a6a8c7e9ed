"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests, with injectable faults.

    with SmtpServer(starttls=True, auth=("user", "secret")) as server:
        server.fault("slow@example.com", Fault(reply="451 4.7.1 later", times=1))
        ... send with server.settings() and server.client_tls() ...
        assert server.recipients() == [...]

It runs in a thread of the test process, so a sender in a subprocess (kill
tests) talks to it like to any server.  Every accepted message is logged with
its envelope, Message-ID and raw bytes (`received`); refused, dropped or
stalled messages are not, because the server did not take them.

Faults, per recipient, optionally only for the first N times:
- `Fault(reply="450 ...")`: that reply to RCPT TO (stage "rcpt"), to MAIL FROM
  (stage "mail", keyed by the sender), to the DATA command instead of its 354
  (stage "354") or to the end of DATA (stage "data");
- `Fault(reply="421 ...", action="close")`: that reply, then the connection
  closed, with whatever the client pipelined behind that command thrown away
  unanswered (what a 421 means, RFC 5321 3.8); at any stage a reply can be;
- `Fault(action="drop", stage=...)`: close the connection without a reply, at
  one phase of the transaction: "mail" (on MAIL FROM; this fault is keyed by
  the sender's address, the only one known then), "rcpt" (on RCPT TO),
  "354" (right after the 354 go-ahead), "body" (after `body_bytes` of the
  content), "data" (after the final dot: a crash or network cut before the
  reply);
- `Fault(action="stall")`: at the final dot, wait `stall_seconds` without
  replying (set it past the client's timeout), then drop the connection;
- `delivered=True` with a drop or stall at "data": the server keeps the message
  (logs it in `received`) before going silent, the case RFC 1047 describes;
and per server: `close_after=N` answers the (N+1)-th MAIL on a connection
with 421 and closes it, unanswered what came behind it (a per-connection
message limit); `idle_timeout`
closes connections idle that long; `data_delay` makes every end-of-DATA reply
wait (so that transactions are in flight when a test interrupts the sender);
`recv_buffer` fixes the connections' kernel receive buffer (drops inside the
body of a large message then happen while the client is still writing).

PIPELINING (RFC 2920): `SmtpServer(pipelining=True)` offers it (aiosmtpd reads
commands line by line, so a group is answered in order); `pipelined` counts the
MAIL commands that arrived together with what followed them, and `after_dot`
those that were in the server's input already when it answered the previous
message's final dot (pipelining across messages: the dot of one message in
the same write as MAIL, RCPT and DATA of the next; `data_delay` makes sure
the whole write is in before the dot is answered).  Servers that offer it and
cannot take it: `pipelining="flush"` throws away what arrived with a MAIL (the
rest of the group goes unanswered), `pipelining="flush-dot"` throws away what
arrived with a final dot (some servers flush their input at the end of DATA:
the next message's commands go unanswered), `pipelining="refuse"` answers a
RCPT that came with its MAIL "503 bad sequence"; `flushed` counts the throws.
The default offers no PIPELINING: commands come one at a time.

Hooks, to act at an exact point of the exchange (interrupt or kill the client
while the server holds its reply): `server.on(address, stage, call)` runs
`call()` (in a thread, once) when that stage of that recipient's transaction
is reached, before the server answers it: "mail" (keyed by the sender), "rcpt",
"354" (before the go-ahead) or "data" (the final dot has been read).
`go_aheads` lists the recipients given a 354, in order: only they can have
had their content sent.

OAuth2: `SmtpServer(starttls=True, oauth=check)` also offers XOAUTH2 and
OAUTHBEARER (RFC 7628), accepting a token when `check(user, token)` is true and
answering others as Gmail does (a 334 error challenge, then 535);
`mechanisms=("XOAUTH2",)` offers only some of them.  `handler.tokens` lists
every (mechanism, token, accepted) login try.

Logins: `logins` counts accepted ones, `auth_attempts` every password login
tried, `events` the order of "ehlo" (every EHLO, the one after STARTTLS too)
and "auth" (a password login tried).  `greeted_together=N` holds every EHLO
reply until N EHLOs have arrived (or 3 s passed): a client that opens N
sessions at once gets them all greeted before any of them can log in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP, SMTPUTF8
from email.utils import make_msgid
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServerProtocol
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from mailer.config import SmtpSettings
from mailer.models import Draft

# aiosmtpd 1.4 logs a warning about its own legacy attribute on every successful AUTH
logging.getLogger("mail.log").addFilter(
    lambda record: "login_data is deprecated" not in record.getMessage()
)


@dataclass(frozen=True, slots=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str | None
    data: bytes
    connection: int  # which connection carried it (1, 2, ...)
    started: float = 0.0  # time.monotonic() when its MAIL FROM arrived


@dataclass(slots=True)
class Fault:
    reply: str = "451 4.3.0 Temporary failure, try again later"
    stage: str = "rcpt"  # "mail", "rcpt", "354", "body" or "data"
    action: str = "reply"  # "reply", "close" (reply, then close), "drop" or "stall"
    times: int | None = None  # only the first N times; None = always
    delivered: bool = False  # drop/stall at "data": the message was taken first
    body_bytes: int = 4096  # stage "body": how much content arrives before the drop


class FaultHandler:
    """aiosmtpd handler: accepts and logs, unless a fault says otherwise."""

    def __init__(self, close_after: int | None, stall_seconds: float, data_delay: float,
                 pipelining: bool | str = False) -> None:
        self.pipelining = pipelining
        self.pipelined = 0  # MAIL commands that came together with the next command
        self.after_dot = 0  # MAIL commands in before the previous final dot was answered
        self.flushed = 0  # times a "flush" or "flush-dot" server threw input away
        self.go_aheads: list[str] = []  # recipients given a 354, in order
        self.hooks: dict[tuple[str, str], Callable[[], object]] = {}
        self.close_after = close_after
        self.stall_seconds = stall_seconds
        self.data_delay = data_delay
        self.faults: dict[str, Fault] = {}
        self.received: list[Received] = []
        self.connections = 0
        self.logins = 0
        self.auth_attempts = 0
        self.events: list[str] = []  # "ehlo" and "auth", in the order they came
        self.greeted_together = 0
        self._all_greeted: asyncio.Event | None = None  # made in the server's loop
        self.lock = threading.Lock()
        self.oauth: Callable[[str, str], bool] | None = None
        self.tokens: list[tuple[str, str, bool]] = []  # (mechanism, token, accepted)

    async def _token_login(self, server: SMTPServerProtocol, args: list[str], mechanism: str,
                           parse: Callable[[str], tuple[str, str]]) -> AuthResult:
        try:
            if len(args) > 1:
                blob = base64.b64decode(args[1], validate=True)
            else:
                answer = await server.challenge_auth("")
                if not isinstance(answer, bytes):
                    return AuthResult(success=False, handled=True)
                blob = answer
            user, token = parse(blob.decode())
        except (ValueError, KeyError, StopIteration):
            return AuthResult(success=False, handled=False,
                              message="501 5.5.2 malformed " + mechanism)
        ok = self.oauth is not None and self.oauth(user, token)
        with self.lock:
            self.tokens.append((mechanism, token, ok))
            if ok:
                self.logins += 1
        if ok:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        # the error challenge of RFC 7628 3.2.2 (and Gmail's XOAUTH2); the client answers it
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Username and Password not accepted")

    async def auth_XOAUTH2(self, server: SMTPServerProtocol, args: list[str]) -> AuthResult:
        def parse(text: str) -> tuple[str, str]:
            fields = dict(f.split("=", 1) for f in text.split("\x01") if f)
            return fields["user"], fields["auth"].removeprefix("Bearer ")
        return await self._token_login(server, args, "XOAUTH2", parse)

    async def auth_OAUTHBEARER(self, server: SMTPServerProtocol, args: list[str]) -> AuthResult:
        def parse(text: str) -> tuple[str, str]:
            gs2, *kvpairs = text.split("\x01")
            user = next(p[2:] for p in gs2.split(",") if p.startswith("a="))
            fields = dict(f.split("=", 1) for f in kvpairs if f)
            return (user.replace("=2C", ",").replace("=3D", "="),
                    fields["auth"].removeprefix("Bearer "))
        return await self._token_login(server, args, "OAUTHBEARER", parse)

    async def handle_EHLO(self, server: SMTPServerProtocol, session: Session,
                          envelope: Envelope, hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself without this hook
        with self.lock:
            self.events.append("ehlo")
            greeted = self.events.count("ehlo")
        if self.greeted_together:
            self._all_greeted = self._all_greeted or asyncio.Event()
            if greeted >= self.greeted_together:
                self._all_greeted.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_greeted.wait(), 3.0)
            self._all_greeted.set()  # after a time-out: the rest need not wait either
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")  # before the last line, "250 HELP"
        return responses

    async def hook(self, address: str, stage: str) -> None:
        """Run the hook set for this point of the exchange, if any (once)."""
        with self.lock:
            call = self.hooks.pop((address, stage), None)
        if call is not None:
            await asyncio.to_thread(call)

    def behind_dot(self, server: SMTPServerProtocol) -> None:
        """At the reply to a final dot: count (and for "flush-dot" throw away)
        the next message's commands that came before it."""
        unread: bytearray = server._reader._buffer  # type: ignore[attr-defined]
        if not unread:
            return
        with self.lock:
            self.after_dot += unread[:5].upper() == b"MAIL "
            if self.pipelining == "flush-dot":
                self.flushed += 1
                unread.clear()

    def take(self, address: str, stage: str) -> Fault | None:
        with self.lock:
            fault = self.faults.get(address)
            if fault is None or fault.stage != stage or fault.times == 0:
                return None
            if fault.times is not None:
                fault.times -= 1
            return fault

    async def handle_MAIL(self, server: SMTPServerProtocol, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if not hasattr(session, "number"):
            with self.lock:
                self.connections += 1
                session.number = self.connections  # type: ignore[attr-defined]
                session.messages = 0  # type: ignore[attr-defined]
        await self.hook(address, "mail")
        if self.close_after is not None and session.messages >= self.close_after:  # type: ignore[attr-defined]
            close_after_reply(server)
            return "421 4.7.0 Too many messages on this connection, closing"
        unread: bytearray = server._reader._buffer  # type: ignore[attr-defined]
        session.grouped = bool(unread)  # type: ignore[attr-defined]
        if unread:
            with self.lock:
                self.pipelined += 1
                if self.pipelining == "flush":
                    self.flushed += 1
                    unread.clear()
        fault = self.take(address, "mail")
        if fault is not None and fault.action == "drop":
            drop(server)
            return "451 never seen: the connection is gone"
        if fault is not None:
            return replied(server, fault)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        session.started = time.monotonic()  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_RCPT(self, server: SMTPServerProtocol, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        await self.hook(address, "rcpt")
        if self.pipelining == "refuse" and session.grouped:  # type: ignore[attr-defined]
            return "503 5.5.1 Bad sequence of commands"
        fault = self.take(address, "rcpt")
        if fault is not None and fault.action == "drop":
            drop(server)
            return "451 never seen: the connection is gone"
        if fault is not None:
            return replied(server, fault)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServerProtocol, session: Session,
                          envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            await self.hook(address, "data")
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        self.behind_dot(server)
        for address in envelope.rcpt_tos:
            fault = self.take(address, "data")
            if fault is None:
                continue
            if fault.action in ("reply", "close"):
                return replied(server, fault)
            if fault.delivered:
                self.log(session, envelope)
            if fault.action == "stall":
                await asyncio.sleep(self.stall_seconds)
            drop(server)
            return "451 never seen: the connection is gone"
        self.log(session, envelope)
        return "250 2.0.0 OK queued"

    def log(self, session: Session, envelope: Envelope) -> None:
        data = envelope.original_content or b""
        headers = BytesHeaderParser().parsebytes(data)
        with self.lock:
            self.received.append(Received(
                envelope.mail_from or "", tuple(envelope.rcpt_tos), headers.get("Message-ID"),
                data, session.number,  # type: ignore[attr-defined]
                session.started,  # type: ignore[attr-defined]
            ))
            session.messages += 1  # type: ignore[attr-defined]


def replied(server: SMTPServerProtocol, fault: Fault) -> str:
    """A fault's reply; with action "close", the connection closes right after it."""
    if fault.action == "close":
        close_after_reply(server)
    return fault.reply


def close_after_reply(server: SMTPServerProtocol) -> None:
    """Close once the reply now being given is out, reading nothing more: what the
    client pipelined behind this command stays unanswered."""
    server._reader._buffer.clear()  # type: ignore[attr-defined]
    asyncio.get_running_loop().call_soon(drop, server)


def drop(server: SMTPServerProtocol, *, at_once: bool = False) -> None:
    """Close the client's connection without a reply."""
    transport = server.transport
    assert isinstance(transport, asyncio.Transport)
    if at_once:
        transport.abort()
    else:
        transport.close()


class FaultSMTP(SMTPServerProtocol):
    """aiosmtpd's protocol with drops inside DATA: right after the 354, and in
    the middle of the content (aiosmtpd's handler hook only runs after the dot)."""

    async def smtp_DATA(self, arg: str) -> None:
        handler: FaultHandler = self.event_handler
        fault = None
        rcpt_tos = self.envelope.rcpt_tos if self.envelope is not None and not arg else []
        for address in rcpt_tos:
            await handler.hook(address, "354")
        for address in rcpt_tos:
            fault = handler.take(address, "354") or handler.take(address, "body")
            if fault is not None:
                break
        if fault is not None and fault.action in ("reply", "close") and fault.stage == "354":
            await self.push(replied(self, fault))
            return
        if rcpt_tos and self.session is not None and (
                self.session.authenticated or not self._auth_required):
            with handler.lock:
                handler.go_aheads.extend(rcpt_tos)
        if fault is None or fault.action != "drop":
            await super().smtp_DATA(arg)
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        if fault.stage == "body":
            await self._reader.readexactly(fault.body_bytes)
        drop(self, at_once=True)  # unread content or not (close() would shut TLS down first)
        await asyncio.sleep(0.05)  # connection_lost ends the session before the rest is read


class FaultController(Controller):
    def __init__(self, handler: FaultHandler, *, recv_buffer: int | None, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.recv_buffer = recv_buffer

    def factory(self) -> SMTPServerProtocol:
        return FaultSMTP(self.handler, **self.SMTP_kwargs)

    def _create_server(self) -> Any:
        if self.recv_buffer is None:
            return super()._create_server()
        # a fixed receive buffer (no autotuning) on the listening socket, which the
        # connections inherit: a client cannot park megabytes in it
        sock = socket.create_server((self.hostname, self.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.recv_buffer)
        return self.loop.create_server(self._factory_invoker, sock=sock, ssl=self.ssl_context)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    def __init__(
        self,
        *,
        starttls: bool = False,
        auth: tuple[str, str] | None = None,
        smtputf8: bool = True,
        close_after: int | None = None,
        idle_timeout: float = 300.0,
        stall_seconds: float = 3.0,
        data_delay: float = 0.0,
        oauth: Callable[[str, str], bool] | None = None,
        mechanisms: tuple[str, ...] | None = None,
        size_limit: int | None = None,
        recv_buffer: int | None = None,
        pipelining: bool | str = False,
        greeted_together: int = 0,
    ) -> None:
        self.handler = FaultHandler(close_after, stall_seconds, data_delay, pipelining)
        self.handler.greeted_together = greeted_together
        self.handler.oauth = oauth
        self.auth = auth
        self.starttls = starttls
        self._tmp = tempfile.TemporaryDirectory(prefix="smtpd-")
        self.ca_file = Path(self._tmp.name) / "ca.pem"
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8, "timeout": idle_timeout}
        if size_limit is not None:
            kwargs["data_size_limit"] = size_limit  # announced as SIZE
        if starttls:
            self.ca = trustme.CA()
            self.ca.cert_pem.write_to_path(str(self.ca_file))
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
            kwargs.update(tls_context=server_ctx, require_starttls=True)
        if auth is not None or oauth is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=starttls)
        all_mechanisms = ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER")
        offered = mechanisms or (all_mechanisms if oauth is not None else ("PLAIN", "LOGIN"))
        kwargs["auth_exclude_mechanism"] = [m for m in all_mechanisms if m not in offered]
        self.host = "127.0.0.1"
        self.port = free_port()
        self._controller = FaultController(self.handler, hostname=self.host, port=self.port,
                                           recv_buffer=recv_buffer, **kwargs)

    def _authenticate(self, server: SMTPServerProtocol, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        with self.handler.lock:
            self.handler.auth_attempts += 1
            self.handler.events.append("auth")
            self.handler.logins += ok
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._controller.stop()
        self._tmp.cleanup()

    # -- configuration for clients -------------------------------------------

    def fault(self, address: str, fault: Fault) -> None:
        with self.handler.lock:
            self.handler.faults[address] = fault

    def on(self, address: str, stage: str, call: Callable[[], object]) -> None:
        """Run `call()` once, when `stage` of `address`'s transaction is reached
        ("mail": keyed by the sender; "rcpt", "354", "data"), before the reply."""
        assert stage in ("mail", "rcpt", "354", "data"), stage
        with self.handler.lock:
            self.handler.hooks[(address, stage)] = call

    def settings(self, *, timeout: float = 5.0, password: str | None = None,
                 data_timeout: float = 5.0) -> SmtpSettings:
        user, secret = self.auth or ("", "")
        return SmtpSettings(
            host=self.host, port=self.port, security="starttls" if self.starttls else "none",
            username=user, password=secret if password is None else password, timeout=timeout,
            data_timeout=data_timeout,
        )

    def client_tls(self) -> ssl.SSLContext:
        """A client context trusting only this server's test CA."""
        ctx = ssl.create_default_context()
        if self.starttls:
            self.ca.configure_trust(ctx)
        return ctx

    def env(self) -> dict[str, str]:
        """MAILER_SMTP_* (and SSL_CERT_FILE) for a mailer subprocess."""
        s = self.settings()
        env = {"MAILER_SMTP_HOST": s.host, "MAILER_SMTP_PORT": str(s.port),
               "MAILER_SMTP_SECURITY": s.security, "MAILER_SMTP_USERNAME": s.username,
               "MAILER_SMTP_PASSWORD": s.password, "MAILER_SMTP_TIMEOUT": str(s.timeout),
               "MAILER_SMTP_DATA_TIMEOUT": str(s.data_timeout)}
        if self.starttls:
            env["SSL_CERT_FILE"] = str(self.ca_file)
        return env

    # -- what arrived -----------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def recipients(self) -> list[str]:
        """Every envelope recipient of every accepted message, repeats included."""
        return [r for m in self.received for r in m.rcpt_tos]

    @property
    def connections(self) -> int:
        return self.handler.connections

    @property
    def logins(self) -> int:
        return self.handler.logins

    @property
    def auth_attempts(self) -> int:
        return self.handler.auth_attempts

    @property
    def events(self) -> list[str]:
        with self.handler.lock:
            return list(self.handler.events)

    @property
    def pipelined(self) -> int:
        return self.handler.pipelined

    @property
    def after_dot(self) -> int:
        return self.handler.after_dot

    @property
    def flushed(self) -> int:
        return self.handler.flushed

    @property
    def go_aheads(self) -> list[str]:
        with self.handler.lock:
            return list(self.handler.go_aheads)


def make_draft(recipient: str, *, sender: str = "me@example.org", subject: str = "Hello") -> Draft:
    """A valid one-recipient Draft built directly (no Composer): the payload is
    an EmailMessage without Date, as message.Composer produces it."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    msg.set_content(f"Hello {recipient},\nhere are my channels.\n")
    smtputf8 = not recipient.isascii()
    policy = SMTPUTF8 if smtputf8 else SMTP
    return Draft(recipient=recipient, sender=sender, message_id=msg["Message-ID"], lang="en",
                 subject=subject, text=msg.get_content(), html="",
                 payload=msg.as_bytes(policy=policy), smtputf8=smtputf8)
