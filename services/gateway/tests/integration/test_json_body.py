"""A chat or image request's JSON body is decoded once: the prompt limit decodes it, and the
route's validation and the idempotency fingerprint reuse that value."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "decode me once"}]
BODIES = {
    "/v1/chat/completions": json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES}).encode(),
    "/v1/chat": json.dumps({"messages": MESSAGES}).encode(),
}


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every body json.loads is given, from now on."""
    seen: list[bytes] = []
    loads = json.loads

    def counting(data: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(data, bytes):
            seen.append(data)
        return loads(data, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counting)
    return seen


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("key", [None, "decode-once-key"])
async def test_the_body_is_decoded_once(
    client: httpx.AsyncClient, auth: dict[str, str], decoded: list[bytes], path: str, key: str | None
) -> None:
    headers = auth | {"content-type": "application/json"} | ({"Idempotency-Key": key} if key else {})
    response = await client.post(path, content=BODIES[path], headers=headers)
    # No chat service runs here: the command is refused at the broker, after validation.
    assert response.status_code == 503, response.text
    assert decoded.count(BODIES[path]) == 1


async def test_invalid_json_is_still_reported_by_validation(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    headers = auth | {"content-type": "application/json"}
    response = await client.post("/v1/chat", content=b'{"messages": [', headers=headers)
    assert response.status_code == 422 and response.json()["errors"][0]["type"] == "json_invalid"
