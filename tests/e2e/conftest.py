"""The whole system as processes, exactly as `make run` starts it, on a namespace and a
database of its own. A test adds settings with `@pytest.mark.stack_env(NAME="value")`, and
points the providers at the simulator (reset for the test) with `@pytest.mark.provider_simulator`.
A module that can share one stack between its tests builds it with `running_stack`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack import Stack, free_port
from tests.support.fixtures import RedisServer, forget_namespace, new_namespace

# Load tests must not meet the per-user budgets; tests about rate limits set their own.
NEVER_REACHED = {"chat": {"user": "100000/minute"}, "images": {"user": "100000/minute"}}


@contextmanager
def running_stack(
    env: dict[str, str], *, mongodb_url: str, amqp_url: str, redis_url: str, data: Path, gateway_port: int | None = None
) -> Iterator[Stack]:
    """The whole system as processes, on a namespace and database of its own, removed afterwards.
    `gateway_port` when a setting must name the gateway's origin (a free one otherwise)."""
    namespace = new_namespace()
    infrastructure = {
        "MONGODB_URL": mongodb_url,
        "MONGODB_DATABASE": f"e2e_{namespace}",
        "AMQP_URL": amqp_url,
        "REDIS_URL": redis_url,
        "ENVIRONMENT": "development",
        "RATE_LIMITS": json.dumps(NEVER_REACHED),
        "RATE_LIMIT_IP": "100000/minute",
    }
    stack = Stack(
        namespace=namespace, gateway_port=gateway_port or free_port(), data_dir=data, extra_env=infrastructure | env
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        asyncio.run(forget_namespace(amqp_url, RedisServer(redis_url, cluster=False), namespace))


@pytest.fixture
def stack(
    request: pytest.FixtureRequest, mongodb_url: str, amqp_url: str, redis_url: str, tmp_path: Path
) -> Iterator[Stack]:
    marker = request.node.get_closest_marker("stack_env")
    env = dict(marker.kwargs) if marker else {}
    if request.node.get_closest_marker("provider_simulator"):
        env = request.getfixturevalue("simulator").base_urls.env() | env
    with running_stack(
        env, mongodb_url=mongodb_url, amqp_url=amqp_url, redis_url=redis_url, data=tmp_path / "data"
    ) as s:
        yield s
