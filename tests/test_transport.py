"""The SMTP connection against a real aiosmtpd: TLS, login once, reconnects, replies."""

from __future__ import annotations

import asyncio
import ssl
import time

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.config import SmtpSettings, smtp_settings
from mailer.errors import AuthError, ConfigError, ConnectError, TlsError
from mailer.smtp.transport import NO_SMTPUTF8, Connection, Lost, NoFinalReply, Reply, stuffed
from tests.smtpd import Fault, SmtpServer, free_port, make_draft


def send_all(conn: Connection, addresses: list[str]) -> list[Reply]:
    async def main() -> list[Reply]:
        replies = []
        for address in addresses:
            d = make_draft(address)
            replies.append(await conn.send(d.sender, d.recipient, d.payload,
                                           smtputf8=d.smtputf8))
        await conn.quit()
        return replies

    return asyncio.run(main())


def addresses(n: int) -> list[str]:
    return [f"t{i}@example.com" for i in range(n)]


def test_starttls_and_one_login_for_many_messages() -> None:
    with SmtpServer(starttls=True, auth=("me@example.org", "s3cret")) as server:
        conn = Connection(server.settings(), tls_context=server.client_tls())
        replies = send_all(conn, addresses(5))
        assert [r.code for r in replies] == [250] * 5
        assert server.recipients() == addresses(5)
        assert (server.logins, server.connections) == (1, 1)


def test_wrong_password_is_an_auth_error() -> None:
    with SmtpServer(starttls=True, auth=("me@example.org", "s3cret")) as server:
        conn = Connection(server.settings(password="wrong"), tls_context=server.client_tls())
        with pytest.raises(AuthError, match=r"refused the login for me@example\.org"):
            asyncio.run(conn.connect())
        assert server.received == []


def test_an_opened_session_logs_in_only_when_asked_and_is_taken_up() -> None:
    """open() greets without AUTH; connect() then logs in on that same session
    (no second EHLO), and a session the server has closed since is opened anew."""
    with SmtpServer(starttls=True, auth=("me@example.org", "s3cret")) as server:
        conn = Connection(server.settings(), tls_context=server.client_tls())

        async def main() -> tuple[list[str], bool]:
            await conn.open()
            opened = (server.events, conn.connected)
            await conn.connect()
            assert conn.connected and server.events == ["ehlo", "ehlo", "auth"]
            conn.close()
            await conn.open()
            assert conn._opened is not None
            conn._opened.close()  # as when the server drops an idle session
            await conn.connect()
            await conn.quit()
            return opened

        assert asyncio.run(main()) == (["ehlo", "ehlo"], False)  # STARTTLS: EHLO twice
        assert server.events[3:] == ["ehlo", "ehlo", "ehlo", "ehlo", "auth"]
        assert server.auth_attempts == server.logins == 2


def test_untrusted_certificate_is_a_tls_error() -> None:
    """The default context verifies certificates: the test CA is not trusted."""
    with SmtpServer(starttls=True, auth=("u", "p")) as server:
        conn = Connection(server.settings(), tls_context=ssl.create_default_context())
        with pytest.raises(TlsError, match="STARTTLS"):
            asyncio.run(conn.connect())


def test_starttls_wanted_but_not_offered_is_a_tls_error() -> None:
    with SmtpServer() as server:
        settings = SmtpSettings(host=server.host, port=server.port, security="starttls")
        with pytest.raises(TlsError, match="MAILER_SMTP_SECURITY"):
            asyncio.run(Connection(settings).connect())


def test_nobody_listening_is_a_connect_error_naming_the_settings() -> None:
    port = free_port()
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none", timeout=2)
    with pytest.raises(ConnectError) as caught:
        asyncio.run(Connection(settings).connect())
    message = str(caught.value)
    assert message.startswith(
        f"Cannot connect to the SMTP server 127.0.0.1:{port}: Connection refused. "
    )
    assert "Check MAILER_SMTP_PORT: nothing listens there" in message
    assert "MAILER_SMTP_SECURITY=none usually goes with port 25." in message


def test_per_connection_limit_reconnects_transparently() -> None:
    with SmtpServer(starttls=True, auth=("u", "p"), close_after=2) as server:
        conn = Connection(server.settings(), tls_context=server.client_tls())
        replies = send_all(conn, addresses(5))
        assert [r.code for r in replies] == [250] * 5
        assert server.recipients() == addresses(5)
        assert server.logins == 3  # 2 + 2 + 1 messages


def test_idle_connection_closed_by_the_server_reconnects_transparently() -> None:
    with SmtpServer(idle_timeout=0.3) as server:
        conn = Connection(server.settings())

        async def main() -> list[int]:
            codes = []
            for address in addresses(2):
                d = make_draft(address)
                codes.append((await conn.send(d.sender, d.recipient, d.payload,
                                              smtputf8=False)).code)
                await asyncio.sleep(0.8)  # the server drops us meanwhile
            return codes

        assert asyncio.run(main()) == [250, 250]
        assert server.recipients() == addresses(2)
        assert server.connections == 2


