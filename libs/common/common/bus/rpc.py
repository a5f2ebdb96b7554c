"""Request/reply over RabbitMQ: one exclusive reply queue per process, declared once, and a
waiter per in-flight request keyed by correlation id.

Streamed replies. A replier may send any number of chunk messages (AMQP type `chunk`) to the
reply queue, with the request's correlation id, before its one final `Reply`; one channel
keeps them in order. `stream()` returns an `RpcStream` that yields the chunks as they arrive
and ends with the reply (or raises its typed error). A chunk may carry a feedback address in
its `reply_to`: the requester's `acknowledge(delivered)` tells the replier how many chunks it
passed on (on completion, or at once when its own client has gone), so the replier can stop
early and charge for what was delivered. The same exclusive queue is the process's inbox for
such feedback (`expect`), so a replier needs nothing declared per request either. A replier
does not wait for its requester, so each stream holds at most `stream_buffer` messages not yet
taken: one more overflows it, and its iteration raises `StreamOverflow` (the requester's client
is that far behind: it is cut off rather than held in memory).

Batches. A call or publish made with `coalesce=True` joins the commands of its type and
routing key made in the same turn of the event loop; they go out as ONE message (AMQP type
`batch`, header `x-batch-of`: their type, body: a JSON array of their envelopes), and its one
reply is the JSON array of their replies, in order. The consumer runs each as a message of
its own would run, all at once, and acks the batch when all are done. Each keeps its own
message id, deadline, actor and trace context. Under load, many callers' commands to the
same queue then cost the broker, the consumer and this process one message instead of many.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aio_pika.abc import AbstractIncomingMessage
from pydantic import BaseModel, ConfigDict, Field

from common.bus.connection import Bus, stamp
from common.contracts.envelope import Contract, Envelope, reply_model_for
from common.errors import DeadlineExceeded, InternalError, error_from_body

log = logging.getLogger(__name__)

CHUNK = "chunk"


class StreamOverflow(Exception):
    """A stream's requester fell more than its buffer behind the replier; later messages were dropped."""


