"""Usage records: one per answer (provider, model, tokens, latency, cached, estimated cost),
stored in MongoDB's `usage` collection and announced as a UsageRecorded event.

Recording never delays or fails an answer: records go through a bounded in-memory queue to a
background writer. A record's id derives from the request's message id, so a redelivered
request cannot store it twice. What a crash loses is analytics, never money (the ledger is
the credits service's)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from common.contracts import Envelope, UsageRecorded

log = logging.getLogger(__name__)

Publish = Callable[[Envelope[UsageRecorded]], Awaitable[None]]


class UsageRecorder:
    def __init__(
        self, collection: AsyncCollection[dict[str, Any]], publish: Publish, *, capacity: int = 10_000
    ) -> None:
        self._collection = collection
        self._publish = publish
        self._queue: asyncio.Queue[tuple[str, UsageRecorded]] = asyncio.Queue(maxsize=capacity)
        self._indexed = False
        self._healthy = True  # the last write succeeded; a failing store is not waited for at shutdown

    def record(self, *, request_id: str, usage: UsageRecorded) -> None:
        try:
            self._queue.put_nowait((request_id, usage))
        except asyncio.QueueFull:
            log.warning("usage queue full; record dropped", extra={"usage_id": str(usage.usage_id)})

    async def run(self) -> None:
        while True:
            request_id, usage = await self._queue.get()
            await self._store(request_id, usage)

    async def close(self, *, timeout_s: float = 2.0) -> None:
        """Store what is still queued, for at most `timeout_s` (not at all while the store is failing)."""
        if not self._healthy and not self._queue.empty():
            log.warning("usage records left unsaved at shutdown", extra={"count": self._queue.qsize()})
            return
        try:
            async with asyncio.timeout(timeout_s):
                while not self._queue.empty():
                    await self._store(*self._queue.get_nowait())
        except TimeoutError:
            log.warning("usage records left unsaved at shutdown", extra={"count": self._queue.qsize()})

    async def _store(self, request_id: str, usage: UsageRecorded) -> None:
        try:
            if not self._indexed:
                await self._collection.create_index([("user_id", ASCENDING), ("at", DESCENDING)])
                self._indexed = True
            document = {"_id": str(usage.usage_id), "request_id": request_id, **usage.model_dump(exclude={"usage_id"})}
            try:
                await self._collection.insert_one(document)
            except DuplicateKeyError:
                return  # a redelivered request: recorded and announced the first time
            event = Envelope[UsageRecorded](
                message_id=usage.usage_id, type="UsageRecorded", request_id=request_id, payload=usage
            )
            await self._publish(event)
            self._healthy = True
        except Exception:
            self._healthy = False
            log.warning("usage record failed", exc_info=True, extra={"usage_id": str(usage.usage_id)})


def usage_id(message_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(message_id, "usage")
