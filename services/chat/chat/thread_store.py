"""MongoDB adapter of conversation threads: the `threads` collection and the turns' segments in
`thread_turns`, owned by the chat service alone (see `threads.py` for their shape,
`thread_book.py` for who writes, `thread_log.py` for where a turn is kept first).

A segment is a run of one thread's turns, written by a checkpoint as one document keyed by its
thread and its newest turn's number, the turns in one encoded field. Reads and writes go by key
(a thread, the segment ending at a number), so their cost does not grow with a thread's or the
collection's history; listing a user's threads is the one query by owner. Turns never change
once written, so each replica keeps the latest it wrote or read in memory (TURN_CACHE of them)
and reads from MongoDB only what it lacks: what another replica wrote, or everything after a
restart."""

from __future__ import annotations

import builtins
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from chat.thread_documents import SegmentDoc, ThreadDoc, TurnDoc, decode_turns, encode_turns
from chat.threads import StoredTurn, counters, turn_key
from common.contracts import ThreadInfo
from common.errors import NotFound, ValidationFailed

log = logging.getLogger(__name__)

Doc = dict[str, Any]
NO_SUCH_THREAD = "no such thread"
DUPLICATE_KEY = 11000
TURN_CACHE = 20_000  # turns a replica keeps in memory (a few hundred bytes to a few KB each)
SEGMENT_TURNS = 32  # turns in one segment at most


