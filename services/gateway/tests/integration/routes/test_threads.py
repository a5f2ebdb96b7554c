"""Conversations over HTTP: /v1/threads and threaded chat, gateway → chat → credits → simulated
providers. What a provider was sent is read from the simulator's call log."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from pymongo import AsyncMongoClient

from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.simulator.server import RunningSimulator
from tests.support.chat_system import chat_services, chat_settings
from tests.support.client import balance
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def other(issuer: DevIssuer) -> dict[str, str]:
    return {"Authorization": "Bearer " + issuer.token(email="b@example.com", role="user")}


def say(text: str, thread_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text}], **extra}
    if thread_id is not None:
        body["thread_id"] = thread_id
    return body


def sent(simulator: RunningSimulator) -> list[tuple[str, str]]:
    """(role, text) of every message the last provider call was sent."""
    call = simulator.sim.calls.recent()[-1]
    return [(m["role"], m["text"]) for m in call["messages"]]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["request_id"] == response.headers["x-request-id"]
    return problem


async def new_thread(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/threads", json=body, headers=auth)
    assert response.status_code == 201, response.text
    thread: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/threads/{thread['thread_id']}"
    return thread


async def test_a_thread_keeps_its_context_turn_after_turn_and_its_cost(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        thread = await new_thread(client, auth, system="Answer in one line.")
        assert thread["title"] is None and thread["turns"] == 0
        charged = 0
        for n in range(3):
            response = await client.post("/v1/chat", json=say(f"question {n}", thread["thread_id"]), headers=auth)
            assert response.status_code == 200, response.text
            assert response.json()["thread_id"] == thread["thread_id"]
            charged += response.json()["credits"]
        assert sent(simulator) == [
            ("system", "Answer in one line."),
            ("user", "question 0"),
            ("model", "Simulated Gemini answer to: question 0"),
            ("user", "question 1"),
            ("model", "Simulated Gemini answer to: question 1"),
            ("user", "question 2"),
        ]
        response = await client.get(f"/v1/threads/{thread['thread_id']}", headers=auth)
        assert response.status_code == 200, response.text
        kept = response.json()
        assert [m["content"] for m in kept["messages"]][-2:] == ["question 2", "Simulated Gemini answer to: question 2"]
        assert len(kept["messages"]) == 6 and kept["next_cursor"] is None
        info = kept["thread"]
        assert (info["title"], info["turns"], info["messages"], info["credits"]) == ("question 0", 3, 6, charged)
        assert info["prompt_tokens"] > 0 and info["completion_tokens"] > 0 and info["cost_usd"] > 0
        assert (await balance(client, auth))["spent"] == charged
        await usage_recorded(gateway_settings, 3)


async def usage_recorded(settings: GatewaySettings, count: int) -> None:
    """The usage records of threaded answers are stored too (with the turns' flush or the next page)."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url.get_secret_value())  # type: ignore[union-attr]
    try:
        usage = mongo[settings.mongodb_database]["usage"]

        async def records() -> int:
            return sum(len(page["records"]) for page in await usage.find({}).to_list())

        await wait_until(records, lambda n: n == count, within=10)
    finally:
        await mongo.close()


async def test_another_user_cannot_read_write_list_or_delete_a_thread_and_nothing_moves(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    other: dict[str, str],
    gateway_settings: GatewaySettings,
    simulator: RunningSimulator,
) -> None:
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        thread = await new_thread(client, auth, title="mine")
        path = f"/v1/threads/{thread['thread_id']}"
        unknown = f"/v1/threads/{uuid.uuid4()}"
        before = await balance(client, other)
        for target in (path, unknown):  # another user's id is answered exactly like an unknown one
            assert_problem(await client.get(target, headers=other), 404)
            assert_problem(await client.patch(target, json={"title": "yours"}, headers=other), 404)
            assert_problem(await client.delete(target, headers=other), 404)
            thread_id = target.rsplit("/", 1)[1]
            assert_problem(await client.post("/v1/chat", json=say("hi", thread_id), headers=other), 404)
        assert (await client.get("/v1/threads", headers=other)).json()["threads"] == []
        assert simulator.sim.count() == 0  # refused before any provider call
        assert await balance(client, other) == before  # and before any credits were held
        mine = (await client.get("/v1/threads", headers=auth)).json()["threads"]
        assert [(t["thread_id"], t["title"]) for t in mine] == [(thread["thread_id"], "mine")]


async def test_threads_are_renamed_listed_newest_first_and_deleted_with_their_messages(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        ids = [(await new_thread(client, auth, title=f"t{n}"))["thread_id"] for n in range(3)]
        first = await client.get("/v1/threads", params={"limit": 2}, headers=auth)
        page = first.json()
        rest = (await client.get("/v1/threads", params={"cursor": page["next_cursor"]}, headers=auth)).json()
        assert [t["thread_id"] for t in page["threads"] + rest["threads"]] == ids[::-1]
        assert rest["next_cursor"] is None
        assert_problem(await client.get("/v1/threads", params={"cursor": "garbage"}, headers=auth), 422)

        renamed = await client.patch(f"/v1/threads/{ids[0]}", json={"title": "renamed"}, headers=auth)
        assert renamed.status_code == 200 and renamed.json()["title"] == "renamed"
        assert_problem(await client.patch(f"/v1/threads/{ids[0]}", json={}, headers=auth), 422)

        assert (await client.post("/v1/chat", json=say("remember me", ids[1]), headers=auth)).status_code == 200
        assert (await client.delete(f"/v1/threads/{ids[1]}", headers=auth)).status_code == 204
        assert_problem(await client.get(f"/v1/threads/{ids[1]}", headers=auth), 404)
        assert_problem(await client.post("/v1/chat", json=say("still there?", ids[1]), headers=auth), 404)
        assert_problem(await client.delete(f"/v1/threads/{ids[1]}", headers=auth), 404)


async def test_the_oldest_turns_are_dropped_to_fit_the_window_and_the_system_prompt_stays(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    # Estimated as for reservations (bytes + 8 per message + 8): the system prompt and a new question
    # take 43, each earlier turn 64 (a question and its answer), the answer 50; 250 leave room for two turns.
    price = {"per_request": 1, "max_tokens": 50, "context_window": 250}
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator, chat_price=price)):
        thread = await new_thread(client, auth, system="Be brief.")
        for n in range(4):
            response = await client.post("/v1/chat", json=say(f"question {n}", thread["thread_id"]), headers=auth)
            assert response.status_code == 200, response.text
        roles_texts = sent(simulator)
        assert roles_texts[0] == ("system", "Be brief.")
        assert roles_texts[-1] == ("user", "question 3")
        users = [text for role, text in roles_texts if role == "user"]
        assert users == ["question 1", "question 2", "question 3"]  # question 0's turn was dropped, whole
        assert ("model", "Simulated Gemini answer to: question 0") not in roles_texts

        too_long = say("x" * 400, thread["thread_id"])
        before = await balance(client, auth)
        calls = simulator.sim.count()
        problem = assert_problem(await client.post("/v1/chat", json=too_long, headers=auth), 422)
        assert "window" in problem["detail"]
        assert simulator.sim.count() == calls and await balance(client, auth) == before
        kept = (await client.get(f"/v1/threads/{thread['thread_id']}", headers=auth)).json()
        assert kept["thread"]["turns"] == 4  # the whole thread is kept; only what is sent is trimmed


async def test_a_threaded_request_of_only_system_messages_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        thread = await new_thread(client, auth)
        body = {"messages": [{"role": "system", "content": "just a prompt"}], "thread_id": thread["thread_id"]}
        assert_problem(await client.post("/v1/chat", json=body, headers=auth), 422)
        assert simulator.sim.count() == 0


async def test_streamed_and_openai_compatible_turns_are_kept_in_the_thread(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        thread_id = (await new_thread(client, auth))["thread_id"]
        streamed = await client.post("/v1/chat", json=say("streamed one", thread_id, stream=True), headers=auth)
        assert streamed.status_code == 200, streamed.text
        done = [line for line in streamed.text.splitlines() if line.startswith("data: ")][-1]
        assert json.loads(done.removeprefix("data: "))["thread_id"] == thread_id

        sdk = AsyncOpenAI(
            api_key=auth["Authorization"].removeprefix("Bearer "),
            base_url="http://gateway/v1",
            http_client=client,
            max_retries=0,
        )
        answer = await sdk.chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": "compatible two"}],
            extra_body={"thread_id": thread_id},
        )
        assert answer.model_extra and answer.model_extra["thread_id"] == thread_id
        assert sent(simulator) == [
            ("user", "streamed one"),
            ("model", "Simulated Gemini answer to: streamed one"),
            ("user", "compatible two"),
        ]
        kept = (await client.get(f"/v1/threads/{thread_id}", headers=auth)).json()
        assert kept["thread"]["turns"] == 2


async def test_the_prompt_cache_key_covers_the_thread_context(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        a, b = (await new_thread(client, auth))["thread_id"], (await new_thread(client, auth))["thread_id"]
        assert (await client.post("/v1/chat", json=say("about cats", a), headers=auth)).status_code == 200
        assert (await client.post("/v1/chat", json=say("about dogs", b), headers=auth)).status_code == 200
        calls = simulator.sim.count()
        # The same new message on two threads with different pasts: different contexts, no shared answer.
        for thread_id in (a, b):
            response = await client.post("/v1/chat", json=say("and then?", thread_id), headers=auth)
            assert response.status_code == 200 and response.json()["cached"] is False
        assert simulator.sim.count() == calls + 2


async def test_concurrent_turns_on_several_threads_are_all_kept_and_counted(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        ids = [(await new_thread(client, auth))["thread_id"] for _ in range(3)]
        bodies = [say(f"parallel {n}", ids[n % 3]) for n in range(12)]  # several turns of one thread at once
        responses = await asyncio.gather(*(client.post("/v1/chat", json=b, headers=auth) for b in bodies))
        assert [r.status_code for r in responses] == [200] * 12, [r.text for r in responses if r.status_code != 200]
        kept = [(await client.get(f"/v1/threads/{t}", headers=auth)).json() for t in ids]
        assert [k["thread"]["turns"] for k in kept] == [4, 4, 4]
        assert sorted(m["content"] for k in kept for m in k["messages"] if m["role"] == "user") == sorted(
            f"parallel {n}" for n in range(12)
        )
        assert sum(k["thread"]["credits"] for k in kept) == (await balance(client, auth))["spent"]


async def test_a_thread_deleted_while_its_answer_is_made_keeps_nothing_and_charges_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", latency_ms=1000)  # the answer takes a second
    async with chat_services(gateway_settings, chat_settings(gateway_settings, simulator)):
        thread_id = (await new_thread(client, auth))["thread_id"]
        before = await balance(client, auth)
        asking = asyncio.create_task(client.post("/v1/chat", json=say("slow one", thread_id), headers=auth))
        await wait_until(lambda: asyncio.sleep(0, simulator.sim.count()), lambda n: n == 1, within=10)
        assert (await client.delete(f"/v1/threads/{thread_id}", headers=auth)).status_code == 204
        assert_problem(await asking, 404)  # the answer came, but there is no thread to keep it in
        assert await balance(client, auth) == before  # so it is not charged
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(gateway_settings.mongodb_url.get_secret_value())  # type: ignore[union-attr]
        try:
            turns = mongo[gateway_settings.mongodb_database]["thread_turns"]
            assert await turns.count_documents({"threadId": thread_id}) == 0  # nor left behind
        finally:
            await mongo.close()
