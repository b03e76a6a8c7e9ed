"""Issue 24, items 3 and 4: the sign-in is bounded against local processes and hostile
endpoints, with real sockets on 127.0.0.1 (the provider is the stand-in of
tests/oauth_server.py).

- The redirect listener of the loopback flow serves each connection on its own with a
  per-request timeout, so an idle connection neither blocks the browser's redirect nor
  keeps `mailer login` from giving up at its timeout; an answer without this sign-in's
  `state` (`/?error=access_denied` from any local process) is ignored.
- Token and device requests never follow a redirect (a 307 would carry the refresh
  token and the client secret to wherever it points), and the device flow's `interval`
  and `expires_in` are bounded numbers."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from mailer.accounts import oauth
from mailer.accounts.oauth import Grant, OAuthSettings, TokenSource, save_grant
from mailer.errors import AuthError
from tests.bounds import deadline
from tests.oauth_server import OAuthServer

USER = "alex@example.com"


@pytest.fixture
def idp() -> Iterator[OAuthServer]:
    with OAuthServer(clients={"ms-client": None, "g-client": "g-secret"}) as server:
        yield server


def google(idp: OAuthServer) -> OAuthSettings:
    return OAuthSettings(oauth.OAUTH_PROVIDERS["google"], "g-client", client_secret="g-secret",
                         endpoint=idp.url)


def microsoft(idp: OAuthServer) -> OAuthSettings:
    return OAuthSettings(oauth.OAUTH_PROVIDERS["microsoft"], "ms-client", endpoint=idp.url)


def listener(text: str) -> tuple[str, str]:
    """The authorization URL `mailer login` shows, and its redirect listener's origin."""
    url = text.splitlines()[-1]
    return url, parse_qs(urlsplit(url).query)["redirect_uri"][0].rstrip("/")


def idle_connection(origin: str, stack: ExitStack, sent: bytes = b"") -> socket.socket:
    parts = urlsplit(origin)
    conn = stack.enter_context(socket.create_connection((parts.hostname, parts.port), 5))
    conn.sendall(sent)
    return conn


def browser(url: str) -> None:
    """The provider's page signs the user in and redirects to the listener."""
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and "close this window" in page.text


def sign_in(idp: OAuthServer, before: Callable[[str, ExitStack], None],
            timeout: float = 20) -> oauth.Tokens:
    with ExitStack() as stack:
        def show(text: str) -> None:
            url, origin = listener(text)
            before(origin, stack)
            browser(url)

        with deadline(10, "the loopback sign-in"):
            return oauth.loopback_flow(google(idp), show, open_browser=False, timeout=timeout)


# -- 3: the redirect listener -------------------------------------------------------------


def test_an_idle_connection_does_not_hold_up_the_browsers_redirect(idp: OAuthServer) -> None:
    def hold(origin: str, stack: ExitStack) -> None:
        idle_connection(origin, stack)
        idle_connection(origin, stack, b"GET /?code=")  # half a request line

    tokens = sign_in(idp, hold)
    assert tokens.refresh_token.startswith("rt-") and idp.grants == ["authorization_code"]


def test_the_sign_in_gives_up_at_its_timeout_whatever_a_connection_does(
    idp: OAuthServer,
) -> None:
    def show(text: str) -> None:  # the user never signs in; a local process holds a line
        idle_connection(listener(text)[1], stack, b"GET /?state=")

    with ExitStack() as stack, deadline(6, "giving up on the sign-in"), pytest.raises(
        AuthError, match="within 1 s"
    ):
        oauth.loopback_flow(google(idp), show, open_browser=False, timeout=1)


def test_a_connection_that_sends_nothing_is_closed_after_the_request_timeout(
    idp: OAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oauth, "REQUEST_TIMEOUT", 0.3)
    monkeypatch.setattr(oauth._Redirect, "timeout", 0.3)

    def closed(origin: str, stack: ExitStack) -> None:
        conn = idle_connection(origin, stack)
        conn.settimeout(3)
        assert conn.recv(100) == b""  # the listener hung up on it

    assert sign_in(idp, closed).refresh_token.startswith("rt-")


