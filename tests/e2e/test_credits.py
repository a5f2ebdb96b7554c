"""Credits through the whole system: concurrency, and crashes between reserve and commit."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from devstack import Stack
from tests.support.client import balance, bearer, chat_body, poll

pytestmark = pytest.mark.e2e


def client(stack: Stack) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    return httpx.AsyncClient(base_url=stack.gateway_url, timeout=60, limits=limits)


async def reconcile(http: httpx.AsyncClient, stack: Stack) -> dict[str, object]:
    response = await http.post("/v1/admin/reconcile", headers=bearer(stack, "ops@example.com", "admin"))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.stack_env(SIGNUP_CREDITS="50", BUS_PREFETCH="64")
async def test_200_simultaneous_requests_with_credits_for_50(stack: Stack) -> None:
    user = bearer(stack, "busy@example.com")
    async with client(stack) as http:
        assert await balance(http, user) == {"available": 50, "reserved": 0, "spent": 0, "granted": 50}
        responses = await asyncio.gather(
            *(http.post("/v1/chat", json=chat_body(f"q{i}"), headers=user) for i in range(200))
        )
        statuses = sorted(r.status_code for r in responses)
        odd = [r.text for r in responses if r.status_code not in (200, 402)][:3]
        assert statuses.count(200) == 50 and statuses.count(402) == 150, (Counter(statuses), odd)
        refused = next(r for r in responses if r.status_code == 402)
        problem = refused.json()
        assert refused.headers["content-type"] == "application/problem+json"
        assert (problem["balance"], problem["price"]) == (0, 1) and problem["request_id"] == refused.headers[
            "x-request-id"
        ]
        final = await poll(lambda: balance(http, user), lambda b: b["reserved"] == 0, within=10)
        assert final == {"available": 0, "reserved": 0, "spent": 50, "granted": 50}
        assert (await reconcile(http, stack))["drift"] == []


@pytest.mark.stack_env(LOCAL_LATENCY_S="30", RESERVATION_TTL_S="3", SWEEP_INTERVAL_S="0.2", SIGNUP_CREDITS="10")
async def test_chat_killed_between_reserve_and_commit_gets_its_credits_back_after_the_ttl(stack: Stack) -> None:
    user = bearer(stack, "crash@example.com")
    async with client(stack) as http:
        assert (await balance(http, user))["available"] == 10
        request = asyncio.create_task(
            http.post("/v1/chat", json=chat_body("slow"), headers=user | {"X-Request-Timeout": "20"})
        )
        await poll(lambda: balance(http, user), lambda b: b["reserved"] == 1, within=10)
        stack.processes["chat"].kill()
        killed_at = time.monotonic()
        restored = await poll(lambda: balance(http, user), lambda b: b["reserved"] == 0, within=15)
        assert restored == {"available": 10, "reserved": 0, "spent": 0, "granted": 10}
        assert time.monotonic() - killed_at < 10
        assert (await request).status_code == 504
        history = (await http.get("/v1/credits/history", headers=user)).json()["entries"]
        assert [e["kind"] for e in history][:2] == ["expire", "reserve"]
        assert (await reconcile(http, stack))["drift"] == []


@pytest.mark.stack_env(SIGNUP_CREDITS="1000", LOCAL_LATENCY_S="0.05")
async def test_credits_service_killed_under_load_loses_and_doubles_nothing(stack: Stack) -> None:
    user = bearer(stack, "load@example.com")
    async with client(stack) as http:
        assert (await balance(http, user))["available"] == 1000
        headers = user | {"X-Request-Timeout": "60"}
        requests = [
            asyncio.create_task(http.post("/v1/chat", json=chat_body(f"load {i}"), headers=headers)) for i in range(80)
        ]
        await poll(lambda: sum(r.done() for r in requests), lambda n: n >= 10, within=30, interval=0.02)
        stack.processes["credits"].kill()
        stack.start_service("credits")
        responses = await asyncio.gather(*requests)
        statuses = [r.status_code for r in responses]
        assert all(s == 200 for s in statuses), statuses
        final = await poll(lambda: balance(http, user), lambda b: b["reserved"] == 0, within=20)
        assert final == {"available": 1000 - 80, "reserved": 0, "spent": 80, "granted": 1000}
        assert (await reconcile(http, stack))["drift"] == []


def owner_of_the_ledger(stack: Stack, names: tuple[str, ...]) -> str:
    """The credits replica RabbitMQ made the partition's active consumer: the one that loaded it."""
    owners = [
        n
        for n in names
        if any(line.get("event") == "ledger partition loaded" for line in stack.processes[n].json_lines())
    ]
    assert len(owners) == 1, owners
    return owners[0]


