"""POST /v1/chat through the real broker to an in-process chat consumer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chat.settings import ChatSettings
from common.bus import Bus, Topology
from common.telemetry import configure_tracing
from credits.settings import CreditsSettings
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.support.broker import queue_depth
from tests.support.services import in_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HELLO = {"messages": [{"role": "user", "content": "Hello there"}]}


@pytest.fixture
async def chat_queue(gateway_settings: GatewaySettings) -> AsyncIterator[Bus]:
    """The chat service's queue, declared but not consumed: messages stay there to be counted."""
    bus = Bus(
        url=gateway_settings.amqp_url.get_secret_value(),
        topology=Topology(gateway_settings.bus_namespace),
        service="chat",
    )
    await bus.connect()
    await bus.declare_service_queue(
        await bus.channel(prefetch=1), service="chat", max_attempts=gateway_settings.bus_max_attempts
    )
    yield bus
    await bus.close()


@pytest.fixture
async def chat_service(chat_queue: Bus, gateway_settings: GatewaySettings, mongodb_url: str) -> AsyncIterator[None]:
    """The chat and credits services' real wiring, in this process."""
    common = gateway_settings.model_dump(include={"amqp_url", "redis_url", "bus_namespace"})
    database = f"t_{gateway_settings.bus_namespace}"
    credits = CreditsSettings(**common, mongodb_url=mongodb_url, mongodb_database=database, signup_credits=1000)
    async with (
        in_process("credits", credits),
        in_process("chat", ChatSettings(**common, mongodb_url=mongodb_url, mongodb_database=database)),
    ):
        yield


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["request_id"] == response.headers["x-request-id"]
    return problem  # type: ignore[no-any-return]


async def test_chat_answers_and_echoes_the_request_id(
    client: httpx.AsyncClient, auth: dict[str, str], chat_service: None
) -> None:
    response = await client.post("/v1/chat", json=HELLO, headers=auth | {"X-Request-ID": "client-chosen-id-1"})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "client-chosen-id-1"
    body = response.json()
    assert body["provider"] == "local" and "Hello there" in body["message"]["content"]
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"] > 0


