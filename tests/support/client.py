"""Talking to a running stack over HTTP as its users would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from common.contracts import Role
from devstack import Stack
from gateway.auth.dev_issuer import DevIssuer


def bearer(stack: Stack, email: str, role: Role = "user") -> dict[str, str]:
    issuer = DevIssuer(issuer="urn:aisaas:dev-issuer", key_file=stack.data_dir / "dev-issuer-key.pem")
    return {"Authorization": "Bearer " + issuer.token(email=email, role=role)}


def chat_body(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}]}


async def poll[T](
    probe: Callable[[], T | asyncio.Future[T]], accept: Callable[[T], bool], *, within: float, interval: float = 0.2
) -> T:
    """Call `probe` until `accept` holds; fail with the last value after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if asyncio.isfuture(value) or asyncio.iscoroutine(value):
            value = await value  # type: ignore[misc]
        if accept(value):  # type: ignore[arg-type]
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last value: {value!r}")
        await asyncio.sleep(interval)


async def balance(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, int]:
    response = await client.get("/v1/credits", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
