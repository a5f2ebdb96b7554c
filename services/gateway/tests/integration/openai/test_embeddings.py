"""`POST /v1/embeddings` with the official `openai` SDK against the gateway, the chat and credits
services on the real broker and MongoDB-protocol server, and the simulator behind them: the
balance moves by exactly the price; bad input and provider outages charge nothing."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from chat.credit_prices import ModelPrice
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.simulator.embeddings import vector
from tests.simulator.server import RunningSimulator
from tests.support.chat_system import chat_services, chat_settings, served
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

SIGNUP = 100  # credits_settings' signup grant
PER_TOKEN = ModelPrice(per_request=0, per_1k_tokens=1000)  # one credit a token: the price is the token count
PRICES = {"text-embedding-3-large": ModelPrice(per_request=2, per_1k_tokens=1000)}


@pytest.fixture
async def url(gateway_app: FastAPI) -> AsyncIterator[str]:
    async with served(gateway_app) as served_url:
        yield served_url


@pytest.fixture
def token(issuer: DevIssuer) -> str:
    return issuer.token(email="embed@example.com", role="user")


@pytest.fixture
async def api(url: str, token: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
async def http(url: str, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as client:
        yield client


@pytest.fixture
async def system(gateway_settings: GatewaySettings, simulator: RunningSimulator) -> AsyncIterator[None]:
    settings = chat_settings(
        gateway_settings,
        simulator,
        embedding_price=PER_TOKEN,
        embedding_model_prices=PRICES,
        chat_breaker_failures=2,
        chat_retry_attempts=2,
    )
    async with chat_services(gateway_settings, settings):
        yield


async def available(http: httpx.AsyncClient) -> int:
    response = await http.get("/v1/credits")
    assert response.status_code == 200, response.text
    return int(response.json()["available"])


async def settled(http: httpx.AsyncClient, expected: int) -> int:
    """The balance once nothing is held any more (settlements are published without waiting)."""

    async def read() -> dict[str, int]:
        return (await http.get("/v1/credits")).json()  # type: ignore[no-any-return]

    balance = await wait_until(read, lambda b: b["reserved"] == 0 and b["available"] == expected, within=10)
    return balance["available"]


async def test_openai_served_model_is_charged_exactly_its_tokens(
    api: openai.AsyncOpenAI, http: httpx.AsyncClient, system: None, simulator: RunningSimulator
) -> None:
    before = await available(http)
    reply = await api.embeddings.create(model="text-embedding-3-small", input=["red apple", "a green pear"])

    assert [len(d.embedding) for d in reply.data] == [1536, 1536]  # the SDK decoded the base64 it asked for
    assert reply.data[0].embedding == pytest.approx(vector("text-embedding-3-small", "red apple", 1536), abs=1e-6)
    assert reply.usage.prompt_tokens == reply.usage.total_tokens == 5
    assert reply.model_extra is not None
    assert (reply.model_extra["provider"], reply.model_extra["credits"]) == ("openai", 5)
    assert await settled(http, before - 5) == before - 5
    assert simulator.sim.count("openai", "embeddings") == 1


async def test_gemini_served_model_with_dimensions_and_float_encoding(
    api: openai.AsyncOpenAI, http: httpx.AsyncClient, system: None, simulator: RunningSimulator
) -> None:
    before = await available(http)
    reply = await api.embeddings.create(
        model="gemini-embedding-001", input="one two three", dimensions=64, encoding_format="float"
    )

    assert len(reply.data) == 1 and len(reply.data[0].embedding) == 64
    assert reply.data[0].embedding == pytest.approx(vector("gemini-embedding-001", "one two three", 64), abs=1e-6)
    assert reply.model == "gemini-embedding-001" and reply.usage.prompt_tokens == 3
    assert reply.model_extra is not None and reply.model_extra["provider"] == "gemini"
    assert await settled(http, before - 3) == before - 3
    call = simulator.sim.calls.recent()[-1]
    assert call["endpoint"] == "batchEmbedContents" and call["inputs"] == ["one two three"]


async def test_a_priced_model_and_base64_on_the_wire(
    http: httpx.AsyncClient, system: None, simulator: RunningSimulator
) -> None:
    before = await available(http)
    body = {"model": "text-embedding-3-large", "input": "four words right here", "encoding_format": "base64"}
    response = await http.post("/v1/embeddings", json=body)

    assert response.status_code == 200, response.text
    raw = base64.b64decode(response.json()["data"][0]["embedding"])
    values = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(values) == 3072 and math.isclose(math.hypot(*values), 1.0, abs_tol=1e-4)
    assert response.json()["credits"] == 2 + 4
    assert await settled(http, before - 6) == before - 6


async def test_each_request_leaves_a_usage_record_like_a_chat_answer(
    http: httpx.AsyncClient, system: None, gateway_settings: GatewaySettings, mongodb_url: str
) -> None:
    response = await http.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": ["a b", "c"]})
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    usage = mongo[f"t_{gateway_settings.bus_namespace}"]["usage"]

    async def records() -> list[dict[str, Any]]:
        pages = usage.find({"records.request_id": request_id})
        return [r async for page in pages for r in page["records"] if r["request_id"] == request_id]

    try:
        (record,) = await wait_until(records, bool, within=10)
    finally:
        await mongo.close()
    assert (record["provider"], record["model"], record["prompt_tokens"], record["completion_tokens"]) == (
        "openai",
        "text-embedding-3-small",
        3,
        0,
    )
    assert (record["credits"], record["cached"], record["streamed"]) == (3, False, False)
    assert record["cost_usd"] == pytest.approx(3 * 0.02 / 1_000_000)


async def test_a_retry_with_its_idempotency_key_is_charged_once(
    http: httpx.AsyncClient, system: None, simulator: RunningSimulator
) -> None:
    before = await available(http)
    body = {"model": "text-embedding-3-small", "input": "say it once"}
    first = await http.post("/v1/embeddings", json=body, headers={"Idempotency-Key": "emb-1"})
    retry = await http.post("/v1/embeddings", json=body, headers={"Idempotency-Key": "emb-1"})

    assert first.status_code == retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true" and retry.content == first.content
    assert simulator.sim.count("openai", "embeddings") == 1
    assert await settled(http, before - 3) == before - 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "text-embedding-3-small", "input": ""}, "input"),
        ({"model": "text-embedding-3-small", "input": []}, "input"),
        ({"model": "text-embedding-3-small", "input": [1, 2, 3]}, "input"),
        ({"model": "text-embedding-3-small", "input": [[1, 2], [3]]}, "input"),
        ({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "text-embedding-3-small", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "text-embedding-3-small", "input": "x", "top_k": 3}, "top_k"),
        ({"input": "x"}, "model"),
    ],
)
async def test_bad_input_is_a_400_in_openai_shape_and_charges_nothing(
    http: httpx.AsyncClient, system: None, simulator: RunningSimulator, body: dict[str, object], param: str
) -> None:
    before = await available(http)
    response = await http.post("/v1/embeddings", json=body)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"].startswith(param)
    assert error["request_id"] == response.headers["x-request-id"]
    if isinstance(body.get("input"), list) and body["input"]:
        assert "token arrays are not supported" in error["message"]
    assert simulator.sim.count() == 0
    assert await available(http) == before


async def test_an_unknown_model_is_404_like_chat_and_charges_nothing(
    api: openai.AsyncOpenAI, http: httpx.AsyncClient, system: None, simulator: RunningSimulator
) -> None:
    before = await available(http)
    with pytest.raises(openai.NotFoundError) as missing:
        await api.embeddings.create(model="gpt-4o-mini", input="x")
    assert isinstance(missing.value.body, dict) and missing.value.body["param"] == "model"
    assert simulator.sim.count() == 0
    assert await available(http) == before


async def test_longer_vectors_than_the_model_gives_are_a_400_and_charge_nothing(
    api: openai.AsyncOpenAI, http: httpx.AsyncClient, system: None, simulator: RunningSimulator
) -> None:
    before = await available(http)
    with pytest.raises(openai.BadRequestError) as refused:
        await api.embeddings.create(model="text-embedding-3-small", input="x", dimensions=2000)
    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "dimensions"
    assert simulator.sim.count() == 0
    assert await available(http) == before


async def test_an_outage_answers_502_then_503_with_nothing_charged(
    api: openai.AsyncOpenAI, http: httpx.AsyncClient, system: None, simulator: RunningSimulator
) -> None:
    before = await available(http)
    simulator.sim.add_fault("openai", status=503, times=-1, endpoint="embeddings")

    with pytest.raises(openai.APIStatusError) as failed:
        await api.embeddings.create(model="text-embedding-3-small", input="x")
    assert failed.value.status_code == 502  # retried, never answered by another provider's model
    assert simulator.sim.count("openai", "embeddings") == 2 and simulator.sim.count("gemini") == 0

    with pytest.raises(openai.APIStatusError) as cooling:
        await api.embeddings.create(model="text-embedding-3-small", input="x")
    assert cooling.value.status_code == 503 and int(cooling.value.response.headers["retry-after"]) >= 1
    assert simulator.sim.count("openai", "embeddings") == 2  # the open breaker spared the provider
    assert await settled(http, before) == before

    # Gemini's models are served all along: one provider's breaker is its own.
    reply = await api.embeddings.create(model="gemini-embedding-001", input="still here")
    assert reply.model_extra is not None and reply.model_extra["provider"] == "gemini"
