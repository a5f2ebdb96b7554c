"""A chat or image request's JSON body is decoded once: the prompt limit decodes it, and the
route's validation and the idempotency fingerprint reuse that value."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "decode me once"}]
BODIES = {
    "/v1/chat/completions": json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES}).encode(),
    "/v1/chat": json.dumps({"messages": MESSAGES}).encode(),
}


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text json.loads is given (bytes decoded), from now on."""
    seen: list[str] = []
    loads = json.loads

    def counting(data: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(data, bytes | str):
            seen.append(data.decode() if isinstance(data, bytes) else data)
        return loads(data, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counting)
    return seen


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("key", [None, "decode-once-key"])
async def test_the_body_is_decoded_once(
    client: httpx.AsyncClient, auth: dict[str, str], decoded: list[str], path: str, key: str | None
) -> None:
    headers = auth | {"content-type": "application/json"} | ({"Idempotency-Key": key} if key else {})
    response = await client.post(path, content=BODIES[path], headers=headers)
    # No chat service runs here: the command is refused at the broker, after validation.
    assert response.status_code == 503, response.text
    assert decoded.count(BODIES[path].decode()) == 1


async def test_invalid_json_is_still_reported_by_validation(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    headers = auth | {"content-type": "application/json"}
    response = await client.post("/v1/chat", content=b'{"messages": [', headers=headers)
    assert response.status_code == 422 and response.json()["errors"][0]["type"] == "json_invalid"


DEEP = b"[" * 100_000  # an attacker's body: 100,000 nested arrays, under the default MAX_BODY_BYTES


@pytest.fixture
def gateway_settings(gateway_settings: GatewaySettings) -> GatewaySettings:
    return gateway_settings.model_copy(update={"max_body_bytes": 262_144})  # the default, so DEEP gets in


@pytest.mark.parametrize(
    ("method", "path", "role", "key"),
    [
        ("POST", "/v1/chat", "user", None),
        ("POST", "/v1/chat", "user", "deep-key"),
        ("POST", "/v1/images", "user", None),
        ("POST", "/v1/admin/credits/grants", "admin", "deep-key"),
        ("PUT", "/v1/admin/users/someone/role", "admin", None),
    ],
)
async def test_a_deeply_nested_body_is_a_422_problem(
    client: httpx.AsyncClient, issuer: DevIssuer, method: str, path: str, role: str, key: str | None
) -> None:
    headers = {
        "Authorization": "Bearer " + issuer.token(email="deep@example.com", role=role),
        "content-type": "application/json",
        "X-Request-ID": "deep-json-1",
    } | ({"Idempotency-Key": key} if key else {})
    response = await client.request(method, path, content=DEEP, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["request_id"] == "deep-json-1"
    assert problem["errors"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(("path", "role"), [("/v1/chat", "user"), ("/v1/admin/users/someone/role", "admin")])
async def test_a_body_that_is_not_text_is_a_422_problem_not_a_400(
    client: httpx.AsyncClient, issuer: DevIssuer, path: str, role: str
) -> None:
    """Bytes no JSON encoding can decode are invalid JSON, as any other (FastAPI alone answers 400)."""
    headers = {"Authorization": "Bearer " + issuer.token(email="bytes@example.com", role=role)}
    method = "PUT" if path.endswith("/role") else "POST"
    body = b"\xff\xfe\x08\x18\x1e\xd8\t=\xff\xff\xff"
    response = await client.request(method, path, content=body, headers=headers | {"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["type"] == "json_invalid"


async def test_the_openai_route_answers_a_deeply_nested_body_in_its_own_shape(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    headers = auth | {"content-type": "application/json", "X-Request-ID": "deep-json-2"}
    response = await client.post("/v1/chat/completions", content=DEEP, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["request_id"] == "deep-json-2"


async def test_nesting_up_to_the_limit_is_still_json(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """Just under the limit the body decodes and validation names the bad field, as for any body."""
    body = {"messages": [{"role": "user", "content": "hi"}], "model": json.loads("[" * 60 + "]" * 60)}
    headers = auth | {"content-type": "application/json"}
    response = await client.post("/v1/chat", json=body, headers=headers)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.model"
