"""What a chat request may ask for and what it costs, through the HTTP API: only the priced
models, `max_tokens` clamped to the model's priced cap, the worst case held before the provider is
called, and an answer of any length delivered rather than failing in the chat service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.simulator.server import RunningSimulator
from tests.support.chat_system import chat_services, chat_settings, credits_settings, served
from tests.support.client import balance

pytestmark = pytest.mark.integration

UNTOUCHED = {"available": 100, "reserved": 0, "spent": 0, "granted": 100}


def question(text: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], **extra}


def assert_refused(response: httpx.Response, field: str, status: int = 422) -> str:
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["request_id"] == response.headers["x-request-id"]
    assert [e["field"] for e in problem["errors"]] == [field]
    return str(problem["detail"])


async def test_a_model_nobody_priced_is_refused_naming_the_offered_ones_and_costs_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        response = await client.post("/v1/chat", json=question("hi", model="gpt-4.5-preview"), headers=auth)
        detail = assert_refused(response, "body.model", 404)  # as OpenAI answers a model it lacks
        assert "gemini-2.5-flash" in detail and "gpt-4o-mini" in detail
        assert simulator.sim.count() == 0 and await balance(client, auth) == UNTOUCHED


async def test_max_tokens_above_the_priced_cap_is_served_at_the_cap_and_charged_at_most_its_price(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    per_token = {"per_request": 0, "per_1k_tokens": 1000, "max_tokens": 3}  # a credit a token
    chat = chat_settings(gateway_settings, simulator, chat_price=per_token)
    async with chat_services(gateway_settings, chat, credits=credits_settings(gateway_settings, signup_credits=1000)):
        prompt = " ".join(f"w{n}" for n in range(60))
        response = await client.post("/v1/chat", json=question(prompt, max_tokens=32_768), headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["finish_reason"], body["usage"]["completion_tokens"]) == ("length", 3)  # clamped to the cap
        assert body["credits"] == 60 + 3
        assert (await balance(client, auth))["spent"] == 63


async def test_an_answer_is_capped_at_the_priced_tokens_and_the_whole_prompt_is_charged(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    per_token = {"per_request": 0, "per_1k_tokens": 1000, "max_tokens": 3}  # a credit a token
    chat = chat_settings(gateway_settings, simulator, chat_price=per_token)
    async with chat_services(gateway_settings, chat, credits=credits_settings(gateway_settings, signup_credits=1000)):
        long_prompt = " ".join(f"w{n}" for n in range(60))
        body = (await client.post("/v1/chat", json=question(long_prompt), headers=auth)).json()
        assert (body["finish_reason"], body["usage"]["completion_tokens"]) == ("length", 3)  # sent with the cap
        assert body["credits"] == body["usage"]["total_tokens"] == 60 + 3
        assert (await balance(client, auth))["spent"] == 63


async def test_an_image_model_on_the_openai_route_is_a_clear_4xx_naming_the_chat_models(
    gateway_app: FastAPI, issuer: DevIssuer, gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    token = issuer.token(email="a@example.com", role="user")
    async with (
        chat_services(gateway_settings, chat_settings(gateway_settings, simulator)),
        served(gateway_app) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0) as api,
    ):
        with pytest.raises(openai.NotFoundError) as refused:
            await api.chat.completions.create(
                model="black-forest-labs/flux-schnell", messages=[{"role": "user", "content": "a red lighthouse"}]
            )
        error = refused.value.body
        assert isinstance(error, dict) and error["param"] == "model" and "gemini-2.5-flash" in error["message"]
        assert simulator.sim.count() == 0


@pytest.fixture
async def roomy_client(gateway_settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway that takes a message of the longest allowed text."""
    app = create_app(gateway_settings.model_copy(update={"max_body_bytes": 64 * 1024}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        yield client


async def test_an_answer_longer_than_a_message_may_be_is_delivered_cut_and_charged_once(
    roomy_client: httpx.AsyncClient,
    auth: dict[str, str],
    gateway_settings: GatewaySettings,
    simulator: RunningSimulator,
) -> None:
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        # The provider repeats the 32,000-character prompt: its answer is longer than a message may be.
        response = await roomy_client.post("/v1/chat", json=question("x" * 32_000), headers=auth, timeout=20)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["finish_reason"] == "length" and len(body["message"]["content"]) == 32_000
        hit = (await roomy_client.post("/v1/chat", json=question("x" * 32_000), headers=auth, timeout=20)).json()
        assert hit["cached"] is True and hit["message"] == body["message"]
        assert simulator.sim.count() == 1 and (await balance(roomy_client, auth))["spent"] == 1