class StreamFeedback(BaseModel):
    """What a stream's requester tells the replier: how many chunks reached its client."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivered: int = Field(ge=0, description="Chunks passed on to the client, counted from the first.")


Raw = bytes | dict[str, Any] | None  # a reply's JSON: as received, or one member of a batch's reply


Sent = Callable[[], None]


@dataclass(slots=True)
class _Member:
    """A command waiting in this turn of the loop for the others of its batch."""

    envelope: Envelope[Any]
    future: asyncio.Future[Raw]
    sent: Sent | None = None


@dataclass
class _Batch:
    """The callers whose commands went out as one message, awaiting its one reply."""

    waiters: list[asyncio.Future[Raw]]
    open: int = field(init=False)

    def __post_init__(self) -> None:
        self.open = len(self.waiters)


class Requester(Protocol):
    """Commands sent over the bus with or without waiting for the answer: what a client of
    another service (such as `common.credits.CreditsClient`) needs. `RpcClient` is the one."""

    async def call[R: Contract](
        self, envelope: Envelope[Any], *, reply_model: type[R], coalesce: bool = False, sent: Sent | None = None
    ) -> R: ...

    async def publish(self, envelope: Envelope[Any], *, coalesce: bool = False) -> None: ...


class RpcClient:
    def __init__(self, bus: Bus, *, process: str, stream_buffer: int = 1024) -> None:
        if stream_buffer < 1:
            raise ValueError("a stream needs room for at least one message")
        self._bus = bus
        self._stream_buffer = stream_buffer
        # A call's reply, a stream's feedback (`expect`), a stream, or a coalesced batch's replies.
        self._pending: dict[str, asyncio.Future[Raw] | asyncio.Future[bytes] | RpcStream[Any, Any] | _Batch] = {}
        self._gathering: dict[tuple[str, str, bool], list[_Member]] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self.reply_queue = bus.topology.reply_queue(process)

    async def start(self) -> None:
        channel = await self._bus.channel(prefetch=1000)
        queue = await channel.declare_queue(self.reply_queue, exclusive=True, auto_delete=True)
        await queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        waiter = self._pending.get(message.correlation_id or "")
        if isinstance(waiter, RpcStream):
            waiter.offer(message)
            return
        if isinstance(waiter, _Batch):
            self._pending.pop(message.correlation_id or "", None)
            replies = json.loads(message.body)
            for member, raw in zip(waiter.waiters, replies, strict=False):
                if not member.done():
                    member.set_result(raw)
            return
        if waiter is None or waiter.done():
            log.info("late or unknown reply discarded", extra={"correlation_id": message.correlation_id})
            return
        if message.type == CHUNK:
            return  # a plain call waits for the reply only
        waiter.set_result(message.body)

    async def call[R: Contract](
        self, envelope: Envelope[Any], *, reply_model: type[R], coalesce: bool = False, sent: Sent | None = None
    ) -> R:
        """Publish a command and wait for its reply until the envelope's deadline; with `coalesce`,
        in one message with the same commands other callers make in this turn of the loop. `sent`
        is called once the publish is over (the broker has the command, or it failed to go out),
        before the reply: a caller may start other work then rather than compete with the send."""
        if envelope.deadline is None:
            raise ValueError("request/reply needs a deadline")
        if coalesce:
            future = self._join(envelope, reply=True, sent=sent)
            try:
                async with asyncio.timeout(max(envelope.seconds_left() or 0.0, 0.0)):
                    raw = await future
            except TimeoutError as exc:
                raise DeadlineExceeded(f"no answer to {envelope.type} before the deadline") from exc
            return _result(raw, envelope.type, reply_model)
        correlation_id = uuid.uuid4().hex
        waiter: asyncio.Future[Raw] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = waiter
        try:
            async with asyncio.timeout(max(envelope.seconds_left() or 0.0, 0.0)):
                try:
                    await self._bus.publish(envelope, reply_to=self.reply_queue, correlation_id=correlation_id)
                finally:
                    if sent is not None:
                        sent()
                body = await waiter
        except TimeoutError as exc:
            raise DeadlineExceeded(f"no answer to {envelope.type} before the deadline") from exc
        finally:
            self._pending.pop(correlation_id, None)
        return _result(body, envelope.type, reply_model)

    async def publish(self, envelope: Envelope[Any], *, coalesce: bool = False) -> None:
        """Publish a command whose answer nobody waits for (durable once this returns); with
        `coalesce`, in one message with the same commands other callers publish in this turn."""
        if coalesce:
            await self._join(envelope, reply=False)
        else:
            await self._bus.publish(envelope)

    def _join(self, envelope: Envelope[Any], *, reply: bool, sent: Sent | None = None) -> asyncio.Future[Raw]:
        key = (envelope.type, self._bus.topology.routing_key(envelope), reply)
        loop = asyncio.get_running_loop()
        gathering = self._gathering.get(key)
        if gathering is None:
            gathering = self._gathering[key] = []
            loop.call_soon(self._flush, key)
        future: asyncio.Future[Raw] = loop.create_future()
        gathering.append(_Member(stamp(envelope), future, sent))  # the trace context is the caller's, now
        return future

    def _flush(self, key: tuple[str, str, bool]) -> None:
        task = asyncio.create_task(self._send(self._gathering.pop(key), reply=key[2]))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, members: list[_Member], *, reply: bool) -> None:
        envelopes, futures = [m.envelope for m in members], [m.future for m in members]
        correlation_id = uuid.uuid4().hex if reply else None
        if correlation_id is not None:
            self._pending[correlation_id] = futures[0] if len(futures) == 1 else self._batch(correlation_id, futures)
        try:
            if len(envelopes) == 1:
                reply_to = self.reply_queue if reply else None
                await self._bus.publish(envelopes[0], reply_to=reply_to, correlation_id=correlation_id)
            else:
                await self._bus.publish_batch(
                    envelopes, reply_to=self.reply_queue if reply else None, correlation_id=correlation_id
                )
        except Exception as exc:
            if correlation_id is not None:
                self._pending.pop(correlation_id, None)
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            for member in members:
                if member.sent is not None:
                    member.sent()
        if correlation_id is None:
            for future in futures:
                if not future.done():
                    future.set_result(None)
        elif len(futures) == 1:
            futures[0].add_done_callback(lambda _: self._pending.pop(correlation_id, None))

    def _batch(self, correlation_id: str, futures: list[asyncio.Future[Raw]]) -> _Batch:
        batch = _Batch(futures)

        def settled(_: asyncio.Future[Raw]) -> None:  # every caller answered or gone: forget the batch
            batch.open -= 1
            if batch.open == 0:
                self._pending.pop(correlation_id, None)

        for future in futures:
            future.add_done_callback(settled)
        return batch

    async def stream[C: Contract, R: Contract](
        self, envelope: Envelope[Any], *, chunk_model: type[C], reply_model: type[R]
    ) -> RpcStream[C, R]:
        """Publish a command whose replier streams chunks; iterate the returned stream for them.

        A command nobody consumes or a broker that is down raises here, before any chunk."""
        if envelope.deadline is None:
            raise ValueError("request/reply needs a deadline")
        correlation_id = uuid.uuid4().hex
        queue: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue(maxsize=self._stream_buffer)
        stream = RpcStream(self, envelope, correlation_id, queue, chunk_model=chunk_model, reply_model=reply_model)
        self._pending[correlation_id] = stream
        try:
            async with asyncio.timeout(max(envelope.seconds_left() or 0.0, 0.0)):
                await self._bus.publish(envelope, reply_to=self.reply_queue, correlation_id=correlation_id)
        except TimeoutError as exc:
            stream.close()
            raise DeadlineExceeded(f"no answer to {envelope.type} before the deadline") from exc
        except BaseException:
            stream.close()
            raise
        return stream

    def expect(self, correlation_id: str) -> asyncio.Future[bytes]:
        """A future for one message to this process's queue with `correlation_id` (stream feedback).
        The caller must `forget` it when it stops waiting."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        return future

    def forget(self, correlation_id: str) -> None:
        self._pending.pop(correlation_id, None)

    async def send_feedback(self, *, to: str, correlation_id: str, feedback: StreamFeedback) -> None:
        await self._bus.reply(feedback.model_dump_json().encode(), reply_to=to, correlation_id=correlation_id)


