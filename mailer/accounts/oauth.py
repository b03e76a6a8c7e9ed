"""OAuth2 for SMTP: the sign-in flows, the refresh token in the keyring, access tokens.

- Microsoft 365 / Outlook.com: the device code flow (RFC 8628): mailer shows a
  code, the user enters it at microsoft.com/devicelogin in any browser.
- Google: the installed-app flow with PKCE (RFC 7636) and a loopback redirect
  (RFC 8252): a one-shot HTTP server on 127.0.0.1 receives the code.

Both use Authlib's generic OAuth2 client for the token requests.  `mailer
login` runs a flow once and stores the refresh token (with the client id it
belongs to) in the OS keyring; a run turns it into access tokens, kept in
memory only, refreshed `MARGIN` seconds before they expire and once more when
the server refuses one.  A refresh token the provider no longer honours stops
the run with "run `mailer login` again".

MAILER_OAUTH2_ENDPOINT (deliberately undocumented in the help) replaces the
providers' origins with another, e.g. a stand-in server on 127.0.0.1 in tests;
plain http is refused for anything but loopback.
"""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..config import is_loopback
from ..errors import AuthError, ConfigError
from ..sanitize import clean
from . import providers
from .keystore import find_keyring_meanwhile, keyring_delete, keyring_get, keyring_set

TOKEN_SERVICE = "mailer-oauth2"  # keyring service of refresh tokens; the SMTP user name is the key
MARGIN = 300.0  # refresh an access token this many seconds before it expires
HTTP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0  # seconds one connection to the sign-in listener may take
MAX_CONNECTIONS = 32  # open at once to the listener (a browser needs a few); more are closed
MAX_INTERVAL = 60.0  # device flow: the longest pause between polls mailer accepts
MAX_EXPIRES = 3600.0  # device flow: the longest a code may stay open
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass(frozen=True, slots=True)
class OAuthProvider:
    """An identity provider's sign-in (not a mail provider: see providers.py)."""

    name: str
    flow: str  # "device" or "loopback"
    scope: str
    origin: str  # replaced by MAILER_OAUTH2_ENDPOINT
    token_path: str
    authorize_path: str = ""  # loopback flow
    device_path: str = ""  # device flow
    token_origin: str = ""  # when the token endpoint lives elsewhere (Google)
    auth_method: str = "none"  # how the client authenticates at the token endpoint


OAUTH_PROVIDERS = {
    "microsoft": OAuthProvider(
        name="microsoft",
        flow="device",
        scope="https://outlook.office.com/SMTP.Send offline_access",
        origin="https://login.microsoftonline.com",
        token_path="/{tenant}/oauth2/v2.0/token",
        device_path="/{tenant}/oauth2/v2.0/devicecode",
    ),
    "google": OAuthProvider(
        name="google",
        flow="loopback",
        scope="https://mail.google.com/",
        origin="https://accounts.google.com",
        authorize_path="/o/oauth2/v2/auth",
        token_origin="https://oauth2.googleapis.com",
        token_path="/token",
        auth_method="client_secret_post",  # Google's desktop clients send their secret
    ),
}


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    provider: OAuthProvider
    client_id: str
    client_secret: str = field(default="", repr=False)
    tenant: str = "common"  # Microsoft: common, organizations, consumers or a tenant id
    endpoint: str = ""  # MAILER_OAUTH2_ENDPOINT: another origin for every endpoint

    def url(self, path: str, *, token: bool = False) -> str:
        origin = self.endpoint or (
            self.provider.token_origin if token and self.provider.token_origin
            else self.provider.origin
        )
        return origin.rstrip("/") + path.format(tenant=self.tenant)

    @property
    def token_url(self) -> str:
        return self.url(self.provider.token_path, token=True)

    def session(self, *, client_secret: str = "", redirect_uri: str | None = None) -> Any:
        from authlib.integrations.requests_client import OAuth2Session  # only when signing in

        secret = client_secret or self.client_secret
        session = OAuth2Session(
            client_id=self.client_id,
            client_secret=secret or None,
            scope=self.provider.scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method=self.provider.auth_method if secret else "none",
        )
        session.hooks["response"].append(_refuse_redirect)  # before requests follows one
        return session


def _refuse_redirect(response: Any, *args: Any, **kwargs: Any) -> None:
    """Token and device requests carry the refresh token and the client secret: a 3xx
    is an error, never followed (a redirect to plain http would send them in clear)."""
    if 300 <= response.status_code < 400:
        raise AuthError(
            f"The OAuth2 endpoint {clean(str(response.url))[:200]} answered with a redirect "
            f"({response.status_code}); mailer does not follow it, as it would send your "
            f"sign-in elsewhere. Check MAILER_OAUTH2_ENDPOINT and the provider's status."
        )


