"""Standard security headers on every response, and CORS for the configured origins.

The API answers JSON (and SSE) only, so the strictest policy fits it: nothing may be
framed, sniffed, or loaded from it as a document. The interactive docs (`/docs`,
`/redoc`) load Swagger UI / ReDoc from a CDN and get no Content-Security-Policy.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.idempotency import KEY_HEADER

_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
_API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_HSTS = "max-age=63072000; includeSubDomains"
_DOC_PATHS = ("/docs", "/redoc")

# What a browser client may send and read across origins.
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", KEY_HEADER.decode(), "X-Request-ID", "X-Request-Timeout"]
CORS_EXPOSED_HEADERS = ["X-Request-ID", "RateLimit", "RateLimit-Policy", "Retry-After", "Idempotent-Replayed"]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(_DOC_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS.items():
                    headers.setdefault(name, value)
                if not docs:
                    headers.setdefault("Content-Security-Policy", _API_CSP)
                    headers.setdefault("Cache-Control", "no-store")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", _HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_cors(app: FastAPI, origins: list[str]) -> None:
    """Browsers on these origins may call the API with a bearer token (no cookies are used)."""
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            allow_credentials=False,
            max_age=600,
        )
