"""Sliding-window rate limits in Redis, shared by every gateway process.

Each check is ONE round trip: a Lua script drops the requests that left the window, counts
the rest, admits this one if there is room and returns what the RateLimit header needs. The
window is a log (a sorted set of request times, by Redis's own clock so gateways with
skewed clocks agree), so it is exact, not a fixed-window approximation. Several budgets of
one request (its IP's, then its user's) can go in the same round trip: they are checked in
order and a budget is counted only if every budget before it admitted the request, exactly
as separate checks would. On a Redis Cluster a script may only name keys of one hash slot,
and an IP's and a user's budgets hash to different slots, so there the budgets go in one call
per slot, in order, and a later call is made only if the earlier ones admitted the request:
the same outcome, in a round trip per slot (a single server keeps its one).

When Redis cannot be reached the policy is RATE_LIMIT_FALLBACK: `local` (the default) keeps
serving under an in-process limiter with the same budgets (so N gateways admit up to N times
a budget until Redis is back) and `/readyz` reports `rate_limiter: local`; `closed` refuses
limited requests with 503. Redis is tried again every RETRY_S, not on every request.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Literal

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from common.errors import ServiceUnavailable
from common.redis_client import REDIS_ERRORS, RedisClient, is_cluster, slot_of
from gateway.ratelimit.policy import Budget, Outcome

log = logging.getLogger(__name__)

Mode = Literal["redis", "local", "unavailable"]
Fallback = Literal["local", "closed"]
RETRY_S = 2.0

# KEYS: one sorted set per budget, in the order they are checked. ARGV[1]: a unique member for
# this request, then each budget's limit and window in ms. A budget is counted only if every
# budget before it admitted the request. Returns, per budget checked:
# admitted (0/1), remaining, ms until the oldest counted request leaves the window.
_SLIDING_WINDOWS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local admitted = 0
  if count < limit then
    redis.call('ZADD', key, now, ARGV[1])
    count = count + 1
    admitted = 1
  end
  redis.call('PEXPIRE', key, window)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local reset = 0
  if oldest[2] then reset = tonumber(oldest[2]) + window - now end
  out[#out + 1] = admitted
  out[#out + 1] = limit - count
  out[#out + 1] = reset
  if admitted == 0 then break end
end
return out
"""


class RateLimiter:
    def __init__(self, redis: RedisClient, *, namespace: str, fallback: Fallback) -> None:
        self._redis = redis
        self._cluster = is_cluster(redis)
        self._prefix = f"{namespace}:ratelimit:"
        self._fallback = fallback
        self._script = redis.register_script(_SLIDING_WINDOWS)
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
        return (await self.check_all([(key, budget)]))[0]

    async def check_all(self, checks: Sequence[tuple[str, Budget]]) -> list[Outcome]:
        """Count one request against each (key, budget) in order, in one round trip, up to and
        including the first that refuses it; the outcomes of the budgets checked."""
        names = [f"{self._prefix}{budget.name}:{key}" for key, budget in checks]
        if time.monotonic() >= self._down_until:
            member = uuid.uuid4().hex
            found: list[int] = []
            try:
                for group in self._by_slot(names):
                    args: list[str | int] = [member]
                    for i in group:
                        args += (checks[i][1].limit, checks[i][1].window_s * 1000)
                    found += await self._script(keys=[names[i] for i in group], args=args)
                    if not found[-3]:
                        break  # refused: the budgets after it are not counted
            except REDIS_ERRORS as exc:
                self._went_down(exc)
            else:
                self._came_back()
                return [
                    Outcome(budget, bool(found[i]), int(found[i + 1]), int(found[i + 2]) / 1000)
                    for i, (_, budget) in zip(range(0, len(found), 3), checks, strict=False)
                ]
        if self._fallback == "closed":
            raise ServiceUnavailable("the rate limiter is unavailable")
        outcomes = []
        for name, (_, budget) in zip(names, checks, strict=True):
            outcomes.append(await self._check_locally(name, budget))
            if not outcomes[-1].allowed:
                break
        return outcomes

    def _by_slot(self, names: list[str]) -> list[range]:
        """The budgets' indexes in the calls to make: all in one on a single server; on a
        cluster, each run of neighbours sharing a hash slot in one (keeping their order)."""
        if not self._cluster:
            return [range(len(names))]
        groups: list[range] = []
        start = 0
        for i in range(1, len(names) + 1):
            if i == len(names) or slot_of(names[i]) != slot_of(names[start]):
                groups.append(range(start, i))
                start = i
        return groups

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
