"""The life of a consuming service: connect, consume, stop cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping

from redis.asyncio import Redis

from common.bus import Bus, Consumer, Handler, ProcessedMessages, Topology
from common.logs import configure_logging
from common.settings import CommonSettings
from common.telemetry import configure_tracing

log = logging.getLogger(__name__)


async def run_service(settings: CommonSettings, *, handlers: Mapping[str, Handler]) -> None:
    """Serve `handlers` on the service's queue until a stop signal arrives."""
    configure_logging(service=settings.service_name, level=settings.log_level)
    configure_tracing(service=settings.service_name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bus = Bus(
        url=settings.amqp_url.get_secret_value(),
        topology=Topology(settings.bus_namespace),
        service=settings.service_name,
    )
    redis = Redis.from_url(settings.redis_url.get_secret_value())
    await bus.connect()
    try:
        if handlers:
            processed = ProcessedMessages(redis, namespace=settings.bus_namespace, service=settings.service_name)
            consumer = Consumer(
                bus,
                service=settings.service_name,
                handlers=handlers,
                processed=processed,
                prefetch=settings.bus_prefetch,
                max_attempts=settings.bus_max_attempts,
            )
            await consumer.start()
        log.info("service ready", extra={"messages": sorted(handlers)})
        await stop.wait()
        log.info("service stopping")
    finally:
        await bus.close()
        await redis.aclose()
