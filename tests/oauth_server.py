"""A real HTTP server on 127.0.0.1 standing in for Microsoft's and Google's OAuth2 endpoints.

    with OAuthServer(clients={"cid": None, "gid": "gsecret"}) as idp:
        env = {"MAILER_OAUTH2_ENDPOINT": idp.url, ...}
        ... mailer login prints a user code -> idp.approve(user_code)
        ... or an authorization URL -> requests.get(url) follows the redirect to mailer
        SmtpServer(starttls=True, oauth=idp.token_valid)

Endpoints (the providers' paths, so mailer only swaps the origin):
- POST /{tenant}/oauth2/v2.0/devicecode, /{tenant}/oauth2/v2.0/token  (Microsoft)
- GET  /o/oauth2/v2/auth  -> 302 to the redirect_uri with code and state  (Google)
- POST /token  (Google)
- POST /devicelogin  user_code=...: the user entering the code in a browser
- POST /elsewhere: where `redirect_to_elsewhere()` sends token and device requests
  (307, as a hostile or broken endpoint might); what arrives there is kept in `elsewhere`
The token endpoints implement the device_code, authorization_code (with the
PKCE S256 check) and refresh_token grants, refresh tokens rotate like
Microsoft's, and every token issued is recorded so that tests can search
outputs for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class _State:
    clients: dict[str, str | None]  # client id -> secret (None: public client)
    expires_in: int = 3600
    device: dict[str, dict[str, Any]] = field(default_factory=dict)  # device_code -> ...
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)  # authorization codes
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)  # refresh token -> ...
    access: dict[str, bool] = field(default_factory=dict)  # access token -> still valid
    grants: list[str] = field(default_factory=list)  # grant_type of every token request
    issued: list[str] = field(default_factory=list)  # every token and code handed out
    device_answer: dict[str, Any] = field(default_factory=dict)  # replaces device-code fields
    redirect: int = 0  # a 3xx status for every token and device request, 0: none
    elsewhere: list[dict[str, str]] = field(default_factory=list)  # forms sent to /elsewhere
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):  # client_secret_basic
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            form.setdefault("client_id", cid)
            form.setdefault("client_secret", secret)
        return form

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/o/oauth2/v2/auth":
            self._json(404, {"error": "not_found"})
            return
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        st = self.server.state
        if q.get("client_id") not in st.clients or q.get("code_challenge_method") != "S256":
            self._json(400, {"error": "invalid_request"})
            return
        code = secrets.token_urlsafe(24)
        with st.lock:
            st.codes[code] = {"client_id": q["client_id"], "challenge": q["code_challenge"],
                              "redirect_uri": q["redirect_uri"], "scope": q.get("scope", "")}
            st.issued.append(code)
        self.send_response(302)
        self.send_header("Location", q["redirect_uri"] + "?" + urlencode(
            {"state": q.get("state", ""), "code": code, "scope": q.get("scope", "")}))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = self._form()
        st = self.server.state
        if path == "/elsewhere":
            with st.lock:
                st.elsewhere.append(form)
            self._json(200, {"access_token": "at-elsewhere", "token_type": "Bearer"})
        elif st.redirect and path != "/devicelogin":
            self.send_response(st.redirect)
            self.send_header("Location", f"{self.server.url}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path.endswith("/oauth2/v2.0/devicecode"):
            if form.get("client_id") not in st.clients:
                self._json(400, {"error": "invalid_client", "error_description": "unknown"})
                return
            device_code, user_code = secrets.token_urlsafe(24), secrets.token_hex(4).upper()
            with st.lock:
                st.device[device_code] = {"user_code": user_code, "approved": False,
                                          "client_id": form["client_id"],
                                          "scope": form.get("scope", "")}
                st.issued.append(device_code)
            self._json(200, {"device_code": device_code, "user_code": user_code,
                             "verification_uri": f"{self.server.url}/devicelogin",
                             "expires_in": 900, "interval": 0, **st.device_answer})
        elif path == "/devicelogin":
            with st.lock:
                for entry in st.device.values():
                    if entry["user_code"] == form.get("user_code"):
                        entry["approved"] = True
            self._json(200, {})
        elif path.endswith("/oauth2/v2.0/token") or path == "/token":
            self._token(form)
        else:
            self._json(404, {"error": "not_found"})

    def _token(self, form: dict[str, str]) -> None:
        st = self.server.state
        grant = form.get("grant_type", "")
        client = form.get("client_id", "")
        with st.lock:
            st.grants.append(grant)
            if client not in st.clients or st.clients[client] not in (None,
                                                                      form.get("client_secret")):
                self._json(401, {"error": "invalid_client", "error_description": "bad client"})
                return
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                entry = st.device.get(form.get("device_code", ""))
                if entry is None:
                    self._json(400, {"error": "expired_token"})
                elif not entry["approved"]:
                    self._json(400, {"error": "authorization_pending"})
                else:
                    del st.device[form["device_code"]]
                    self._issue(client, entry["scope"])
            elif grant == "authorization_code":
                entry = st.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(
                    hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if (entry is None or entry["challenge"] != challenge
                        or entry["redirect_uri"] != form.get("redirect_uri")):
                    self._json(400, {"error": "invalid_grant",
                                     "error_description": "bad code or verifier"})
                else:
                    self._issue(client, entry["scope"])
            elif grant == "refresh_token":
                entry = st.refresh.get(form.get("refresh_token", ""))
                if entry is None or entry["revoked"] or entry["client_id"] != client:
                    self._json(400, {"error": "invalid_grant", "error_description":
                                     "AADSTS70000: The refresh token has been revoked."})
                else:
                    entry["revoked"] = True  # rotated, as Microsoft does
                    self._issue(client, entry["scope"])
            else:
                self._json(400, {"error": "unsupported_grant_type"})

    def _issue(self, client: str, scope: str) -> None:
        st = self.server.state
        access, refresh = "at-" + secrets.token_urlsafe(32), "rt-" + secrets.token_urlsafe(32)
        st.access[access] = True
        st.refresh[refresh] = {"client_id": client, "revoked": False, "scope": scope}
        st.issued += [access, refresh]
        self._json(200, {"token_type": "Bearer", "access_token": access,
                         "refresh_token": refresh, "expires_in": st.expires_in, "scope": scope})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class OAuthServer:
    def __init__(self, clients: dict[str, str | None], *, expires_in: int = 3600,
                 device_answer: dict[str, Any] | None = None) -> None:
        self.state = _State(clients=clients, expires_in=expires_in,
                            device_answer=device_answer or {})
        self._server = _Server(self.state)
        self.url = self._server.url
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OAuthServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    def approve(self, user_code: str) -> None:
        """What the user does at the verification URL."""
        with self.state.lock:
            for entry in self.state.device.values():
                if entry["user_code"] == user_code:
                    entry["approved"] = True

    def token_valid(self, user: str, token: str) -> bool:
        """For the SMTP server: is this an access token issued here and still valid?"""
        with self.state.lock:
            return self.state.access.get(token, False)

    def expire_access_tokens(self) -> None:
        """The provider ends every access token early (the client still thinks them valid)."""
        with self.state.lock:
            for token in self.state.access:
                self.state.access[token] = False

    def redirect_to_elsewhere(self, status: int = 307) -> None:
        """Every token and device request answered with a redirect to /elsewhere."""
        with self.state.lock:
            self.state.redirect = status

    @property
    def elsewhere(self) -> list[dict[str, str]]:
        with self.state.lock:
            return list(self.state.elsewhere)

    def revoke_refresh_tokens(self) -> None:
        with self.state.lock:
            for entry in self.state.refresh.values():
                entry["revoked"] = True

    @property
    def grants(self) -> list[str]:
        with self.state.lock:
            return list(self.state.grants)

    @property
    def issued(self) -> list[str]:
        with self.state.lock:
            return list(self.state.issued)
