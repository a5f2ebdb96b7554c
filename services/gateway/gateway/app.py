"""The gateway's wiring: settings → adapters → FastAPI app; `main` runs it under uvicorn."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from common import heap
from common.bus import Bus, RpcClient, Topology
from common.logs import configure_logging
from common.metrics import serve_metrics
from common.redis_client import redis_client
from common.telemetry import configure_tracing
from gateway import openapi_document, protections
from gateway.http import problems
from gateway.http.request_context import RequestContextMiddleware
from gateway.openai import chat as openai_chat
from gateway.openai import embeddings as openai_embeddings
from gateway.openai import images as openai_images
from gateway.routes import (
    admin,
    analytics,
    chat,
    credits,
    devsignin,
    health,
    image_files,
    images,
    me,
    threads,
    webapp,
    webhooks,
)
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


def create_app(settings: GatewaySettings) -> FastAPI:
    dev_issuer = protections.dev_issuer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus = Bus(
            url=settings.amqp_url.get_secret_value(),
            topology=Topology.of(settings),
            service=settings.service_name,
        )
        await bus.connect()
        rpc = RpcClient(bus, process=settings.service_name, stream_buffer=settings.stream_buffer_chunks)
        await rpc.start()
        redis = await redis_client(settings)
        app.state.bus, app.state.rpc, app.state.redis = bus, rpc, redis
        try:
            async with protections.stores(app, settings):
                yield
        finally:
            await bus.close()
            await redis.aclose()

    # FastAPI's own request telemetry would add a second server span and three more per request
    # (dependencies, endpoint, serialization); RequestContextMiddleware makes the gateway's one.
    app = FastAPI(
        title="AI SaaS gateway",
        version="0.1.0",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.dev_issuer = dev_issuer
    app.state.verifier = protections.verifier(settings, dev_issuer)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(chat.router)
    app.include_router(threads.router)
    app.include_router(openai_chat.router)
    app.include_router(openai_embeddings.router)
    app.include_router(credits.router)
    app.include_router(me.router)
    app.include_router(images.router)
    app.include_router(openai_images.router)
    app.include_router(image_files.router)
    app.include_router(admin.router)
    app.include_router(analytics.router)
    app.include_router(webhooks.router)
    app.include_router(devsignin.router)
    app.include_router(webapp.router)
    openapi_document.install(app, settings)
    protections.install(app, settings)  # CORS, rate limits, authentication, body limits, idempotency
    app.add_middleware(
        RequestContextMiddleware,
        slow_request_s=settings.slow_request_ms / 1000,
        hsts=settings.environment != "development",
    )
    if settings.forwarded_allow_ips:
        # Outermost: the client address every layer (the per-IP budget first) sees. Only a peer
        # listed here may name the client, and the client is the address its proxy appended
        # (the rightmost untrusted one), never the leftmost a client can write itself.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    return app


def server_options() -> dict[str, Any]:
    """uvloop and httptools (uvicorn's `standard` extras) when installed: each takes a good
    share of the per-request CPU off the pure-Python asyncio loop and h11 parser. Without
    them uvicorn's defaults serve the same API, only slower."""
    uvloop = importlib.util.find_spec("uvloop") is not None
    httptools = importlib.util.find_spec("httptools") is not None
    if not (uvloop and httptools):
        log.warning(
            "serving without uvicorn's fast extras; install uvloop and httptools",
            extra={"uvloop": uvloop, "httptools": httptools},
        )
    return {"loop": "uvloop" if uvloop else "asyncio", "http": "httptools" if httptools else "h11"}


def main() -> None:
    settings = GatewaySettings()
    configure_logging(service=settings.service_name, level=settings.log_level)
    configure_tracing(service=settings.service_name)
    serve_metrics(port=settings.metrics_port, host=settings.metrics_host)
    app = create_app(settings)
    heap.settle()  # in the process only: an app a test starts leaves the test runner's collector alone
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # create_app applies FORWARDED_ALLOW_IPS itself
        # SIGTERM: stop accepting, let requests and streams in flight finish for this long, then exit.
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        **server_options(),
    )


if __name__ == "__main__":
    main()
