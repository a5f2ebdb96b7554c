"""Wire helpers the provider modules share: JSON bodies, SSE framing, timestamps, the caller's origin."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

ErrorReply = Callable[[int, str], Response]

MALFORMED_JSON = b'{"id": "sim-malformed", "choices": [{"text": "cut short'
MALFORMED_SSE = b'data: {"id": "sim-malformed", "choices": [\n\n'


async def json_body(request: Request, error: ErrorReply) -> dict[str, Any] | Response:
    """The request's JSON object, or the provider's 400 reply when it is not one."""
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        return error(400, f"We could not parse the JSON body of your request: {exc}")
    if not isinstance(body, dict):
        return error(400, "The request body must be a JSON object.")
    return body


def sse(events: AsyncIterator[bytes]) -> StreamingResponse:
    """A `text/event-stream` reply that sends each item as it is produced."""
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
    )


def sse_event(data: object, *, linesep: str = "\n") -> bytes:
    """One `data:` event; `data` is JSON-encoded unless it is already a string."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}{linesep}{linesep}".encode()


def malformed(*, stream: bool) -> Response:
    """200 with a body no client can parse: truncated JSON, or an SSE event carrying truncated JSON."""
    if stream:
        return Response(MALFORMED_SSE, media_type="text/event-stream")
    return Response(MALFORMED_JSON, media_type="application/json")


def origin(request: Request) -> str:
    """`http://host:port` as the caller reached us, for absolute URLs in replies."""
    return f"{request.url.scheme}://{request.url.netloc}"


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (or `Token <token>`, Replicate's old form)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token"):
        return None
    return token.strip() or None


def iso(ts: float) -> str:
    """RFC 3339 UTC timestamp with microseconds and a `Z`, as Replicate and Cloudinary write them."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> float:
    return time.time()
