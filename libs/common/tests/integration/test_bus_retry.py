"""A dependency down, against the real RabbitMQ and Redis: a command nobody waits for is tried
again after a backoff until it succeeds, or dead-lettered by the queue's delivery limit; a
waiting requester is answered 503 at once, and nothing is retried behind its back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from redis.asyncio import Redis

from common.bus import Bus, Consumer, ProcessedMessages, Publishers, RpcClient, Topology
from common.contracts import ChatCompletion, ChatMessage, CompleteChat, Envelope, Usage
from common.errors import DeadlineExceeded, ServiceUnavailable
from devstack import free_port
from tests.support.broker import queue_depth
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ATTEMPTS = 3


def request(*, seconds: float = 30.0) -> Envelope[CompleteChat]:
    return Envelope[CompleteChat](
        type="CompleteChat",
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        deadline=datetime.now(UTC) + timedelta(seconds=seconds),
        payload=CompleteChat(messages=[ChatMessage(role="user", content="hi")]),
    )


def answer() -> ChatCompletion:
    return ChatCompletion(
        id="c",
        message=ChatMessage(role="assistant", content="ok"),
        model="m",
        provider="test",
        usage=Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2),
    )


class Service:
    """A chat-shaped consumer whose store is "down" for its first `down_for` calls."""

    def __init__(self, amqp_url: str, namespace: str, *, down_for: int) -> None:
        self.amqp_url, self.topology = amqp_url, Topology(namespace)
        self.down_for = down_for
        self.calls: list[float] = []
        self.server = Bus(url=amqp_url, topology=self.topology, service="chat")
        self.client = Bus(url=amqp_url, topology=self.topology, service="gateway")
        self.rpc = RpcClient(self.client, process="test")

    async def handle(self, envelope: Envelope[CompleteChat]) -> ChatCompletion:
        self.calls.append(asyncio.get_running_loop().time())
        if len(self.calls) <= self.down_for:
            raise ServiceUnavailable("the store is unavailable; retry")
        return answer()

    async def start(
        self, *, processed: ProcessedMessages | None = None, handler: Any = None, server: Bus | None = None
    ) -> Consumer:
        server = server or self.server
        await server.connect()
        if server is self.server:
            await self.client.connect()
            await self.rpc.start()
        consumer = Consumer(
            server,
            service="chat",
            handlers={"CompleteChat": handler or self.handle},
            processed=processed,
            publishers=Publishers(development=True),
            prefetch=8,
            max_attempts=ATTEMPTS,
            retry_backoff_s=0.2,
            retry_backoff_max_s=0.4,
        )
        await consumer.start()
        return consumer

    async def called(self) -> int:
        return len(self.calls)

    async def depth(self, queue: str) -> int:
        return await queue_depth(self.amqp_url, queue)

    async def dead_letters(self) -> list[dict[str, Any]]:
        """The x-death records of what the dead-letter queue holds (taken off it)."""
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            dead = await channel.declare_queue(self.topology.dead_letter_queue("chat"), passive=True)
            found = []
            while (message := await dead.get(fail=False, no_ack=True)) is not None:
                found.append(dict(message.headers["x-death"][0]))  # type: ignore[index,arg-type]
            return found

    async def close(self) -> None:
        await self.client.close()
        await self.server.close()


@pytest.fixture
async def service(amqp_url: str, namespace: str, request: pytest.FixtureRequest) -> AsyncIterator[Service]:
    s = Service(amqp_url, namespace, down_for=request.param)
    yield s
    await s.close()


@pytest.mark.parametrize("service", [2], indirect=True)
async def test_a_command_nobody_waits_for_is_retried_after_a_backoff_until_its_dependency_is_back(
    service: Service,
) -> None:
    await service.start()
    await service.client.publish(request())  # fire and forget: no reply_to
    await wait_until(service.called, lambda n: n == 3, within=15)
    await wait_until(lambda: service.depth(service.topology.queue("chat")), lambda n: n == 0, within=5)
    assert await service.depth(service.topology.dead_letter_queue("chat")) == 0
    gaps = [b - a for a, b in zip(service.calls, service.calls[1:], strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps  # held for the backoff, doubling: not a hot loop
    assert len(service.calls) == 3  # acked once it succeeded: no further delivery


@pytest.mark.parametrize("service", [1000], indirect=True)
async def test_a_command_whose_dependency_stays_down_is_dead_lettered_after_its_attempts(service: Service) -> None:
    await service.start()
    await service.client.publish(request())
    dead = service.topology.dead_letter_queue("chat")
    await wait_until(lambda: service.depth(dead), lambda n: n == 1, within=20)
    assert len(service.calls) == ATTEMPTS
    [death] = await service.dead_letters()
    assert death["reason"] == "delivery_limit"  # counted by the queue, not dropped by the consumer


@pytest.mark.parametrize("service", [1000], indirect=True)
async def test_a_waiting_requester_gets_503_at_once_and_nothing_is_retried_behind_it(service: Service) -> None:
    await service.start()
    started = asyncio.get_running_loop().time()
    with pytest.raises(ServiceUnavailable):
        await service.rpc.call(request(seconds=30), reply_model=ChatCompletion)
    assert asyncio.get_running_loop().time() - started < 5
    await wait_until(lambda: service.depth(service.topology.queue("chat")), lambda n: n == 0, within=5)
    assert len(service.calls) == 1
    assert await service.depth(service.topology.dead_letter_queue("chat")) == 0


@pytest.mark.parametrize("service", [0], indirect=True)
async def test_redis_unreachable_for_the_processed_record_is_a_dependency_down(service: Service) -> None:
    """The record guards handlers that are not idempotent: without it, the handler does not run."""
    unreachable = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        await service.start(
            processed=ProcessedMessages(unreachable, namespace=service.topology.namespace, service="chat")
        )
        with pytest.raises(ServiceUnavailable):
            await service.rpc.call(request(seconds=30), reply_model=ChatCompletion)
        assert service.calls == []
    finally:
        await unreachable.aclose()


@pytest.mark.parametrize("service", [1000], indirect=True)
async def test_a_redelivered_request_meeting_a_dependency_down_is_504_not_503(service: Service) -> None:
    """Its first delivery may have done the work (a charge, say) before its consumer went, so a 503,
    which says nothing happened, would be a lie (found by the chaos soak: a RabbitMQ restart)."""
    working = asyncio.Event()

    async def first_delivery(envelope: Envelope[CompleteChat]) -> ChatCompletion:
        working.set()
        await asyncio.Event().wait()  # at work when its link to the broker goes
        raise AssertionError("unreachable")

    await service.start(handler=first_delivery)
    asking = asyncio.create_task(service.rpc.call(request(seconds=30), reply_model=ChatCompletion))
    await asyncio.wait_for(working.wait(), timeout=10)
    await service.server.close()  # unacked: the broker hands the message to the next consumer, redelivered
    replacement = Bus(url=service.amqp_url, topology=service.topology, service="chat")
    try:
        await service.start(server=replacement)  # its store is down (service.handle)
        with pytest.raises(DeadlineExceeded) as caught:
            await asyncio.wait_for(asking, timeout=20)
        assert not isinstance(caught.value, ServiceUnavailable)
        assert len(service.calls) == 1
    finally:
        await replacement.close()
