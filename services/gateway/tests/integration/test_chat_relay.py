"""Streaming chat over HTTP (server-sent events) on a real socket: tokens as they arrive, and
credits settled on what reached the client, also when it leaves early."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.simulator.server import RunningSimulator
from tests.support.chat_system import chat_services, chat_settings, credits_settings, served
from tests.support.client import balance, poll

pytestmark = pytest.mark.integration

TEN_WORDS = "one two three four five six seven eight nine ten"
# One credit per token (prompt and answer), so the charge shows how much was delivered.
PER_TOKEN = {"per_request": 0, "per_1k_tokens": 1000, "max_tokens": 60}


@pytest.fixture
async def gateway_url(gateway_app: FastAPI) -> AsyncIterator[str]:
    async with served(gateway_app) as url:
        yield url


def question(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], "stream": True}


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, object], float]]:
    """(event name, data, arrival time) of each server-sent event, as it arrives."""
    name = "message"
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: ")), time.monotonic()
            name = "message"


async def test_tokens_arrive_as_they_are_produced(
    gateway_url: str, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", stream_delay_ms=150)
    async with (
        chat_services(gateway_settings, chat_settings(gateway_settings, simulator)),
        httpx.AsyncClient(base_url=gateway_url, timeout=20) as http,
        http.stream("POST", "/v1/chat", json=question("Name a prime"), headers=auth) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        received = [event async for event in events(response)]
        chunks = [(data, at) for name, data, at in received if name == "chunk"]
        (done_name, done, done_at) = received[-1]
        assert done_name == "done" and len(chunks) == 7
        text = "".join(str(data["delta"]) for data, _ in chunks)
        assert text == "Simulated Gemini answer to: Name a prime" == done["message"]["content"]  # type: ignore[index]
        assert chunks[0][1] < done_at - 0.5  # the first token came long before the end: 6 more at 150 ms each
        assert chunks[0][0]["provider"] == "gemini" and done["usage"]["completion_tokens"] == 7  # type: ignore[index]
        assert (await balance(http, auth))["spent"] == done["credits"] == 1


async def test_a_client_that_leaves_mid_stream_pays_for_what_it_received_only(
    gateway_url: str, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", stream_delay_ms=250)
    settings = chat_settings(gateway_settings, simulator, chat_price=PER_TOKEN)
    credits = credits_settings(gateway_settings, signup_credits=1000)  # each request holds its worst case: 125
    async with (
        chat_services(gateway_settings, settings, credits=credits),
        httpx.AsyncClient(base_url=gateway_url, timeout=20) as http,
    ):
        async with http.stream("POST", "/v1/chat", json=question(TEN_WORDS), headers=auth) as response:
            received = 0
            async for name, _, _ in events(response):
                received += name == "chunk"
                if received == 3:
                    break  # leave: the connection closes here
        final = await poll(lambda: balance(http, auth), lambda b: b["reserved"] == 0, within=10, interval=0.05)
        prompt_tokens, whole_answer = 10, 14
        assert 10 + 3 <= final["spent"] < prompt_tokens + whole_answer, final
        assert final["available"] + final["spent"] == 1000
        # The broken-off answer was not cached: asking again goes to the provider.
        calls = simulator.sim.count()
        again = await http.post("/v1/chat", json={"messages": [{"role": "user", "content": TEN_WORDS}]}, headers=auth)
        assert again.json()["cached"] is False and simulator.sim.count() == calls + 1


async def test_a_client_that_leaves_before_the_first_token_pays_nothing(
    gateway_url: str, auth: dict[str, str], gateway_settings: GatewaySettings, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", latency_ms=800)
    async with (
        chat_services(gateway_settings, chat_settings(gateway_settings, simulator)),
        httpx.AsyncClient(base_url=gateway_url, timeout=20) as http,
    ):
        assert (await balance(http, auth))["available"] == 100
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/v1/chat", json=question("too slow"), headers=auth, timeout=0.3)
        await poll(lambda: simulator.sim.count(), lambda n: n == 1, within=5, interval=0.05)
        final = await poll(
            lambda: balance(http, auth), lambda b: b["reserved"] == 0 and b["available"] == 100, within=10
        )
        assert final == {"available": 100, "reserved": 0, "spent": 0, "granted": 100}
        history = (await http.get("/v1/credits/history", headers=auth)).json()["entries"]
        assert [e["kind"] for e in history][:2] == ["release", "reserve"]


async def test_a_client_that_stops_reading_then_reads_pays_for_all_it_gets(
    gateway_settings: GatewaySettings, auth: dict[str, str], simulator: RunningSimulator
) -> None:
    """The attack: ask for a long streamed answer, stop reading (the chunks pile up in the gateway and
    the socket buffers) until the chat service has settled, then read everything that still comes.
    Whatever reaches the client was charged: the chat service charges what it sent when no report
    comes in time, and the gateway cuts the stalled client off and relays nothing past its report.
    Small socket buffers stand in for an answer longer than loopback's (megabytes)."""
    simulator.sim.add_fault("gemini", stream_delay_ms=0)
    words = 2000
    settings = gateway_settings.model_copy(update={"max_body_bytes": 64 * 1024, "stream_write_timeout_s": 0.5})
    chat = chat_settings(
        gateway_settings,
        simulator,
        chat_price={"per_request": 0, "per_1k_tokens": 1000, "max_tokens": 100_000},
        chat_stream_ack_timeout_s=1.0,
    )
    app = create_app(settings)
    # A small receive window, so that a client that stops reading stalls the gateway's writes soon.
    stalling = httpx.AsyncHTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    async with (
        app.router.lifespan_context(app),
        served(app, send_buffer=4096) as url,
        chat_services(gateway_settings, chat, credits=credits_settings(gateway_settings, signup_credits=1_000_000)),
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        httpx.AsyncClient(base_url=url, timeout=30, transport=stalling) as attacker,
    ):
        async with attacker.stream("POST", "/v1/chat", json=question("w " * words), headers=auth) as response:
            assert response.status_code == 200
            # Stop reading until the ledger has settled the request (committed or released).
            settled = await poll(lambda: balance(http, auth), lambda b: b["reserved"] == 0, within=60, interval=0.1)
            received: list[tuple[str, dict[str, object]]] = []
            with contextlib.suppress(httpx.RemoteProtocolError):  # a client cut off gets no end of the body
                async for name, data, _ in events(response):
                    received.append((name, data))
        text = "".join(str(data["delta"]) for name, data in received if name == "chunk")
        got = len(text.split())
        assert got > 100, "the client got too little for the test to say anything"
        prompt_tokens = words
        assert settled["spent"] - prompt_tokens >= got, f"{got} words received, balance {settled}"
        assert settled["available"] + settled["spent"] == 1_000_000
