"""Rate limits through the HTTP stack against the real Redis (and without it)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from chat.settings import ChatSettings
from common.redis_client import slot_of
from credits.settings import CreditsSettings
from devstack import free_port
from gateway.app import create_app
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.support.redis_cluster import ON_BOTH_REDIS
from tests.support.services import in_process

pytestmark = pytest.mark.integration

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def ask(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}]}


LIMITS = {
    "chat": {"user": "3/minute", "subscriber": "5/minute"},
    "images": {"user": "2/minute", "subscriber": "2/minute"},
}

Gateway = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def gateway(gateway_settings: GatewaySettings) -> Gateway:
    """A gateway with these settings changed, and a client for it."""

    @asynccontextmanager
    async def start(client: str = "127.0.0.1", **changes: object) -> AsyncIterator[httpx.AsyncClient]:
        app: FastAPI = create_app(
            GatewaySettings(**(gateway_settings.model_dump() | {"rate_limits": LIMITS} | changes))
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=(client, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
                yield http

    return start


@pytest.fixture
async def services(gateway_settings: GatewaySettings) -> AsyncIterator[None]:
    common = gateway_settings.model_dump(
        include={"amqp_url", "redis_url", "redis_cluster", "bus_namespace", "mongodb_url"}
    )
    credits = CreditsSettings(**common, mongodb_database=gateway_settings.mongodb_database, signup_credits=100)
    async with in_process("credits", credits), in_process("chat", ChatSettings(**common)):
        yield


def token(issuer: DevIssuer, email: str, role: str = "user") -> dict[str, str]:
    return {"Authorization": "Bearer " + issuer.token(email=email, role=role)}  # type: ignore[arg-type]


@ON_BOTH_REDIS
async def test_the_request_after_the_budget_is_429_with_retry_after(
    gateway: Gateway, issuer: DevIssuer, services: None
) -> None:
    user = token(issuer, "budget@example.com")
    async with gateway() as http:
        answers = [await http.post("/v1/chat", json=ask(f"q{i}"), headers=user) for i in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["ratelimit"].split(", ")[1].split(";")[1] for r in answers] == ["r=2", "r=1", "r=0", "r=0"]
        assert answers[0].headers["ratelimit-policy"] == '"ip";q=600;w=60, "chat";q=3;w=60'
        refused = answers[3]
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        problem = refused.json()
        assert (problem["status"], problem["limit"], problem["request_id"]) == (
            429,
            "chat",
            refused.headers["x-request-id"],
        )
        assert re.fullmatch(r'"ip";r=\d+;t=\d+, "chat";r=0;t=\d+', refused.headers["ratelimit"])
        # The refused request reached nothing: three answers, three credits.
        assert (await http.get("/v1/credits", headers=user)).json()["spent"] == 3


async def test_budgets_differ_by_role_and_by_user(gateway: Gateway, issuer: DevIssuer) -> None:
    subscriber = token(issuer, "sub@example.com", "subscriber")
    other = token(issuer, "other@example.com")
    async with gateway() as http:
        statuses = [(await http.post("/v1/chat", json=CHAT, headers=subscriber)).status_code for _ in range(6)]
        assert statuses.count(429) == 1 and statuses[-1] == 429  # 5 for a subscriber
        assert (await http.post("/v1/chat", json=CHAT, headers=other)).status_code != 429


async def test_chat_and_images_have_budgets_of_their_own(gateway: Gateway, issuer: DevIssuer) -> None:
    user = token(issuer, "both@example.com")
    async with gateway() as http:
        for _ in range(3):
            await http.post("/v1/chat", json=CHAT, headers=user)
        assert (await http.post("/v1/chat", json=CHAT, headers=user)).status_code == 429
        images = [(await http.post("/v1/images", json={"prompt": "a cat"}, headers=user)) for _ in range(3)]
        assert [r.status_code == 429 for r in images] == [False, False, True]
        assert images[2].json()["limit"] == "images"
        assert (await http.get("/v1/credits/history", headers=user)).status_code != 429  # reads: per IP only


async def test_before_authentication_the_client_ip_is_limited(gateway: Gateway) -> None:
    async with gateway(rate_limit_ip="5/minute") as http:
        statuses = [(await http.post("/v1/chat", json=CHAT)).status_code for _ in range(6)]
        assert statuses == [401] * 5 + [429]
        spoofed = await http.post("/v1/chat", json=CHAT, headers={"X-Forwarded-For": "203.0.113.9"})
        assert spoofed.status_code == 429  # no trusted proxy: the header changes nothing
    async with gateway(client="10.1.2.3", rate_limit_ip="5/minute") as http:
        assert (await http.post("/v1/chat", json=CHAT)).status_code == 401


@ON_BOTH_REDIS
async def test_with_redis_unreachable_the_gateway_serves_under_a_local_limiter(
    gateway: Gateway, issuer: DevIssuer, services: None
) -> None:
    user = token(issuer, "local@example.com")
    async with gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0") as http:
        statuses = [(await http.post("/v1/chat", json=ask(f"q{i}"), headers=user)).status_code for i in range(4)]
        assert statuses == [200, 200, 200, 429]
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["rate_limiter"] == "local" and ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["redis"] is False
        keyed = await http.post(
            "/v1/chat", json=CHAT, headers=token(issuer, "k@example.com") | {"Idempotency-Key": "k1"}
        )
        assert keyed.status_code == 503  # a key cannot be honoured without Redis: refused, not run unguarded


async def test_with_the_closed_policy_redis_down_refuses_limited_requests(gateway: Gateway, issuer: DevIssuer) -> None:
    changes = {"redis_url": f"redis://127.0.0.1:{free_port()}/0", "rate_limit_fallback": "closed"}
    async with gateway(**changes) as http:
        response = await http.post("/v1/chat", json=CHAT, headers=token(issuer, "closed@example.com"))
        assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["rate_limiter"] == "unavailable"


async def test_on_the_openai_routes_a_429_is_in_openai_shape(gateway: Gateway, issuer: DevIssuer) -> None:
    user = token(issuer, "sdk@example.com")
    body = {**ask("hi"), "model": "local-echo-1"}
    async with gateway() as http:
        for _ in range(3):
            await http.post("/v1/chat/completions", json=body, headers=user)
        refused = await http.post("/v1/chat/completions", json=body, headers=user)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        error = refused.json()["error"]
        assert (error["type"], error["code"], error["request_id"]) == (
            "rate_limit_error",
            "rate_limited",
            refused.headers["x-request-id"],
        )


@ON_BOTH_REDIS
async def test_over_the_ip_budget_a_known_user_is_not_counted(gateway: Gateway, issuer: DevIssuer) -> None:
    user = token(issuer, "ip-first@example.com")
    async with gateway(rate_limit_ip="2/minute") as http:
        first, second, third = [await http.post("/v1/chat", json=CHAT, headers=user) for _ in range(3)]
        assert [r.status_code == 429 for r in (first, second, third)] == [False, False, True]
        assert third.json()["limit"] == "ip"
        assert re.fullmatch(r'"ip";r=0;t=\d+', third.headers["ratelimit"])  # the user's budget was not looked at
    async with gateway(client="10.9.9.9") as http:  # same Redis, another address: the user spent 2 of 3
        fourth = await http.post("/v1/chat", json=CHAT, headers=user)
        assert fourth.status_code != 429 and '"chat";r=0' in fourth.headers["ratelimit"]


async def test_a_known_caller_is_counted_in_one_round_trip(
    gateway_app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    limiter = gateway_app.state.limiter
    calls: list[list[str]] = []
    check_all = limiter.check_all

    async def spy(checks):  # type: ignore[no-untyped-def]
        calls.append([budget.name for _, budget in checks])
        return await check_all(checks)

    limiter.check_all = spy
    for _ in range(2):
        response = await client.post("/v1/chat", json=CHAT, headers=auth)
        assert response.headers["ratelimit-policy"] == '"ip";q=600;w=60, "chat";q=100000;w=60'
    # First sight: the IP before the token is verified, then the user; then both at once.
    assert calls == [["ip"], ["chat"], ["ip", "chat"]]


@ON_BOTH_REDIS
async def test_a_known_callers_budgets_go_to_redis_in_one_script_call_per_hash_slot(
    gateway_app: FastAPI, client: httpx.AsyncClient, auth: dict[str, str], redis_cluster: bool
) -> None:
    """A single server takes the IP's and the user's budgets in one call (one round trip); a
    cluster, whose scripts may only name keys of one slot, in one call per slot."""
    limiter = gateway_app.state.limiter
    calls: list[list[str]] = []
    script = limiter._script

    async def spy(*, keys: list[str], args: list[object]) -> object:
        calls.append(keys)
        return await script(keys=keys, args=args)

    limiter._script = spy
    await client.post("/v1/chat", json=CHAT, headers=auth)  # first sight: the IP, then the user
    calls.clear()
    response = await client.post("/v1/chat", json=CHAT, headers=auth)
    assert response.headers["ratelimit-policy"] == '"ip";q=600;w=60, "chat";q=100000;w=60'
    keys = [key for call in calls for key in call]
    assert [k.split(":")[2] for k in keys] == ["ip", "chat"]
    if not redis_cluster:
        assert len(calls) == 1
    else:
        assert len(calls) == len({slot_of(k) for k in keys})
        assert all(len({slot_of(k) for k in call}) == 1 for call in calls)


async def test_a_client_cannot_name_its_own_ip_through_a_trusted_proxy(gateway: Gateway) -> None:
    """The attacker writes X-Forwarded-For itself, a new address per request; the ingress (the
    trusted peer) appends the address it really saw. Only that one may count."""
    async with gateway(client="10.9.0.2", forwarded_allow_ips="10.9.0.0/16", rate_limit_ip="5/minute") as http:
        statuses = [
            (await http.post("/v1/chat", json=CHAT, headers={"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.7"}))
            for i in range(6)
        ]
        assert [r.status_code for r in statuses] == [401] * 5 + [429]
        # Another real client behind the same ingress has a budget of its own.
        other = await http.post("/v1/chat", json=CHAT, headers={"X-Forwarded-For": "203.0.113.8"})
        assert other.status_code == 401


def test_any_peer_as_a_proxy_is_refused_outside_development(gateway_settings: GatewaySettings) -> None:
    with pytest.raises(ValueError, match="FORWARDED_ALLOW_IPS may not be"):
        GatewaySettings(
            **gateway_settings.model_dump()
            | {
                "environment": "production",
                "amqp_url": "amqp://svc:s3cr3t-Long@rabbit/",
                "mongodb_url": "mongodb://app:An0therOne@mongo/",
                "clerk_issuer": "https://clerk.example.com",
                "clerk_authorized_parties": ["https://app.example.com"],
                "forwarded_allow_ips": "*",
            }
        )
