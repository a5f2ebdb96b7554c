"""Consuming a service's queue: parse, drop expired work, deduplicate, handle, reply, ack.

- A body that does not parse (or names an unknown message) is rejected without requeue
  and so dead-lettered at once; the consumer keeps serving.
- A message its broker-verified publisher may not send (`common.bus.trust`) is answered 403
  and dead-lettered, unhandled; an admin claim from a publisher that cannot make one is
  handled as a plain user's.
- A message whose deadline has passed is acked and dropped: its requester has gone.
- A dependency down for now (ServiceUnavailable, the store or Redis unreachable: see
  `common.bus.retry`) is not an answer. A requester that waits gets a 503 at once (it may retry
  itself; nothing is recorded, so its retry runs afresh), or a 504 (OutcomeUnknown) when the
  message is a redelivery, whose earlier delivery may have done the work; a message nobody waits for is held for
  a backoff and handed back to the queue, and dead-lettered once the queue's delivery limit
  (`max_attempts`) is spent.
- A handler that raises any other PlatformError has given a definitive answer (bad input is a
  4xx at once): it is replied, recorded and acked. Any other exception is an unexpected failure:
  the requester gets a 500 at once and the message goes to the dead-letter queue after that ONE
  attempt (redoing work that failed for no known reason only repeats its cost and keeps the
  requester waiting). A consumer that dies before its ack gets the message redelivered, up to
  the queue's delivery limit.
- The ack comes only after the effect and its record: a crash before it means redelivery,
  and redelivery replays the recorded reply (services whose handlers are idempotent by
  themselves, like the ledger, run without the record). Redis unreachable when the record is
  looked up is a dependency down (above): the record exists for handlers that are NOT
  idempotent, so running without it could repeat an effect. Redis unreachable when the record
  is written, after the effect, is logged and passed over: retrying would repeat the effect.
- A handler wrapped in `Streaming` also gets a `ReplyStream`: it may send chunks to the
  requester before its result becomes the final reply (see `common.bus.rpc` for the protocol).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError

from common import telemetry
from common.bus.connection import BATCH, BATCH_OF, Bus
from common.bus.processed import ProcessedMessages
from common.bus.retry import backoff, delivery_count, is_transient
from common.bus.rpc import CHUNK, RpcClient, StreamFeedback
from common.bus.topology import Topology
from common.bus.trust import Publishers
from common.contracts.catalog import CATALOG
from common.contracts.envelope import Contract, Envelope, Reply, envelope_model_for
from common.errors import DeadlineExceeded, Forbidden, InternalError, OutcomeUnknown, PlatformError, ServiceUnavailable
from common.logs import bound
from common.metrics import HANDLER_SECONDS, IN_FLIGHT, MESSAGES
from common.redis_client import REDIS_ERRORS
from common.telemetry import context_from

log = logging.getLogger(__name__)
tracer = trace.get_tracer("common.bus")

Handler = Callable[[Any], Awaitable[Contract | None]]
_REPLYING: ContextVar[bool] = ContextVar("replying", default=True)


def reply_expected() -> bool:
    """Whether the requester of the message being handled waits for its reply (False for a
    command published without `reply_to`): work nobody waits for may wait for company."""
    return _REPLYING.get()


_REDELIVERED: ContextVar[bool] = ContextVar("redelivered", default=False)


def redelivered() -> bool:
    """Whether the message being handled was delivered before (to a consumer that died or gave it
    back before its ack): its earlier delivery may have done some or all of its work."""
    return _REDELIVERED.get()


@contextlib.contextmanager
def _handling(message: AbstractIncomingMessage) -> Iterator[None]:
    """The context a message's handlers run in (`redelivered`)."""
    again = _REDELIVERED.set(bool(message.redelivered))
    try:
        yield
    finally:
        _REDELIVERED.reset(again)


