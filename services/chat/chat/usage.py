"""Usage records: one per answer (provider, model, tokens, latency, cached, estimated cost),
stored in MongoDB's `usage` collection and announced as UsageRecorded events.

Recording never delays or fails an answer: records go through a bounded in-memory queue to a
background writer, which stores what gathered within CHAT_USAGE_FLUSH_S as ONE document (a page:
`{at, until, records: [...]}`) and announces it as one event, so a busy chat service writes
one document for many answers. Analytics unwind the pages. A record's id derives from the
request's message id; a redelivered request may be recorded again (at least once), and
readers count each id once. What a crash loses is analytics, never money (the ledger is the
credits service's)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from common.contracts import Envelope, UsageRecord, UsageRecorded

log = logging.getLogger(__name__)

Publish = Callable[[Envelope[UsageRecorded]], Awaitable[None]]
MAX_PAGE = 500


def record_document(usage: UsageRecord) -> dict[str, Any]:
    return {"_id": str(usage.usage_id), **usage.model_dump(exclude={"usage_id"})}


class UsageRecorder:
    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        publish: Publish,
        *,
        linger_s: float = 0.25,
        capacity: int = 10_000,
    ) -> None:
        self._collection = collection
        self._linger_s = linger_s
        self._publish = publish
        self._queue: asyncio.Queue[UsageRecord] = asyncio.Queue(maxsize=capacity)
        self._indexed = False
        self._healthy = True  # the last write succeeded; a failing store is not waited for at shutdown

    def record(self, usage: UsageRecord) -> None:
        try:
            self._queue.put_nowait(usage)
        except asyncio.QueueFull:
            log.warning("usage queue full; record dropped", extra={"usage_id": str(usage.usage_id)})

    async def run(self) -> None:
        while True:
            page = [await self._queue.get()]
            # Records are analytics: they may wait `linger_s` for company, and a page of many
            # costs the store about what a page of one does.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._linger_s):
                    while len(page) < MAX_PAGE:
                        page.append(await self._queue.get())
            await self._store(page)

    async def close(self, *, timeout_s: float = 2.0) -> None:
        """Store what is still queued, for at most `timeout_s` (not at all while the store is failing)."""
        if not self._healthy and not self._queue.empty():
            log.warning("usage records left unsaved at shutdown", extra={"count": self._queue.qsize()})
            return
        try:
            async with asyncio.timeout(timeout_s):
                while not self._queue.empty():
                    page = [self._queue.get_nowait() for _ in range(min(MAX_PAGE, self._queue.qsize()))]
                    await self._store(page)
        except TimeoutError:
            log.warning("usage records left unsaved at shutdown", extra={"count": self._queue.qsize()})

    async def _store(self, page: list[UsageRecord]) -> None:
        try:
            if not self._indexed:
                await self._collection.create_index([("at", ASCENDING)])
                self._indexed = True
            await self._collection.insert_one(
                {
                    "_id": uuid.uuid4().hex,
                    "at": min(u.at for u in page),
                    "until": max(u.at for u in page),
                    "records": [record_document(u) for u in page],
                }
            )
            event = Envelope[UsageRecorded](
                message_id=uuid.uuid5(page[0].usage_id, "page"),
                type="UsageRecorded",
                request_id=page[0].request_id or "usage",
                payload=UsageRecorded(records=page),
            )
            await self._publish(event)
            self._healthy = True
        except Exception:
            self._healthy = False
            log.warning("usage records failed", exc_info=True, extra={"count": len(page)})


def usage_id(message_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(message_id, "usage")
