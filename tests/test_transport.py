"""The SMTP connection against a real aiosmtpd: TLS, login once, reconnects, replies."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from mailer.config import SmtpSettings
from mailer.errors import AuthError, ConnectError, TlsError
from mailer.transport import NO_SMTPUTF8, Connection, Lost, Reply
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
    assert "Check MAILER_SMTP_HOST and MAILER_SMTP_PORT (in .env or the environment)" in message
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


def test_stall_past_the_timeout_and_drop_mid_data_are_lost_replies() -> None:
    with SmtpServer(stall_seconds=2.0) as server:
        server.fault("t0@example.com", Fault(action="stall", stage="data"))
        server.fault("t1@example.com", Fault(action="drop", stage="data"))
        conn = Connection(server.settings(timeout=0.5))

        async def main() -> list[str]:
            outcomes = []
            for address in addresses(3):
                d = make_draft(address)
                try:
                    outcomes.append(str((await conn.send(d.sender, d.recipient, d.payload,
                                                         smtputf8=False)).code))
                except Lost as err:
                    outcomes.append(f"lost: {err}")
            return outcomes

        outcomes = asyncio.run(main())
        assert outcomes[0].startswith("lost: no reply within 0.5 s")
        assert outcomes[1].startswith("lost: the server closed the connection")
        assert outcomes[2] == "250"
        assert server.recipients() == ["t2@example.com"]
