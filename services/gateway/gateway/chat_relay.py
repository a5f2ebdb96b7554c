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

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Protocol

from common.bus import RpcClient, RpcStream, StreamOverflow
from common.contracts import ChatChunk, ChatCompletion, CompleteChat, Envelope
from common.errors import PlatformError
from gateway.http.sse import ClientTooSlow


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
