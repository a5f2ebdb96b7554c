"""A request body read once inside the middleware stack and handed on: the one body reader and
the one replay every middleware that looks at a body uses."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope

from common.errors import PayloadTooLarge


async def read_body(receive: Receive, *, max_bytes: int | None = None) -> tuple[bytes, Message | None]:
    """The whole request body, and the non-body message (a disconnect) that ended it early, if
    any. More than `max_bytes` raises PayloadTooLarge as soon as it is exceeded; without it the
    body is bounded already (BodyLimitMiddleware runs first)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if max_bytes is not None and size > max_bytes:
            raise too_large(max_bytes)
        if not message.get("more_body", False):
            return b"".join(chunks), None


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than {max_bytes} bytes")


def replaying(body: bytes, ended: Message | None, receive: Receive) -> Receive:
    """A receive() that hands back `body` once, then defers to the real one. A body that a
    disconnect cut short is not handed on as if it were whole: only the disconnect is."""
    pending: list[Message] = [ended] if ended is not None else [{"type": "http.request", "body": body}]

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None
