from __future__ import annotations

import json

import pymongo.errors
import pytest
import redis.exceptions
from fastapi import FastAPI
from fastapi.testclient import TestClient

from common.errors import RateLimited, Unauthenticated
from gateway.http.errors import error_response
from gateway.http.problems import install
from gateway.http.request_context import RequestContextMiddleware

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


@pytest.mark.parametrize(
    "down",
    [
        pymongo.errors.AutoReconnect("127.0.0.1:27017: connection is already closed"),
        pymongo.errors.ServerSelectionTimeoutError("no servers"),
        redis.exceptions.ConnectionError("refused"),
    ],
)
def test_a_store_unreachable_in_a_route_is_a_503_problem_not_a_500(down: Exception) -> None:
    app = FastAPI()
    install(app)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/v1/admin/users/{user_id}")
    async def lookup(user_id: str) -> None:
        raise down

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/admin/users/u1")

    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503 and body["request_id"] == response.headers["x-request-id"]
