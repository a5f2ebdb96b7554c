"""The users collection behind authentication: first sight, roles, and what a gateway keeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def users(gateway_settings: GatewaySettings, mongodb_url: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    yield client[gateway_settings.mongodb_database]["users"]
    await client.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_burst_of_first_requests_creates_the_user_once(
    client: httpx.AsyncClient, issuer: DevIssuer, users: Any
) -> None:
    token = bearer(issuer.token(email="burst@example.com", role="subscriber"))
    responses = await asyncio.gather(*(client.get("/v1/admin/users", headers=token) for _ in range(20)))
    assert {r.status_code for r in responses} == {403}  # known, and not an admin
    docs = await users.find({"userEmail": "burst@example.com"}).to_list()
    assert len(docs) == 1
    assert docs[0]["role"] == "subscriber" and docs[0]["clerkUserId"] == docs[0]["_id"]


async def test_a_development_token_without_a_role_takes_the_stored_one(
    client: httpx.AsyncClient, issuer: DevIssuer, users: Any
) -> None:
    plain = bearer(issuer.token(email="plain@example.com", role=None))
    admin = bearer(issuer.token(email="boss@example.com", role="admin"))
    assert (await client.get("/v1/admin/users", headers=plain)).status_code == 403  # seeded as a user
    doc = await users.find_one({"userEmail": "plain@example.com"})
    promoted = await client.put(f"/v1/admin/users/{doc['_id']}/role", json={"role": "admin"}, headers=admin)
    assert promoted.status_code == 200
    assert (await client.get("/v1/admin/users", headers=plain)).status_code == 200
