"""Every error leaves the gateway as RFC 9457 problem+json carrying the request id."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import Scope

from common.bus.retry import TRANSIENT
from common.errors import (
    BadRequest,
    Forbidden,
    InternalError,
    NotFound,
    PayloadTooLarge,
    PlatformError,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
)
from common.logs import request_id_var

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class MethodNotAllowed(PlatformError):
    code, status, title = "method_not_allowed", 405, "Method not allowed"


_BY_STATUS: dict[int, type[PlatformError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    422: ValidationFailed,
}


def error_headers(error: PlatformError, request_id: str) -> dict[str, str]:
    """The headers every error answer carries, whatever its body's shape."""
    headers = {"X-Request-ID": request_id}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="aisaas"'
    retry_after = error.extra.get("retry_after")
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return headers


def problem_response(error: PlatformError, *, request_id: str, instance: str | None = None) -> JSONResponse:
    """The one problem+json writer."""
    headers = error_headers(error, request_id)
    return JSONResponse(
        error.to_problem(request_id=request_id, instance=instance),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def request_id_of(request: Request) -> str:
    return request_id_var.get() or str(getattr(request.state, "request_id", "unknown"))


def scope_request_id(scope: Scope) -> str:
    """The request id RequestContextMiddleware gave the request, for code below it in the stack."""
    return str(scope.get("state", {}).get("request_id", "unknown"))


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _platform_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PlatformError)
    if exc.status >= 500:
        log.warning("request failed", extra={"code": exc.code, "detail": exc.detail})
    return problem_response(exc, request_id=request_id_of(request), instance=request.url.path)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()]
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    error = ValidationFailed(f"invalid request: {fields}", errors=errors)
    return problem_response(error, request_id=request_id_of(request), instance=request.url.path)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    cls = _BY_STATUS.get(exc.status_code, BadRequest if exc.status_code < 500 else InternalError)
    error = cls(str(exc.detail))
    response = problem_response(error, request_id=request_id_of(request), instance=request.url.path)
    response.status_code = exc.status_code
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["Allow"] = allowed_methods(request)
    return response


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette's 405 names only the first route's)."""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path and route.methods and compile_path(route.path)[0].match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    """A store a route uses directly (the users collection, Redis) is unreachable: 503 with a
    Retry-After, as for any dependency down, not a 500 that reads as a bug."""
    log.warning("dependency unreachable", extra={"error": repr(exc), "path": request.url.path})
    error = ServiceUnavailable("a store this request needs is unreachable; try again shortly", retry_after=2)
    return problem_response(error, request_id=request_id_of(request), instance=request.url.path)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return problem_response(InternalError(), request_id=request_id_of(request), instance=request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(PlatformError, _platform_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for down in TRANSIENT:
        if issubclass(down, Exception) and not issubclass(down, PlatformError):
            app.add_exception_handler(down, _dependency_down)
    app.add_exception_handler(Exception, _unexpected)
