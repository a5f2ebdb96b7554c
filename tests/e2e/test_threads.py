"""A conversation kept across turns and restarts, with every service a real process and the
providers replaced by the simulator: what the provider was sent is read from its call log
(`/_sim/calls`, `recent`)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from devstack import Stack
from tests.simulator.server import RunningSimulator
from tests.support.client import balance, bearer, poll

pytestmark = [pytest.mark.e2e, pytest.mark.provider_simulator]

# Estimated as for reservations (bytes + 8 per message + 8): a new question takes 26, each earlier
# turn here 64 (its question and the simulator's answer), the answer 50: 380 hold four earlier turns.
WINDOW = {"per_request": 1, "max_tokens": 50, "context_window": 380}


def sent_to_provider(simulator: RunningSimulator) -> list[tuple[str, str]]:
    """(role, text) of each message of the last chat call, as the simulator's control API shows it."""
    calls = httpx.get(simulator.url + "/_sim/calls", timeout=10).json()
    chat_calls = [c for c in calls["recent"] if c.get("messages") is not None]
    return [(m["role"], m["text"]) for m in chat_calls[-1]["messages"]]


def ask(http: httpx.Client, thread_id: str, text: str) -> httpx.Response:
    return http.post("/v1/chat", json={"messages": [{"role": "user", "content": text}], "thread_id": thread_id})


@pytest.mark.stack_env(CHAT_PRICE=json.dumps(WINDOW))
def test_a_thread_keeps_its_context_over_five_turns_and_restarts_trims_to_the_window_and_stays_private(
    stack: Stack, simulator: RunningSimulator
) -> None:
    owner = bearer(stack, "threads-owner@example.com")
    with httpx.Client(base_url=stack.gateway_url, headers=owner, timeout=30) as http:
        created = http.post("/v1/threads", json={})
        assert created.status_code == 201, created.text
        thread_id = created.json()["thread_id"]
        for n in range(5):
            if n == 2:  # the conversation lives in MongoDB, not in any process
                stack.processes["gateway"].stop()
                stack.processes["chat"].stop()
                stack.start_service("chat")
                stack.start_service("gateway")
            response = ask(http, thread_id, f"question {n}")
            assert response.status_code == 200, response.text
        users = [text for role, text in sent_to_provider(simulator) if role == "user"]
        assert users == [f"question {n}" for n in range(5)]  # the fifth turn saw the four before it
        assert ("model", "Simulated Gemini answer to: question 3") in sent_to_provider(simulator)

        assert ask(http, thread_id, "question 5").status_code == 200
        users = [text for role, text in sent_to_provider(simulator) if role == "user"]
        assert users == [f"question {n}" for n in range(1, 6)]  # over the window: the oldest turn left out

        kept = http.get(f"/v1/threads/{thread_id}").json()
        assert kept["thread"]["turns"] == 6 and kept["thread"]["title"] == "question 0"
        assert [m["content"] for m in kept["messages"]][:2] == ["question 0", "Simulated Gemini answer to: question 0"]

    intruder = bearer(stack, "threads-intruder@example.com")
    with httpx.Client(base_url=stack.gateway_url, headers=intruder, timeout=30) as http:
        calls = httpx.get(simulator.url + "/_sim/calls", timeout=10).json()["total"]
        for response in (
            http.get(f"/v1/threads/{thread_id}"),
            ask(http, thread_id, "what did they say?"),
            http.patch(f"/v1/threads/{thread_id}", json={"title": "mine"}),
            http.delete(f"/v1/threads/{thread_id}"),
        ):
            assert response.status_code == 404, response.text
            assert response.headers["content-type"] == "application/problem+json"
        assert http.get("/v1/threads").json()["threads"] == []
        assert httpx.get(simulator.url + "/_sim/calls", timeout=10).json()["total"] == calls
        assert http.get("/v1/credits").json()["spent"] == 0


def owner_of_the_thread(stack: Stack, names: tuple[str, ...]) -> str:
    """The chat replica RabbitMQ made the user's partition's active consumer: the one that loaded the partition."""
    owners = [
        n
        for n in names
        if any(line.get("event") == "thread partition loaded" for line in stack.processes[n].json_lines())
    ]
    assert len(owners) == 1, owners
    return owners[0]


@pytest.mark.stack_env(SIGNUP_CREDITS="1000", LOCAL_LATENCY_S="0.05", CHAT_THREAD_CHECKPOINT_S="3600")
async def test_the_other_chat_replica_takes_a_users_threads_over_when_their_owner_is_killed_under_load(
    stack: Stack,
) -> None:
    """The owner never checkpoints here: the heir counts every turn from the log's pages."""
    stack.start_service("chat", replica="chat-2")
    user = bearer(stack, "thread-takeover@example.com") | {"X-Request-Timeout": "25"}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60, limits=limits) as http:
        thread_id = (await http.post("/v1/threads", json={}, headers=user)).json()["thread_id"]
        body = {"messages": [{"role": "user", "content": "first"}], "thread_id": thread_id}
        assert (await http.post("/v1/chat", json=body, headers=user)).status_code == 200
        owner = owner_of_the_thread(stack, ("chat", "chat-2"))
        requests = [
            asyncio.create_task(
                http.post(
                    "/v1/chat",
                    json={"messages": [{"role": "user", "content": f"q{i}"}], "thread_id": thread_id},
                    headers=user,
                )
            )
            for i in range(60)
        ]
        await poll(lambda: sum(r.done() for r in requests), lambda n: n >= 15, within=30, interval=0.02)
        stack.processes[owner].kill()  # turns written, counted in memory only, and some in hand
        responses = await asyncio.gather(*requests)
        assert [r.status_code for r in responses] == [200] * 60, [r.text for r in responses if r.status_code != 200][:3]
        heir = "chat-2" if owner == "chat" else "chat"
        thread = (await http.get(f"/v1/threads/{thread_id}", params={"limit": 500}, headers=user)).json()
        assert owner_of_the_thread(stack, (heir,)) == heir
        kept = [m["content"] for m in thread["messages"] if m["role"] == "user"]
        assert sorted(kept) == sorted(["first", *(f"q{i}" for i in range(60))])  # each request kept once
        spent = (await poll(lambda: balance(http, user), lambda b: b["reserved"] == 0, within=20))["spent"]
        info = thread["thread"]
        assert (info["turns"], info["messages"], info["credits"]) == (61, 122, spent)
