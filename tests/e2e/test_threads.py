"""A conversation kept across turns and restarts, with every service a real process and the
providers replaced by the simulator: what the provider was sent is read from its call log
(`/_sim/calls`, `recent`)."""

from __future__ import annotations

import json

import httpx
import pytest

from devstack import Stack
from tests.simulator.server import RunningSimulator
from tests.support.client import bearer

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
