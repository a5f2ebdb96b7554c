"""Security headers, CORS, and the prompt size limit, through the HTTP stack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

APP_ORIGIN = "https://app.example.com"


@pytest.fixture
def gateway_settings(gateway_settings: GatewaySettings) -> GatewaySettings:
    changes = {"cors_origins": [APP_ORIGIN], "max_prompt_chars": 100, "max_body_bytes": 64 * 1024}
    return GatewaySettings(**(gateway_settings.model_dump() | changes))


@pytest.fixture
async def production_like(gateway_settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    # Copied without validation: staging refuses the local broker's guest password, which this test still uses.
    app: FastAPI = create_app(gateway_settings.model_copy(update={"environment": "staging"}))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="https://gw") as http:
        yield http


async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/healthz"), await client.get("/v1/credits"), await client.get("/nowhere")):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in headers  # development: plain HTTP on localhost
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers  # Swagger UI loads its CDN


async def test_outside_development_hsts_is_sent(production_like: httpx.AsyncClient) -> None:
    response = await production_like.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_cors_admits_the_configured_origin_only(client: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,idempotency-key",
    }
    allowed = await client.options("/v1/chat", headers={"Origin": APP_ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
    refused = await client.options("/v1/chat", headers={"Origin": "https://evil.example", **preflight})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    # An actual cross-origin call: the browser may read the error and the rate-limit fields.
    response = await client.get("/v1/credits", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 401 and response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "ratelimit" in response.headers["access-control-expose-headers"].lower()


async def test_a_prompt_over_the_limit_is_413_before_anything_runs(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    messages = [{"role": "system", "content": "s" * 60}, {"role": "user", "content": "u" * 41}]
    response = await client.post("/v1/chat", json={"messages": messages}, headers=auth)
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"
    assert (response.json()["prompt_chars"], response.json()["max_prompt_chars"]) == (101, 100)
    image = await client.post("/v1/images", json={"prompt": "p" * 101}, headers=auth)
    assert image.status_code == 413


async def test_identity_headers_do_not_change_who_is_calling(
    client: httpx.AsyncClient, issuer: DevIssuer, gateway_app: FastAPI
) -> None:
    token = {"Authorization": "Bearer " + issuer.token(email="plain@example.com", role="user")}
    forged = {"X-User-Id": "user_admin", "X-User-Email": "root@example.com", "X-Role": "admin", "X-User-Role": "admin"}
    response = await client.get("/v1/admin/users", headers=token | forged)
    assert response.status_code == 403
