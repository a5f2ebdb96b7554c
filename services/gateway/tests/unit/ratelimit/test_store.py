import socket

import pytest
from redis.asyncio import Redis

from gateway.ratelimit.policy import Budget
from gateway.ratelimit.store import RateLimiter

pytestmark = pytest.mark.unit

IP, CHAT = Budget("ip", 2, 60), Budget("chat", 5, 60)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_locally_a_later_budget_counts_only_what_the_earlier_admitted() -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{closed_port()}/0", socket_connect_timeout=0.2)
    limiter = RateLimiter(redis, namespace="unit", fallback="local")
    checks = [("ip:1.2.3.4", IP), ("user:u1", CHAT)]
    try:
        for _ in range(2):
            assert [o.allowed for o in await limiter.check_all(checks)] == [True, True]
        refused = await limiter.check_all(checks)
        assert [(o.budget.name, o.allowed) for o in refused] == [("ip", False)]
        assert limiter.mode == "local"
        (user,) = await limiter.check_all([("user:u1", CHAT)])
        assert (user.allowed, user.remaining) == (True, 2)  # 2 counted before, not the refused one
    finally:
        await redis.aclose()
