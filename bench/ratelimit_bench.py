"""Benchmark: the gateway's rate-limit check (one Lua round trip that admits or refuses and
returns what the RateLimit header fields need) against, in the same run and at the same
concurrency, the `limits` library's async Redis moving window doing the same job (a `hit`
plus `get_window_stats` for the header fields) and a bare Redis PING (the floor of any check).

    make bench          (writes bench/results/ratelimit.json)

The figure to watch is checks/s ÷ PING/s (a one-round-trip check stays near 1 and under the
library's two-trip pair), and the p99 a check adds to a request.
"""

from __future__ import annotations

import asyncio
import os
import uuid

from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from bench.load import run_for, write_results
from devstack import DEFAULT_REDIS_URL, ROOT
from gateway.ratelimit.policy import Budget
from gateway.ratelimit.store import RateLimiter

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
USERS = 256
LIMIT = 1_000_000  # never reached: every check admits, so both sides do the same work
RESULTS = ROOT / "bench" / "results" / "ratelimit.json"


async def main() -> None:
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(url, max_connections=CONCURRENCY * 2)
    ours = RateLimiter(redis, namespace=namespace, fallback="local")
    budget = Budget("chat", LIMIT, 60)
    library = MovingWindowRateLimiter(RedisStorage("async+" + url, key_prefix=namespace))
    item = RateLimitItemPerMinute(LIMIT)

    async def check(i: int, n: int) -> None:
        outcome = await ours.check(f"user:{(i * 7919 + n) % USERS}", budget)
        assert outcome.allowed

    async def library_check(i: int, n: int) -> None:
        key = f"user:{(i * 7919 + n) % USERS}"
        assert await library.hit(item, key)
        await library.get_window_stats(item, key)

    try:
        await ours.check("warm-up", budget)
        results = {
            "concurrency": CONCURRENCY,
            "seconds_each": SECONDS,
            "redis_ping": await run_for(SECONDS, lambda i, n: redis.ping(), concurrency=CONCURRENCY),
            "gateway_check_lua": await run_for(SECONDS, check, concurrency=CONCURRENCY),
            "limits_hit_plus_stats": await run_for(SECONDS, library_check, concurrency=CONCURRENCY),
        }
        results["check_vs_ping"] = round(results["gateway_check_lua"]["per_s"] / results["redis_ping"]["per_s"], 3)
        results["check_vs_library"] = round(
            results["gateway_check_lua"]["per_s"] / results["limits_hit_plus_stats"]["per_s"], 3
        )
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{namespace}*")]
        for start in range(0, len(keys), 500):
            await redis.delete(*keys[start : start + 500])
        await redis.aclose()
    write_results(RESULTS, results)


if __name__ == "__main__":
    asyncio.run(main())
