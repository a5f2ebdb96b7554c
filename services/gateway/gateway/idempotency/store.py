"""Where Idempotency-Key claims and kept responses live: one Redis hash per (user, key),
changed only by small Lua scripts, so a claim, a renewal and the final write are each atomic
and only the claim's owner can renew, fill or drop it (a lost lease stays lost).

What one user's kept responses hold is bounded: each kept record counts its size (and a fixed
overhead) against the user's budget (IDEMPOTENCY_MAX_BYTES_PER_USER, renewed every
IDEMPOTENCY_TTL_S); once it is spent, new keys are refused (429) until it renews, while the
retries of kept keys are still answered. A user's keys share one hash slot (`{user}`), so the
scripts run on Redis Cluster too."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from common.errors import RateLimited
from common.redis_client import RedisClient, as_bytes

LEASE_S = 30.0

# KEYS[1] the record, KEYS[2] the user's kept bytes. ARGV: fingerprint, owner, lease ms, budget.
# Returns nil when claimed, {state, fingerprint} of an existing record, or {'spent', ttl s}.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HMGET', KEYS[1], 'state', 'fp')
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[4]) then
  return {'spent', tostring(redis.call('TTL', KEYS[2]))}
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
# KEYS[1] the record, KEYS[2] the user's kept bytes. ARGV: owner, ttl s, status, headers, body.
# The budget counter lives as long as a record does, from the first record it counts.
_COMPLETE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[3], 'headers', ARGV[4], 'body', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('INCRBY', KEYS[2], string.len(ARGV[5]) + 1024) == string.len(ARGV[5]) + 1024 then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""
_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == 'pending' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class IdempotencyStore:
    def __init__(self, redis: RedisClient, *, namespace: str, ttl_s: int, max_bytes_per_user: int) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:idempotency:"
        self._ttl_s = ttl_s
        self._budget = max_bytes_per_user
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._complete = redis.register_script(_COMPLETE)
        self._release = redis.register_script(_RELEASE)

    def record(self, user_id: str, key: str) -> str:
        return f"{self._prefix}{_slot(user_id)}:{hashlib.sha256(key.encode()).hexdigest()}"

    def usage(self, record: str) -> str:
        """The kept-bytes counter of the user a record belongs to (same hash slot)."""
        return self._prefix + "bytes:" + record.removeprefix(self._prefix).partition(":")[0]

    async def claim(self, record: str, fp: str, owner: str) -> tuple[str, str] | None:
        """None if this request now owns the key; else the holder's (state, fingerprint).
        Raises RateLimited for a new key once the user's budget of kept responses is spent."""
        found = await self._claim(
            keys=[record, self.usage(record)], args=[fp, owner, int(LEASE_S * 1000), self._budget]
        )
        if found is None:
            return None
        state, held = found
        if state is None:  # expired between the EXISTS and the HMGET
            return await self.claim(record, fp, owner)
        if state == b"spent":
            wait = max(int(held), 1)
            raise RateLimited(
                "your budget of kept Idempotency-Key responses is spent; send this request without a key or "
                "retry later",
                limit="idempotency",
                retry_after=wait,
            )
        return state.decode(), held.decode()

    async def renew(self, record: str, owner: str) -> None:
        await self._renew(keys=[record], args=[owner, int(LEASE_S * 1000)])

    async def complete(self, record: str, owner: str, response: StoredResponse) -> bool:
        """Keep `response` for replays (False: the lease was lost)."""
        args = [owner, self._ttl_s, *_fields(response)]
        return bool(await self._complete(keys=[record, self.usage(record)], args=args))

    async def release(self, record: str, owner: str) -> None:
        await self._release(keys=[record], args=[owner])

    async def look(self, record: str) -> tuple[str, str] | None:
        state, fp = await self._redis.hmget(record, ["state", "fp"])
        return None if state is None else (_text(state), _text(fp))

    async def replay(self, record: str) -> StoredResponse | None:
        status, headers, body = await self._redis.hmget(record, ["status", "headers", "body"])
        if status is None:
            return None
        pairs = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(_text(headers))]
        return StoredResponse(int(status), pairs, as_bytes(body) or b"")


def _slot(user_id: str) -> str:
    """A user's part of a key, in braces: every key of one user hashes to one cluster slot."""
    return "{" + hashlib.sha256(user_id.encode()).hexdigest()[:32] + "}"


def _text(value: bytes | str | None) -> str:
    """A field of a record the scripts write whole: present whenever the record is."""
    raw = as_bytes(value)
    if raw is None:
        raise LookupError("an idempotency record lacks a field its scripts always write")
    return raw.decode()


def _fields(response: StoredResponse) -> list[int | str | bytes]:
    headers = json.dumps([[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.headers])
    return [response.status, headers, response.body]
