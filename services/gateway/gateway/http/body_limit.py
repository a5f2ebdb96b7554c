"""Request body size limit (MAX_BODY_BYTES): a larger body is refused with 413, by its
Content-Length or, for a chunked upload, while it streams."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from common.errors import PayloadTooLarge
from gateway.http.body import read_body, replaying, too_large
from gateway.http.errors import send_error


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = [v for k, v in scope["headers"] if k.lower() == b"content-length"]
        declared = lengths[0] if lengths else None
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_error(scope, receive, send, too_large(self.max_bytes))
            return
        framed = len(lengths) == 1 and lengths[0].isdigit()
        if framed and all(k.lower() != b"transfer-encoding" for k, _ in scope["headers"]):
            # The server delivers exactly the declared length, within the limit: nothing to hold back.
            await self.app(scope, receive, send)
            return
        # Buffer the (bounded) body so a chunked upload is held to the same limit.
        try:
            body, ended = await read_body(receive, max_bytes=self.max_bytes)
        except PayloadTooLarge as error:
            await send_error(scope, receive, send, error)
            return
        await self.app(scope, replaying(body, ended, receive), send)
