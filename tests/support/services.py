"""Run a service's real wiring (its app.setup) inside the test process, on the real broker,
Redis and MongoDB-protocol server."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from common.bus import Bus, Topology
from common.redis_client import redis_client
from common.runtime import Runtime, start, stop
from common.settings import CommonSettings


@asynccontextmanager
async def in_process(service: str, settings: CommonSettings) -> AsyncIterator[Runtime]:
    app = importlib.import_module(f"{service}.app")
    bus = Bus(url=settings.amqp_url.get_secret_value(), topology=Topology.of(settings), service=service)
    redis = await redis_client(settings)
    await bus.connect()
    try:
        runtime = await start(
            settings,
            partial(app.setup, settings=settings),
            bus=bus,
            redis=redis,
            deduplicate=getattr(app, "DEDUPLICATE", True),
        )
        try:
            yield runtime
        finally:
            await stop(runtime)
    finally:
        await bus.close()
        await redis.aclose()
