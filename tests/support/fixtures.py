"""Fixtures every test tier shares: the real RabbitMQ, Redis and MongoDB-protocol server.

RabbitMQ and Redis are the machine's own (AMQP_URL / REDIS_URL override). MongoDB is
MONGODB_URL when set, else a mongoeco server started once per session. Every test gets its
own bus namespace, so queues, exchanges and Redis keys never collide between tests, and
they are deleted afterwards.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from devstack import DEFAULT_AMQP_URL, DEFAULT_REDIS_URL, ROOT, Process, check_reachable, free_port
from tests.support.broker import delete_namespace


@pytest.fixture(scope="session")
def amqp_url() -> str:
    url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    check_reachable("RabbitMQ", url, 5672)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    check_reachable("Redis", url, 6379)
    return url


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("MONGODB_URL"):
        yield url
        return
    log = tmp_path_factory.mktemp("mongo") / "mongo.log"
    proc = Process(
        "mongo",
        [sys.executable, str(ROOT / "tools" / "mongoeco_server.py"), "--port", str(free_port())],
        env=dict(os.environ),
        log_file=log,
        echo=False,
    ).start()
    try:
        line = proc.wait_for_line(lambda s: s.startswith('{"uri"'), timeout=60)
        yield json.loads(line)["uri"]
    finally:
        proc.stop()


def new_namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def forget_namespace(amqp_url: str, redis_url: str, ns: str) -> None:
    """Remove what a test namespace left on the broker and in Redis."""
    await delete_namespace(amqp_url, ns)
    redis = Redis.from_url(redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{ns}:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.fixture
async def namespace(amqp_url: str, redis_url: str) -> AsyncIterator[str]:
    ns = new_namespace()
    yield ns
    await forget_namespace(amqp_url, redis_url, ns)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