def info_of(doc: ThreadDoc) -> ThreadInfo:
    return ThreadInfo(
        thread_id=uuid.UUID(doc["_id"]),
        title=doc.get("title") or doc.get("autoTitle"),
        system=doc.get("system"),
        turns=doc.get("turns", 0),
        messages=doc.get("messages", 0),
        prompt_tokens=doc.get("promptTokens", 0),
        completion_tokens=doc.get("completionTokens", 0),
        credits=doc.get("credits", 0),
        cost_usd=round(doc.get("costUsd", 0.0), 9),
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_MS = (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


def bad_cursor(field: str) -> ValidationFailed:
    return ValidationFailed(
        "malformed cursor",
        errors=[{"field": field, "message": "not a cursor from a previous page", "type": "value_error"}],
    )


class _Recent:
    """The latest turns this replica saw, least recently used out first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._turns: OrderedDict[str, StoredTurn] = OrderedDict()

    def get(self, key: str) -> StoredTurn | None:
        turn = self._turns.get(key)
        if turn is not None:
            self._turns.move_to_end(key)
        return turn

    def put(self, key: str, turn: StoredTurn) -> None:
        self._turns[key] = turn
        self._turns.move_to_end(key)
        while len(self._turns) > self._size:
            self._turns.popitem(last=False)


class ThreadStore:
    def __init__(self, db: AsyncDatabase[Doc], *, cache_turns: int = TURN_CACHE) -> None:
        # The store is the only writer of both collections: their documents are these types.
        self.threads = cast("AsyncCollection[ThreadDoc]", db["threads"])
        self.segments = cast("AsyncCollection[SegmentDoc | TurnDoc]", db["thread_turns"])
        self._recent = _Recent(cache_turns)

    async def create_indexes(self) -> None:
        await self.threads.create_index([("ownerId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)])
        await self.segments.create_index([("threadId", ASCENDING)])

    # -- threads -------------------------------------------------------------------------------

    async def create(
        self, *, thread_id: uuid.UUID, owner_id: str, title: str | None, system: str | None, now: datetime
    ) -> ThreadDoc:
        doc: ThreadDoc = {
            "_id": str(thread_id),
            "ownerId": owner_id,
            "title": title,
            "autoTitle": None,
            "system": system,
            "last": -1,
            "turns": 0,
            "messages": 0,
            "promptTokens": 0,
            "completionTokens": 0,
            "credits": 0,
            "costUsd": 0.0,
            "createdAt": now,
            "updatedAt": now,
        }
        try:
            await self.threads.insert_one(doc)
        except DuplicateKeyError:  # a repeated request (same id): its thread, if it is the caller's
            return await self.get(thread_id, owner_id=owner_id)
        return doc

    async def find(self, thread_id: str) -> ThreadDoc | None:
        return await self.threads.find_one({"_id": thread_id})

    async def get(self, thread_id: uuid.UUID | str, *, owner_id: str) -> ThreadDoc:
        doc = await self.find(str(thread_id))
        if doc is None or doc["ownerId"] != owner_id:
            raise NotFound(NO_SUCH_THREAD)
        return doc

    async def list(self, *, owner_id: str, limit: int, before: str | None) -> tuple[list[ThreadDoc], str | None]:
        """The owner's threads, newest first, by keyset pagination on (createdAt, _id)."""
        query: Doc = {"ownerId": owner_id}
        if before:
            ms, _, last_id = before.partition(".")  # `<created epoch-ms>.<thread id>` (the contract's pattern)
            if not ms.isdigit() or not last_id:
                raise bad_cursor("query.cursor")
            at = _EPOCH + timedelta(milliseconds=min(int(ms), _LAST_MS))  # past year 9999: from the newest
            query["$or"] = [{"createdAt": {"$lt": at}}, {"createdAt": at, "_id": {"$lt": last_id}}]
        docs = (
            await self.threads.find(query)
            .sort([("createdAt", DESCENDING), ("_id", DESCENDING)])
            .limit(limit + 1)
            .to_list()
        )
        cursor = None
        if len(docs) > limit:
            last = docs[limit - 1]
            created = last["createdAt"] if last["createdAt"].tzinfo else last["createdAt"].replace(tzinfo=UTC)
            cursor = f"{(created - _EPOCH) // timedelta(milliseconds=1)}.{last['_id']}"
        return docs[:limit], cursor

    async def update(self, thread_id: str, *, owner_id: str, changes: Doc) -> None:
        """Set the owner-chosen fields `changes` (title, system prompt, updatedAt)."""
        result = await self.threads.update_one({"_id": thread_id, "ownerId": owner_id}, {"$set": changes})
        if result.matched_count == 0:
            raise NotFound(NO_SUCH_THREAD)

    async def delete(self, thread_id: str, *, owner_id: str) -> None:
        """The thread, then its turns."""
        result = await self.threads.delete_one({"_id": thread_id, "ownerId": owner_id})
        if result.deleted_count == 0:
            raise NotFound(NO_SUCH_THREAD)
        await self.segments.delete_many({"threadId": thread_id})

    async def checkpoint(self, threads: Sequence[ThreadDoc], *, since: Sequence[int]) -> bool:
        """Write the counters of `threads`, each only if its document still counts the turns up
        to `since` (its `last` when it was read or last written): False when one did not (another
        replica wrote it, or it was deleted) and which is unknown."""
        if not threads:
            return True
        done = await self.threads.bulk_write(
            [
                UpdateOne(
                    {"_id": t["_id"], "last": last},
                    {"$set": counters(t), "$max": {"updatedAt": t["updatedAt"]}},
                )
                for t, last in zip(threads, since, strict=True)
            ],
            ordered=False,
        )
        return done.matched_count == len(threads)

    # -- turns -----------------------------------------------------------------------------------

    def remember(self, key: str, turn: StoredTurn) -> None:
        """A turn just kept (or replayed from the log): readers find it here until it is evicted."""
        self._recent.put(key, turn)

    async def compact(self, runs: Iterable[tuple[str, Sequence[TurnDoc]]]) -> None:
        """Write each thread's run of turns (oldest first) as segments of at most SEGMENT_TURNS.
        A segment already written (a checkpoint repeated after a crash or by another owner) holds
        the same turns, numbers being given once (the log's fencing): it is left as it is."""
        docs: list[SegmentDoc] = []
        for thread_id, turns in runs:
            for i in range(0, len(turns), SEGMENT_TURNS):
                chunk = turns[i : i + SEGMENT_TURNS]
                first, last = chunk[0]["seq"], chunk[-1]["seq"]
                key = turn_key(thread_id, last)
                docs.append(SegmentDoc(_id=key, threadId=thread_id, first=first, last=last, turns=encode_turns(chunk)))
        if not docs:
            return
        try:
            await self.segments.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    async def newest_first(self, thread_id: str, *, start: int, top: int) -> AsyncIterator[StoredTurn]:
        """The thread's stored turns from number `start` back to its first, `top` being the newest
        stored (its document's `last`): from memory, or a segment at a time (a number never
        written, left by a lost race before segments, is skipped)."""
        seq = start
        while seq >= 0:
            cached = self._recent.get(turn_key(thread_id, seq))
            if cached is not None:
                yield cached
                seq -= 1
                continue
            turns = [t for t in await self._segment(thread_id, seq, top=top) if t["seq"] <= seq]
            if not turns:
                seq -= 1
                continue
            for turn in sorted(turns, key=lambda t: t["seq"], reverse=True):
                stored = StoredTurn.of(turn)
                self.remember(turn["_id"], stored)
                yield stored
            seq = min(t["seq"] for t in turns) - 1

    async def turn(self, thread_id: str, seq: int, *, top: int) -> TurnDoc | None:
        return next((t for t in await self._segment(thread_id, seq, top=top) if t["seq"] == seq), None)

    async def _segment(self, thread_id: str, seq: int, *, top: int) -> builtins.list[TurnDoc]:
        """The turns of the segment holding number `seq`: the one that ends there, else the one
        reached walking down from the newest (`top`), segment by segment, each read by key (a
        query for the keys after `seq` would scan the collection on some servers); the segments
        walked past are kept in memory, so reading on from there costs nothing more."""
        doc = await self.segments.find_one({"_id": turn_key(thread_id, seq)})
        end = top
        while doc is None and end > seq:
            above = await self.segments.find_one({"_id": turn_key(thread_id, end)})
            if above is None:
                break  # a number never written (before segments): the walk cannot pass it
            if _first(above) <= seq:
                doc = above
                break
            for turn in _turns(above):
                self.remember(turn["_id"], StoredTurn.of(turn))
            end = _first(above) - 1
        return [] if doc is None else _turns(doc)


def _first(doc: SegmentDoc | TurnDoc) -> int:
    return doc["first"] if "turns" in doc else doc["seq"]  # type: ignore[typeddict-item]


def _turns(doc: SegmentDoc | TurnDoc) -> builtins.list[TurnDoc]:
    """A segment's turns; a document from before segments is one turn."""
    if "turns" in doc:
        return decode_turns(doc["turns"])  # type: ignore[typeddict-item]
    return [doc]


class NotKept(Exception):
    """A turn the store refused."""
