"""The whole system as processes, exactly as `make run` starts it, on a namespace of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import Stack, free_port


@pytest.fixture
def stack(namespace: str, mongodb_url: str, amqp_url: str, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(
        namespace=namespace,
        gateway_port=free_port(),
        data_dir=tmp_path / "data",
        extra_env={
            "MONGODB_URL": mongodb_url,
            "AMQP_URL": amqp_url,
            "REDIS_URL": redis_url,
            "ENVIRONMENT": "development",
        },
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()
