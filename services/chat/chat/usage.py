"""Usage records: one per answer (provider, model, tokens, latency, cached, estimated cost),
stored in MongoDB's `usage` collection and announced as UsageRecorded events; and the turns
of threaded answers, kept in their threads by the same writer, in the same flush.

Recording never delays or fails an answer: records go through a bounded in-memory queue to a
background writer, which stores what gathered within CHAT_USAGE_FLUSH_S as ONE document (a page:
`{at, until, records: [...]}`) and announces it as one event, so a busy chat service writes
one document for many answers. Analytics unwind the pages. A record's id derives from the
request's message id; a redelivered request may be recorded again (at least once), and
readers count each id once. What a crash loses is analytics, never money (the ledger is the
credits service's).

A threaded answer's turn is different: the next request of its thread must see it, so its
requester waits until it is stored (`keep`). A turn lingers only while other threaded requests
are in hand, for CHAT_TURN_LINGER_S at most (group commit: turns that arrive while a flush runs
share the next), and the writer stores the turns of a flush as one page per partition (see
`thread_book.py`) before the usage page: a threaded request adds a share of one page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from common.contracts import Envelope, UsageRecord, UsageRecorded
from common.errors import ServiceUnavailable

if TYPE_CHECKING:
    from chat.thread_book import ThreadBook
    from chat.threads import TurnWrite

log = logging.getLogger(__name__)

Publish = Callable[[Envelope[UsageRecorded]], Awaitable[None]]
MAX_PAGE = 500


def record_document(usage: UsageRecord) -> dict[str, Any]:
    return {"_id": str(usage.usage_id), **usage.model_dump(exclude={"usage_id"})}


@dataclass(slots=True)
class _Entry:
    usage: UsageRecord
    turn: TurnWrite | None = None
    kept: asyncio.Future[None] | None = None  # set once the turn is stored (or failed to be)


class UsageRecorder:
    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        publish: Publish,
        *,
        linger_s: float = 0.25,
        turn_linger_s: float = 0.0,
        capacity: int = 10_000,
        threads: ThreadBook | None = None,
    ) -> None:
        self._collection = collection
        self._linger_s = linger_s
        self._turn_linger_s = turn_linger_s
        self._publish = publish
        self._threads = threads
        self._queue: asyncio.Queue[_Entry] = asyncio.Queue(maxsize=capacity)
        self._pending: list[UsageRecord] = []  # records of kept turns, waiting for their page
        self._due: float | None = None  # when the next page is due (loop time); None: nothing waits
        self._indexed = False
        self._healthy = True  # the last write succeeded; a failing store is not waited for at shutdown

    def record(self, usage: UsageRecord) -> None:
        try:
            self._queue.put_nowait(_Entry(usage))
        except asyncio.QueueFull:
            log.warning("usage queue full; record dropped", extra={"usage_id": str(usage.usage_id)})

    async def keep(self, usage: UsageRecord, turn: TurnWrite) -> None:
        """Store a threaded answer's turn with its usage record; returns once the turn is stored,
        raises why it was not (the usage record is then not stored either)."""
        if self._threads is None:
            raise ServiceUnavailable("conversations are not kept by this chat service")
        kept: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Entry(usage, turn, kept))
        except asyncio.QueueFull:
            raise ServiceUnavailable("the chat service is too busy to keep the conversation") from None
        await kept

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch: list[_Entry] = []
            # Records are analytics: they may wait `linger_s` for company, and a page of many
            # costs the store about what a page of one does. A turn's requester is waiting: a
            # turn ends the wait at once, and its record joins the page that is due next.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(self._due) as waiting:
                    batch.append(await self._queue.get())
                    if self._due is None:
                        self._due = loop.time() + self._linger_s
                        waiting.reschedule(self._due)
                    while len(batch) < MAX_PAGE and batch[-1].turn is None:
                        batch.append(await self._queue.get())
            while len(batch) < MAX_PAGE and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._gather_turns(batch)
            self._pending.extend(await self._keep_turns(batch))
            if not self._pending:
                self._due = None
            elif len(self._pending) >= MAX_PAGE or self._due is None or loop.time() >= self._due:
                page, self._pending = self._pending[:MAX_PAGE], self._pending[MAX_PAGE:]
                self._due = loop.time() if self._pending else None
                await self._store_usage(page)

    async def _gather_turns(self, batch: list[_Entry]) -> None:
        """Group commit: while other threaded requests are in hand, wait up to `turn_linger_s` for
        their turns, so that one page keeps them all (PostgreSQL's commit_delay with
        commit_siblings; at one request at a time nothing waits)."""
        turns = sum(e.turn is not None for e in batch)
        if not turns or self._threads is None or self._turn_linger_s <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._turn_linger_s):
                while len(batch) < MAX_PAGE and turns < self._threads.answering:
                    batch.append(entry := await self._queue.get())
                    turns += entry.turn is not None

    async def close(self, *, timeout_s: float = 2.0) -> None:
        """Store what is still queued, for at most `timeout_s` (not at all while the store is failing)."""
        if not self._healthy and not self._queue.empty():
            log.warning("usage records left unsaved at shutdown", extra={"count": self._queue.qsize()})
            self._abandon()
            return
        try:
            async with asyncio.timeout(timeout_s):
                while not self._queue.empty():
                    page = [self._queue.get_nowait() for _ in range(min(MAX_PAGE, self._queue.qsize()))]
                    self._pending.extend(await self._keep_turns(page))
                while self._pending:
                    records, self._pending = self._pending[:MAX_PAGE], self._pending[MAX_PAGE:]
                    await self._store_usage(records)
        except TimeoutError:
            log.warning("usage records left unsaved at shutdown", extra={"count": self._queue.qsize()})
            self._abandon()

    def _abandon(self) -> None:
        """Tell whoever still waits for a turn that it will not be kept."""
        while not self._queue.empty():
            entry = self._queue.get_nowait()
            if entry.kept is not None and not entry.kept.done():
                entry.kept.set_exception(ServiceUnavailable("the chat service stopped before keeping the turn"))

    async def _keep_turns(self, entries: list[_Entry]) -> list[UsageRecord]:
        """Store the turns among `entries` and tell their requesters; the usage records to store
        (those of turns that could not be kept are left out: that answer is not charged)."""
        threaded = [e for e in entries if e.turn is not None]
        if not threaded:
            return [e.usage for e in entries]
        assert self._threads is not None
        results: list[BaseException | None]
        try:
            results = await self._threads.keep([e.turn for e in threaded if e.turn is not None])
        except Exception as exc:  # append reports per turn; this is a bug, not the store
            results = [exc] * len(threaded)
        failed: set[int] = set()
        for entry, error in zip(threaded, results, strict=True):
            assert entry.kept is not None
            if error is not None:
                failed.add(id(entry))
            if entry.kept.done():  # its requester gave up waiting
                continue
            if error is None:
                entry.kept.set_result(None)
            else:
                entry.kept.set_exception(error)
        return [e.usage for e in entries if id(e) not in failed]

    async def _store_usage(self, page: list[UsageRecord]) -> None:
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