class ReplyStream:
    """Chunks for the requester of the message being handled, sent before the final reply."""

    def __init__(self, bus: Bus | None, *, reply_to: str | None, correlation_id: str | None) -> None:
        self._bus = bus
        self._reply_to = reply_to
        self._correlation_id = correlation_id
        self._inbox: RpcClient | None = None
        self._feedback: asyncio.Future[bytes] | None = None

    @property
    def active(self) -> bool:
        """Someone waits for the chunks (False for a plain call or a message without reply_to)."""
        return self._bus is not None and self._reply_to is not None and self._correlation_id is not None

    def listen(self, inbox: RpcClient) -> None:
        """Name `inbox`'s queue on every chunk, so the requester can acknowledge what it delivered."""
        if self.active and self._feedback is None:
            assert self._correlation_id is not None
            self._inbox = inbox
            self._feedback = inbox.expect(self._correlation_id)

    async def send(self, chunk: Contract) -> None:
        if not self.active:
            return
        assert self._bus is not None and self._reply_to is not None
        await self._bus.reply(
            chunk.model_dump_json().encode(),
            reply_to=self._reply_to,
            correlation_id=self._correlation_id,
            message_type=CHUNK,
            feedback_to=self._inbox.reply_queue if self._inbox else None,
        )

    def delivered_now(self) -> int | None:
        """The requester's acknowledgement if it has come (early: its client has gone), without waiting."""
        if self._feedback is None or not self._feedback.done() or self._feedback.cancelled():
            return None
        return StreamFeedback.model_validate_json(self._feedback.result()).delivered

    async def delivered(self, *, within_s: float) -> int | None:
        """Wait up to `within_s` seconds for the requester's acknowledgement; None if none came."""
        if self._feedback is None:
            return None
        try:
            async with asyncio.timeout(max(within_s, 0.0)):
                await asyncio.shield(self._feedback)
        except TimeoutError:
            return None
        return self.delivered_now()

    def close(self) -> None:
        if self._inbox is not None and self._correlation_id is not None:
            self._inbox.forget(self._correlation_id)


class Streaming:
    """Marks a handler that takes `(envelope, stream: ReplyStream)`. Called as a plain Handler it
    gets an inactive stream, so it also serves requesters that want only the reply."""

    def __init__(self, handler: Callable[[Any, ReplyStream], Awaitable[Contract | None]]) -> None:
        self.handler = handler

    async def __call__(self, envelope: Any) -> Contract | None:
        return await self.handler(envelope, ReplyStream(None, reply_to=None, correlation_id=None))


@dataclass(frozen=True, slots=True)
class _Done:
    outcome: str  # ok, error, expired, duplicate, failed, retried: the metrics' label
    body: bytes | None  # the reply to send, if any


