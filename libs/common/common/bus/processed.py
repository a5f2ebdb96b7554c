"""Which messages a service has already handled, and what it answered.

A redelivered message (the consumer died before its ack, or a publisher retried after a
lost confirm) finds its first reply here and gets it again, without a second effect.
"""

from __future__ import annotations

import uuid

from common.redis_client import RedisClient, as_bytes

DEFAULT_TTL_S = 24 * 3600


class ProcessedMessages:
    def __init__(self, redis: RedisClient, *, namespace: str, service: str, ttl_s: int = DEFAULT_TTL_S) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:processed:{service}:"
        self._ttl_s = ttl_s

    async def reply_for(self, message_id: uuid.UUID) -> bytes | None:
        """The stored reply body (b"" for a message that had none), or None if never handled."""
        return as_bytes(await self._redis.get(self._prefix + str(message_id)))

    async def record(self, message_id: uuid.UUID, reply: bytes) -> None:
        await self._redis.set(self._prefix + str(message_id), reply, ex=self._ttl_s)
