"""Every answer leaves a usage record in MongoDB and a UsageRecorded event on the events exchange."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient

from chat.analytics import UsageAnalytics
from common.bus import Bus, RpcClient, Topology
from common.contracts import (
    Actor,
    ChatCompletion,
    ChatMessage,
    CompleteChat,
    Envelope,
    GetUsageReport,
    UsageRecorded,
)
from common.errors import Conflict
from common.settings import CommonSettings
from tests.simulator.server import RunningSimulator
from tests.support.chat_system import chat_services, chat_settings
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ACTOR = Actor(id="user-usage", email="usage@example.com", role="user")


@pytest.fixture
def base(amqp_url: str, redis_url: str, mongodb_url: str, namespace: str) -> CommonSettings:
    return CommonSettings(
        amqp_url=amqp_url,
        redis_url=redis_url,
        mongodb_url=mongodb_url,
        mongodb_database=f"t_{namespace}",
        bus_namespace=namespace,
    )


@pytest.fixture
async def rpc(base: CommonSettings) -> AsyncIterator[RpcClient]:
    bus = Bus(url=base.amqp_url.get_secret_value(), topology=Topology(base.bus_namespace), service="test")
    await bus.connect()
    client = RpcClient(bus, process="test")
    await client.start()
    yield client
    await bus.close()


@pytest.fixture
async def events(base: CommonSettings) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A queue bound to UsageRecorded on the events exchange, as an analytics consumer would bind one."""
    connection = await aio_pika.connect(base.amqp_url.get_secret_value())
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        Topology(base.bus_namespace).events, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key="UsageRecorded")
    yield queue
    await connection.close()


@pytest.fixture
async def usage(base: CommonSettings) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(base.mongodb_url.get_secret_value(), tz_aware=True)  # type: ignore[union-attr]
    yield client[base.mongodb_database]["usage"]
    await client.drop_database(base.mongodb_database)
    await client.close()


def ask(text: str) -> Envelope[CompleteChat]:
    return Envelope[CompleteChat](
        type="CompleteChat",
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        actor=ACTOR,
        deadline=datetime.now(UTC) + timedelta(seconds=10),
        payload=CompleteChat(messages=[ChatMessage(role="user", content=text)], model="gemini-2.5-flash"),
    )


async def test_answers_are_recorded_with_their_cost_and_announced(
    base: CommonSettings,
    rpc: RpcClient,
    events: aio_pika.abc.AbstractQueue,
    usage: Any,
    simulator: RunningSimulator,
) -> None:
    async with chat_services(base, chat_settings(base, simulator)):
        fresh, cached = ask("price me"), ask("price me")
        first = await rpc.call(fresh, reply_model=ChatCompletion)
        second = await rpc.call(cached, reply_model=ChatCompletion)
        assert (first.cached, second.cached) == (False, True)
        records = await wait_until(lambda: stored(usage), lambda r: len(r) == 2, within=10)

    paid, free = records
    assert paid["request_id"] == fresh.request_id and free["request_id"] == cached.request_id
    assert (paid["provider"], paid["model"], paid["cached"], paid["user_id"]) == (
        "gemini",
        "gemini-2.5-flash",
        False,
        ACTOR.id,
    )
    assert (paid["prompt_tokens"], paid["completion_tokens"]) == (2, 6)
    assert paid["cost_usd"] == pytest.approx((2 * 0.30 + 6 * 2.50) / 1e6)
    assert paid["latency_ms"] > 0 and paid["credits"] == 1 and paid["streamed"] is False
    assert (free["cached"], free["cost_usd"], free["provider"]) == (True, 0.0, "gemini")

    announced = []
    while len(announced) < 2:
        message = await events.get(timeout=5)
        await message.ack()
        announced += Envelope[UsageRecorded].model_validate_json(message.body).payload.records
    assert {str(r.usage_id) for r in announced} == {paid["_id"], free["_id"]}
    assert {r.request_id for r in announced} == {fresh.request_id, cached.request_id}


async def test_a_redelivered_request_is_answered_once_and_counted_once(
    base: CommonSettings, rpc: RpcClient, usage: Any, simulator: RunningSimulator
) -> None:
    settings = chat_settings(base, simulator).model_copy(update={"chat_cache_ttl_s": 0})
    async with chat_services(base, settings):
        request = ask("once")
        await rpc.call(request, reply_model=ChatCompletion)
        with pytest.raises(Conflict, match="answered already"):  # same message id: its reservation is settled
            await rpc.call(request, reply_model=ChatCompletion)
        report = await wait_until(
            lambda: UsageAnalytics(usage).report(REPORT),
            lambda r: r.totals.requests >= 1,
            within=10,
        )
    assert report.totals.requests == 1 and len(await stored(usage)) == 1
    assert simulator.sim.count() == 1


async def test_a_record_stored_twice_is_counted_once(
    base: CommonSettings, rpc: RpcClient, usage: Any, simulator: RunningSimulator
) -> None:
    """A cache hit needs no reservation, so a redelivered one is recorded again: analytics count its id once."""
    async with chat_services(base, chat_settings(base, simulator)):
        await rpc.call(ask("twice"), reply_model=ChatCompletion)
        hit = ask("twice")
        await rpc.call(hit, reply_model=ChatCompletion)
        await rpc.call(hit, reply_model=ChatCompletion)  # redelivered: answered from the cache again
        await wait_until(lambda: stored(usage), lambda r: len(r) == 3, within=10)
    report = await UsageAnalytics(usage).report(REPORT)
    assert (report.totals.requests, report.totals.cached) == (2, 1)


REPORT = GetUsageReport(
    since=datetime.now(UTC) - timedelta(days=1), until=datetime.now(UTC) + timedelta(days=1), group_by="user"
)


async def stored(usage: Any) -> list[dict[str, Any]]:
    """Every usage record, oldest first, out of the pages the recorder wrote."""
    pages = await usage.find().to_list()
    return sorted((r for page in pages for r in page["records"]), key=lambda r: r["at"])
