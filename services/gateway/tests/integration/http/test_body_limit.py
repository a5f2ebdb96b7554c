"""The body limit's 413 is written by the shared error writer: the same problem+json as every
other error, with the request id, whether the size was declared or found while streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


async def test_the_413_has_the_problem_shape_of_every_other_error(
    client: httpx.AsyncClient, auth: dict[str, str], gateway_settings: GatewaySettings
) -> None:
    limit = gateway_settings.max_body_bytes
    json_type = {"content-type": "application/json"}

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(limit // 512 + 2):
            yield b" " * 512

    other = await client.post("/v1/chat", content=b"{nope", headers=auth | json_type)
    declared = await client.post("/v1/chat", content=b" " * (limit + 1), headers=auth | json_type)
    streamed = await client.post("/v1/chat", content=chunks(), headers=auth | json_type)

    assert other.status_code == 422
    expected = set(other.json()) - {"errors"}  # a 422 adds the fields it found wrong
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == other.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert set(problem) == expected
        assert problem["request_id"] == response.headers["x-request-id"]
        assert problem["status"] == 413 and problem["type"].endswith("payload_too_large")
        assert problem["instance"] == "/v1/chat"
        assert str(limit) in problem["detail"]