class RpcStream[C: Contract, R: Contract]:
    """The chunks of one streamed reply, as they arrive; `result` holds the reply at the end.

    Iteration raises the replier's typed error, DeadlineExceeded at the envelope's deadline, or
    StreamOverflow once a message found the buffer full (the requester is too far behind).
    Chunks with an index already seen (a redelivered request restarting) are skipped."""

    def __init__(
        self,
        client: RpcClient,
        envelope: Envelope[Any],
        correlation_id: str,
        queue: asyncio.Queue[AbstractIncomingMessage],
        *,
        chunk_model: type[C],
        reply_model: type[R],
    ) -> None:
        self._client = client
        self._envelope = envelope
        self._correlation_id = correlation_id
        self._queue = queue
        self._chunk_model = chunk_model
        self._reply_model = reply_model
        self._feedback_to: str | None = None
        self._acknowledged = False
        self._next_index = 0
        self.result: R | None = None
        self.finished = False
        self.overflowed = False

    def __aiter__(self) -> RpcStream[C, R]:
        return self

    def offer(self, message: AbstractIncomingMessage) -> None:
        """Take a message from the reply queue; a full buffer drops it and every later one."""
        if self.overflowed or self.finished:
            return
        if message.type == CHUNK:  # where to report to, even if the chunk is never taken
            self._feedback_to = message.reply_to or self._feedback_to
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True
            log.warning(
                "stream requester too far behind; dropping the stream",
                extra={"correlation_id": self._correlation_id, "buffered": self._queue.qsize()},
            )

    async def __anext__(self) -> C:
        while not self.finished:
            if self.overflowed:
                self.close()
                raise StreamOverflow(f"more than {self._queue.maxsize} messages of {self._envelope.type} waiting")
            try:
                async with asyncio.timeout(max(self._envelope.seconds_left() or 0.0, 0.0)):
                    message = await self._queue.get()
            except TimeoutError as exc:
                self.close()
                raise DeadlineExceeded(f"no answer to {self._envelope.type} before the deadline") from exc
            if message.type == CHUNK:
                chunk = self._chunk_model.model_validate_json(message.body)
                index: Any = getattr(chunk, "index", None)
                if isinstance(index, int):
                    if index < self._next_index:
                        continue
                    self._next_index = index + 1
                return chunk
            self.close()
            self.result = _result(message.body, self._envelope.type, self._reply_model)
        raise StopAsyncIteration

    async def acknowledge(self, delivered: int) -> None:
        """Tell the replier how many chunks reached the client (once; no-op without a feedback address)."""
        if self._acknowledged or self._feedback_to is None:
            return
        self._acknowledged = True
        await self._client.send_feedback(
            to=self._feedback_to, correlation_id=self._correlation_id, feedback=StreamFeedback(delivered=delivered)
        )

    def close(self) -> None:
        """Stop listening: later chunks and the reply are discarded."""
        self.finished = True
        self._client.forget(self._correlation_id)


def _result[R: Contract](body: Raw, name: str, result_model: type[R]) -> R:
    if body is None:
        raise InternalError(f"{name} got no reply of its own")
    model = reply_model_for(result_model)
    reply = model.model_validate_json(body) if isinstance(body, bytes) else model.model_validate(body)
    if reply.error is not None:
        raise error_from_body(reply.error)
    if reply.result is None:
        raise InternalError(f"{name} reply carried neither result nor error")
    return reply.result
