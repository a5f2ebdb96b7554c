"""Coalesced commands against the real RabbitMQ: the commands callers make in one turn of the
event loop travel as one message, and each still gets its own answer, deadline and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest

from common.bus import Bus, Consumer, Publishers, RpcClient, Topology
from common.contracts import ChatCompletion, CompleteChat, Envelope
from common.errors import DeadlineExceeded, InsufficientCredits, InternalError
from tests.support.broker import queue_depth
from tests.support.waiting import wait_until

from .test_bus import completion, request

pytestmark = pytest.mark.integration


class Batches:
    """A chat-shaped consumer that can be told to refuse or fail, and a client that coalesces."""

    def __init__(self, amqp_url: str, namespace: str) -> None:
        self.amqp_url, self.topology = amqp_url, Topology(namespace)
        self.server = Bus(url=amqp_url, topology=self.topology, service="chat")
        self.client = Bus(url=amqp_url, topology=self.topology, service="gateway")
        self.rpc = RpcClient(self.client, process="test")
        self.seen: list[str] = []
        self.fail_once: set[str] = set()

    async def handle(self, envelope: Envelope[CompleteChat]) -> ChatCompletion:
        text = envelope.payload.messages[-1].content
        self.seen.append(text)
        if text.startswith("poor"):
            raise InsufficientCredits("no", balance=0, price=1)
        if text in self.fail_once:
            self.fail_once.discard(text)
            raise RuntimeError("a bug, once")
        return completion("echo: " + text)

    async def start(self) -> None:
        await self.server.connect()
        consumer = Consumer(
            self.server,
            service="chat",
            handlers={"CompleteChat": self.handle},
            processed=None,
            publishers=Publishers(development=True),
            prefetch=8,
            max_attempts=3,
        )
        await consumer.start()
        await self.client.connect()
        await self.rpc.start()

    async def close(self) -> None:
        await self.client.close()
        await self.server.close()


@pytest.fixture
async def batches(amqp_url: str, namespace: str) -> AsyncIterator[Batches]:
    b = Batches(amqp_url, namespace)
    await b.start()
    yield b
    await b.close()


async def test_calls_made_together_travel_as_one_message_and_each_gets_its_answer(
    batches: Batches, amqp_url: str, namespace: str
) -> None:
    # Watch the wire: a queue of our own bound like the chat service's sees every message.
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    tap = await channel.declare_queue(exclusive=True)
    await tap.bind(Topology(namespace).commands, routing_key="CompleteChat")
    texts = [f"n{i}" for i in range(20)] + ["poor-1"]
    replies = await asyncio.gather(
        *(batches.rpc.call(request(text=t), reply_model=ChatCompletion, coalesce=True) for t in texts),
        return_exceptions=True,
    )
    assert [r.message.content for r in replies[:20]] == [f"echo: n{i}" for i in range(20)]  # type: ignore[union-attr]
    assert isinstance(replies[20], InsufficientCredits) and replies[20].extra == {"balance": 0, "price": 1}
    message = await tap.get(timeout=5)
    assert (message.type, message.headers["x-batch-of"], message.headers["x-batch-size"]) == (
        "batch",
        "CompleteChat",
        21,
    )
    assert await tap.get(fail=False) is None  # nothing else went out
    await connection.close()


async def test_a_member_past_its_deadline_is_not_done_and_the_others_are(batches: Batches) -> None:
    late = request(text="late")
    late = late.model_copy(update={"deadline": datetime.now(UTC) - timedelta(seconds=1)})
    fresh = [request(text=f"f{i}") for i in range(3)]

    async def expect_late() -> None:
        with pytest.raises(DeadlineExceeded):
            await batches.rpc.call(late, reply_model=ChatCompletion, coalesce=True)

    replies = await asyncio.gather(
        expect_late(), *(batches.rpc.call(f, reply_model=ChatCompletion, coalesce=True) for f in fresh)
    )
    assert [r.message.content for r in replies[1:]] == ["echo: f0", "echo: f1", "echo: f2"]  # type: ignore[union-attr]
    assert "late" not in batches.seen


async def test_a_member_that_fails_unexpectedly_answers_500_and_the_batch_is_dead_lettered_not_redone(
    batches: Batches, amqp_url: str
) -> None:
    batches.fail_once.add("b1")
    replies = await asyncio.gather(
        *(batches.rpc.call(request(text=f"b{i}"), reply_model=ChatCompletion, coalesce=True) for i in range(3)),
        return_exceptions=True,
    )
    assert [getattr(r, "message", None) and r.message.content for r in replies] == ["echo: b0", None, "echo: b2"]  # type: ignore[union-attr]
    assert isinstance(replies[1], InternalError)
    dead = batches.topology.dead_letter_queue("chat")
    await wait_until(lambda: queue_depth(amqp_url, dead), lambda n: n == 1, within=10)
    assert sorted(batches.seen) == ["b0", "b1", "b2"]  # each ran once: nothing redelivered


async def test_coalesced_publishes_are_confirmed_and_each_is_handled(batches: Batches) -> None:
    await asyncio.gather(*(batches.rpc.publish(request(text=f"p{i}"), coalesce=True) for i in range(5)))

    async def seen() -> list[str]:
        return sorted(batches.seen)

    assert await wait_until(seen, lambda s: len(s) == 5, within=5) == [f"p{i}" for i in range(5)]


async def test_a_caller_that_stops_waiting_leaves_nothing_behind(batches: Batches) -> None:
    gone = request(text="n1", seconds=-1)  # its deadline has passed before it is even sent
    with pytest.raises(DeadlineExceeded):
        await batches.rpc.call(gone, reply_model=ChatCompletion, coalesce=True)

    async def pending() -> int:
        return len(batches.rpc._pending)

    assert await wait_until(pending, lambda n: n == 0, within=5) == 0


async def test_each_caller_is_told_once_its_command_is_with_the_broker(batches: Batches) -> None:
    told: list[str] = []

    async def ask(text: str, *, coalesce: bool) -> str:
        reply = await batches.rpc.call(
            request(text=text), reply_model=ChatCompletion, coalesce=coalesce, sent=lambda: told.append(text)
        )
        return reply.message.content

    answers = await asyncio.gather(ask("t1", coalesce=True), ask("t2", coalesce=True), ask("t3", coalesce=False))
    assert answers == ["echo: t1", "echo: t2", "echo: t3"]

    async def heard() -> list[str]:
        return sorted(told)

    assert await wait_until(heard, lambda t: len(t) >= 3, within=5) == ["t1", "t2", "t3"]  # each once
