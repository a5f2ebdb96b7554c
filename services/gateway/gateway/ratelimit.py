"""Sliding-window rate limits in Redis, shared by every gateway process.

Each check is ONE round trip: a Lua script drops the requests that left the window, counts
the rest, admits this one if there is room and returns what the RateLimit header needs. The
window is a log (a sorted set of request times, by Redis's own clock so gateways with
skewed clocks agree), so it is exact, not a fixed-window approximation.

When Redis cannot be reached the policy is RATE_LIMIT_FALLBACK: `local` (the default) keeps
serving under an in-process limiter with the same budgets (so N gateways admit up to N times
a budget until Redis is back) and `/readyz` reports `rate_limiter: local`; `closed` refuses
limited requests with 503. Redis is tried again every RETRY_S, not on every request.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Literal

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.errors import ServiceUnavailable
from gateway.quotas import Budget, Outcome

log = logging.getLogger(__name__)

Mode = Literal["redis", "local", "unavailable"]
Fallback = Literal["local", "closed"]
RETRY_S = 2.0
REDIS_ERRORS = (RedisError, OSError, TimeoutError)

# KEYS[1]: the window's sorted set. ARGV: limit, window in ms, a unique member for this request.
# Returns {admitted (0/1), remaining, ms until the oldest counted request leaves the window}.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local admitted = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  count = count + 1
  admitted = 1
end
redis.call('PEXPIRE', KEYS[1], window)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = 0
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {admitted, limit - count, reset}
"""


class RateLimiter:
    def __init__(self, redis: Redis, *, namespace: str, fallback: Fallback) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:ratelimit:"
        self._fallback = fallback
        self._script = redis.register_script(_SLIDING_WINDOW)
        self._local_storage = MemoryStorage()
        self._local = MovingWindowRateLimiter(self._local_storage)
        self._down_until = 0.0

    @property
    def mode(self) -> Mode:
        if time.monotonic() >= self._down_until:
            return "redis"
        return "local" if self._fallback == "local" else "unavailable"

    async def check(self, key: str, budget: Budget) -> Outcome:
        """Count one request against `budget` for `key` (such as `user:<id>`) and say if it may pass."""
        name = f"{self._prefix}{budget.name}:{key}"
        if time.monotonic() >= self._down_until:
            try:
                admitted, remaining, reset_ms = await self._script(
                    keys=[name], args=[budget.limit, budget.window_s * 1000, uuid.uuid4().hex]
                )
            except REDIS_ERRORS as exc:
                self._went_down(exc)
            else:
                self._came_back()
                return Outcome(budget, bool(admitted), int(remaining), int(reset_ms) / 1000)
        if self._fallback == "closed":
            raise ServiceUnavailable("the rate limiter is unavailable")
        return await self._check_locally(name, budget)

    async def probe(self) -> bool:
        """Whether Redis answers now (for /readyz); a success ends local mode at once."""
        try:
            await self._redis.ping()
        except REDIS_ERRORS as exc:
            self._went_down(exc)
            return False
        self._came_back()
        return True

    async def _check_locally(self, name: str, budget: Budget) -> Outcome:
        item = RateLimitItemPerSecond(budget.limit, budget.window_s)
        admitted = await self._local.hit(item, name)
        stats = await self._local.get_window_stats(item, name)
        return Outcome(budget, admitted, stats.remaining, max(0.0, stats.reset_time - time.time()))

    def _went_down(self, exc: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            log.warning(
                "rate limiter cannot reach Redis",
                extra={"error": repr(exc), "fallback": self._fallback, "retry_s": RETRY_S},
            )
        self._down_until = time.monotonic() + RETRY_S

    def _came_back(self) -> None:
        if self._down_until:
            log.info("rate limiter reaches Redis again")
            self._down_until = 0.0
