"""The web console's routes: the built page at `/` with a policy of its own, its assets, and
the development sign-in, which exists only where the development issuer does."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest

from gateway.app import create_app
from gateway.auth.dev_issuer import DevIssuer
from gateway.http.security_headers import _API_CSP
from gateway.routes.webapp import APP_CSP, app_csp, with_clerk
from gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    page = '<!doctype html><head></head><script type="module" src="/assets/app-1a2b.js"></script>'
    (root / "index.html").write_text(page)
    (root / "assets" / "app-1a2b.js").write_text("console.log('hi')")
    (tmp_path / "secret.txt").write_text("not served")
    return root


async def _client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        yield client


@pytest.fixture
async def web(gateway_settings: GatewaySettings, dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(gateway_settings.model_copy(update={"web_dist_dir": dist})):
        yield client


async def test_the_page_is_served_with_its_own_policy_and_the_api_keeps_its_own(web: httpx.AsyncClient) -> None:
    page = await web.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/assets/app-1a2b.js" in page.text
    assert page.headers["content-security-policy"] == APP_CSP
    assert "script-src 'self'" in APP_CSP and "'unsafe-inline'" not in APP_CSP
    assert page.headers["x-frame-options"] == "DENY"

    script = await web.get("/assets/app-1a2b.js")
    assert script.status_code == 200
    assert "immutable" in script.headers["cache-control"]

    api = await web.get("/v1/credits")  # no token: 401, under the API's policy
    assert api.status_code == 401
    assert api.headers["content-security-policy"] == _API_CSP


@pytest.mark.parametrize("path", ["/assets/..%2Fsecret.txt", "/assets/../secret.txt", "/assets/missing.js", "/nope"])
async def test_nothing_outside_the_assets_is_served_and_unknown_paths_stay_problems(
    web: httpx.AsyncClient, path: str
) -> None:
    response = await web.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "not served" not in response.text


async def test_without_a_build_the_page_is_a_404_problem(gateway_settings: GatewaySettings, tmp_path: Path) -> None:
    async for client in _client(gateway_settings.model_copy(update={"web_dist_dir": tmp_path / "absent"})):
        response = await client.get("/")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_dev_sign_in_mints_a_development_token_for_the_email_and_role(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    response = await client.post("/v1/dev/token", json={"email": "ada@example.com", "role": "admin"})
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["token"], issuer.public_key, algorithms=["RS256"], issuer=issuer.issuer)
    assert claims["email"] == "ada@example.com"
    assert claims["role"] == "admin"


async def test_dev_sign_in_refuses_bad_input(client: httpx.AsyncClient) -> None:
    for body in ({"email": "not-an-email"}, {"email": "a@example.com", "role": "root"}, {"email": "a@b.c", "x": 1}):
        response = await client.post("/v1/dev/token", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"


async def test_dev_sign_in_is_a_404_outside_development(gateway_settings: GatewaySettings) -> None:
    production = gateway_settings.model_copy(update={"environment": "production"})
    async for client in _client(production):
        response = await client.post("/v1/dev/token", json={"email": "ada@example.com", "role": "admin"})
        assert response.status_code == 404
        assert "token" not in response.json()


async def test_dev_sign_in_is_a_404_when_clerk_is_configured(clerk_client: httpx.AsyncClient) -> None:
    response = await clerk_client.post("/v1/dev/token", json={"email": "ada@example.com", "role": "admin"})
    assert response.status_code == 404


async def test_with_clerk_the_page_names_its_publishable_key_and_may_call_its_frontend_api_only(
    clerk_settings: GatewaySettings, dist: Path
) -> None:
    key = "pk_test_" + base64.b64encode(b"clerk.test.example$").decode()
    proxy = 'https://app.example.com/__clerk?"><script>'  # not a URL the setting takes, yet escaped if given
    settings = clerk_settings.model_copy(
        update={
            "web_dist_dir": dist,
            "clerk_publishable_key": key,
            "clerk_proxy_url": "https://app.example.com/__clerk",
        }
    )
    async for client in _client(settings):
        page = await client.get("/")
        assert page.status_code == 200
        assert f'<meta name="aisaas:clerk-publishable-key" content="{key}" />' in page.text
        assert '<meta name="aisaas:clerk-proxy-url" content="https://app.example.com/__clerk" />' in page.text
        policy = page.headers["content-security-policy"]
        assert policy == app_csp("https://app.example.com")
        assert "connect-src 'self' https://app.example.com; worker-src 'self' blob:;" in policy
        assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy
    assert 'content="https://app.example.com/__clerk?&quot;&gt;&lt;script&gt;"' in with_clerk(
        "<head></head>", key, proxy
    )


async def test_without_a_publishable_key_the_page_is_the_build_unchanged(
    clerk_settings: GatewaySettings, dist: Path
) -> None:
    async for client in _client(clerk_settings.model_copy(update={"web_dist_dir": dist})):
        page = await client.get("/")
        assert page.text == (dist / "index.html").read_text()
        assert page.headers["content-security-policy"] == APP_CSP
