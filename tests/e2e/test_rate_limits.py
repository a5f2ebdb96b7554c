"""A user's budget is one budget however many gateways serve them: two gateway processes
on one namespace share the count in Redis."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import httpx
import pytest

from devstack import Process, Stack, free_port
from tests.support.client import bearer, chat_body, poll

pytestmark = pytest.mark.e2e


@pytest.fixture
def second_gateway(stack: Stack) -> Iterator[str]:
    port = free_port()
    env = {**stack.env, "PORT": str(port)}
    log = stack.data_dir / "logs" / "gateway-2.log"
    process = Process("gateway-2", [sys.executable, "-m", "gateway"], env=env, log_file=log, echo=False).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


async def ready(url: str) -> None:
    async def status() -> int:
        try:
            async with httpx.AsyncClient(base_url=url, timeout=2) as http:
                return (await http.get("/readyz")).status_code
        except httpx.TransportError:
            return 0

    await poll(status, lambda s: s == 200, within=60, interval=0.1)


@pytest.mark.stack_env(RATE_LIMITS='{"chat": {"user": "4/minute"}}')
async def test_the_budget_holds_across_two_gateway_processes(stack: Stack, second_gateway: str) -> None:
    await ready(second_gateway)
    user = bearer(stack, "two-doors@example.com")
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as one,
        httpx.AsyncClient(base_url=second_gateway, timeout=30) as two,
    ):
        doors = [one, two, one, two, two, one]
        responses = [await door.post("/v1/chat", json=chat_body(f"q{i}"), headers=user) for i, door in enumerate(doors)]
        assert [r.status_code for r in responses] == [200, 200, 200, 200, 429, 429]
        refused = responses[4]
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["content-type"] == "application/problem+json"
        assert '"chat";r=0' in refused.headers["ratelimit"]
        remaining = [re.search(r'"chat";r=(\d+)', r.headers["ratelimit"]) for r in responses]
        assert [int(m.group(1)) for m in remaining if m] == [3, 2, 1, 0, 0, 0]  # one count, whichever door
        for http in (one, two):  # both say so in /readyz too
            assert (await http.get("/readyz")).json()["rate_limiter"] == "redis"