async def test_one_trace_covers_gateway_and_chat_spans(
    client: httpx.AsyncClient, auth: dict[str, str], chat_service: None
) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing(service="test", span_processors=[SimpleSpanProcessor(exporter)])
    response = await client.post("/v1/chat", json=HELLO, headers=auth)
    assert response.status_code == 200
    # The consumer's span ends just after it has replied: wait for it rather than race it.
    wanted = {"POST /v1/chat", "CompleteChat publish", "CompleteChat process"}

    async def finished() -> dict[str, Any]:
        return {s.name: s for s in exporter.get_finished_spans()}

    spans = await wait_until(finished, lambda found: wanted <= set(found), within=5)
    http, publish, process = spans["POST /v1/chat"], spans["CompleteChat publish"], spans["CompleteChat process"]
    assert http.context.trace_id == publish.context.trace_id == process.context.trace_id
    assert http.attributes is not None and http.attributes["aisaas.request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "bot", "content": "hi"}]}, "body.messages.0.role"),
        ({"messages": []}, "body.messages"),
        ({"messages": [{"role": "user", "content": ""}]}, "body.messages.0.content"),
        ({"messages": [{"role": "user", "content": "hi"}], "model": "bad model!"}, "body.model"),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": 3}, "body.temperature"),
        ({"messages": [{"role": "user", "content": "hi", "name": "x"}]}, "body.messages.0.name"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_publishes_nothing(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    chat_queue: Bus,
    gateway_settings: GatewaySettings,
    body: dict[str, object],
    field: str,
) -> None:
    problem = assert_problem(await client.post("/v1/chat", json=body, headers=auth), 422)
    assert field in [e["field"] for e in problem["errors"]]  # type: ignore[attr-defined]
    assert field in str(problem["detail"])
    assert await queue_depth(gateway_settings.amqp_url.get_secret_value(), chat_queue.topology.queue("chat")) == 0


async def test_good_input_does_reach_the_queue(
    client: httpx.AsyncClient, auth: dict[str, str], chat_queue: Bus, gateway_settings: GatewaySettings
) -> None:
    """The counterpart of the test above: the queue count does see a published request."""
    response = await client.post("/v1/chat", json=HELLO, headers=auth | {"X-Request-Timeout": "1"})
    assert_problem(response, 504)
    assert await queue_depth(gateway_settings.amqp_url.get_secret_value(), chat_queue.topology.queue("chat")) == 1


async def test_not_json_is_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert_problem(
        await client.post("/v1/chat", content=b"{nope", headers=auth | {"content-type": "application/json"}), 422
    )


async def test_oversize_body_is_413(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings
) -> None:
    big = {"messages": [{"role": "user", "content": "x" * (gateway_settings.max_body_bytes + 1)}]}
    assert_problem(await client.post("/v1/chat", json=big, headers=auth), 413)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(gateway_settings.max_body_bytes // 512 + 2):
            yield b" " * 512

    assert_problem(
        await client.post("/v1/chat", content=chunks(), headers=auth | {"content-type": "application/json"}), 413
    )


async def test_oversize_body_on_an_openai_route_is_413_in_openai_error_shape(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings
) -> None:
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * (gateway_settings.max_body_bytes + 1)}]}
    for path in ("/v1/chat/completions", "/v1/images/generations"):
        response = await client.post(path, json=big, headers=auth)
        assert response.status_code == 413 and response.headers["content-type"] == "application/json", path
        error = response.json()["error"]
        assert error["code"] == "payload_too_large" and error["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Basic YTpi", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
)
async def test_missing_or_malformed_token_is_401(client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.post("/v1/chat", json=HELLO, headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_expired_token_is_401(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    token = issuer.token(email="a@example.com", role="user", ttl_s=10, now=time.time() - 3600)
    problem = assert_problem(
        await client.post("/v1/chat", json=HELLO, headers={"Authorization": f"Bearer {token}"}), 401
    )
    assert problem["detail"] == "token expired"


async def test_identity_headers_from_the_client_are_ignored(client: httpx.AsyncClient, chat_service: None) -> None:
    response = await client.post(
        "/v1/chat", json=HELLO, headers={"X-User-Id": "admin", "X-User-Email": "root@example.com", "X-Role": "admin"}
    )
    assert_problem(response, 401)


async def test_bad_timeout_header_is_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for value in ("soon", "0", "0.5", "-1", "nan", "100000"):
        assert_problem(await client.post("/v1/chat", json=HELLO, headers=auth | {"X-Request-Timeout": value}), 422)


async def test_nobody_consuming_chat_is_503_at_once(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    started = time.monotonic()
    assert_problem(await client.post("/v1/chat", json=HELLO, headers=auth | {"X-Request-Timeout": "10"}), 503)
    assert time.monotonic() - started < 5


async def test_stalled_chat_is_504_within_the_deadline(
    client: httpx.AsyncClient, auth: dict[str, str], chat_queue: Bus
) -> None:
    started = time.monotonic()
    assert_problem(await client.post("/v1/chat", json=HELLO, headers=auth | {"X-Request-Timeout": "1"}), 504)
    assert time.monotonic() - started < 2.5


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"broker": True, "redis": True, "mongodb": True}
    assert ready.json()["rate_limiter"] == "redis"


async def test_unknown_route_is_a_problem_too(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404)


async def test_dev_jwks_verifies_the_dev_tokens(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    import jwt

    jwks = (await client.get("/.well-known/jwks.json")).json()
    key = jwt.PyJWKSet.from_dict(jwks).keys[0]
    claims = jwt.decode(
        issuer.token(email="a@example.com", role="user"), key.key, algorithms=["RS256"], issuer=issuer.issuer
    )
    assert claims["email"] == "a@example.com" and key.key_id == issuer.kid


async def test_concurrent_requests_all_get_their_own_answer(
    client: httpx.AsyncClient, auth: dict[str, str], chat_service: None
) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/v1/chat", json={"messages": [{"role": "user", "content": f"question {i}"}]}, headers=auth)
            for i in range(30)
        )
    )
    assert all(r.status_code == 200 for r in responses)
    assert all(f"question {i}" in r.json()["message"]["content"] for i, r in enumerate(responses))
