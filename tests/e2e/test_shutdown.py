"""SIGTERM, as an orchestrator sends it: a service stops taking work, finishes what it holds
within SHUTDOWN_GRACE_S and exits; nothing in flight is lost."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from devstack import Stack
from gateway.auth.dev_issuer import DevIssuer
from tests.simulator.server import RunningSimulator

pytestmark = [pytest.mark.e2e, pytest.mark.provider_simulator]

LATENCY_MS = 1500  # each provider answer takes this long: long enough to signal a request in flight


def bearer(stack: Stack) -> dict[str, str]:
    issuer = DevIssuer(issuer="urn:aisaas:dev-issuer", key_file=stack.data_dir / "dev-issuer-key.pem")
    return {"Authorization": "Bearer " + issuer.token(email="shutdown@example.com", role="user")}


async def provider_called(simulator: RunningSimulator, *, at_least: int, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while simulator.sim.calls.snapshot()["total"] < at_least:
        assert time.monotonic() < deadline, "the request never reached the provider"
        await asyncio.sleep(0.02)


async def exited(stack: Stack, name: str, *, within: float) -> int:
    process = stack.processes[name]
    deadline = time.monotonic() + within
    while process.running:
        assert time.monotonic() < deadline, f"{name} still running {within}s after SIGTERM"
        await asyncio.sleep(0.05)
    return process._proc.returncode  # type: ignore[union-attr]


async def test_a_chat_replica_asked_to_stop_finishes_the_request_it_holds(
    stack: Stack, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", latency_ms=LATENCY_MS)
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=bearer(stack), timeout=30) as http:
        request = asyncio.create_task(
            http.post("/v1/chat", json={"messages": [{"role": "user", "content": "in flight"}]})
        )
        await provider_called(simulator, at_least=1)
        stack.processes["chat"]._proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]

        response = await request
        assert response.status_code == 200, response.text
        assert await exited(stack, "chat", within=15) == 0
        stack.processes["chat"].wait_for_line(lambda s: '"service stopped"' in s, timeout=1)
        assert simulator.sim.calls.snapshot()["total"] == 1  # finished, not handed back and redone

        balance = (await http.get("/v1/credits")).json()
        assert balance["reserved"] == 0  # settled before the replica left


async def test_the_gateway_asked_to_stop_finishes_a_stream_in_flight_then_refuses_new_requests(
    stack: Stack, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", stream_delay_ms=300)
    body = {"messages": [{"role": "user", "content": "a stream the gateway must finish"}], "stream": True}
    events: list[str] = []  # the SSE event names, in order (data lines without one count as "message")
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, headers=bearer(stack), timeout=30) as http,
        http.stream("POST", "/v1/chat", json=body) as response,
    ):
        assert response.status_code == 200
        name = "message"
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                events.append(name)
                name = "message"
                if len(events) == 1:  # the stream is flowing: now the orchestrator asks the gateway to stop
                    stack.processes["gateway"]._proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]

    assert len(events) > 2 and events[-1] == "done", events
    assert await exited(stack, "gateway", within=25) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it caught
    async with httpx.AsyncClient(timeout=2) as late:
        with pytest.raises(httpx.ConnectError):
            await late.get(stack.gateway_url + "/healthz")


@pytest.mark.stack_env(SHUTDOWN_GRACE_S="1")
async def test_the_gateway_does_not_wait_past_its_grace_for_a_stream_that_goes_on(
    stack: Stack, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("gemini", stream_delay_ms=5000)  # a word every 5 s: longer than any grace
    body = {"messages": [{"role": "user", "content": "a stream longer than the grace " * 20}], "stream": True}
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, headers=bearer(stack), timeout=30) as http,
        http.stream("POST", "/v1/chat", json=body) as response,
    ):
        assert response.status_code == 200
        lines = response.aiter_lines()  # read on, never closed early: this client stays to the end
        while not (await anext(lines)).startswith("data:"):
            pass
        started = time.monotonic()
        stack.processes["gateway"]._proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        reading = asyncio.create_task(asyncio.wait_for(_drain(lines), timeout=30))
        await exited(stack, "gateway", within=10)
        stopped_after = time.monotonic() - started
        await asyncio.gather(reading, return_exceptions=True)
    assert 0.9 < stopped_after < 6, stopped_after  # held the stream for its grace, then let it go


async def _drain(lines: AsyncIterator[str]) -> None:
    async for _ in lines:
        pass
