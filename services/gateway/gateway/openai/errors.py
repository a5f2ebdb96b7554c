"""Errors on the OpenAI-compatible routes, in OpenAI's shape (which OpenAI clients parse),
extended with the request id: `{"error": {"message", "type", "param", "code", "request_id"}}`,
with the same status a problem+json would have (bad input is 400, as OpenAI answers it) and
the `X-Request-ID` header as everywhere."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from common.errors import BadRequest, PlatformError
from gateway.http.json_body import ParsedBodyRoute
from gateway.http.problems import error_headers, request_id_of

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(error: PlatformError, request_id: str, *, param: str | None = None) -> dict[str, Any]:
    status = error.status
    body = {
        "message": error.detail,
        "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        "param": param,
        "code": error.code,
        "request_id": request_id,
    }
    return {"error": body}


def error_response(error: PlatformError, request_id: str, *, param: str | None = None) -> JSONResponse:
    body = error_body(error, request_id, param=param)
    return JSONResponse(body, status_code=error.status, headers=error_headers(error, request_id))


class OpenAIRoute(ParsedBodyRoute):
    """Renders this router's errors in OpenAI's shape instead of problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            request_id = request_id_of(request)
            try:
                return await handler(request)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
                loc = [str(p) for p in first["loc"] if p != "body"]
                param = ".".join(loc) or None
                message = f"Invalid '{param}': {first['msg']}" if param else str(first["msg"])
                return error_response(BadRequest(message), request_id, param=param)
            except PlatformError as exc:
                return error_response(exc, request_id, param=_param(exc))
            except HTTPException as exc:  # a body FastAPI cannot read: still OpenAI's shape
                return error_response(BadRequest(str(exc.detail)), request_id)

        return route


def _param(error: PlatformError) -> str | None:
    """The request field a service's validation error names (`body.model` → `model`)."""
    errors = error.extra.get("errors")
    field = errors[0].get("field") if isinstance(errors, list) and errors and isinstance(errors[0], dict) else None
    return field.removeprefix("body.") if isinstance(field, str) else None
