"""Server-sent event streams: the headers every stream carries, and a response that writes
events as they come and stops when the client leaves or stops reading. Events themselves are
encoded by FastAPI's `format_sse_event`, the one encoder every stream uses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

# No proxy (nginx: X-Accel-Buffering) or cache may hold events back.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

Writer = Callable[[Callable[[bytes], Awaitable[None]]], Coroutine[Any, Any, None]]


class EventStream(Response):
    """A text/event-stream response whose writer is cancelled when the client disconnects, and
    fails with ClientTooSlow when one write waits more than `write_timeout_s` for the client."""

    media_type = "text/event-stream"

    def __init__(self, writer: Writer, *, write_timeout_s: float, headers: dict[str, str] | None = None) -> None:
        self._writer = writer
        self._write_timeout_s = write_timeout_s
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        # Watching starts first, so a client already gone is seen before anything is counted as delivered.
        watching = asyncio.create_task(_disconnected(receive))

        async def emit(data: bytes) -> None:
            if watching.done():
                raise ClientGone
            try:
                # A server waits for a client's reading before it takes more (uvicorn: before it
                # writes), so a write cut short here never reaches the client and is not counted.
                async with asyncio.timeout(self._write_timeout_s):
                    await send({"type": "http.response.body", "body": data, "more_body": True})
            except TimeoutError:
                raise ClientTooSlow(f"a write waited {self._write_timeout_s:g}s for the client") from None

        writing = asyncio.create_task(self._writer(emit))
        try:
            await asyncio.wait({writing, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            if not writing.done():  # the client left (or the server is stopping): stop writing
                writing.cancel()
            await asyncio.gather(writing, watching, return_exceptions=True)
        error = None if writing.cancelled() else writing.exception()
        if isinstance(error, ClientTooSlow):
            log.info("client stopped reading during a stream; cut off", extra={"reason": str(error)})
            return
        if writing.cancelled() or isinstance(error, ClientGone | OSError):
            log.info("client left during a stream")
            return
        if error is not None:
            raise error
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class ClientGone(Exception):
    """The client disconnected: nothing more can be delivered."""


class ClientTooSlow(ClientGone):
    """The client stopped reading (a write waited too long, or too many chunks waited): it is cut off."""


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
