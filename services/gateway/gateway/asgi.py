"""Small pieces the gateway's pure ASGI middleware share: reading a (bounded) body once and
handing it on, and answering with a problem from inside the middleware stack."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from common.errors import PlatformError
from gateway.problems import problem_response
from gateway.routes.openai import error_response as openai_error

OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/images/generations", "/v1/embeddings"})


async def read_body(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole request body, and the non-body message (a disconnect) that ended it early, if any.
    BodyLimitMiddleware runs first, so the body is already bounded."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None


def replaying(body: bytes, ended: Message | None, receive: Receive) -> Receive:
    """A receive() that hands back `body` once, then defers to the real one."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    if ended is not None:
        pending.append(ended)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def request_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", "unknown"))


def is_openai_path(path: str) -> bool:
    """The OpenAI-compatible routes, whose clients parse OpenAI's error shape."""
    return path in OPENAI_PATHS or path == "/v1/models" or path.startswith("/v1/models/")


def error_response(scope: Scope, error: PlatformError) -> JSONResponse:
    """The gateway's one error writer: `error` as problem+json, or in OpenAI's error shape on
    the OpenAI-compatible routes (the status and headers are the same either way)."""
    path = scope["path"]
    if is_openai_path(path):
        return openai_error(error, request_id(scope))
    return problem_response(error, request_id=request_id(scope), instance=path)


async def send_problem(
    scope: Scope, receive: Receive, send: Send, error: PlatformError, headers: dict[str, str] | None = None
) -> None:
    """Answer with `error_response` from inside the middleware stack."""
    response = error_response(scope, error)
    response.headers.update(headers or {})
    await response(scope, receive, send)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None
