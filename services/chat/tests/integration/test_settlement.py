"""A chat answer goes out only once its settlement is in the ledger's queue (confirmed by the
broker), so whatever the answer prompts (a balance read) finds the settlement applied."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from common.bus import Bus, RpcClient, Topology
from common.contracts import Actor, Caller, ChatCompletion, ChatMessage, CompleteChat, Envelope
from common.credits import CreditsClient
from common.settings import CommonSettings
from tests.simulator.server import RunningSimulator
from tests.support.chat_system import chat_services, chat_settings

pytestmark = pytest.mark.integration

ACTOR = Actor(id="user-settle", email="settle@example.com", role="user")


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


async def test_a_balance_read_right_after_each_answer_sees_its_charge(
    base: CommonSettings, rpc: RpcClient, simulator: RunningSimulator
) -> None:
    caller = Caller(request_id="req-settle", actor=ACTOR, deadline=datetime.now(UTC) + timedelta(seconds=30))
    credits = CreditsClient(rpc)
    async with chat_services(base, chat_settings(base, simulator, chat_cache_ttl_s=0)):
        granted = (await credits.balance(caller)).granted
        for n in range(1, 16):
            ask = Envelope[CompleteChat](
                type="CompleteChat",
                request_id=f"req-{uuid.uuid4().hex[:8]}",
                actor=ACTOR,
                deadline=datetime.now(UTC) + timedelta(seconds=10),
                payload=CompleteChat(messages=[ChatMessage(role="user", content=f"q{n}")], model="gemini-2.5-flash"),
            )
            answer = await rpc.call(ask, reply_model=ChatCompletion)
            balance = await credits.balance(caller)  # sent the moment the answer arrives
            assert (balance.reserved, balance.spent) == (0, n * answer.credits), n
        assert balance.available == granted - balance.spent
