"""A stand-in for Clerk's Frontend API (FAPI), the API clerk-js calls from the browser, at its
HTTP boundary: the JSON shapes and status codes clerk-js reads, for the flows the web console
uses: load (environment, client), an email + password sign-in (`sign_ins`, `attempt_first_factor`),
session tokens (`sessions/{id}/tokens`, `touch`) and sign-out. It also serves the instance's JWKS,
so the gateway verifies the session tokens it signs (`FakeClerk`'s keys).

As Clerk's FAPI does: a browser's client is named by an HttpOnly `__client` cookie (sent with
`credentials: include`, CORS for the calling origin with credentials), forms are
`application/x-www-form-urlencoded`, a method other than GET and POST travels as `_method`, an
answer is `{"response": ..., "client": ...}` and an error `{"errors": [{"code", "message",
"long_message", "meta"}]}`. A session token is RS256 with `sid`, `azp` (the calling origin) and,
as a session-token template would add it, `email`; it lives 60 seconds, as Clerk's do.

Only the paths above are spoken; anything else is answered 404 in Clerk's error shape and kept
in `unknown`, so a test sees what clerk-js asked that this stand-in does not know.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.clerk import FakeClerk, serving

INSTANCE_HOST = "clerk.test.example"


def publishable_key(host: str = INSTANCE_HOST, *, live: bool = False) -> str:
    """A publishable key as Clerk makes them: `pk_test_`/`pk_live_` + base64 of `<FAPI host>$`."""
    return ("pk_live_" if live else "pk_test_") + base64.b64encode(f"{host}$".encode()).decode()


def _ms() -> int:
    return int(time.time() * 1000)


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:27]}"


@dataclass
class User:
    id: str
    email: str
    password: str
    email_id: str = field(default_factory=lambda: _id("idn"))
    created_at: int = field(default_factory=_ms)

    def json(self) -> dict[str, Any]:
        address = {
            "id": self.email_id,
            "object": "email_address",
            "email_address": self.email,
            "reserved": False,
            "verification": {"status": "verified", "strategy": "email_code", "attempts": None, "expire_at": None},
            "linked_to": [],
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }
        return {
            "id": self.id,
            "object": "user",
            "username": None,
            "first_name": None,
            "last_name": None,
            "image_url": "",
            "has_image": False,
            "primary_email_address_id": self.email_id,
            "primary_phone_number_id": None,
            "primary_web3_wallet_id": None,
            "password_enabled": True,
            "two_factor_enabled": False,
            "totp_enabled": False,
            "backup_code_enabled": False,
            "email_addresses": [address],
            "phone_numbers": [],
            "web3_wallets": [],
            "passkeys": [],
            "external_accounts": [],
            "saml_accounts": [],
            "enterprise_accounts": [],
            "organization_memberships": [],
            "public_metadata": {},
            "unsafe_metadata": {},
            "external_id": None,
            "last_sign_in_at": _ms(),
            "banned": False,
            "locked": False,
            "lockout_expires_in_seconds": None,
            "verification_attempts_remaining": 100,
            "delete_self_enabled": False,
            "create_organization_enabled": False,
            "last_active_at": _ms(),
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


@dataclass
class Session:
    id: str
    user: User
    status: str = "active"
    created_at: int = field(default_factory=_ms)
    token: str | None = None


@dataclass
class SignIn:
    id: str
    identifier: str
    user: User | None
    status: str = "needs_first_factor"
    created_session_id: str | None = None
    created_at: int = field(default_factory=_ms)


@dataclass
class Client:
    id: str
    sessions: list[Session] = field(default_factory=list)
    sign_in: SignIn | None = None
    last_active_session_id: str | None = None
    created_at: int = field(default_factory=_ms)


class ClerkFrontend:
    def __init__(self, clerk: FakeClerk, *, token_ttl_s: int = 60) -> None:
        self.clerk = clerk
        self.token_ttl_s = token_ttl_s
        self.users: dict[str, User] = {}
        self.clients: dict[str, Client] = {}
        self.requests: list[str] = []  # "METHOD /path" of every call, in order
        self.unknown: list[str] = []
        self.tokens_issued: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def add_user(self, email: str, password: str) -> User:
        user = User(id=_id("user"), email=email, password=password)
        self.users[email.lower()] = user
        return user

    @property
    def url(self) -> str:
        assert self._server is not None, "serve() first"
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def jwks_url(self) -> str:
        return self.url + "/.well-known/jwks.json"

    # -- the JSON shapes clerk-js reads --------------------------------------------------------

    def environment(self) -> dict[str, Any]:
        return {
            "object": "environment",
            "id": "env_standin",
            "auth_config": {
                "object": "auth_config",
                "id": "aac_standin",
                "single_session_mode": True,
                "claimed_at": None,
                "reverification": False,
            },
            "display_config": {
                "object": "display_config",
                "id": "display_config_standin",
                "instance_environment_type": "development",
                "application_name": "AI SaaS",
                "preferred_sign_in_strategy": "password",
                "branded": False,
                "captcha_public_key": None,
                "captcha_widget_type": None,
                "captcha_provider": None,
                "captcha_public_key_invisible": None,
                "captcha_oauth_bypass": [],
                "home_url": "",
                "sign_in_url": "",
                "sign_up_url": "",
                "user_profile_url": "",
                "after_sign_in_url": "",
                "after_sign_up_url": "",
                "after_sign_out_one_url": "",
                "after_sign_out_all_url": "",
                "support_email": None,
                "logo_image_url": "",
                "favicon_image_url": "",
                "theme": {"general": {"color": "#1f3a5f"}, "buttons": {}, "accounts": {}},
            },
            "user_settings": {
                "attributes": {
                    "email_address": {
                        "enabled": True,
                        "required": True,
                        "used_for_first_factor": True,
                        "first_factors": ["email_code"],
                        "used_for_second_factor": False,
                        "second_factors": [],
                        "verifications": ["email_code"],
                        "verify_at_sign_up": True,
                    },
                    "password": {
                        "enabled": True,
                        "required": True,
                        "used_for_first_factor": False,
                        "first_factors": [],
                        "used_for_second_factor": False,
                        "second_factors": [],
                        "verifications": [],
                        "verify_at_sign_up": False,
                    },
                },
                "social": {},
                "enterprise_sso": {"enabled": False},
                "sign_in": {"second_factor": {"required": False}},
                "sign_up": {"captcha_enabled": False, "mode": "public", "progressive": True},
                "restrictions": {"allowlist": {"enabled": False}, "blocklist": {"enabled": False}},
                "password_settings": {"min_length": 8, "max_length": 72},
                "passkey_settings": {"allow_autofill": False, "show_sign_in_button": False},
            },
            "organization_settings": {"enabled": False, "max_allowed_memberships": 0},
            "commerce_settings": {"billing": {"enabled": False}},
            "api_keys_settings": {"enabled": False},
            "maintenance_mode": False,
        }

    def _session_json(self, session: Session) -> dict[str, Any]:
        now = _ms()
        token = {"object": "token", "jwt": session.token} if session.token else None
        return {
            "object": "session",
            "id": session.id,
            "status": session.status,
            "expire_at": now + 7 * 86_400_000,
            "abandon_at": now + 30 * 86_400_000,
            "last_active_at": now,
            "last_active_token": token,
            "last_active_organization_id": None,
            "actor": None,
            "tasks": None,
            "factor_verification_age": [0, -1],
            "user": session.user.json(),
            "public_user_data": {
                "first_name": None,
                "last_name": None,
                "image_url": "",
                "has_image": False,
                "identifier": session.user.email,
                "user_id": session.user.id,
            },
            "created_at": session.created_at,
            "updated_at": now,
        }

    def _sign_in_json(self, sign_in: SignIn) -> dict[str, Any]:
        factors = [{"strategy": "password"}] if sign_in.user else []
        return {
            "object": "sign_in",
            "id": sign_in.id,
            "status": sign_in.status,
            "supported_identifiers": ["email_address"],
            "supported_first_factors": factors,
            "supported_second_factors": None,
            "first_factor_verification": None,
            "second_factor_verification": None,
            "identifier": sign_in.identifier,
            "user_data": None,
            "created_session_id": sign_in.created_session_id,
            "abandon_at": sign_in.created_at + 86_400_000,
            "created_at": sign_in.created_at,
            "updated_at": _ms(),
        }

    def _client_json(self, client: Client) -> dict[str, Any]:
        return {
            "object": "client",
            "id": client.id,
            "sessions": [self._session_json(s) for s in client.sessions if s.status == "active"],
            "sign_in": self._sign_in_json(client.sign_in) if client.sign_in else None,
            "sign_up": None,
            "last_active_session_id": client.last_active_session_id,
            "captcha_bypass": False,
            "cookie_expires_at": None,
            "created_at": client.created_at,
            "updated_at": _ms(),
        }

    def _token(self, session: Session, origin: str | None) -> str:
        token = self.clerk.token(
            session.user.id,
            sid=session.id,
            azp=origin,
            email=session.user.email,
            exp=int(time.time()) + self.token_ttl_s,
        )
        session.token = token
        self.tokens_issued.append(token)
        return token

    # -- the server ------------------------------------------------------------------------------

    @contextmanager
    def serve(self) -> Iterator[ClerkFrontend]:
        fapi = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _cors(self) -> list[tuple[str, str]]:
                origin = self.headers.get("Origin")
                if not origin:
                    return []
                return [
                    ("Access-Control-Allow-Origin", origin),
                    ("Access-Control-Allow-Credentials", "true"),
                    ("Vary", "Origin"),
                ]

            def _send(self, status: int, body: Any, cookies: list[str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in self._cors():
                    self.send_header(name, value)
                for cookie in cookies or []:
                    self.send_header("Set-Cookie", cookie)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: str, message: str, param: str | None = None) -> None:
                error: dict[str, Any] = {"code": code, "message": message, "long_message": message}
                if param:
                    error["meta"] = {"param_name": param}
                self._send(status, {"errors": [error], "clerk_trace_id": uuid.uuid4().hex})

            def do_OPTIONS(self) -> None:
                self.send_response(204)
                for name, value in self._cors():
                    self.send_header(name, value)
                self.send_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
                asked = self.headers.get("Access-Control-Request-Headers")
                if asked:
                    self.send_header("Access-Control-Allow-Headers", asked)
                self.send_header("Access-Control-Max-Age", "600")
                self.end_headers()

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                method = query.get("_method", method).upper()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                form = {k: v[-1] for k, v in parse_qs(raw).items()}
                path = parts.path
                fapi.requests.append(f"{method} {path}")
                with fapi._lock:
                    self._route(method, path, form)

            def _client(self) -> Client | None:
                cookie = SimpleCookie(self.headers.get("Cookie") or "")
                morsel = cookie.get("__client")
                return fapi.clients.get(morsel.value) if morsel else None

            def _answer(self, response: Any, client: Client | None, new_cookie: bool = False) -> None:
                cookies = [f"__client={client.id}; Path=/; HttpOnly; SameSite=Lax"] if client and new_cookie else []
                body = {"response": response, "client": fapi._client_json(client) if client else None}
                self._send(200, body, cookies)

            def _route(self, method: str, path: str, form: dict[str, str]) -> None:
                client = self._client()
                segments = path.strip("/").split("/")
                if path == "/.well-known/jwks.json":
                    self._send(200, fapi.clerk.jwks)
                elif path == "/v1/environment":
                    self._send(200, fapi.environment())
                elif path == "/v1/dev_browser" and method == "POST":
                    self._send(200, {"object": "dev_browser", "id": _id("dvb")})
                elif path == "/v1/client" and method == "GET":
                    self._answer(fapi._client_json(client) if client else None, client)
                elif path == "/v1/client" and method in ("POST", "PUT"):
                    fresh = client is None
                    client = client or fapi._new_client()
                    self._answer(fapi._client_json(client), client, new_cookie=fresh)
                elif path == "/v1/client" and method == "DELETE":
                    if client:
                        fapi.clients.pop(client.id, None)
                    self._send(200, {"response": None, "client": None}, ["__client=; Path=/; Max-Age=0"])
                elif path == "/v1/client/sign_ins" and method == "POST":
                    fresh = client is None
                    client = client or fapi._new_client()
                    user = fapi.users.get(form.get("identifier", "").strip().lower())
                    if user is None:
                        self._error(422, "form_identifier_not_found", "Couldn't find your account.", "identifier")
                        return
                    client.sign_in = SignIn(id=_id("sia"), identifier=user.email, user=user)
                    if "password" in form and not fapi._attempt(client, form["password"]):
                        self._error(422, "form_password_incorrect", "Password is incorrect.", "password")
                        return
                    self._answer(fapi._sign_in_json(client.sign_in), client, new_cookie=fresh)
                elif (
                    len(segments) == 5
                    and segments[:3] == ["v1", "client", "sign_ins"]
                    and segments[4] == "attempt_first_factor"
                    and method == "POST"
                ):
                    sign_in = client.sign_in if client else None
                    if client is None or sign_in is None or sign_in.id != segments[3]:
                        self._error(404, "resource_not_found", "No sign-in was found.")
                        return
                    if form.get("strategy") != "password" or not fapi._attempt(client, form.get("password", "")):
                        self._error(422, "form_password_incorrect", "Password is incorrect.", "password")
                        return
                    self._answer(fapi._sign_in_json(sign_in), client)
                elif path == "/v1/client/sessions" and method == "DELETE":  # sign out: every session ends
                    if client:
                        for session in client.sessions:
                            session.status = "removed"
                        client.last_active_session_id = None
                    self._answer(fapi._client_json(client) if client else None, client)
                elif len(segments) >= 4 and segments[:3] == ["v1", "client", "sessions"]:
                    session = next((s for s in client.sessions if s.id == segments[3]), None) if client else None
                    action = segments[4] if len(segments) > 4 else ""
                    if client is None or session is None or session.status != "active":
                        self._error(404, "resource_not_found", "No session was found.")
                    elif action == "tokens" and method == "POST":
                        self._send(200, {"object": "token", "jwt": fapi._token(session, self.headers.get("Origin"))})
                    elif action == "touch" and method == "POST":
                        client.last_active_session_id = session.id
                        self._answer(fapi._session_json(session), client)
                    elif action in ("end", "remove") and method == "POST":
                        session.status = "ended" if action == "end" else "removed"
                        client.last_active_session_id = None
                        self._answer(fapi._session_json(session), client)
                    else:
                        self._unknown(method, path)
                else:
                    self._unknown(method, path)

            def _unknown(self, method: str, path: str) -> None:
                fapi.unknown.append(f"{method} {path}")
                self._error(404, "resource_not_found", f"{method} {path} is not spoken by this stand-in.")

        with serving(Handler, name="clerk-frontend") as self._server:
            yield self

    def _new_client(self) -> Client:
        client = Client(id=_id("client"))
        self.clients[client.id] = client
        return client

    def _attempt(self, client: Client, password: str) -> bool:
        """A password attempt on the client's sign-in: right, and the sign-in is complete with a new
        active session (single-session mode: it replaces the others)."""
        sign_in = client.sign_in
        if sign_in is None or sign_in.user is None or password != sign_in.user.password:
            return False
        session = Session(id=_id("sess"), user=sign_in.user)
        for other in client.sessions:
            other.status = "removed"
        client.sessions.append(session)
        client.last_active_session_id = session.id
        sign_in.status = "complete"
        sign_in.created_session_id = session.id
        return True