class Consumer:
    """Routes the messages on one service's queue (and, for a service with partitioned commands,
    on each of its partition queues) to their handlers."""

    def __init__(
        self,
        bus: Bus,
        *,
        service: str,
        handlers: Mapping[str, Handler],
        processed: ProcessedMessages | None,
        publishers: Publishers,
        prefetch: int,
        max_attempts: int,
        on_channel_lost: Callable[[], None] | None = None,
        slow_s: float = 1.0,
        retry_backoff_s: float = 0.5,
        retry_backoff_max_s: float = 8.0,
    ) -> None:
        unknown = set(handlers) - set(CATALOG)
        if unknown:
            raise ValueError(f"handlers for messages not in the catalog: {sorted(unknown)}")
        self._bus = bus
        self._service = service
        self._handlers = dict(handlers)
        self._envelopes = {name: envelope_model_for(CATALOG[name].payload) for name in handlers}
        self._processed = processed
        self._publishers = publishers
        self._prefetch = prefetch
        self._max_attempts = max_attempts
        self._on_channel_lost = on_channel_lost
        self._slow_s = slow_s
        self._retry_backoff = (retry_backoff_s, retry_backoff_max_s)
        self._stopping = asyncio.Event()  # set by drain: held retries go back to the queue at once
        self.queue_name = bus.topology.queue(service)
        self.partitioned = [n for n in Topology.partitioned_commands_for(service) if n in self._handlers]
        self._consuming: list[tuple[Any, str]] = []  # (queue, consumer tag)
        self._in_hand = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        channel = await self._bus.channel(prefetch=self._prefetch)
        if self._on_channel_lost is not None:
            # Whatever this consumer owned (a partition it was the active consumer of) may have
            # moved to another replica while the channel was gone.
            channel.close_callbacks.add(lambda *_: self._on_channel_lost())
        queue = await self._bus.declare_service_queue(channel, service=self._service, max_attempts=self._max_attempts)
        self._consuming.append((queue, await queue.consume(self._held(self._on_message))))
        for number in range(self._bus.topology.partitions) if self.partitioned else ():
            owned = await self._bus.declare_partition_queue(
                channel, service=self._service, partition=number, max_attempts=self._max_attempts
            )
            self._consuming.append(
                (owned, await owned.consume(self._held(partial(self._on_message, partition=number))))
            )
        log.info("consuming", extra={"queue": queue.name, "messages": sorted(self._handlers)})

    def _held(
        self, on_message: Callable[[AbstractIncomingMessage], Awaitable[None]]
    ) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        """Counts the messages in hand, so `drain` knows when the last one is done."""

        async def held(message: AbstractIncomingMessage) -> None:
            self._in_hand += 1
            self._idle.clear()
            try:
                await on_message(message)
            finally:
                self._in_hand -= 1
                if not self._in_hand:
                    self._idle.set()

        return held

    async def drain(self, *, within_s: float) -> int:
        """Stop taking messages (another replica gets the next ones, and a partition's standby
        becomes its owner), then wait up to `within_s` for those in hand to finish. Returns how
        many were still in hand: unacked, the broker hands them back when the channel closes."""
        self._stopping.set()
        for queue, tag in self._consuming:
            try:
                await queue.cancel(tag)
            except Exception:  # the channel is gone: nothing more arrives anyway
                log.debug("consumer not cancelled", extra={"queue": queue.name}, exc_info=True)
        self._consuming.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=within_s)
        except TimeoutError:
            log.warning("messages handed back at shutdown", extra={"count": self._in_hand})
        return self._in_hand

    async def _on_message(self, message: AbstractIncomingMessage, partition: int | None = None) -> None:
        if message.type == BATCH:
            await self._on_batch(message, partition)
            return
        name = message.type or ""
        try:
            envelope = self._parse(name, message.body)
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(message, name, exc)
            return
        try:
            envelope = self._publishers.verify(envelope, message.user_id)
        except Forbidden as exc:
            await self._refuse(message, [envelope], exc)
            return
        with _handling(message):
            done = await self._run(message, envelope, partition)
        if done.outcome == "retried":
            await self._retry_later(message, name)
            return
        if done.body and message.reply_to:
            await self._bus.reply(done.body, reply_to=message.reply_to, correlation_id=message.correlation_id)
        await self._settle(message, failed=done.outcome == "failed")

    async def _on_batch(self, message: AbstractIncomingMessage, partition: int | None) -> None:
        """A batch of commands of one type (see `common.bus.rpc`): each runs as a message of its
        own would, all at once; one reply lists their replies in order, and the batch is acked
        when all are done (dead-lettered whole if one failed unexpectedly: each is idempotent, so a
        batch driven again from there repeats nothing that succeeded)."""
        name = str((message.headers or {}).get(BATCH_OF, ""))
        try:
            items = json.loads(message.body)
            if not isinstance(items, list) or not items:
                raise ValueError("a batch is a non-empty JSON array of envelopes")
            envelopes = [self._parse(name, item) for item in items]
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(message, f"batch of {name}", exc)
            return
        try:
            envelopes = [self._publishers.verify(e, message.user_id) for e in envelopes]
        except Forbidden as exc:
            await self._refuse(message, envelopes, exc, batch=True)
            return
        with _handling(message):
            done = await asyncio.gather(*(self._run(message, e, partition, member=True) for e in envelopes))
        if not any(d.outcome == "failed" for d in done) and any(d.outcome == "retried" for d in done):
            await self._retry_later(message, f"batch of {name}")  # only without reply_to: see _transient
            return
        if message.reply_to:
            body = b"[" + b",".join(d.body or b"null" for d in done) + b"]"
            await self._bus.reply(body, reply_to=message.reply_to, correlation_id=message.correlation_id)
        await self._settle(message, failed=any(d.outcome == "failed" for d in done))

    @staticmethod
    async def _settle(message: AbstractIncomingMessage, *, failed: bool) -> None:
        """Ack what was handled; what failed unexpectedly goes to the dead-letter queue (its
        requester has had its 500 already), so it is kept for a look but never redone here."""
        if failed:
            await message.reject(requeue=False)
        else:
            await message.ack()

    async def _retry_later(self, message: AbstractIncomingMessage, name: str) -> None:
        """Hold a message nobody waits for, whose dependency is down, for a backoff that doubles
        with each attempt, then hand it back to the queue (see `common.bus.retry`). Its last
        attempt goes back at once: the queue's delivery limit then dead-letters it."""
        attempt = delivery_count(message.headers)
        if attempt + 1 >= self._max_attempts:
            log.error(
                "dependency unavailable on every attempt; message dead-lettered",
                extra={"message_type": name, "message_id": message.message_id, "attempts": attempt + 1},
            )
            MESSAGES.labels(self._service, name, "dead_lettered").inc()
        else:
            first_s, max_s = self._retry_backoff
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff(attempt, first_s=first_s, max_s=max_s)):
                    await self._stopping.wait()
        try:
            await message.reject(requeue=True)
        except Exception:  # the channel is gone: the broker hands the message back anyway
            log.debug("retried message not handed back", extra={"message_type": name}, exc_info=True)

    def _parse(self, name: str, raw: bytes | object) -> Envelope[Contract]:
        envelope_model = self._envelopes.get(name)
        if envelope_model is None:
            raise ValueError(f"no handler for message type {name!r}")
        envelope: Envelope[Contract] = (
            envelope_model.model_validate_json(raw) if isinstance(raw, bytes) else envelope_model.model_validate(raw)
        )
        if envelope.type != name:
            raise ValueError(f"envelope type {envelope.type!r} differs from the AMQP type {name!r}")
        return envelope

    async def _refuse(
        self, message: AbstractIncomingMessage, envelopes: list[Envelope[Contract]], exc: Forbidden, batch: bool = False
    ) -> None:
        """Answer 403 for a message its publisher may not send, and dead-letter it unhandled."""
        log.warning(
            "message refused: publisher not allowed",
            extra={"message_type": envelopes[0].type, "publisher": message.user_id, "error": exc.detail},
        )
        MESSAGES.labels(self._service, envelopes[0].type, "refused").inc()
        if message.reply_to:
            error = exc.to_body()
            replies = [Reply[Contract](request_id=e.request_id, error=error).model_dump_json() for e in envelopes]
            body = ("[" + ",".join(replies) + "]") if batch else replies[0]
            await self._bus.reply(body.encode(), reply_to=message.reply_to, correlation_id=message.correlation_id)
        await message.reject(requeue=False)

    async def _dead_letter(self, message: AbstractIncomingMessage, name: str, exc: Exception) -> None:
        log.error(
            "unparseable message dead-lettered",
            extra={"message_type": name, "message_id": message.message_id, "error": str(exc)[:500]},
        )
        MESSAGES.labels(self._service, name or "unknown", "dead_lettered").inc()
        await message.reject(requeue=False)

    async def _run(
        self,
        message: AbstractIncomingMessage,
        envelope: Envelope[Contract],
        partition: int | None,
        member: bool = False,
    ) -> _Done:
        """Handle one envelope in its trace and log context, with its metrics."""
        name = envelope.type
        attributes = {
            "messaging.system": "rabbitmq",
            "messaging.message.id": str(envelope.message_id),
            "messaging.operation.type": "process",
        }
        with (
            telemetry.span(
                tracer,
                f"{name} process",
                parent=context_from(envelope.traceparent, envelope.tracestate),
                kind=SpanKind.CONSUMER,
                attributes=attributes,
            ) as span,
            bound(request_id=envelope.request_id, user_id=envelope.actor.id if envelope.actor else None),
        ):
            IN_FLIGHT.labels(self._service).inc()
            started = time.perf_counter()
            try:
                done = await self._process(message, envelope, span, partition, member)
            finally:
                IN_FLIGHT.labels(self._service).dec()
            elapsed = time.perf_counter() - started
            HANDLER_SECONDS.labels(self._service, name).observe(elapsed)
            MESSAGES.labels(self._service, name, done.outcome).inc()
            # One line per message only when it says something: errors are logged where they
            # happen, slow messages here; the rest at DEBUG, off the hot path.
            level = logging.INFO if elapsed >= self._slow_s else logging.DEBUG
            if log.isEnabledFor(level):
                log.log(
                    level,
                    "message handled",
                    extra={"message_type": name, "outcome": done.outcome, "duration_ms": round(elapsed * 1000, 2)},
                )
            return done

    def _misrouted(self, envelope: Envelope[Contract], partition: int | None) -> ServiceUnavailable | None:
        """A partitioned command must arrive on the queue of the partition that owns its user;
        anything else means the publisher counts partitions differently (CREDITS_PARTITIONS)."""
        owner = self._bus.topology.partition_of_message(envelope)
        if owner == partition:
            return None
        log.error(
            "misrouted partitioned command refused",
            extra={"message_type": envelope.type, "queue_partition": partition, "owner_partition": owner},
        )
        return ServiceUnavailable(
            "the command reached the wrong partition queue; CREDITS_PARTITIONS differs between services"
        )

    async def _process(
        self,
        message: AbstractIncomingMessage,
        envelope: Envelope[Contract],
        span: trace.Span,
        partition: int | None,
        member: bool,
    ) -> _Done:
        """Handle one parsed envelope: its outcome, and the reply to send (if any)."""
        if envelope.expired():
            log.warning("expired message dropped", extra={"message_type": envelope.type, "deadline": envelope.deadline})
            span.set_attribute("messaging.dropped", "expired")
            # A batch's reply keeps a place for each of its members.
            late = Reply[Contract](request_id=envelope.request_id, error=DeadlineExceeded("expired").to_body())
            return _Done("expired", late.model_dump_json().encode() if member else None)
        outcome = "ok"
        _REPLYING.set(bool(message.reply_to))
        try:
            previous = await self._processed.reply_for(envelope.message_id) if self._processed else None
            if previous is not None:
                log.info(
                    "duplicate message: first reply replayed",
                    extra={"message_type": envelope.type, "message_id": str(envelope.message_id)},
                )
                span.set_attribute("messaging.duplicate", True)
                return _Done("duplicate", previous or None)
            misrouted = self._misrouted(envelope, partition)
            if misrouted is not None:
                raise misrouted
            result = await self._handle(message, envelope, member)
            reply: Reply[Contract] = Reply(request_id=envelope.request_id, result=result)
        except Exception as exc:
            if is_transient(exc):
                return self._transient(message, envelope, exc)
            if not isinstance(exc, PlatformError):
                log.exception(
                    "handler failed; answered 500 and dead-lettered",
                    extra={"message_type": envelope.type, "message_id": str(envelope.message_id)},
                )
                span.set_status(Status(StatusCode.ERROR, repr(exc)))
                failed = Reply[Contract](request_id=envelope.request_id, error=InternalError().to_body())
                return _Done("failed", failed.model_dump_json().encode() if message.reply_to or member else None)
            outcome = "error"
            log.info("message answered with an error", extra={"message_type": envelope.type, "code": exc.code})
            reply = Reply(request_id=envelope.request_id, error=exc.to_body())
        body = reply.model_dump_json().encode() if message.reply_to else b""
        if self._processed is not None:
            try:
                await self._processed.record(envelope.message_id, body)
            except REDIS_ERRORS as exc:  # the effect is done: redoing it is what the record prevents
                log.warning(
                    "processed-message record not written; a redelivery would run the handler again",
                    extra={"message_type": envelope.type, "message_id": str(envelope.message_id), "error": repr(exc)},
                )
        return _Done(outcome, body)

    def _transient(self, message: AbstractIncomingMessage, envelope: Envelope[Contract], exc: Exception) -> _Done:
        """A dependency is down: a waiting requester gets a 503 now; a message nobody waits for is
        retried later. Nothing is recorded either way, so the next try runs afresh. A 503 says
        nothing happened, which only a first delivery can say: a redelivered message's earlier
        delivery may have done the work before its consumer went (the broker restarted, the
        process died before its ack), so its requester gets OutcomeUnknown (504) instead."""
        extra = {"message_type": envelope.type, "message_id": str(envelope.message_id), "error": repr(exc)[:300]}
        if not message.reply_to:
            log.info("dependency unavailable; message retried later", extra=extra)
            return _Done("retried", None)
        error: PlatformError
        if message.redelivered:
            log.info("dependency unavailable on a redelivered message; answered 504", extra=extra)
            error = OutcomeUnknown("a dependency is unavailable; an earlier delivery of this request may have done it")
        else:
            log.info("dependency unavailable; answered 503", extra=extra)
            down = "a dependency is unavailable; retry"
            error = exc if isinstance(exc, ServiceUnavailable) else ServiceUnavailable(down)
        reply = Reply[Contract](request_id=envelope.request_id, error=error.to_body())
        return _Done("error", reply.model_dump_json().encode())

    async def _handle(
        self, message: AbstractIncomingMessage, envelope: Envelope[Contract], member: bool = False
    ) -> Contract | None:
        handler = self._handlers[envelope.type]
        if not isinstance(handler, Streaming) or member:  # a batch's member streams nothing
            return await handler(envelope)
        stream = ReplyStream(self._bus, reply_to=message.reply_to, correlation_id=message.correlation_id)
        try:
            return await handler.handler(envelope, stream)
        finally:
            stream.close()
