"""Gateway test fixtures: the app in-process against the real broker and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from gateway.app import create_app
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.support.clerk import ORIGIN, WEBHOOK_SECRET, FakeClerk

# Tests that are not about rate limits get budgets they never reach; those that are set their own.
NEVER_REACHED = {group: {"user": "100000/minute"} for group in ("chat", "images")}


@pytest.fixture
def gateway_settings(
    amqp_url: str, redis_url: str, redis_cluster: bool, mongodb_url: str, namespace: str, tmp_path: Path
) -> GatewaySettings:
    return GatewaySettings(
        amqp_url=amqp_url,
        redis_url=redis_url,
        redis_cluster=redis_cluster,
        mongodb_url=mongodb_url,
        mongodb_database=f"t_{namespace}",
        bus_namespace=namespace,
        dev_issuer_key_file=tmp_path / "dev-key.pem",
        max_body_bytes=4096,
        rate_limits=NEVER_REACHED,
    )


@pytest.fixture
def issuer(gateway_settings: GatewaySettings) -> DevIssuer:
    return DevIssuer(issuer=gateway_settings.dev_issuer, key_file=gateway_settings.dev_issuer_key_file)


@pytest.fixture
def auth(issuer: DevIssuer) -> dict[str, str]:
    return {"Authorization": "Bearer " + issuer.token(email="a@example.com", role="user")}


@pytest.fixture
async def gateway_app(gateway_settings: GatewaySettings) -> AsyncIterator[FastAPI]:
    app = create_app(gateway_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(gateway_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway_app), base_url="http://gateway") as c:
        yield c


@pytest.fixture
def fake_clerk() -> Iterator[FakeClerk]:
    """Clerk at its HTTP boundary: the instance's JWKS served on a local port."""
    with FakeClerk().serve() as clerk:
        yield clerk


@pytest.fixture
def clerk_settings(gateway_settings: GatewaySettings, fake_clerk: FakeClerk) -> GatewaySettings:
    """The gateway as in production: Clerk tokens only (the development issuer is off)."""
    return gateway_settings.model_copy(
        update={
            "clerk_issuer": fake_clerk.issuer,
            "clerk_jwks_url": fake_clerk.jwks_url,
            "clerk_authorized_parties": [ORIGIN],
            "clerk_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "clerk_jwks_min_refresh_s": 3600.0,
        }
    )


@pytest.fixture
async def clerk_app(clerk_settings: GatewaySettings) -> AsyncIterator[FastAPI]:
    app = create_app(clerk_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def clerk_client(clerk_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=clerk_app), base_url="http://gateway") as c:
        yield c
