"""Standard security headers on every response, and CORS for the configured origins.

The API answers JSON (and SSE) only, so the strictest policy fits it: nothing may be
framed, sniffed, or loaded from it as a document. The interactive docs (`/docs`,
`/redoc`) load Swagger UI / ReDoc from a CDN and get no Content-Security-Policy.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from gateway.idempotency.middleware import KEY_HEADER

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


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class SecurityHeaders:
    """Adds the headers above to a response's raw header list, each unless the response set
    its own; the request-context middleware applies it to every response (see `request_context.py`)."""

    def __init__(self, *, hsts: bool) -> None:
        api = {**_ALWAYS, "Content-Security-Policy": _API_CSP, "Cache-Control": "no-store"}
        docs = dict(_ALWAYS)
        if hsts:
            api["Strict-Transport-Security"] = docs["Strict-Transport-Security"] = _HSTS
        self._api, self._docs = _raw(api), _raw(docs)

    def for_path(self, path: str) -> list[tuple[bytes, bytes]]:
        return self._docs if path.startswith(_DOC_PATHS) else self._api

    @staticmethod
    def add(headers: list[tuple[bytes, bytes]], wanted: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        present = {name.lower() for name, _ in headers}
        return headers + [(name, value) for name, value in wanted if name not in present]


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
