"""The whole system as processes, exactly as `make run` starts it, on a namespace and a
database of its own. A test adds settings with `@pytest.mark.stack_env(NAME="value")`, and
points the providers at the simulator (reset for the test) with `@pytest.mark.provider_simulator`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import Stack, free_port


@pytest.fixture
def stack(
    request: pytest.FixtureRequest, namespace: str, mongodb_url: str, amqp_url: str, redis_url: str, tmp_path: Path
) -> Iterator[Stack]:
    marker = request.node.get_closest_marker("stack_env")
    env = {
        "MONGODB_URL": mongodb_url,
        "MONGODB_DATABASE": f"e2e_{namespace}",
        "AMQP_URL": amqp_url,
        "REDIS_URL": redis_url,
        "ENVIRONMENT": "development",
        # Load tests must not meet the per-user budgets; tests about rate limits set their own.
        "RATE_LIMITS": '{"chat": {"user": "100000/minute"}, "images": {"user": "100000/minute"}}',
        "RATE_LIMIT_IP": "100000/minute",
        **(marker.kwargs if marker else {}),
    }
    if request.node.get_closest_marker("provider_simulator"):
        env |= request.getfixturevalue("simulator").base_urls.env()
    s = Stack(namespace=namespace, gateway_port=free_port(), data_dir=tmp_path / "data", extra_env=env)
    s.start()
    try:
        yield s
    finally:
        s.stop()
