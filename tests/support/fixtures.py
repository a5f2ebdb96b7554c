"""Fixtures every test tier shares: the real RabbitMQ, Redis and MongoDB-protocol server.

RabbitMQ and Redis are the machine's own (AMQP_URL / REDIS_URL override). MongoDB is
MONGODB_URL when set, else a mongoeco server started once per session. Every test gets its
own bus namespace, so queues, exchanges and Redis keys never collide between tests, and
they are deleted afterwards.

A test marked `@ON_BOTH_REDIS` (tests.support.redis_cluster) runs twice: on the machine's
Redis and on a local three-node Redis Cluster (started once per session, only when such a
test runs); `redis_url` and `redis_cluster` say which, for the settings under test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.redis_client import RedisClient, redis_client
from common.settings import CommonSettings
from devstack import (
    DEFAULT_AMQP_URL,
    DEFAULT_REDIS_URL,
    Process,
    check_reachable,
    free_port,
    mongoeco_argv,
    mongoeco_uri,
)
from tests.support.broker import delete_namespace
from tests.support.redis_cluster import redis_cluster as started_redis_cluster


@pytest.fixture(scope="session")
def amqp_url() -> str:
    url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    check_reachable("RabbitMQ", url, 5672)
    return url


@dataclass(frozen=True)
class RedisServer:
    url: str
    cluster: bool

    async def client(self) -> RedisClient:
        return await redis_client(CommonSettings(redis_url=self.url, redis_cluster=self.cluster))


@pytest.fixture(scope="session")
def plain_redis_url() -> str:
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    check_reachable("Redis", url, 6379)
    return url


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-node Redis Cluster of Debian's redis-server, for this session."""
    with started_redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as ports:
        yield f"redis://127.0.0.1:{ports[0]}/0"


@pytest.fixture
def redis_server(request: pytest.FixtureRequest) -> RedisServer:
    """The machine's Redis, or with the param "cluster" (see ON_BOTH_REDIS) the Redis Cluster."""
    if getattr(request, "param", "plain") == "cluster":
        return RedisServer(request.getfixturevalue("redis_cluster_url"), cluster=True)
    return RedisServer(request.getfixturevalue("plain_redis_url"), cluster=False)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_cluster(redis_server: RedisServer) -> bool:
    return redis_server.cluster


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("MONGODB_URL"):
        yield url
        return
    log = tmp_path_factory.mktemp("mongo") / "mongo.log"
    proc = Process("mongo", mongoeco_argv(port=free_port()), env=dict(os.environ), log_file=log, echo=False).start()
    try:
        yield mongoeco_uri(proc)
    finally:
        proc.stop()


def new_namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def forget_namespace(amqp_url: str, redis_server: RedisServer, ns: str) -> None:
    """Remove what a test namespace left on the broker and in Redis."""
    await delete_namespace(amqp_url, ns)
    redis = await redis_server.client()
    try:
        keys = [k async for k in redis.scan_iter(match=f"{ns}:*")]  # on a cluster: on every node
        if keys:
            await redis.delete(*keys)  # the cluster client splits it by slot
    finally:
        await redis.aclose()


@pytest.fixture
async def namespace(amqp_url: str, redis_server: RedisServer) -> AsyncIterator[str]:
    ns = new_namespace()
    yield ns
    await forget_namespace(amqp_url, redis_server, ns)


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[RedisClient]:
    client = await redis_server.client()
    yield client
    await client.aclose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
