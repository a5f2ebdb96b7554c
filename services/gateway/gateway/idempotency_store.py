"""Where Idempotency-Key claims and kept responses live: one Redis hash per (user, key),
changed only by small Lua scripts, so a claim, a renewal and the final write are each atomic
and only the claim's owner can renew, fill or drop it (a lost lease stays lost)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from redis.asyncio import Redis

LEASE_S = 30.0

# KEYS[1] the record. ARGV: fingerprint, owner, lease ms. Returns nil when claimed, else {state, fingerprint}.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HMGET', KEYS[1], 'state', 'fp')
end
redis.call('HSET', KEYS[1], 'state', 'pending', 'fp', ARGV[1], 'owner', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return false
"""
# Only the owner of a pending claim may renew, fill or drop it (a lost lease stays lost).
_RENEW = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == 'pending' then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_COMPLETE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'headers', ARGV[3], 'body', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == 'pending' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Kept:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class IdempotencyStore:
    def __init__(self, redis: Redis, *, namespace: str, ttl_s: int) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:idempotency:"
        self._ttl_s = ttl_s
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._complete = redis.register_script(_COMPLETE)
        self._release = redis.register_script(_RELEASE)

    def record(self, user_id: str, key: str) -> str:
        user = hashlib.sha256(user_id.encode()).hexdigest()[:32]
        return f"{self._prefix}{user}:{hashlib.sha256(key.encode()).hexdigest()}"

    async def claim(self, record: str, fp: str, owner: str) -> tuple[str, str] | None:
        """None if this request now owns the key; else the holder's (state, fingerprint)."""
        found = await self._claim(keys=[record], args=[fp, owner, int(LEASE_S * 1000)])
        if found is None:
            return None
        state, held_fp = found
        if state is None:  # expired between the EXISTS and the HMGET
            return await self.claim(record, fp, owner)
        return state.decode(), held_fp.decode()

    async def renew(self, record: str, owner: str) -> None:
        await self._renew(keys=[record], args=[owner, int(LEASE_S * 1000)])

    async def complete(self, record: str, owner: str, response: Kept) -> bool:
        headers = json.dumps([[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.headers])
        args = [owner, response.status, headers, response.body, self._ttl_s]
        return bool(await self._complete(keys=[record], args=args))

    async def release(self, record: str, owner: str) -> None:
        await self._release(keys=[record], args=[owner])

    async def look(self, record: str) -> tuple[str, str] | None:
        state, fp = await self._redis.hmget(record, ["state", "fp"])
        return None if state is None else (state.decode(), fp.decode())

    async def replay(self, record: str) -> Kept | None:
        status, headers, body = await self._redis.hmget(record, ["status", "headers", "body"])
        if status is None:
            return None
        pairs = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(headers)]
        return Kept(int(status), pairs, body or b"")