def oauth_settings(env: Mapping[str, str], host: str) -> OAuthSettings:
    """MAILER_OAUTH2_* -> OAuthSettings; the provider is guessed from the host."""
    name = (env.get("MAILER_OAUTH2_PROVIDER", "").strip().lower()
            or providers.oauth_provider_of_smtp(host))
    if name is None:
        raise ConfigError(
            f"MAILER_SMTP_AUTH=oauth2 needs MAILER_OAUTH2_PROVIDER (microsoft or google) for "
            f"{host}."
        )
    if name not in OAUTH_PROVIDERS:
        raise ConfigError(
            f"MAILER_OAUTH2_PROVIDER={name!r} is not one of "
            f"{', '.join(sorted(OAUTH_PROVIDERS))}."
        )
    client_id = env.get("MAILER_OAUTH2_CLIENT_ID", "").strip()
    if not client_id:
        raise ConfigError(
            "MAILER_SMTP_AUTH=oauth2 needs MAILER_OAUTH2_CLIENT_ID: the id of the OAuth client "
            "you registered (the README's set-up section shows how)."
        )
    endpoint = env.get("MAILER_OAUTH2_ENDPOINT", "").strip()
    if endpoint:
        parts = urlsplit(endpoint)
        plain_ok = parts.scheme == "http" and is_loopback(parts.hostname or "")
        if not (parts.scheme == "https" or plain_ok):
            raise ConfigError("MAILER_OAUTH2_ENDPOINT must be an https:// URL (http only on "
                              "127.0.0.1).")
    return OAuthSettings(
        provider=OAUTH_PROVIDERS[name],
        client_id=client_id,
        client_secret=env.get("MAILER_OAUTH2_CLIENT_SECRET", "").strip(),
        tenant=env.get("MAILER_OAUTH2_TENANT", "").strip() or "common",
        endpoint=endpoint,
    )


# -- the refresh token in the keyring ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grant:
    """What `mailer login` keeps: the refresh token and the client it belongs to."""

    refresh_token: str = field(repr=False)
    client_id: str
    client_secret: str = field(default="", repr=False)  # Google's, when not in the environment

    def dumps(self) -> str:
        return json.dumps({"refresh_token": self.refresh_token, "client_id": self.client_id,
                           "client_secret": self.client_secret})


def load_grant(username: str) -> Grant | None:
    raw = keyring_get(TOKEN_SERVICE, username)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return Grant(str(data["refresh_token"]), str(data["client_id"]),
                     str(data.get("client_secret", "")))
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: as good as none, `mailer login` replaces it


def save_grant(username: str, grant: Grant) -> None:
    keyring_set(TOKEN_SERVICE, username, grant.dumps())


def forget_grant(username: str) -> bool:
    return keyring_delete(TOKEN_SERVICE, username)


# -- the flows -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: float


def _tokens(token: dict[str, Any], *, previous_refresh: str = "") -> Tokens:
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise AuthError("The token endpoint answered without an access token.")
    refresh = token.get("refresh_token") or previous_refresh
    try:
        expires_in = float(token.get("expires_in", 3600))
    except (TypeError, ValueError):
        expires_in = 3600.0
    return Tokens(access, str(refresh), expires_in)


def _oauth_failure(err: Any, settings: OAuthSettings, what: str) -> AuthError:
    """An Authlib OAuthError (error, description) as what the user reads."""
    code = clean(str(err.error or "error"))
    description = clean(str(err.description or ""))[:300]
    detail = f"{code}: {description}" if description else code
    if code == "invalid_grant":
        return AuthError(f"The {settings.provider.name} sign-in is no longer valid ({detail}): "
                         f"run `mailer login` again.")
    if code in ("invalid_client", "unauthorized_client"):
        also = (" and MAILER_OAUTH2_CLIENT_SECRET" if settings.provider.auth_method != "none"
                else " and MAILER_OAUTH2_TENANT")
        return AuthError(f"{what} refused the client ({detail}). Check "
                         f"MAILER_OAUTH2_CLIENT_ID{also}.")
    return AuthError(f"{what} answered {detail}.")


def _unreachable(url: str, err: Exception) -> AuthError:
    return AuthError(f"Cannot reach the OAuth2 endpoint {url}: {clean(str(err))[:200]}. "
                     f"Check the network (or MAILER_OAUTH2_ENDPOINT).")


