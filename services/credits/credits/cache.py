"""Balances cached in Redis, updated on every change. A write carries the account's version
and only ever replaces an older one, so concurrent updates cannot leave a stale balance."""

from __future__ import annotations

from redis.asyncio import Redis

from common.contracts import Balance

_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'balance', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class BalanceCache:
    def __init__(self, redis: Redis, *, namespace: str, ttl_s: int) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:balance:"
        self._ttl_s = ttl_s
        self._set_if_newer = redis.register_script(_SET_IF_NEWER)

    async def get(self, user_id: str) -> Balance | None:
        raw = await self._redis.hget(self._prefix + user_id, "balance")
        return Balance.model_validate_json(raw) if raw else None

    async def put(self, balance: Balance, *, version: int) -> None:
        await self._set_if_newer(
            keys=[self._prefix + balance.user_id], args=[version, balance.model_dump_json(), self._ttl_s]
        )
