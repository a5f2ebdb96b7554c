"""Imagegen test fixtures: the service's real wiring in this process, with the credits service
beside it, on the real broker, Redis and MongoDB-protocol server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from common.bus import Bus, RpcClient, Topology
from common.runtime import Runtime
from credits.settings import CreditsSettings
from imagegen.settings import ImagegenSettings
from tests.support.services import in_process


@pytest.fixture
def common_env(amqp_url: str, redis_url: str, redis_cluster: bool, namespace: str, mongodb_url: str) -> dict[str, Any]:
    return {
        "amqp_url": amqp_url,
        "redis_url": redis_url,
        "redis_cluster": redis_cluster,
        "bus_namespace": namespace,
        "mongodb_url": mongodb_url,
        "mongodb_database": f"t_{namespace}",
    }


@pytest.fixture
async def db(common_env: dict[str, Any]) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(common_env["mongodb_url"], tz_aware=True)
    yield client[common_env["mongodb_database"]]
    await client.drop_database(common_env["mongodb_database"])
    await client.close()


@pytest.fixture
async def credits_service(common_env: dict[str, Any]) -> AsyncIterator[Runtime]:
    async with in_process("credits", CreditsSettings(**common_env, signup_credits=20)) as runtime:
        yield runtime


ImagegenFactory = Callable[..., AbstractAsyncContextManager[Runtime]]


@pytest.fixture
def imagegen(common_env: dict[str, Any], tmp_path: Path) -> ImagegenFactory:
    """`async with imagegen(**settings)`: the service in this process; local generator and storage by default."""

    def start(**overrides: Any) -> AbstractAsyncContextManager[Runtime]:
        fields = {
            "image_data_dir": tmp_path / "images",
            "image_provider": "local",
            "image_storage": "local",
            "image_sweep_interval_s": 0.2,
            "image_poll_initial_s": 0.05,
            "image_poll_max_s": 0.2,
            **overrides,
        }
        return in_process("imagegen", ImagegenSettings(**common_env, **fields))

    return start


@pytest.fixture
async def rpc(common_env: dict[str, Any]) -> AsyncIterator[RpcClient]:
    bus = Bus(url=common_env["amqp_url"], topology=Topology(common_env["bus_namespace"]), service="test")
    await bus.connect()
    client = RpcClient(bus, process="test")
    await client.start()
    yield client
    await bus.close()
