"""Relaying a streamed chat answer to an HTTP client as server-sent events.

`ChatRelay.open` publishes the request and waits for its first chunk, so anything that fails
before the first token (no credits, every provider down, the deadline) is still an ordinary
error response. Then `EventStream` writes each chunk as it arrives, and the chat service is
told how many chunks reached the client: after the last one, or at once when the client
disconnects, which stops the provider and charges only what was delivered (nothing, if
nothing was).

A client that stops reading is treated as gone: a write that waits longer than
STREAM_WRITE_TIMEOUT_S for it, or more chunks waiting than the reply stream's buffer holds
(`StreamOverflow`), ends the stream. It is then reported with the chunks written so far, and
nothing after the report is relayed: the chat service charges that report, or, when no report
comes in time, everything it sent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from contextlib import aclosing
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from common.bus import RpcClient, RpcStream, StreamOverflow
from common.contracts import ChatChunk, ChatCompletion, CompleteChat, Envelope
from common.errors import PlatformError

log = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ChatRelay:
    def __init__(self, stream: RpcStream[ChatChunk, ChatCompletion], first: ChatChunk | None) -> None:
        self._stream = stream
        self._first = first
        self.delivered = 0
        self.reported: int | None = None

    @classmethod
    async def open(cls, rpc: RpcClient, envelope: Envelope[CompleteChat]) -> ChatRelay:
        stream = await rpc.stream(envelope, chunk_model=ChatChunk, reply_model=ChatCompletion)
        try:
            first = await anext(stream, None)
        except BaseException:
            stream.close()
            raise
        return cls(stream, first)

    async def items(self) -> AsyncGenerator[ChatChunk | ChatCompletion]:
        """Text chunks, then the completion; `delivered` must count each chunk once written.
        A typed error raises from here; a client gone (cancellation) is acknowledged on the way out,
        and a stream that overflowed raises ClientTooSlow. No chunk follows the report."""
        try:
            item = self._first
            while item is not None:
                if item.last:
                    await self._report()
                elif self.reported is None:
                    yield item
                try:
                    item = await anext(self._stream, None)
                except StreamOverflow as exc:
                    raise ClientTooSlow(str(exc)) from exc
            if self._stream.result is not None:
                yield self._stream.result
        finally:
            await self._report()
            self._stream.close()

    async def _report(self) -> None:
        if self.reported is None:
            self.reported = self.delivered
            await self._stream.acknowledge(self.delivered)


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


def sse(data: str, *, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


async def write_events(relay: ChatRelay, emit: Callable[[bytes], Awaitable[None]], fmt: EventFormat) -> None:
    """Write `relay`'s items as events in `fmt`, counting delivered chunks."""
    streamed_any = False
    try:
        async with aclosing(relay.items()) as items:
            async for item in items:
                if isinstance(item, ChatChunk):
                    await emit(fmt.chunk(item))
                    relay.delivered += 1
                    streamed_any = True
                else:
                    await emit(fmt.done(item, streamed_any=streamed_any))
    except PlatformError as exc:
        await emit(fmt.error(exc))


class EventFormat(Protocol):
    """How one API spells chunks, the end and errors."""

    def chunk(self, chunk: ChatChunk) -> bytes: ...

    def done(self, completion: ChatCompletion, *, streamed_any: bool) -> bytes: ...

    def error(self, error: PlatformError) -> bytes: ...
