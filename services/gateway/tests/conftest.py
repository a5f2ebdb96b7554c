"""Gateway test fixtures: the app in-process against the real broker and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.devissuer import DevIssuer
from gateway.settings import GatewaySettings


@pytest.fixture
def gateway_settings(amqp_url: str, redis_url: str, namespace: str, tmp_path: Path) -> GatewaySettings:
    return GatewaySettings(
        amqp_url=amqp_url,
        redis_url=redis_url,
        bus_namespace=namespace,
        dev_issuer_key_file=tmp_path / "dev-key.pem",
        max_body_bytes=4096,
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
