"""Wiring of the gateway's protections: token verification, the stores they need, and the
middleware stack in its one correct order (outermost first):

    request id/trace/security headers → CORS → per-IP rate limit, authentication and
    per-user rate limit (one layer) → body limit → prompt limit → Idempotency-Key → routes

CORS answers preflights before anything counts them; the per-IP budget holds floods before
any token is verified; idempotency sees the user and the whole (bounded) body.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pymongo.errors import PyMongoError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from common.mongo import database, mongo_client
from common.redis_client import redis_client
from gateway.auth.caller import TokenVerifier
from gateway.auth.clerk import ClerkTokens
from gateway.auth.dev_issuer import DevIssuer
from gateway.auth.jwks import JwksCache
from gateway.auth.users import UserDirectory
from gateway.http.body_limit import BodyLimitMiddleware
from gateway.http.prompt_limit import PromptLimitMiddleware
from gateway.http.security_headers import add_cors
from gateway.idempotency.middleware import IdempotencyMiddleware
from gateway.idempotency.store import IdempotencyStore
from gateway.ratelimit.middleware import RateLimitMiddleware
from gateway.ratelimit.policy import parse_budget
from gateway.ratelimit.store import RateLimiter
from gateway.ratelimit.stream_slots import StreamSlots
from gateway.settings import GatewaySettings
from gateway.webhook_deliveries import WebhookDeliveries

# Rate limits and idempotency must not stall requests when Redis is slow or gone: short
# timeouts and no retries, then the documented fallback.
REDIS_CONNECT_TIMEOUT_S = 0.5
REDIS_TIMEOUT_S = 2.0
log = logging.getLogger(__name__)


def dev_issuer(settings: GatewaySettings) -> DevIssuer | None:
    """The development issuer exists only in development, and never alongside Clerk."""
    if settings.environment != "development" or settings.clerk_enabled:
        return None
    return DevIssuer(issuer=settings.dev_issuer, key_file=settings.dev_issuer_key_file)


def verifier(settings: GatewaySettings, dev: DevIssuer | None) -> TokenVerifier:
    clerk = None
    if settings.clerk_issuer is not None and settings.clerk_jwks is not None:
        jwks = JwksCache(
            settings.clerk_jwks, ttl_s=settings.clerk_jwks_ttl_s, min_refresh_s=settings.clerk_jwks_min_refresh_s
        )
        clerk = ClerkTokens(
            issuer=settings.clerk_issuer,
            jwks=jwks,
            authorized_parties=settings.clerk_authorized_parties,
            leeway_s=settings.jwt_leeway_s,
        )
    return TokenVerifier(dev_issuer=dev, leeway_s=settings.jwt_leeway_s, clerk=clerk)


@asynccontextmanager
async def stores(app: FastAPI, settings: GatewaySettings) -> AsyncIterator[None]:
    """MongoDB (users) and Redis (rate limits, idempotency) for the app's lifetime."""
    mongo = mongo_client(settings)
    redis = await redis_client(
        settings,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )
    users = UserDirectory(database(mongo, settings), cache_ttl_s=settings.user_cache_ttl_s)
    app.state.mongo, app.state.users = mongo, users
    app.state.limiter = RateLimiter(redis, namespace=settings.bus_namespace, fallback=settings.rate_limit_fallback)
    app.state.streams = StreamSlots(settings.max_streams_per_user)
    app.state.webhook_deliveries = WebhookDeliveries(redis, namespace=settings.bus_namespace)
    app.state.idempotency = IdempotencyStore(
        redis,
        namespace=settings.bus_namespace,
        ttl_s=settings.idempotency_ttl_s,
        max_bytes_per_user=settings.idempotency_max_bytes_per_user,
    )
    try:
        try:
            await users.create_indexes()
        except PyMongoError as exc:  # MongoDB down at start: serve what we can, /readyz says why
            log.warning("users indexes not created", extra={"error": repr(exc)})
        yield
    finally:
        await redis.aclose()
        await mongo.close()
        await app.state.verifier.aclose()


def install(app: FastAPI, settings: GatewaySettings) -> None:
    """Add the protections' middleware (innermost first, as Starlette stacks them)."""
    app.add_middleware(
        IdempotencyMiddleware,
        default_wait_s=settings.request_timeout_s,
        max_wait_s=settings.max_request_timeout_s,
        image_job_s=settings.image_job_timeout_s,
    )
    app.add_middleware(PromptLimitMiddleware, max_chars=settings.max_prompt_chars)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        RateLimitMiddleware, ip_budget=parse_budget(settings.rate_limit_ip, name="ip"), limits=settings.rate_limits
    )
    add_cors(app, settings.cors_origins)
