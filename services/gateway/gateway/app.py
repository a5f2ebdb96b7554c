"""The gateway's wiring: settings → adapters → FastAPI app; `main` runs it under uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis

from common.bus import Bus, RpcClient, Topology
from common.logs import configure_logging
from common.telemetry import configure_tracing
from gateway import problems
from gateway.auth import TokenVerifier
from gateway.devissuer import DevIssuer
from gateway.middleware import BodyLimitMiddleware, RequestContextMiddleware
from gateway.routes import chat, credits, health
from gateway.settings import GatewaySettings


def create_app(settings: GatewaySettings) -> FastAPI:
    dev_issuer = (
        DevIssuer(issuer=settings.dev_issuer, key_file=settings.dev_issuer_key_file)
        if settings.environment == "development"
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus = Bus(
            url=settings.amqp_url.get_secret_value(),
            topology=Topology(settings.bus_namespace),
            service=settings.service_name,
        )
        await bus.connect()
        rpc = RpcClient(bus, process=settings.service_name)
        await rpc.start()
        redis = Redis.from_url(settings.redis_url.get_secret_value())
        app.state.bus, app.state.rpc, app.state.redis = bus, rpc, redis
        try:
            yield
        finally:
            await bus.close()
            await redis.aclose()

    app = FastAPI(title="AI SaaS gateway", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.dev_issuer = dev_issuer
    app.state.verifier = TokenVerifier(dev_issuer=dev_issuer, leeway_s=settings.jwt_leeway_s)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(chat.router)
    app.include_router(credits.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app


def main() -> None:
    settings = GatewaySettings()
    configure_logging(service=settings.service_name, level=settings.log_level)
    configure_tracing(service=settings.service_name)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
