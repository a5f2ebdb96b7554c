"""Streamed replies over the real RabbitMQ: chunks in order before the reply, the requester's
delivery acknowledgement reaching the replier, typed errors after chunks, the deadline, and the
bound on what a requester that does not keep up holds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from common.bus import Bus, Consumer, Publishers, ReplyStream, RpcClient, Streaming, StreamOverflow, Topology
from common.contracts import ChatChunk, ChatCompletion, ChatMessage, CompleteChat, Envelope, Usage
from common.errors import DeadlineExceeded, UpstreamFailed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def request(text: str, *, seconds: float = 5.0) -> Envelope[CompleteChat]:
    return Envelope[CompleteChat](
        type="CompleteChat",
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        deadline=datetime.now(UTC) + timedelta(seconds=seconds),
        payload=CompleteChat(messages=[ChatMessage(role="user", content=text)], stream=True),
    )


def chunk(index: int, delta: str, *, last: bool = False) -> ChatChunk:
    return ChatChunk(index=index, delta=delta, last=last, provider="p", model="m")


class Replier:
    """A chat-shaped streaming consumer: one chunk per word, then waits for the delivery count."""

    def __init__(self) -> None:
        self.delivered: list[int | None] = []
        self.fail_after_chunks = False
        self.stall = False
        self.resume = asyncio.Event()
        self.inbox: RpcClient | None = None

    async def handle(self, envelope: Envelope[CompleteChat], stream: ReplyStream) -> ChatCompletion:
        assert self.inbox is not None
        stream.listen(self.inbox)
        words = envelope.payload.messages[-1].content.split()
        for i, word in enumerate(words):
            if self.stall:
                await self.resume.wait()
            await stream.send(chunk(i, word))
        await stream.send(chunk(len(words), "", last=True))
        self.delivered.append(await stream.delivered(within_s=5))
        if self.fail_after_chunks:
            raise UpstreamFailed("broke after the text")
        return ChatCompletion(
            id="c",
            message=ChatMessage(role="assistant", content=" ".join(words)),
            model="m",
            provider="p",
            usage=Usage(prompt_tokens=1, completion_tokens=len(words), total_tokens=1 + len(words)),
        )


@pytest.fixture
async def wired(amqp_url: str, namespace: str) -> AsyncIterator[tuple[Replier, RpcClient]]:
    topology = Topology(namespace)
    server, client = (
        Bus(url=amqp_url, topology=topology, service="chat"),
        Bus(url=amqp_url, topology=topology, service="gw"),
    )
    await server.connect()
    await client.connect()
    replier = Replier()
    replier.inbox = RpcClient(server, process="chat")
    await replier.inbox.start()
    await Consumer(
        server,
        service="chat",
        handlers={"CompleteChat": Streaming(replier.handle)},
        processed=None,
        publishers=Publishers(development=True),
        prefetch=4,
        max_attempts=2,
    ).start()
    rpc = RpcClient(client, process="gw")
    await rpc.start()
    yield replier, rpc
    await client.close()
    await server.close()


async def test_chunks_arrive_in_order_then_the_reply_and_the_count_reaches_the_replier(
    wired: tuple[Replier, RpcClient],
) -> None:
    replier, rpc = wired
    stream = await rpc.stream(request("a b c d e"), chunk_model=ChatChunk, reply_model=ChatCompletion)
    seen = []
    async for item in stream:
        if item.last:
            await stream.acknowledge(len(seen))
        else:
            seen.append(item.delta)
    assert seen == ["a", "b", "c", "d", "e"]
    assert stream.result is not None and stream.result.message.content == "a b c d e"
    assert replier.delivered == [5]


async def test_an_early_acknowledgement_is_seen_by_the_replier_at_once(wired: tuple[Replier, RpcClient]) -> None:
    replier, rpc = wired
    stream = await rpc.stream(request("a b c"), chunk_model=ChatChunk, reply_model=ChatCompletion)
    await anext(stream)
    await stream.acknowledge(1)  # the client left after the first chunk
    stream.close()
    await wait_until(lambda: _value(replier.delivered), lambda d: d == [1], within=5)


async def test_an_error_after_the_chunks_raises_from_the_stream(wired: tuple[Replier, RpcClient]) -> None:
    replier, rpc = wired
    replier.fail_after_chunks = True
    stream = await rpc.stream(request("x y"), chunk_model=ChatChunk, reply_model=ChatCompletion)
    deltas = []
    with pytest.raises(UpstreamFailed):
        async for item in stream:
            deltas.append(item.delta)
            if item.last:
                await stream.acknowledge(2)
    assert deltas == ["x", "y", ""]


async def test_a_stalled_stream_ends_at_the_deadline(wired: tuple[Replier, RpcClient]) -> None:
    replier, rpc = wired
    replier.stall = True
    stream = await rpc.stream(request("z", seconds=0.5), chunk_model=ChatChunk, reply_model=ChatCompletion)
    with pytest.raises(DeadlineExceeded):
        await anext(stream)
    replier.resume.set()


@pytest.fixture
async def small_buffer(wired: tuple[Replier, RpcClient], amqp_url: str, namespace: str) -> AsyncIterator[RpcClient]:
    bus = Bus(url=amqp_url, topology=Topology(namespace), service="slow")
    await bus.connect()
    rpc = RpcClient(bus, process="slow", stream_buffer=4)
    await rpc.start()
    yield rpc
    await bus.close()


async def test_a_requester_that_falls_behind_overflows_and_can_still_report(
    wired: tuple[Replier, RpcClient], small_buffer: RpcClient
) -> None:
    replier, _ = wired
    stream = await small_buffer.stream(
        request("a b c d e f g h i j"), chunk_model=ChatChunk, reply_model=ChatCompletion
    )
    await wait_until(lambda: _value(stream.overflowed), bool, within=5)  # nothing taken: 4 held, the rest dropped
    with pytest.raises(StreamOverflow):
        await anext(stream)
    assert await anext(stream, None) is None
    await stream.acknowledge(0)
    await wait_until(lambda: _value(replier.delivered), lambda d: d == [0], within=5)


async def _value[T](value: T) -> T:
    return value
