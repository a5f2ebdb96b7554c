"""Idempotency-Key through the HTTP stack, with the real chat and credits services: a retry
is answered from the first response and charged once."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from chat.settings import ChatSettings
from common.redis_client import RedisClient
from credits.settings import CreditsSettings
from gateway.app import create_app
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.support.redis_cluster import ON_BOTH_REDIS
from tests.support.services import in_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

# A fresh answer every time (no prompt cache), so a request run twice would be charged twice.
FRESH = {"Cache-Control": "no-cache"}
Services = Callable[..., AbstractAsyncContextManager[None]]


def ask(text: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def services(gateway_settings: GatewaySettings) -> Services:
    @asynccontextmanager
    async def start(latency_s: float = 0.0) -> AsyncIterator[None]:
        common = gateway_settings.model_dump(
            include={"amqp_url", "redis_url", "redis_cluster", "bus_namespace", "mongodb_url"}
        )
        credits = CreditsSettings(**common, mongodb_database=gateway_settings.mongodb_database, signup_credits=50)
        chat = ChatSettings(**common, local_latency_s=latency_s, bus_prefetch=32)
        async with in_process("credits", credits), in_process("chat", chat):
            yield

    return start


def user(issuer: DevIssuer, email: str = "idem@example.com") -> dict[str, str]:
    return {"Authorization": "Bearer " + issuer.token(email=email, role="user")} | FRESH


async def balance(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, int]:
    response = await client.get("/v1/credits", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def spent(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await balance(client, headers))["spent"]


@ON_BOTH_REDIS
async def test_a_retried_post_gets_the_same_response_and_is_charged_once(
    client: httpx.AsyncClient, issuer: DevIssuer, services: Services
) -> None:
    headers = user(issuer) | {"Idempotency-Key": "retry-1"}
    async with services():
        first = await client.post("/v1/chat", json=ask("hello"), headers=headers)
        retry = await client.post("/v1/chat", json=ask("hello"), headers=headers)
        assert first.status_code == retry.status_code == 200, first.text
        assert retry.content == first.content and retry.json()["id"] == first.json()["id"]
        assert retry.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
        assert retry.headers["x-request-id"] != first.headers["x-request-id"]
        assert await spent(client, headers) == 1
        # Without the key the same request is new work: this is what the key saved.
        assert (await client.post("/v1/chat", json=ask("hello"), headers=user(issuer))).json()["id"] != first.json()[
            "id"
        ]
        assert await spent(client, headers) == 2


async def test_the_same_key_with_another_body_is_409_and_runs_nothing(
    client: httpx.AsyncClient, issuer: DevIssuer, services: Services
) -> None:
    headers = user(issuer) | {"Idempotency-Key": "retry-2"}
    async with services():
        assert (await client.post("/v1/chat", json=ask("one thing"), headers=headers)).status_code == 200
        other = await client.post("/v1/chat", json=ask("another thing"), headers=headers)
        assert other.status_code == 409 and other.headers["content-type"] == "application/problem+json"
        assert "different request" in other.json()["detail"]
        same_json_other_spacing = b'{"messages":[{"content":"one thing","role":"user"}]}'
        replay = await client.post(
            "/v1/chat", content=same_json_other_spacing, headers=headers | {"content-type": "application/json"}
        )
        assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
        # A retry is held to what its route accepts: an X-Request-Timeout out of bounds is refused, not replayed.
        refused = await client.post("/v1/chat", json=ask("one thing"), headers=headers | {"X-Request-Timeout": "121"})
        assert refused.status_code == 422 and "idempotent-replayed" not in refused.headers
        assert await spent(client, headers) == 1


@ON_BOTH_REDIS
async def test_concurrent_duplicates_wait_for_the_first_and_are_charged_once(
    client: httpx.AsyncClient, issuer: DevIssuer, services: Services
) -> None:
    headers = user(issuer) | {"Idempotency-Key": "burst-1"}
    async with services(latency_s=0.5):
        responses = await asyncio.gather(
            *(client.post("/v1/chat", json=ask("at once"), headers=headers) for _ in range(10))
        )
        assert [r.status_code for r in responses] == [200] * 10
        assert len({r.content for r in responses}) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
        assert await spent(client, headers) == 1


async def test_a_duplicate_that_cannot_wait_long_enough_gets_409(
    client: httpx.AsyncClient, issuer: DevIssuer, services: Services
) -> None:
    headers = user(issuer) | {"Idempotency-Key": "slow-1"}
    async with services(latency_s=3.0):
        first = asyncio.create_task(client.post("/v1/chat", json=ask("slow"), headers=headers))
        await wait_until(lambda: balance(client, headers), lambda b: b["reserved"] == 1, within=10)  # it runs
        impatient = await client.post("/v1/chat", json=ask("slow"), headers=headers | {"X-Request-Timeout": "1"})
        assert impatient.status_code == 409 and impatient.headers["retry-after"] == "1"
        assert (await first).status_code == 200
        assert await spent(client, headers) == 1


async def test_a_refused_request_frees_its_key_for_a_corrected_retry(
    client: httpx.AsyncClient, issuer: DevIssuer, services: Services
) -> None:
    headers = user(issuer) | {"Idempotency-Key": "fix-1"}
    async with services():
        bad = await client.post("/v1/chat", json=ask("x", temperature=9), headers=headers)
        assert bad.status_code == 422
        good = await client.post("/v1/chat", json=ask("x", temperature=1), headers=headers)
        assert good.status_code == 200 and "idempotent-replayed" not in good.headers


async def test_keys_belong_to_their_user(client: httpx.AsyncClient, issuer: DevIssuer, services: Services) -> None:
    alice = user(issuer, "alice@example.com") | {"Idempotency-Key": "shared"}
    bob = user(issuer, "bob@example.com") | {"Idempotency-Key": "shared"}
    async with services():
        a = await client.post("/v1/chat", json=ask("same"), headers=alice)
        b = await client.post("/v1/chat", json=ask("same"), headers=bob)
        assert a.status_code == b.status_code == 200
        assert a.json()["id"] != b.json()["id"] and "idempotent-replayed" not in b.headers
        assert await spent(client, alice) == await spent(client, bob) == 1


async def test_streamed_and_openai_style_answers_are_replayed_too(
    client: httpx.AsyncClient, issuer: DevIssuer, services: Services
) -> None:
    headers = user(issuer)
    async with services():
        stream = headers | {"Idempotency-Key": "stream-1"}
        first = await client.post("/v1/chat", json=ask("stream me", stream=True), headers=stream)
        retry = await client.post("/v1/chat", json=ask("stream me", stream=True), headers=stream)
        assert first.headers["content-type"].startswith("text/event-stream") and b"event: done" in first.content
        assert retry.content == first.content and retry.headers["content-type"] == first.headers["content-type"]
        openai = headers | {"Idempotency-Key": "openai-1"}
        body = ask("compatible", model="local-echo-1")
        first = await client.post("/v1/chat/completions", json=body, headers=openai)
        retry = await client.post("/v1/chat/completions", json=body, headers=openai)
        assert first.status_code == 200 and retry.json()["id"] == first.json()["id"]
        assert await spent(client, headers) == 2


async def test_a_malformed_key_is_400(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    response = await client.post("/v1/chat", json=ask("x"), headers=user(issuer) | {"Idempotency-Key": "k" * 256})
    assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"


@ON_BOTH_REDIS
async def test_one_user_cannot_fill_redis_with_kept_responses(
    gateway_settings: GatewaySettings, issuer: DevIssuer, services: Services, redis: RedisClient
) -> None:
    """The attacker sends request after request, each with a new Idempotency-Key: what its kept
    responses hold stays within its budget; past it new keys are refused before any work, while
    a retry of a kept key is still answered from the first response."""
    budget = 64 * 1024
    settings = gateway_settings.model_copy(update={"idempotency_max_bytes_per_user": budget})
    app = create_app(settings)
    headers = user(issuer, "hoarder@example.com")
    async with (
        services(),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        padding = "x" * 2000  # a long prompt, echoed back by the local model: a ~2 KB response
        statuses = []
        for i in range(50):
            response = await client.post(
                "/v1/chat", json=ask(f"{padding} {i}"), headers=headers | {"Idempotency-Key": f"k{i}"}
            )
            statuses.append(response.status_code)
        accepted = statuses.count(200)
        assert 10 < accepted < 50 and statuses == [200] * accepted + [429] * (50 - accepted), statuses
        refused = await client.post("/v1/chat", json=ask("more"), headers=headers | {"Idempotency-Key": "new"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        store = app.state.idempotency
        kept = int(await redis.get(store.usage(store.record(_subject(headers), "k0"))) or 0)
        assert kept <= budget + 4096, kept  # the budget, give or take one response
        charged = await spent(client, headers)
        assert charged == accepted  # the refused ones ran nothing
        retry = await client.post("/v1/chat", json=ask(f"{padding} 0"), headers=headers | {"Idempotency-Key": "k0"})
        assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
        assert await spent(client, headers) == charged
        assert (await client.post("/v1/chat", json=ask("no key"), headers=headers)).status_code == 200


def _subject(headers: dict[str, str]) -> str:
    token = headers["Authorization"].removeprefix("Bearer ")
    return str(json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["sub"])