def test_connections_beyond_the_limit_are_closed_at_once(
    idp: OAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oauth, "MAX_CONNECTIONS", 3)

    def flood(origin: str, stack: ExitStack) -> None:
        held = [idle_connection(origin, stack) for _ in range(3)]
        extra = idle_connection(origin, stack)
        extra.settimeout(3)
        assert extra.recv(100) == b""  # no fourth thread
        for conn in held:
            conn.close()  # the browser's turn, once a thread has noticed
        for _ in range(100):
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{origin}/favicon.ico", timeout=1).status_code == 404:
                    break
            time.sleep(0.05)

    assert sign_in(idp, flood).refresh_token.startswith("rt-")


def test_a_local_process_cannot_end_or_answer_the_sign_in_without_the_state(
    idp: OAuthServer,
) -> None:
    def guess(origin: str, stack: ExitStack) -> None:
        for query in ("error=access_denied", "code=forged", "code=forged&state=guess",
                      "error=access_denied&state="):
            assert requests.get(f"{origin}/?{query}", timeout=5).status_code == 404

    tokens = sign_in(idp, guess)
    assert tokens.refresh_token.startswith("rt-") and idp.grants == ["authorization_code"]


def test_a_refusal_with_the_state_ends_the_sign_in(idp: OAuthServer) -> None:
    def show(text: str) -> None:  # the user presses "Cancel" at the provider
        url, origin = listener(text)
        state = parse_qs(urlsplit(url).query)["state"][0]
        requests.get(f"{origin}/?error=access_denied&state={state}", timeout=5)

    with deadline(10, "a declined sign-in"), pytest.raises(AuthError, match="access_denied"):
        oauth.loopback_flow(google(idp), show, open_browser=False, timeout=20)


# -- 4: token and device requests -----------------------------------------------------------


def approve(text: str) -> None:
    url, code = text.split("open ")[1].split(" in a browser and enter the code ")
    requests.post(url, data={"user_code": code}, timeout=5)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_the_device_flow_follows_no_redirect(idp: OAuthServer, status: int) -> None:
    idp.redirect_to_elsewhere(status)
    with pytest.raises(AuthError, match=rf"redirect \({status}\).*MAILER_OAUTH2_ENDPOINT"):
        oauth.device_flow(microsoft(idp), approve)
    assert idp.elsewhere == []


def test_a_refresh_follows_no_redirect(idp: OAuthServer) -> None:
    save_grant(USER, Grant(oauth.device_flow(microsoft(idp), approve).refresh_token,
                           "ms-client"))
    idp.redirect_to_elsewhere()
    with pytest.raises(AuthError, match="redirect"):
        TokenSource(microsoft(idp), USER).secret()
    assert idp.elsewhere == []  # the refresh token went nowhere else


def test_the_code_exchange_follows_no_redirect(idp: OAuthServer) -> None:
    idp.redirect_to_elsewhere()
    with pytest.raises(AuthError, match="redirect"):
        sign_in(idp, lambda origin, stack: None)
    assert idp.elsewhere == []  # neither the code nor the client secret


@pytest.mark.parametrize(
    ("answer", "named"),
    [({"interval": -1}, "interval=-1"), ({"interval": "soon"}, "interval=soon"),
     ({"interval": 10**9}, "interval"), ({"interval": "nan"}, "interval=nan"),
     ({"interval": True}, "interval=True"), ({"expires_in": 0}, "expires_in=0"),
     ({"expires_in": -5}, "expires_in=-5"), ({"expires_in": 1e12}, "expires_in"),
     ({"expires_in": None}, "expires_in=None")],
)  # fmt: skip
def test_device_flow_durations_are_bounded_numbers(answer: dict[str, object], named: str) -> None:
    slept: list[float] = []
    with OAuthServer(clients={"ms-client": None}, device_answer=answer) as idp, pytest.raises(
        AuthError, match=rf"{named}.*not a number of seconds"
    ):
        oauth.device_flow(microsoft(idp), approve, sleep=slept.append)
    assert slept == []  # refused before the first poll
