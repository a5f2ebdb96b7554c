"""Redis cut off under a running chat service (its link goes through a proxy this test cuts; the
machine's Redis keeps running): chat answers uncached within the deadline, charged once, stores
nothing meanwhile, and uses the cache again once the link is back."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from chaos.proxy import TcpProxy
from pydantic import SecretStr

from common.bus import Bus, RpcClient, Topology
from common.contracts import Actor, Caller, ChatCompletion, ChatMessage, CompleteChat, Envelope
from common.credits import CreditsClient
from common.redis_client import RedisClient
from common.settings import CommonSettings
from tests.simulator.server import RunningSimulator
from tests.support.chat_system import chat_services, chat_settings
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ACTOR = Actor(id="user-redis-cut", email="redis-cut@example.com", role="user")
DEADLINE_S = 10.0


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    upstream = urlsplit(redis_url)
    link = await TcpProxy(upstream_host=upstream.hostname or "127.0.0.1", upstream_port=upstream.port or 6379).start()
    yield link
    await link.close()


@pytest.fixture
async def rpc(amqp_url: str, namespace: str) -> AsyncIterator[RpcClient]:
    bus = Bus(url=amqp_url, topology=Topology(namespace), service="gateway")
    await bus.connect()
    client = RpcClient(bus, process="gateway")
    await client.start()
    yield client
    await bus.close()


def ask(text: str) -> Envelope[CompleteChat]:
    return Envelope[CompleteChat](
        type="CompleteChat",
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        actor=ACTOR,
        deadline=datetime.now(UTC) + timedelta(seconds=DEADLINE_S),
        payload=CompleteChat(messages=[ChatMessage(role="user", content=text)], model="gemini-2.5-flash"),
    )


async def test_with_redis_cut_off_chat_answers_uncached_in_time_and_charges_once(
    proxy: TcpProxy,
    rpc: RpcClient,
    redis: RedisClient,
    simulator: RunningSimulator,
    amqp_url: str,
    redis_url: str,
    mongodb_url: str,
    namespace: str,
) -> None:
    base = CommonSettings(
        amqp_url=amqp_url,
        redis_url=redis_url,
        mongodb_url=mongodb_url,
        mongodb_database=f"t_{namespace}",
        bus_namespace=namespace,
    )
    proxied = base.model_copy(update={"redis_url": SecretStr(f"redis://127.0.0.1:{proxy.port}/0")})
    through_proxy = chat_settings(proxied, simulator)
    credits = CreditsClient(rpc)
    caller = Caller(request_id="req-balance", actor=ACTOR, deadline=datetime.now(UTC) + timedelta(seconds=30))
    async with chat_services(base, through_proxy):
        spent = (await credits.balance(caller)).spent
        await proxy.cut_off()

        answers = []
        for _ in range(2):  # the same prompt twice: the first answer was not stored for the second
            started = time.monotonic()
            answer = await rpc.call(ask("what is a ledger?"), reply_model=ChatCompletion)
            assert time.monotonic() - started < DEADLINE_S / 2  # answered, not left to run into its deadline
            answers.append(answer)
        assert [a.cached for a in answers] == [False, False]
        assert all(a.credits > 0 for a in answers)
        balance = await credits.balance(caller)  # a settlement precedes its answer in the ledger's queue
        assert (balance.spent - spent, balance.reserved) == (sum(a.credits for a in answers), 0)
        assert [k async for k in redis.scan_iter(match=f"{namespace}:chat:*")] == []  # nothing filled

        await proxy.restore()

        async def asked() -> ChatCompletion:
            return await rpc.call(ask("what is a ledger?"), reply_model=ChatCompletion)

        await wait_until(asked, lambda a: a.cached, within=15, interval=0.2)  # the cache serves again
