"""The life of a consuming service: connect, build its handlers, consume, run its background
tasks, and stop cleanly on SIGTERM or SIGINT. `start`/`stop` are also what tests use to run
a service's real wiring inside the test process."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvloop

from common import heap
from common.bus import Bus, Consumer, Handler, ProcessedMessages, Publishers, Topology
from common.logs import configure_logging
from common.metrics import QUEUE_CONSUMERS, QUEUE_DEPTH, serve_metrics
from common.redis_client import RedisClient, redis_client
from common.settings import CommonSettings
from common.telemetry import configure_tracing

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What a service's setup gets: connected adapters and a place for background tasks."""

    settings: CommonSettings
    bus: Bus
    redis: RedisClient
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    channel_lost: list[Callable[[], None]] = field(default_factory=list)
    consumer: Consumer | None = None

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, name: str) -> None:
        self.tasks.append(asyncio.create_task(coroutine, name=name))

    def on_close(self, closer: Callable[[], Awaitable[Any]]) -> None:
        self.closers.append(closer)

    def on_channel_lost(self, callback: Callable[[], None]) -> None:
        """Called when the consumer's channel closes: what it owned may have moved elsewhere."""
        self.channel_lost.append(callback)

    def _channel_lost(self) -> None:
        for callback in self.channel_lost:
            callback()


Setup = Callable[[Runtime], Awaitable[Mapping[str, Handler]]]


async def start(
    settings: CommonSettings, setup: Setup, *, bus: Bus, redis: RedisClient, deduplicate: bool = True
) -> Runtime:
    """Build the service's handlers on a connected bus and start consuming its queue.

    `deduplicate=False` is for services whose handlers are idempotent by themselves (the
    ledger): they skip the processed-message record in Redis."""
    runtime = Runtime(settings=settings, bus=bus, redis=redis)
    handlers = await setup(runtime)
    if handlers:
        ns, service = settings.bus_namespace, settings.service_name
        processed = ProcessedMessages(redis, namespace=ns, service=service) if deduplicate else None
        consumer = Consumer(
            bus,
            service=service,
            handlers=handlers,
            processed=processed,
            publishers=Publishers.of(settings),
            prefetch=settings.bus_prefetch,
            max_attempts=settings.bus_max_attempts,
            on_channel_lost=runtime._channel_lost,
            slow_s=settings.slow_request_ms / 1000,
            retry_backoff_s=settings.bus_retry_backoff_s,
            retry_backoff_max_s=settings.bus_retry_backoff_max_s,
        )
        await consumer.start()
        runtime.consumer = consumer
        runtime.spawn(sample_queue(bus, consumer.queue_name), name="queue-depth")
    log.info("service ready", extra={"messages": sorted(handlers)})
    return runtime


async def sample_queue(bus: Bus, queue: str, *, interval_s: float = 5.0) -> None:
    """Publish the depth and consumer count of the service's queue as metrics (a passive
    declare: it changes nothing and registers nothing for reconnection)."""
    while True:
        try:
            channel = await bus.connection.channel(publisher_confirms=False)
            try:
                while True:
                    declared = await (await channel.get_underlay_channel()).queue_declare(queue, passive=True)
                    QUEUE_DEPTH.labels(queue).set(declared.message_count or 0)
                    QUEUE_CONSUMERS.labels(queue).set(declared.consumer_count or 0)
                    await asyncio.sleep(interval_s)
            finally:
                await channel.close()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("queue depth not sampled; retrying", exc_info=True)
            await asyncio.sleep(interval_s)


async def stop(runtime: Runtime, *, grace_s: float = 0.0) -> None:
    """Stop consuming, let the messages in hand finish (up to `grace_s`), then stop the
    background tasks and run the closers (which may still publish: the bus is closed after)."""
    if runtime.consumer is not None:
        await runtime.consumer.drain(within_s=grace_s)
    for task in runtime.tasks:
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    for closer in reversed(runtime.closers):
        await closer()


async def run_service(settings: CommonSettings, setup: Setup, *, deduplicate: bool = True) -> None:
    """Serve the handlers `setup` returns on the service's queue until a stop signal arrives."""
    configure_logging(service=settings.service_name, level=settings.log_level)
    configure_tracing(service=settings.service_name)
    serve_metrics(port=settings.metrics_port, host=settings.metrics_host)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    topology = Topology.of(settings)
    bus = Bus(url=settings.amqp_url.get_secret_value(), topology=topology, service=settings.service_name)
    redis = await redis_client(settings)
    await bus.connect()
    runtime: Runtime | None = None
    try:
        runtime = await start(settings, setup, bus=bus, redis=redis, deduplicate=deduplicate)
        heap.settle()
        await stopping.wait()
        log.info("service stopping", extra={"grace_s": settings.shutdown_grace_s})
    finally:
        if runtime is not None:
            await stop(runtime, grace_s=settings.shutdown_grace_s)
        await bus.close()
        await redis.aclose()
        log.info("service stopped")


def serve(settings: CommonSettings, setup: Setup, *, deduplicate: bool = True) -> None:
    """A consuming service's whole life, on uvloop (its event loop costs a fraction of asyncio's)."""
    uvloop.run(run_service(settings, setup, deduplicate=deduplicate))
