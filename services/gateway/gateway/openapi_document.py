"""The OpenAPI document (`/openapi.json`), exact about what the gateway answers.

FastAPI writes it from the routes; this adds what the routes cannot say themselves: the
error schemas the shared `responses` refer to, the headers every response carries
(X-Request-ID always; the RateLimit fields on every rate-limited route), and parameters as
a client sends them: an optional header or query parameter is absent rather than `null`,
and X-Request-Timeout is a number of seconds within the bounds this gateway's settings
allow. A client generated from it gets the real behaviour; the schemathesis test
(`tests/e2e/test_openapi_contract.py`) holds it to that.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.http.deadlines import MIN_TIMEOUT_S
from gateway.http.responses import SCHEMAS
from gateway.idempotency.middleware import IMAGE_JOB_PATHS
from gateway.ratelimit.middleware import PROBES
from gateway.settings import GatewaySettings

X_REQUEST_ID = {
    "description": "The request's id (the client's own when well formed): quote it to support.",
    "required": True,
    "schema": {"type": "string"},
}
RATELIMIT = {
    "RateLimit": {
        "description": 'What is left of each budget checked: `"ip";r=99;t=60` (draft-ietf-httpapi-ratelimit-headers).',
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'The budgets checked: `"ip";q=100;w=60`.',
        "schema": {"type": "string"},
    },
}


def _absent_not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, null]` as X: a parameter is left out, never sent as null."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [b for b in branches if b != {"type": "null"}]
    if len(kept) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**kept[0], **rest}


def _parameter(param: dict[str, Any], *, method: str, path: str, settings: GatewaySettings) -> None:
    if not param.get("required"):
        param["schema"] = _absent_not_null(param["schema"])
    if param["in"] == "header" and param["name"] == "x-request-timeout":
        image_job = method == "post" and path in IMAGE_JOB_PATHS
        most = settings.image_job_timeout_s if image_job else settings.max_request_timeout_s
        param["schema"] = {
            "type": "number",
            "minimum": MIN_TIMEOUT_S,
            "maximum": most,
            "description": param["schema"].get("description", ""),
        }


def build(app: FastAPI, settings: GatewaySettings) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(SCHEMAS)
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body; ours is a Problem
        schemas.pop(name, None)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for param in operation.get("parameters", []):
                _parameter(param, method=method, path=path, settings=settings)
            for response in operation["responses"].values():
                limits = RATELIMIT if path not in PROBES else {}
                response["headers"] = {**response.get("headers", {}), "X-Request-ID": X_REQUEST_ID, **limits}
    return doc


def install(app: FastAPI, settings: GatewaySettings) -> None:
    """Serve `build`'s document (made once, on first use) as the app's OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to replace the document
