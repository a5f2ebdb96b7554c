"""The prompt cache through the HTTP API, with two chat replicas sharing Redis."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.simulator.server import RunningSimulator
from tests.support.chat_system import chat_services, chat_settings, credits_settings
from tests.support.client import balance
from tests.support.redis_cluster import ON_BOTH_REDIS

pytestmark = pytest.mark.integration


def question(text: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}], **extra}


@ON_BOTH_REDIS
async def test_50_concurrent_identical_prompts_on_a_cold_cache_make_one_provider_call(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", latency_ms=300)  # every request arrives while the first is in flight
    replicas = [chat_settings(gateway_settings, simulator) for _ in range(2)]
    async with chat_services(gateway_settings, *replicas):
        responses = await asyncio.gather(
            *(client.post("/v1/chat", json=question("What is a cache?"), headers=auth) for _ in range(50))
        )
        assert [r.status_code for r in responses] == [200] * 50
        assert simulator.sim.count("gemini", "generateContent") == 1 and simulator.sim.count() == 1
        bodies = [r.json() for r in responses]
        assert len({b["message"]["content"] for b in bodies}) == 1
        assert sorted(b["cached"] for b in bodies) == [False] + [True] * 49
        assert {b["provider"] for b in bodies} == {"gemini"}
        assert await balance(client, auth) == {"available": 99, "reserved": 0, "spent": 1, "granted": 100}


async def test_a_hit_costs_the_configured_price_and_a_different_request_is_a_miss(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    chat = chat_settings(gateway_settings, simulator, chat_cache_hit_price=1, chat_price={"per_request": 3})
    async with chat_services(gateway_settings, chat, credits=credits_settings(gateway_settings)):
        first = (await client.post("/v1/chat", json=question("hi"), headers=auth)).json()
        hit = (await client.post("/v1/chat", json=question("hi"), headers=auth)).json()
        warmer = (await client.post("/v1/chat", json=question("hi", temperature=0.9), headers=auth)).json()
        fresh = await client.post("/v1/chat", json=question("hi"), headers=auth | {"Cache-Control": "no-cache"})
        assert (first["cached"], hit["cached"], warmer["cached"], fresh.json()["cached"]) == (False, True, False, False)
        assert (first["credits"], hit["credits"], warmer["credits"]) == (3, 1, 3)
        assert hit["message"] == first["message"] and hit["provider"] == "gemini"
        assert simulator.sim.count("gemini") == 3
        assert (await balance(client, auth))["spent"] == 3 + 1 + 3 + 3


async def test_a_stream_is_served_from_the_cache_too(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        first = (await client.post("/v1/chat", json=question("stream me"), headers=auth)).json()
        streamed = await client.post("/v1/chat", json=question("stream me", stream=True), headers=auth)
        assert streamed.headers["content-type"].startswith("text/event-stream")
        assert '"cached":true' in streamed.text and "event: done" in streamed.text
        assert simulator.sim.count() == 1
        assert first["cached"] is False


async def test_another_users_identical_conversation_is_neither_served_nor_replaced(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    issuer: DevIssuer,
    gateway_settings: GatewaySettings,
    simulator: RunningSimulator,
) -> None:
    victim, attacker = auth, {"Authorization": "Bearer " + issuer.token(email="b@example.com", role="user")}
    secret = question("Draft my resignation letter to ACME; my salary is 91k")
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        assert (await client.post("/v1/chat", json=secret, headers=victim)).json()["cached"] is False
        probe = (await client.post("/v1/chat", json=secret, headers=attacker)).json()
        assert probe["cached"] is False and simulator.sim.count() == 2  # no oracle: the attacker's own miss
        overwrite = await client.post("/v1/chat", json=secret, headers=attacker | {"Cache-Control": "no-cache"})
        assert overwrite.status_code == 200 and simulator.sim.count() == 3
        again = (await client.post("/v1/chat", json=secret, headers=victim)).json()
        assert again["cached"] is True and simulator.sim.count() == 3  # the victim's own answer, still there


async def test_a_shared_cache_serves_everyone_when_the_operator_widens_it(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    issuer: DevIssuer,
    gateway_settings: GatewaySettings,
    simulator: RunningSimulator,
) -> None:
    other = {"Authorization": "Bearer " + issuer.token(email="b@example.com", role="user")}
    chat = chat_settings(gateway_settings, simulator, chat_cache_scope="shared", chat_cache_hit_price=1)
    async with chat_services(gateway_settings, chat):
        assert (await client.post("/v1/chat", json=question("public faq"), headers=auth)).json()["cached"] is False
        hit = (await client.post("/v1/chat", json=question("public faq"), headers=other)).json()
        assert (hit["cached"], hit["credits"], simulator.sim.count()) == (True, 1, 1)
        assert (await balance(client, other))["spent"] == 1  # hits are metered