def test_refused_recipient_leaves_the_connection_usable() -> None:
    with SmtpServer() as server:
        server.fault("t1@example.com", Fault(reply="550 5.1.1 No such user"))
        server.fault("t2@example.com", Fault(reply="554 5.7.1 Rejected", stage="data"))
        replies = send_all(Connection(server.settings()), addresses(4))
        assert [str(r) for r in replies[1:3]] == ["550 5.1.1 No such user", "554 5.7.1 Rejected"]
        assert [r.code for r in (replies[0], replies[3])] == [250, 250]
        assert server.recipients() == ["t0@example.com", "t3@example.com"]
        assert server.connections == 1


def test_smtputf8_address_needs_the_extension() -> None:
    with SmtpServer(smtputf8=False) as server:
        replies = send_all(Connection(server.settings()), ["jürgen@example.com"])
        assert replies == [NO_SMTPUTF8]
        assert server.received == []
    with SmtpServer(smtputf8=True) as server:
        replies = send_all(Connection(server.settings()), ["jürgen@example.com"])
        assert replies[0].code == 250
        assert server.recipients() == ["jürgen@example.com"]


BIG = 8_000_000  # bytes of body: far more than the socket buffers hold (see below)


def big_payload(address: str) -> bytes:
    return make_draft(address).payload + (b"x" * 70 + b"\r\n") * (BIG // 72)


def attempt(conn: Connection, address: str, payload: bytes) -> str:
    async def main() -> str:
        try:
            return str(await conn.send("me@example.org", address, payload, smtputf8=False))
        except (Lost, NoFinalReply) as err:
            return f"{type(err).__name__}: {err}"

    return asyncio.run(main())


@pytest.mark.parametrize("stage", ["mail", "rcpt", "354", "body"])
@pytest.mark.parametrize("tls", [False, True])
def test_a_drop_before_the_final_dot_is_lost_nothing_delivered(stage: str, tls: bool) -> None:
    """A drop at MAIL, RCPT, right after 354 or in the middle of the body: the
    final dot was never written, so the message can be sent again.  The body is
    8 MB and the server's receive buffer fixed at 64 kB, so the drop inside DATA
    happens while mailer is still writing (with a small message the whole body
    and the dot may already be in the socket when the drop shows: that is
    reported as NoFinalReply, the safe side)."""
    with SmtpServer(starttls=tls, auth=("u", "p") if tls else None,
                    recv_buffer=65536) as server:
        faulty = "me@example.org" if stage == "mail" else "t0@example.com"  # MAIL: the sender
        server.fault(faulty, Fault(action="drop", stage=stage, times=1))
        conn = Connection(server.settings(), tls_context=server.client_tls())
        outcome = attempt(conn, "t0@example.com", big_payload("t0@example.com"))
        assert outcome.startswith("Lost: the server closed the connection"), outcome
        assert server.received == []
        assert attempt(conn, "t1@example.com", make_draft("t1@example.com").payload) == \
            "250 2.0.0 OK queued"  # a new connection, transparently
        assert server.recipients() == ["t1@example.com"]


@pytest.mark.parametrize("action", ["drop", "stall"])
def test_no_reply_to_the_final_dot_may_have_been_delivered(action: str) -> None:
    """RFC 1047's case: the server took the whole message, then closed or fell
    silent (past the data timeout, which is not the command timeout)."""
    with SmtpServer(stall_seconds=3.0) as server:
        server.fault("t0@example.com", Fault(action=action, stage="data", delivered=True))
        conn = Connection(server.settings(timeout=0.3, data_timeout=1.0))
        started = time.monotonic()
        outcome = attempt(conn, "t0@example.com", make_draft("t0@example.com").payload)
        waited = time.monotonic() - started
        assert outcome.startswith("NoFinalReply: "), outcome
        assert "may have been delivered" in outcome
        if action == "stall":
            assert "no reply within 1 s" in outcome
            assert waited >= 1.0  # the data timeout, not the 0.3 s command timeout
        assert server.recipients() == ["t0@example.com"]
        assert attempt(conn, "t1@example.com", make_draft("t1@example.com").payload) == \
            "250 2.0.0 OK queued"


def test_data_timeout_is_a_setting_of_its_own() -> None:
    env = {"MAILER_SMTP_HOST": "127.0.0.1", "MAILER_SMTP_SECURITY": "none"}
    assert smtp_settings(env).data_timeout == 600.0  # RFC 5321 4.5.3.2.6
    assert smtp_settings({**env, "MAILER_SMTP_DATA_TIMEOUT": "90"}).data_timeout == 90.0
    with pytest.raises(ConfigError, match="MAILER_SMTP_DATA_TIMEOUT"):
        smtp_settings({**env, "MAILER_SMTP_DATA_TIMEOUT": "soon"})


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.binary(max_size=200) | st.lists(st.sampled_from(
    [b".", b"..", b"\r", b"\n", b"\r\n", b"x", b" ", b"\r\n.\r\n"]), max_size=30).map(b"".join))
def test_the_content_is_stuffed_as_aiosmtplib_would_do_it(message: bytes) -> None:
    """Line ends and dots: the same bytes as aiosmtplib's two regular expressions."""
    assert stuffed(message) == PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message))
