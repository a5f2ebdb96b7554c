"""What a publisher may tell its caller when the broker link fails: 503 only when the message
surely went nowhere; once it may have reached the broker, OutcomeUnknown (504), because the
work may be done (found by the chaos soak: a chat answered 503 had been served and charged)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from common.bus import Bus, Consumer, Publishers, Topology
from common.contracts import ChatCompletion, ChatMessage, CompleteChat, Envelope, Usage
from common.errors import OutcomeUnknown, ServiceUnavailable
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


class GatedProxy:
    """A TCP link to the broker whose broker-to-client half can be held (confirms stop coming
    back while the client's frames still arrive), and which can drop every connection."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.replies = asyncio.Event()
        self.replies.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> GatedProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def drop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer, gated=False), self._pipe(up_reader, writer, gated=True))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, gated: bool) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if gated:
                    await self.replies.wait()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


def chat_request() -> Envelope[CompleteChat]:
    return Envelope[CompleteChat](
        message_id=uuid.uuid4(),
        type="CompleteChat",
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        payload=CompleteChat(messages=[ChatMessage(role="user", content="hi")]),
    )


@pytest.fixture
async def proxy(amqp_url: str) -> AsyncIterator[GatedProxy]:
    parts = urlsplit(amqp_url)
    running = await GatedProxy((parts.hostname or "127.0.0.1", parts.port or 5672)).start()
    yield running
    running.replies.set()
    await running.drop()


@pytest.fixture
async def received(amqp_url: str, namespace: str) -> AsyncIterator[list[Envelope[CompleteChat]]]:
    """A chat-shaped consumer on the real broker (directly, not through the proxy)."""
    calls: list[Envelope[CompleteChat]] = []

    async def handle(envelope: Envelope[CompleteChat]) -> ChatCompletion:
        calls.append(envelope)
        return ChatCompletion(
            id="x",
            message=ChatMessage(role="assistant", content="ok"),
            model="m",
            provider="p",
            usage=Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2),
        )

    bus = Bus(url=amqp_url, topology=Topology(namespace), service="chat")
    await bus.connect()
    consumer = Consumer(
        bus,
        service="chat",
        handlers={"CompleteChat": handle},
        processed=None,
        publishers=Publishers(development=True),
        prefetch=8,
        max_attempts=3,
    )
    await consumer.start()
    yield calls
    await bus.close()


def through(amqp_url: str, proxy: GatedProxy) -> str:
    parts = urlsplit(amqp_url)
    netloc = (
        f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    )
    return urlunsplit(parts._replace(netloc=netloc))


async def test_a_publish_whose_confirm_is_lost_is_outcome_unknown_not_503(
    amqp_url: str, namespace: str, proxy: GatedProxy, received: list[Envelope[CompleteChat]]
) -> None:
    publisher = Bus(url=through(amqp_url, proxy), topology=Topology(namespace), service="gateway")
    await publisher.connect()
    try:
        proxy.replies.clear()  # from now on the broker's confirms are held back
        sending = asyncio.create_task(publisher.publish(chat_request()))
        await wait_until(lambda: _now(len(received)), lambda n: n == 1, within=10)  # it reached the broker
        await proxy.drop()  # and the link goes before its confirm comes back

        with pytest.raises(OutcomeUnknown) as unknown:
            await sending
        assert unknown.value.status == 504
    finally:
        await publisher.close()


async def test_a_publish_with_no_link_to_the_broker_is_503_at_once(
    amqp_url: str, namespace: str, proxy: GatedProxy
) -> None:
    publisher = Bus(url=through(amqp_url, proxy), topology=Topology(namespace), service="gateway")
    await publisher.connect()
    try:
        await proxy.drop()
        await wait_until(lambda: _now(publisher.is_ready), lambda ready: not ready, within=10)
        with pytest.raises(ServiceUnavailable):
            await publisher.publish(chat_request())
    finally:
        await publisher.close()


async def _now[T](value: T) -> T:
    return value
