"""A stand-in for Clerk, at its HTTP boundary: an instance's JWKS served over real HTTP in
Clerk's format, session tokens shaped like Clerk's (RS256, `kid` = the key id, `azp`,
`sid`, `v`, ...), and Svix-signed webhook deliveries."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from svix.webhooks import Webhook

ISSUER = "https://clerk.test.example"
ORIGIN = "https://app.example.com"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()  # made per test run


class FakeClerk:
    def __init__(self) -> None:
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self.kid = self.add_key()
        self.fetches = 0
        self._server: ThreadingHTTPServer | None = None

    def add_key(self) -> str:
        """A new signing key (as after a rotation); its kid is returned."""
        kid = "ins_" + uuid.uuid4().hex[:24]
        self._keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def private_key(self, kid: str | None = None) -> rsa.RSAPrivateKey:
        return self._keys[kid or self.kid]

    @property
    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self._keys.items():
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256", "n": jwk["n"], "e": jwk["e"]})
        return {"keys": keys}

    issuer = ISSUER

    @property
    def jwks_url(self) -> str:
        assert self._server is not None, "serve() first"
        return f"http://127.0.0.1:{self._server.server_port}/.well-known/jwks.json"

    def claims(self, sub: str | None, /, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "azp": ORIGIN,
            "exp": now + 60,
            "fva": [0, -1],
            "iat": now,
            "iss": self.issuer,
            "nbf": now - 5,
            "sid": "sess_" + uuid.uuid4().hex[:24],
            "sub": sub,
            "v": 2,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, sub: str | None, /, *, kid: str | None = None, **overrides: Any) -> str:
        """A session token as Clerk signs it; a claim overridden with None is left out."""
        kid = kid or self.kid
        return jwt.encode(self.claims(sub, **overrides), self._keys[kid], algorithm="RS256", headers={"kid": kid})

    @contextmanager
    def serve(self) -> Iterator[FakeClerk]:
        clerk = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                clerk.fetches += 1
                body = json.dumps(clerk.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        with serving(Handler, name="fake-clerk") as self._server:
            yield self


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], *, name: str) -> Iterator[ThreadingHTTPServer]:
    """`handler` served on a free local port by a background thread, for the block's duration."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name=name)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def webhook(
    event_type: str,
    data: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    msg_id: str | None = None,
    timestamp_ms: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A Clerk event as Svix delivers it: the JSON body and its signature headers. The event's
    own `timestamp` (when Clerk made it) is now unless given."""
    event_time = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    body = json.dumps({"data": data, "object": "event", "type": event_type, "timestamp": event_time}).encode()
    return body, signed(body, msg_id=msg_id or "msg_" + uuid.uuid4().hex, secret=secret)


def signed(body: bytes, *, msg_id: str, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    """Svix's headers for a delivery of `body` made now: a retry is the same body and `svix-id`,
    signed afresh."""
    now = datetime.now(UTC)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, now, body.decode()),
        "content-type": "application/json",
    }


def clerk_user(user_id: str, email: str, **extra: Any) -> dict[str, Any]:
    """A Clerk user object, trimmed to the fields that matter here plus a few it always has."""
    address_id = "idn_" + uuid.uuid4().hex[:24]
    return {
        "id": user_id,
        "object": "user",
        "email_addresses": [{"id": address_id, "object": "email_address", "email_address": email}],
        "primary_email_address_id": address_id,
        "first_name": "Test",
        "last_name": "User",
        "public_metadata": {},
        "private_metadata": {},
        "unsafe_metadata": {},
        "created_at": int(time.time() * 1000),
        **extra,
    }
