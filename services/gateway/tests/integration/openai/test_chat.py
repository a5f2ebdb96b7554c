"""The official `openai` SDK pointed at the gateway, with a user's bearer token as its API key."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import openai
import pytest
from fastapi import FastAPI

from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.simulator.server import RunningSimulator
from tests.support.chat_system import chat_services, chat_settings, credits_settings, served

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "What is AMQP?"}]


@pytest.fixture
async def api(gateway_app: FastAPI, issuer: DevIssuer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with served(gateway_app) as url:
        token = issuer.token(email="sdk@example.com", role="user")
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0, timeout=20) as client:
            yield client


@pytest.fixture
async def system(gateway_settings: GatewaySettings, simulator: RunningSimulator) -> AsyncIterator[None]:
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        yield


async def test_a_chat_completion(api: openai.AsyncOpenAI, system: None, simulator: RunningSimulator) -> None:
    reply = await api.chat.completions.create(model="gemini-2.5-flash", messages=MESSAGES, temperature=0.3)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "Simulated Gemini answer to: What is AMQP?"
    assert (reply.choices[0].finish_reason, reply.model, reply.object) == (
        "stop",
        "gemini-2.5-flash",
        "chat.completion",
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 7
    assert reply.id.startswith("chatcmpl-")
    assert reply.model_extra is not None and reply.model_extra["provider"] == "gemini"
    assert reply.model_extra["cached"] is False


async def test_a_streamed_chat_completion_with_usage(
    api: openai.AsyncOpenAI, system: None, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", stream_delay_ms=100)
    stream = await api.chat.completions.create(
        model="gemini-2.5-flash",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[tuple[str, float]] = []
    finish, usage, ids = None, None, set()
    async for chunk in stream:
        ids.add(chunk.id)
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append((choice.delta.content, time.monotonic()))
            finish = choice.finish_reason or finish
    ended = time.monotonic()
    assert "".join(p for p, _ in pieces) == "Simulated Gemini answer to: What is AMQP?"
    assert len(pieces) == 7 and pieces[0][1] < ended - 0.3  # streamed, not buffered
    assert finish == "stop" and usage is not None and usage.completion_tokens == 7
    assert len(ids) == 1


async def test_models_are_listed(api: openai.AsyncOpenAI, system: None) -> None:
    models = [m async for m in api.models.list()]
    kinds = {m.id: (m.owned_by, (m.model_extra or {})["kind"]) for m in models}
    assert models[0].id == "gemini-2.5-flash" and kinds["gpt-4o-mini"] == ("openai", "chat")
    # The embedding models after the chat ones, each saying so.
    assert kinds["text-embedding-3-small"] == ("openai", "embedding")
    assert kinds["gemini-embedding-001"] == ("gemini", "embedding")
    assert [k for _, k in kinds.values()] == sorted(k for _, k in kinds.values())  # "chat" < "embedding"
    assert {owner for owner, _ in kinds.values()} == {"gemini", "openai"}
    assert (await api.models.retrieve("gpt-4o-mini")).owned_by == "openai"
    assert (await api.models.retrieve("text-embedding-3-small")).model_extra == {"kind": "embedding"}
    with pytest.raises(openai.NotFoundError):
        await api.models.retrieve("no-such-model")


async def test_errors_come_in_openai_shape_with_the_request_id(
    api: openai.AsyncOpenAI, gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    broke = credits_settings(gateway_settings, signup_credits=0)
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator), credits=broke):
        with pytest.raises(openai.APIStatusError) as caught:
            await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
        assert caught.value.status_code == 402
        error = caught.value.body
        assert isinstance(error, dict) and error["type"] == "insufficient_quota"
        assert error["code"] == "insufficient_credits" and error["request_id"] == caught.value.request_id

        with pytest.raises(openai.BadRequestError) as bad:
            await api.chat.completions.create(model="gpt-4o", messages=[{"role": "function", "content": "x"}])  # type: ignore[list-item,misc]
        assert isinstance(bad.value.body, dict) and bad.value.body["param"] == "messages.0.role"
        assert simulator.sim.count() == 0


async def test_without_a_valid_key_the_sdk_gets_401(
    gateway_app: FastAPI, system: None, simulator: RunningSimulator
) -> None:
    async with (
        served(gateway_app) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="not-a-token", max_retries=0) as client,
    ):
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert simulator.sim.count() == 0