def device_flow(
    settings: OAuthSettings,
    show: Callable[[str], None],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Tokens:
    """RFC 8628: show the code to enter, poll the token endpoint until the user did."""
    import requests
    from authlib.integrations.requests_client import OAuthError

    url = settings.url(settings.provider.device_path)
    session = settings.session()
    try:
        response = session.post(url, withhold_token=True, data={"client_id": settings.client_id,
                                           "scope": settings.provider.scope},
                                timeout=HTTP_TIMEOUT)
        data = response.json()
    except (requests.RequestException, ValueError) as err:
        raise _unreachable(url, err) from None
    if not isinstance(data, dict):
        raise AuthError(f"The device-code endpoint {url} answered something else than a "
                        f"device code. Check MAILER_OAUTH2_ENDPOINT.")
    if response.status_code != 200 or "device_code" not in data:
        raise _oauth_failure(OAuthError(error=data.get("error"),
                                        description=data.get("error_description")),
                             settings, "The device-code endpoint")
    interval = _seconds(data, "interval", 5, 0.0, MAX_INTERVAL)
    deadline = time.monotonic() + _seconds(data, "expires_in", 900, 1.0, MAX_EXPIRES)
    verify = clean(str(data.get("verification_uri") or data.get("verification_url", "")))
    show(f"To sign in, open {verify} in a browser and enter the code "
         f"{clean(str(data.get('user_code', '')))}")
    while time.monotonic() < deadline:
        sleep(interval)
        try:
            token = session.fetch_token(settings.token_url, grant_type=DEVICE_GRANT,
                                        device_code=data["device_code"], timeout=HTTP_TIMEOUT)
        except OAuthError as err:
            if err.error == "authorization_pending":
                continue
            if err.error == "slow_down":
                interval = min(interval + 5, MAX_INTERVAL)  # RFC 8628 3.5
                continue
            if err.error in ("authorization_declined", "access_denied"):
                raise AuthError("The sign-in was declined in the browser.") from None
            if err.error == "expired_token":
                break
            raise _oauth_failure(err, settings, "The token endpoint") from None
        except requests.RequestException as err:
            raise _unreachable(settings.token_url, err) from None
        return _tokens(token)
    raise AuthError("The code expired before the sign-in was finished: run `mailer login` "
                    "again.")


def _seconds(data: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    """A device-flow duration, a number from `low` to `high` seconds, or a clear error."""
    value = data.get(key, default)
    try:
        seconds = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        seconds = -1.0
    if not low <= seconds <= high:  # also NaN
        raise AuthError(f"The device-code endpoint answered {key}={clean(str(value))[:40]}, "
                        f"not a number of seconds from {low:g} to {high:g}. Check "
                        f"MAILER_OAUTH2_ENDPOINT, or try `mailer login` again later.")
    return seconds


class _Redirect(http.server.BaseHTTPRequestHandler):
    """Receives the one redirect of the loopback flow."""

    server: _RedirectServer
    timeout = REQUEST_TIMEOUT  # a connection that sends nothing is closed, and blocks no other

    def do_GET(self) -> None:
        if not self.server.answer(parse_qs(urlsplit(self.path).query), self.path):
            self.send_error(404)  # a favicon request, or another local process guessing
            return
        body = (b"<!doctype html><title>mailer</title><p>Signed in: you can close this "
                b"window and go back to the terminal.</p>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line carries the authorization code."""


class _RedirectServer(http.server.ThreadingHTTPServer):
    """Each connection in a thread of its own, so one idle connection holds up neither
    the browser's nor `shutdown()`; closing waits for none of them.  At most
    MAX_CONNECTIONS at once, each for at most REQUEST_TIMEOUT: bounded threads."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, state: str) -> None:
        super().__init__(("127.0.0.1", 0), _Redirect)
        self.state = state
        self.result = ""
        self.ignored = 0  # answers without this sign-in's state
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def answer(self, query: dict[str, list[str]], path: str) -> bool:
        """Take the first answer that carries this sign-in's `state`; any other local
        process can reach the port, but only the provider's redirect knows the state."""
        if "code" not in query and "error" not in query:
            return False
        given = query.get("state", [""])[0].encode()
        with self._lock:
            if self.done.is_set() or not secrets.compare_digest(given, self.state.encode()):
                self.ignored += 1
                return False
            self.result = path
            self.done.set()
        return True


def loopback_flow(
    settings: OAuthSettings,
    show: Callable[[str], None],
    *,
    client_secret: str = "",
    login_hint: str = "",
    open_browser: bool = True,
    timeout: float = 300.0,
) -> Tokens:
    """RFC 8252 + RFC 7636: the browser signs in and is sent back to 127.0.0.1."""
    import webbrowser

    import requests
    from authlib.integrations.requests_client import OAuthError

    state = secrets.token_urlsafe(32)
    server = _RedirectServer(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/"
        session = settings.session(client_secret=client_secret, redirect_uri=redirect_uri)
        verifier = secrets.token_urlsafe(64)
        extra = {"login_hint": login_hint} if login_hint else {}
        url, _ = session.create_authorization_url(
            settings.url(settings.provider.authorize_path), state=state, code_verifier=verifier,
            access_type="offline", prompt="consent", **extra,
        )
        show(f"To sign in, open this address in a browser:\n{url}")
        if open_browser:
            webbrowser.open(url)
        if not server.done.wait(timeout):
            ignored = (f" ({server.ignored} answer(s) without this sign-in's state were "
                       f"ignored)" if server.ignored else "")
            raise AuthError(f"No sign-in arrived within {timeout:g} s{ignored}: run `mailer "
                            f"login` again.")
    finally:
        server.shutdown()  # the serving loop ends within its poll interval, handlers or not
        server.server_close()
    query = parse_qs(urlsplit(server.result).query)
    if "error" in query:
        raise AuthError(f"The sign-in was not completed: {clean(query['error'][0])}.")
    try:
        token = session.fetch_token(settings.token_url, code=query["code"][0],
                                    grant_type="authorization_code", code_verifier=verifier,
                                    redirect_uri=redirect_uri, timeout=HTTP_TIMEOUT)
    except OAuthError as err:
        raise _oauth_failure(err, settings, "The token endpoint") from None
    except requests.RequestException as err:
        raise _unreachable(settings.token_url, err) from None
    tokens = _tokens(token)
    if not tokens.refresh_token:
        raise AuthError("The provider gave no refresh token; remove mailer's access in your "
                        "account's security settings and run `mailer login` again.")
    return tokens


# -- access tokens during a run --------------------------------------------------------


@dataclass
class TokenSource:
    """Access tokens for one account, shared by every connection of a run: a
    `config.Login` whose secret is the access token."""

    settings: OAuthSettings
    username: str
    clock: Callable[[], float] = time.time
    refreshes: int = 0  # token requests made: for `mailer check` and tests
    _access: str = field(default="", repr=False)
    _expires: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def oauth(self) -> bool:
        return True

    @property
    def provider(self) -> str:
        return self.settings.provider.name

    def origin(self) -> str:
        return f"OAuth2 token for {self.provider}, refresh token from the keyring"

    def prepare(self) -> None:
        """The keyring (which holds the refresh token) loads while the contacts
        are read and the first connection opens; nothing is read or requested."""
        if not self._access:
            find_keyring_meanwhile(self._lock)

    def secret(self) -> str:
        """A token valid for at least MARGIN seconds more."""
        with self._lock:
            if not self._access or self.clock() >= self._expires - MARGIN:
                self._refresh()
            return self._access

    def renew(self, refused: str) -> str:
        """A new token after the server refused `refused`; unless another
        connection has renewed it meanwhile, one refresh."""
        with self._lock:
            if self._access == refused or not self._access:
                self._refresh()
            return self._access

    def _refresh(self) -> None:
        import requests
        from authlib.integrations.requests_client import OAuthError

        grant = load_grant(self.username)
        if grant is None:
            raise AuthError(f"No OAuth2 sign-in stored for {self.username}: run `mailer login` "
                            f"first.")
        if grant.client_id != self.settings.client_id:
            raise AuthError(f"The stored sign-in of {self.username} belongs to another OAuth "
                            f"client than MAILER_OAUTH2_CLIENT_ID: run `mailer login` again.")
        session = self.settings.session(client_secret=grant.client_secret)
        self.refreshes += 1
        try:
            token = session.refresh_token(self.settings.token_url,
                                          refresh_token=grant.refresh_token,
                                          timeout=HTTP_TIMEOUT)
        except OAuthError as err:
            raise _oauth_failure(err, self.settings, "The token endpoint") from None
        except requests.RequestException as err:
            raise _unreachable(self.settings.token_url, err) from None
        tokens = _tokens(token, previous_refresh=grant.refresh_token)
        if tokens.refresh_token != grant.refresh_token:  # rotated (Microsoft does)
            save_grant(self.username, Grant(tokens.refresh_token, grant.client_id,
                                            grant.client_secret))
        self._access = tokens.access_token
        self._expires = self.clock() + tokens.expires_in
