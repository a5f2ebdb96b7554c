"""The bus against the real RabbitMQ and Redis: request/reply, dead-lettering, deadlines,
deduplication, unroutable commands and tracing across the broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from common.bus import Bus, Consumer, ProcessedMessages, Publishers, RpcClient, Topology, redelivered
from common.contracts import ChatCompletion, ChatMessage, CompleteChat, Envelope, Usage
from common.errors import DeadlineExceeded, InsufficientCredits, InternalError, ServiceUnavailable, ValidationFailed
from common.telemetry import configure_tracing
from tests.support.broker import queue_depth
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

Handler = Callable[[Envelope[CompleteChat]], Awaitable[ChatCompletion]]


def completion(text: str) -> ChatCompletion:
    return ChatCompletion(
        id=uuid.uuid4().hex,
        message=ChatMessage(role="assistant", content=text),
        model="m",
        provider="test",
        usage=Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2),
    )


def request(*, seconds: float = 5.0, message_id: uuid.UUID | None = None, text: str = "hi") -> Envelope[CompleteChat]:
    return Envelope[CompleteChat](
        message_id=message_id or uuid.uuid4(),
        type="CompleteChat",
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        deadline=datetime.now(UTC) + timedelta(seconds=seconds),
        payload=CompleteChat(messages=[ChatMessage(role="user", content=text)]),
    )


class Harness:
    """A chat-service-shaped consumer and a gateway-shaped RPC client on one namespace."""

    def __init__(self, amqp_url: str, redis: Redis, namespace: str) -> None:
        self.amqp_url, self.redis, self.topology = amqp_url, redis, Topology(namespace)
        self.calls: list[Envelope[CompleteChat]] = []
        self.handler: Handler = self._echo
        self.server = Bus(url=amqp_url, topology=self.topology, service="chat")
        self.client = Bus(url=amqp_url, topology=self.topology, service="gateway")
        self.rpc = RpcClient(self.client, process="test")

    async def _echo(self, envelope: Envelope[CompleteChat]) -> ChatCompletion:
        return completion("echo: " + envelope.payload.messages[-1].content)

    async def _dispatch(self, envelope: Envelope[CompleteChat]) -> ChatCompletion:
        self.calls.append(envelope)
        return await self.handler(envelope)

    async def start_consumer(self, *, max_attempts: int = 3, deduplicate: bool = True) -> None:
        """The chat-shaped consumer; `deduplicate`: with the processed-message store, as the
        services run it (without, every delivery reaches the handler)."""
        await self.server.connect()
        processed = ProcessedMessages(self.redis, namespace=self.topology.namespace, service="chat")
        await Consumer(
            self.server,
            service="chat",
            handlers={"CompleteChat": self._dispatch},
            processed=processed if deduplicate else None,
            publishers=Publishers(development=True),
            prefetch=8,
            max_attempts=max_attempts,
        ).start()

    async def stop_consumer(self) -> None:
        """The consumer gone with its connection (what it had not acked is delivered again); the
        next `start_consumer` starts another."""
        await self.server.close()
        self.server = Bus(url=self.amqp_url, topology=self.topology, service="chat")

    async def start_client(self) -> None:
        await self.client.connect()
        await self.rpc.start()

    async def publish_raw(self, body: bytes, *, type_: str = "CompleteChat") -> None:
        await self.client.connect() if not self.client.is_ready else None
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(self.topology.commands)
            await exchange.publish(
                aio_pika.Message(body=body, type=type_, message_id=uuid.uuid4().hex), routing_key="CompleteChat"
            )

    async def close(self) -> None:
        await self.client.close()
        await self.server.close()


@pytest.fixture
async def harness(amqp_url: str, redis: Redis, namespace: str) -> AsyncIterator[Harness]:
    h = Harness(amqp_url, redis, namespace)
    yield h
    await h.close()


async def test_request_reply_round_trip(harness: Harness) -> None:
    await harness.start_consumer()
    await harness.start_client()
    replies = await asyncio.gather(
        *(harness.rpc.call(request(text=f"n{i}"), reply_model=ChatCompletion) for i in range(20))
    )
    assert [r.message.content for r in replies] == [f"echo: n{i}" for i in range(20)]


async def test_typed_error_reaches_the_caller(harness: Harness) -> None:
    async def refuse(envelope: Envelope[CompleteChat]) -> ChatCompletion:
        raise InsufficientCredits("balance too low", balance=0, price=1)

    harness.handler = refuse
    await harness.start_consumer()
    await harness.start_client()
    with pytest.raises(InsufficientCredits) as caught:
        await harness.rpc.call(request(), reply_model=ChatCompletion)
    assert caught.value.extra == {"balance": 0, "price": 1}


async def test_unparseable_message_is_dead_lettered_and_the_consumer_keeps_serving(harness: Harness) -> None:
    await harness.start_consumer()
    await harness.start_client()
    await harness.publish_raw(b"{not json")
    await harness.publish_raw(b'{"schema_version": 1}')
    dead = harness.topology.dead_letter_queue("chat")
    await wait_until(lambda: queue_depth(harness.amqp_url, dead), lambda n: n == 2, within=10)
    reply = await harness.rpc.call(request(text="still here"), reply_model=ChatCompletion)
    assert reply.message.content == "echo: still here"
    assert harness.calls and all(c.payload.messages[-1].content == "still here" for c in harness.calls)


async def test_an_unexpected_failure_answers_500_at_once_and_is_dead_lettered_after_one_attempt(
    harness: Harness,
) -> None:
    async def explode(envelope: Envelope[CompleteChat]) -> ChatCompletion:
        raise RuntimeError("bug")

    harness.handler = explode
    await harness.start_consumer(max_attempts=3)
    await harness.start_client()
    started = asyncio.get_running_loop().time()
    with pytest.raises(InternalError):
        await harness.rpc.call(request(seconds=30), reply_model=ChatCompletion)
    assert asyncio.get_running_loop().time() - started < 10  # answered, not left to its 30 s deadline
    dead = harness.topology.dead_letter_queue("chat")
    await wait_until(lambda: queue_depth(harness.amqp_url, dead), lambda n: n == 1, within=15)
    await wait_until(lambda: queue_depth(harness.amqp_url, harness.topology.queue("chat")), lambda n: n == 0, within=5)
    assert len(harness.calls) == 1  # no redelivery loop redoing the work


async def test_bad_input_is_answered_4xx_at_once_and_not_dead_lettered(harness: Harness) -> None:
    async def refuse(envelope: Envelope[CompleteChat]) -> ChatCompletion:
        raise ValidationFailed("the cursor is not one this service gave out")

    harness.handler = refuse
    await harness.start_consumer(max_attempts=3)
    await harness.start_client()
    with pytest.raises(ValidationFailed):
        await harness.rpc.call(request(seconds=30), reply_model=ChatCompletion)
    await wait_until(lambda: queue_depth(harness.amqp_url, harness.topology.queue("chat")), lambda n: n == 0, within=5)
    assert await queue_depth(harness.amqp_url, harness.topology.dead_letter_queue("chat")) == 0
    assert len(harness.calls) == 1


async def test_expired_work_is_dropped_not_done(harness: Harness) -> None:
    await harness.start_consumer()
    await harness.start_client()
    expired = request(seconds=-1)
    await harness.client.publish(expired)
    fresh = await harness.rpc.call(request(text="fresh"), reply_model=ChatCompletion)
    assert fresh.message.content == "echo: fresh"
    await wait_until(lambda: queue_depth(harness.amqp_url, harness.topology.queue("chat")), lambda n: n == 0, within=5)
    assert [c.request_id for c in harness.calls if c.message_id == expired.message_id] == []


async def test_redelivered_request_replays_the_first_reply_without_a_second_effect(harness: Harness) -> None:
    async def unique(envelope: Envelope[CompleteChat]) -> ChatCompletion:
        return completion(uuid.uuid4().hex)  # a second execution would answer differently

    harness.handler = unique
    await harness.start_consumer()
    await harness.start_client()
    message_id = uuid.uuid4()
    first = await harness.rpc.call(request(message_id=message_id), reply_model=ChatCompletion)
    second = await harness.rpc.call(request(message_id=message_id), reply_model=ChatCompletion)
    assert first == second
    assert len(harness.calls) == 1


async def test_command_nobody_consumes_is_refused_at_once(harness: Harness) -> None:
    await harness.start_client()
    started = asyncio.get_running_loop().time()
    with pytest.raises(ServiceUnavailable):
        await harness.rpc.call(request(seconds=10), reply_model=ChatCompletion)
    assert asyncio.get_running_loop().time() - started < 5


async def test_stalled_consumer_gives_deadline_exceeded_at_the_deadline(harness: Harness) -> None:
    stall = asyncio.Event()

    async def hang(envelope: Envelope[CompleteChat]) -> ChatCompletion:
        await stall.wait()
        return completion("late")

    harness.handler = hang
    await harness.start_consumer()
    await harness.start_client()
    started = asyncio.get_running_loop().time()
    with pytest.raises(DeadlineExceeded):
        await harness.rpc.call(request(seconds=1.0), reply_model=ChatCompletion)
    elapsed = asyncio.get_running_loop().time() - started
    stall.set()
    assert 0.9 <= elapsed < 3.0


async def test_one_trace_spans_publisher_and_consumer(harness: Harness) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing(service="test", span_processors=[SimpleSpanProcessor(exporter)])
    await harness.start_consumer()
    await harness.start_client()
    await harness.rpc.call(request(), reply_model=ChatCompletion)

    async def finished() -> dict[str, Any]:
        return {s.name: s for s in exporter.get_finished_spans()}

    # The consumer's span ends after its reply is sent, so it may finish after the call returns.
    spans = await wait_until(finished, lambda names: "CompleteChat process" in names, within=5)
    publish, process = spans["CompleteChat publish"], spans["CompleteChat process"]
    assert publish.context.trace_id == process.context.trace_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id


async def test_a_message_its_consumer_never_acked_is_redelivered_and_the_redelivery_says_so(
    harness: Harness,
) -> None:
    """A consumer gone before its ack (here: mid-handler) has the message delivered again, and
    the handler of the redelivery knows it is one; its reply reaches the requester still waiting."""
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[bool] = []

    async def hold(envelope: Envelope[CompleteChat]) -> ChatCompletion:
        seen.append(redelivered())
        if len(seen) == 1:
            await never  # the first delivery's consumer goes before this is done
        return completion("answered")

    harness.handler = hold
    await harness.start_consumer(deduplicate=False)
    await harness.start_client()
    call = asyncio.create_task(harness.rpc.call(request(seconds=20), reply_model=ChatCompletion))
    try:

        async def deliveries() -> int:
            return len(seen)

        await wait_until(deliveries, lambda n: n == 1, within=10)
        await harness.stop_consumer()  # gone mid-handler: the message was never acked
        await harness.start_consumer(deduplicate=False)
        reply = await asyncio.wait_for(call, timeout=10)
        assert reply.message.content == "answered"
        assert seen == [False, True]
    finally:
        never.cancel()
        call.cancel()
