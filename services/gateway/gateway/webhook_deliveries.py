"""Which Clerk webhook deliveries were handled already, by their `svix-id`.

Svix delivers a message again when our answer is lost or late, with the same `svix-id` (and a
fresh signature). The answer to a handled message is kept in Redis for DEDUPE_TTL_S, longer
than Svix's retry schedule (about 28 hours), and a redelivery is answered with it without
being handled again. Handling is idempotent and ordered by the event's time on its own, so
with Redis unreachable a delivery is handled rather than refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from common.redis_client import REDIS_ERRORS, RedisClient

log = logging.getLogger(__name__)

DEDUPE_TTL_S = 3 * 24 * 3600


class WebhookDeliveries:
    def __init__(self, redis: RedisClient, *, namespace: str) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:clerk-webhook:"

    def _key(self, svix_id: str) -> str:
        return self._prefix + hashlib.sha256(svix_id.encode()).hexdigest()

    async def answer(self, svix_id: str) -> dict[str, Any] | None:
        """The answer given when this message was handled, or None if it was not (or Redis is down)."""
        try:
            kept = await self._redis.get(self._key(svix_id))
        except REDIS_ERRORS as exc:
            log.warning("webhook deliveries unreadable; handling without dedupe", extra={"error": repr(exc)})
            return None
        return json.loads(kept) if kept is not None else None

    async def handled(self, svix_id: str, answer: dict[str, Any]) -> None:
        try:
            await self._redis.set(self._key(svix_id), json.dumps(answer), ex=DEDUPE_TTL_S)
        except REDIS_ERRORS as exc:
            log.warning("webhook delivery not recorded", extra={"error": repr(exc)})