@pytest.mark.stack_env(
    SIGNUP_CREDITS="1000", LOCAL_LATENCY_S="0.05", SWEEP_INTERVAL_S="0.5", CHECKPOINT_INTERVAL_S="0.3"
)
async def test_the_other_replica_takes_over_when_the_owner_is_killed_under_load(stack: Stack) -> None:
    stack.start_service("credits", replica="credits-2")
    users = [bearer(stack, f"takeover{i}@example.com") for i in range(4)]
    async with client(stack) as http:
        for user in users:
            assert (await balance(http, user))["available"] == 1000
        owner = owner_of_the_ledger(stack, ("credits", "credits-2"))
        headers = [user | {"X-Request-Timeout": "60"} for user in users]
        requests = [
            asyncio.create_task(http.post("/v1/chat", json=chat_body(f"takeover {i}"), headers=headers[i % 4]))
            for i in range(120)
        ]
        await poll(lambda: sum(r.done() for r in requests), lambda n: n >= 20, within=30, interval=0.02)
        stack.processes[owner].kill()  # mid-batch, with requests in every stage
        responses = await asyncio.gather(*requests)
        assert [r.status_code for r in responses] == [200] * 120, [r.text for r in responses if r.status_code != 200][
            :3
        ]
        survivor = "credits-2" if owner == "credits" else "credits"
        assert owner_of_the_ledger(stack, (survivor,)) == survivor
        for user in users:
            final = await poll(lambda user=user: balance(http, user), lambda b: b["reserved"] == 0, within=20)
            assert final == {"available": 1000 - 30, "reserved": 0, "spent": 30, "granted": 1000}
        assert (await reconcile(http, stack))["drift"] == []


@pytest.mark.stack_env(SIGNUP_CREDITS="1000", LOCAL_LATENCY_S="0.02", BUS_PREFETCH="64")
async def test_credits_killed_mid_batch_loses_and_doubles_nothing(stack: Stack) -> None:
    """Many operations per page: a kill lands between a batch's operations arriving, its page
    being written and its answers going out. The restarted service replays or redoes each."""
    users = [bearer(stack, f"batch{i}@example.com") for i in range(5)]
    async with client(stack) as http:
        for user in users:
            assert (await balance(http, user))["available"] == 1000
        requests = [
            asyncio.create_task(
                http.post("/v1/chat", json=chat_body(f"batch {i}"), headers=users[i % 5] | {"X-Request-Timeout": "60"})
            )
            for i in range(200)
        ]
        await poll(lambda: sum(r.done() for r in requests), lambda n: n >= 40, within=30, interval=0.01)
        stack.processes["credits"].kill()
        stack.start_service("credits")
        responses = await asyncio.gather(*requests)
        assert [r.status_code for r in responses] == [200] * 200, [r.text for r in responses if r.status_code != 200][
            :3
        ]
        for user in users:
            final = await poll(lambda user=user: balance(http, user), lambda b: b["reserved"] == 0, within=20)
            assert final == {"available": 1000 - 40, "reserved": 0, "spent": 40, "granted": 1000}
        assert (await reconcile(http, stack))["drift"] == []
