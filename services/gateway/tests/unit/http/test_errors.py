from __future__ import annotations

import json

import pytest

from common.errors import RateLimited, Unauthenticated
from gateway.http.errors import error_response

pytestmark = pytest.mark.unit


def scope(path: str) -> dict[str, object]:
    return {"type": "http", "path": path, "state": {"request_id": "req-12345678"}}


@pytest.mark.parametrize("error", [RateLimited("slow down", retry_after=1.2), Unauthenticated("who are you")])
def test_both_error_shapes_carry_the_same_status_and_headers(error: RateLimited | Unauthenticated) -> None:
    problem = error_response(scope("/v1/chat"), error)
    openai = error_response(scope("/v1/chat/completions"), error)

    assert problem.status_code == openai.status_code == error.status
    assert problem.media_type == "application/problem+json"
    assert json.loads(problem.body)["request_id"] == json.loads(openai.body)["error"]["request_id"] == "req-12345678"
    shared = {k: v for k, v in problem.headers.items() if k not in ("content-type", "content-length")}
    assert shared == {k: v for k, v in openai.headers.items() if k not in ("content-type", "content-length")}
    assert shared["x-request-id"] == "req-12345678"
    if isinstance(error, RateLimited):
        assert shared["retry-after"] == "2"  # rounded up: never sooner than the budget frees
    else:
        assert shared["www-authenticate"] == 'Bearer realm="aisaas"'
