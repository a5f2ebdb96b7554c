"""Metrics move as expected after a known sequence of requests: HTTP counts by route and
status, chat messages handled, and the ledger's reserve/commit counters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY

from chat.settings import ChatSettings
from credits.settings import CreditsSettings
from gateway.app import create_app
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.support.services import in_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HELLO = {"messages": [{"role": "user", "content": "count me"}]}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def services(gateway_settings: GatewaySettings, mongodb_url: str) -> AsyncIterator[None]:
    common = gateway_settings.model_dump(include={"amqp_url", "redis_url", "bus_namespace"})
    database = f"t_{gateway_settings.bus_namespace}"
    credits = CreditsSettings(**common, mongodb_url=mongodb_url, mongodb_database=database, signup_credits=2)
    chat = ChatSettings(**common, mongodb_url=mongodb_url, mongodb_database=database, chat_cache_ttl_s=0)
    async with in_process("credits", credits), in_process("chat", chat):
        yield


async def test_a_known_sequence_moves_the_counters(
    client: httpx.AsyncClient, issuer: DevIssuer, services: None
) -> None:
    user = {"Authorization": "Bearer " + issuer.token(email="metrics@example.com", role="user")}
    before = {
        "ok": sample("aisaas_http_request_seconds_count", method="POST", route="/v1/chat", status="200"),
        "paid": sample("aisaas_http_request_seconds_count", method="POST", route="/v1/chat", status="402"),
        "bad": sample("aisaas_http_request_seconds_count", method="POST", route="/v1/chat", status="422"),
        "handled": sample("aisaas_messages_total", service="chat", message="CompleteChat", outcome="ok"),
        "refused": sample("aisaas_messages_total", service="chat", message="CompleteChat", outcome="error"),
        "reserved": sample("aisaas_credits_moved_total", operation="reserve"),
        "committed": sample("aisaas_credits_moved_total", operation="commit"),
        "insufficient": sample("aisaas_credits_insufficient_total"),
    }
    for _ in range(3):  # two answers, then 402: the signup grant is 2 credits at 1 each
        await client.post("/v1/chat", json=HELLO, headers=user)
    assert (await client.post("/v1/chat", json={"messages": []}, headers=user)).status_code == 422

    assert (
        sample("aisaas_http_request_seconds_count", method="POST", route="/v1/chat", status="200") == before["ok"] + 2
    )
    assert (
        sample("aisaas_http_request_seconds_count", method="POST", route="/v1/chat", status="402") == before["paid"] + 1
    )
    assert (
        sample("aisaas_http_request_seconds_count", method="POST", route="/v1/chat", status="422") == before["bad"] + 1
    )
    assert (
        sample("aisaas_messages_total", service="chat", message="CompleteChat", outcome="ok") == before["handled"] + 2
    )
    assert (
        sample("aisaas_messages_total", service="chat", message="CompleteChat", outcome="error")
        == before["refused"] + 1
    )
    assert sample("aisaas_credits_moved_total", operation="reserve") == before["reserved"] + 2
    assert sample("aisaas_credits_moved_total", operation="commit") == before["committed"] + 2
    assert sample("aisaas_credits_insufficient_total") == before["insufficient"] + 1


@pytest.fixture
async def cached_services(gateway_settings: GatewaySettings, mongodb_url: str) -> AsyncIterator[None]:
    common = gateway_settings.model_dump(include={"amqp_url", "redis_url", "bus_namespace"})
    database = f"t_{gateway_settings.bus_namespace}"
    credits = CreditsSettings(**common, mongodb_url=mongodb_url, mongodb_database=database, signup_credits=10)
    chat = ChatSettings(**common, mongodb_url=mongodb_url, mongodb_database=database)
    async with in_process("credits", credits), in_process("chat", chat):
        yield


async def test_cache_hits_and_provider_calls_are_counted(
    client: httpx.AsyncClient, issuer: DevIssuer, cached_services: None
) -> None:
    user = {"Authorization": "Bearer " + issuer.token(email="cache-metrics@example.com", role="user")}
    body = {"messages": [{"role": "user", "content": f"cache me {id(client)}"}]}
    before = {
        "hit": sample("aisaas_prompt_cache_lookups_total", result="hit"),
        "miss": sample("aisaas_prompt_cache_lookups_total", result="miss"),
        "calls": sample("aisaas_provider_calls_total", provider="local", outcome="ok"),
    }
    first, second = [await client.post("/v1/chat", json=body, headers=user) for _ in range(2)]
    assert (first.json()["cached"], second.json()["cached"]) == (False, True)
    assert sample("aisaas_prompt_cache_lookups_total", result="miss") == before["miss"] + 1
    assert sample("aisaas_prompt_cache_lookups_total", result="hit") == before["hit"] + 1
    assert sample("aisaas_provider_calls_total", provider="local", outcome="ok") == before["calls"] + 1
    assert sample("aisaas_provider_circuit_state", provider="local") == 0


async def test_rate_limit_rejections_are_counted(gateway_settings: GatewaySettings, issuer: DevIssuer) -> None:
    settings = gateway_settings.model_copy(update={"rate_limits": {"chat": {"user": "1/minute"}}})
    app = create_app(settings)
    user = {"Authorization": "Bearer " + issuer.token(email="limited@example.com", role="user")}
    before = sample("aisaas_rate_limited_total", budget="chat")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as limited,
    ):
        await limited.post("/v1/chat", json=HELLO, headers=user | {"X-Request-Timeout": "1"})
        refused = await limited.post("/v1/chat", json=HELLO, headers=user)
    assert refused.status_code == 429
    assert sample("aisaas_rate_limited_total", budget="chat") == before + 1


async def test_queue_depth_and_consumers_are_sampled(gateway_settings: GatewaySettings, mongodb_url: str) -> None:
    common = gateway_settings.model_dump(include={"amqp_url", "redis_url", "bus_namespace"})
    settings = CreditsSettings(
        **common, mongodb_url=mongodb_url, mongodb_database=f"t_{gateway_settings.bus_namespace}"
    )
    queue = f"{gateway_settings.bus_namespace}.credits"

    async def consumers() -> float | None:
        return REGISTRY.get_sample_value("aisaas_queue_consumers", {"queue": queue})

    async with in_process("credits", settings):
        assert await wait_until(consumers, lambda n: n == 1, within=10) == 1
        assert REGISTRY.get_sample_value("aisaas_queue_depth", {"queue": queue}) == 0
