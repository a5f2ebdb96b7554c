"""The gateway's one error writer for code that answers from inside the middleware stack: an
error as problem+json, or in OpenAI's error shape on the OpenAI-compatible routes (the status
and headers are the same either way, and both carry the request id)."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from common.errors import PlatformError
from gateway.http.problems import problem_response, scope_request_id
from gateway.openai.errors import error_response as openai_error

OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/images/generations", "/v1/embeddings"})


def is_openai_path(path: str) -> bool:
    """The OpenAI-compatible routes, whose clients parse OpenAI's error shape."""
    return path in OPENAI_PATHS or path == "/v1/models" or path.startswith("/v1/models/")


def error_response(scope: Scope, error: PlatformError) -> JSONResponse:
    path = scope["path"]
    if is_openai_path(path):
        return openai_error(error, scope_request_id(scope))
    return problem_response(error, request_id=scope_request_id(scope), instance=path)


async def send_error(
    scope: Scope, receive: Receive, send: Send, error: PlatformError, headers: dict[str, str] | None = None
) -> None:
    """Answer with `error_response` from inside the middleware stack."""
    response = error_response(scope, error)
    response.headers.update(headers or {})
    await response(scope, receive, send)
