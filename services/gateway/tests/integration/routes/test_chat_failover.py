"""Provider failover seen from the HTTP API: gateway → chat → credits → simulated providers.

Gemini failing (5xx or hanging) is answered by OpenAI within the deadline; both failing is a
502 problem+json and the reservation is released; every breaker open is a 503 at once, and one
user's own slow requests do not open them."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gateway.app import create_app
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.simulator.server import RunningSimulator
from tests.support.chat_system import chat_services, chat_settings
from tests.support.client import balance

pytestmark = pytest.mark.integration

FULL = {"available": 100, "reserved": 0, "spent": 0, "granted": 100}


def question(text: str = "Which broker?", **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], **extra}


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["request_id"] == response.headers["x-request-id"]
    return problem  # type: ignore[no-any-return]


async def test_gemini_5xx_is_answered_by_openai_within_the_deadline(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", status=503, times=-1)
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        started = time.monotonic()
        response = await client.post("/v1/chat", json=question(), headers=auth | {"X-Request-Timeout": "5"})
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["provider"], body["model"], body["cached"]) == ("openai", "gpt-4o-mini", False)
        assert body["message"]["content"] == "Simulated OpenAI answer to: Which broker?"
        assert elapsed < 5
        assert (
            simulator.sim.count("gemini") == 2 and simulator.sim.count("openai") == 1
        )  # retried once, then failed over
        assert await balance(client, auth) == FULL | {"available": 99, "spent": 1}


async def test_gemini_hanging_is_cut_by_the_attempt_timeout_and_openai_answers_within_the_deadline(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", hang=True, hang_s=30, times=-1)
    settings = chat_settings(gateway_settings, simulator, chat_attempt_timeout_s=0.5)
    async with chat_services(gateway_settings, settings):
        started = time.monotonic()
        response = await client.post("/v1/chat", json=question(), headers=auth | {"X-Request-Timeout": "4"})
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert response.json()["provider"] == "openai"
        assert elapsed < 4
        assert simulator.sim.count("gemini") == 2


async def test_both_failing_is_502_and_the_reservation_is_released(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", status=500, times=-1)
    simulator.sim.add_fault("openai", malformed=True, times=-1)
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        assert await balance(client, auth) == FULL
        response = await client.post("/v1/chat", json=question(), headers=auth | {"X-Request-Timeout": "5"})
        problem = assert_problem(response, 502)
        assert problem["attempts"] == ["gemini: HTTP 500 INTERNAL", "openai: malformed reply (JSONDecodeError)"]
        assert await balance(client, auth) == FULL
        history = (await client.get("/v1/credits/history", headers=auth)).json()["entries"]
        assert [e["kind"] for e in history][:2] == ["release", "reserve"]


async def test_a_stream_whose_providers_all_fail_before_the_first_token_is_502_and_released(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", status=503, times=-1)
    simulator.sim.add_fault("openai", status=502, times=-1)
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        response = await client.post("/v1/chat", json=question(stream=True), headers=auth)
        assert_problem(response, 502)
        assert await balance(client, auth) == FULL


async def test_every_breaker_open_is_503_at_once_without_calling_a_provider(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", status=503, times=-1)
    simulator.sim.add_fault("openai", status=503, times=-1)
    settings = chat_settings(gateway_settings, simulator, chat_retry_attempts=1, chat_breaker_failures=1)
    async with chat_services(gateway_settings, settings):
        assert_problem(await client.post("/v1/chat", json=question("one"), headers=auth), 502)
        calls = simulator.sim.count()
        problem = assert_problem(await client.post("/v1/chat", json=question("two"), headers=auth), 503)
        assert simulator.sim.count() == calls
        assert 0 < problem["retry_after"] <= 30  # type: ignore[operator]
        assert await balance(client, auth) == FULL


async def test_one_users_huge_requests_do_not_open_the_breakers_for_another_user(
    gateway_settings: GatewaySettings, auth: dict[str, str], issuer: DevIssuer, simulator: RunningSimulator
) -> None:
    """The attack: a burst of huge prompts, each slower than the attempt timeout at every provider.
    Their timeouts may be the requests' own doing, so they count once per user: the attacker alone
    cannot open a breaker, and another user's ordinary request is still answered."""
    for provider in ("gemini", "openai"):
        simulator.sim.add_fault(provider, latency_ms_per_1k_tokens=250)  # 8,000 words: 2 s to answer
    settings = gateway_settings.model_copy(update={"max_body_bytes": 64 * 1024})
    chat = chat_settings(gateway_settings, simulator, chat_attempt_timeout_s=0.5, chat_breaker_failures=5)
    app = create_app(settings)
    other = {"Authorization": "Bearer " + issuer.token(email="b@example.com", role="user")}
    async with (
        app.router.lifespan_context(app),
        chat_services(gateway_settings, chat),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30) as http,
    ):
        huge = [question(f"{n} " + "w " * 8000) for n in range(3)]
        burst = await asyncio.gather(*(http.post("/v1/chat", json=body, headers=auth) for body in huge))
        for response in burst:
            assert_problem(response, 502)
        assert simulator.sim.count("gemini") >= 6 and simulator.sim.count("openai") >= 6  # retried, failed over
        response = await http.post("/v1/chat", json=question("Name a prime"), headers=other)
        assert response.status_code == 200, response.text
        assert response.json()["provider"] == "gemini"
