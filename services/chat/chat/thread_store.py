"""MongoDB adapter of conversation threads: the `threads` and `thread_turns` collections, owned
by the chat service alone (see `threads.py` for their shape, `thread_book.py` for who writes).

Reads and writes go by key (a thread, its turns newest first, the turns after a number), so
their cost does not grow with a thread's or the collection's history; listing a user's threads
is the one query by owner. Turns never change once written, so each replica keeps the latest
it wrote or read in memory (TURN_CACHE of them) and reads from MongoDB only what it lacks: what
another replica wrote, or everything after a restart."""

from __future__ import annotations

import asyncio
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

from chat.thread_documents import ThreadDoc, TurnDoc
from chat.threads import StoredTurn, TurnWrite, counters, text_role, turn_key
from common.contracts import ThreadInfo, ThreadMessage
from common.errors import NotFound, ValidationFailed

log = logging.getLogger(__name__)

Doc = dict[str, Any]
NO_SUCH_THREAD = "no such thread"
DUPLICATE_KEY = 11000
TURN_CACHE = 20_000  # turns a replica keeps in memory (a few hundred bytes to a few KB each)
READ_CHUNK = 8  # turns read at once, newest first, when they are not in memory
PROBE = 8  # turn numbers read at once when counting the turns after a thread's `last`


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


def _bad_cursor(field: str) -> ValidationFailed:
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
        self.turns = cast("AsyncCollection[TurnDoc]", db["thread_turns"])
        self._recent = _Recent(cache_turns)

    async def create_indexes(self) -> None:
        await self.threads.create_index([("ownerId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)])
        await self.turns.create_index([("threadId", ASCENDING)])

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
                raise _bad_cursor("query.cursor")
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
        await self.turns.delete_many({"threadId": thread_id})

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

    async def newest_first(self, thread: ThreadDoc, *, below: int | None = None) -> AsyncIterator[StoredTurn]:
        """The thread's turns from its newest (or the one below `below`) back to its first, from
        memory or read by key, READ_CHUNK at a time; a number never written (a lost race) is skipped."""
        last = thread.get("last", -1)
        seq = last if below is None else min(below - 1, last)  # a cursor past the newest turn starts there
        while seq >= 0:
            chunk = range(seq, max(-1, seq - READ_CHUNK), -1)
            for turn in await self._read(thread["_id"], chunk):
                yield turn
            seq -= READ_CHUNK

    async def _read(self, thread_id: str, seqs: Iterable[int]) -> builtins.list[StoredTurn]:
        keys = [turn_key(thread_id, n) for n in seqs]
        found = {k: t for k in keys if (t := self._recent.get(k)) is not None}
        missing = [k for k in keys if k not in found]
        for doc in await asyncio.gather(*(self.turns.find_one({"_id": k}) for k in missing)):
            if doc is not None:
                found[doc["_id"]] = turn = StoredTurn.of(doc)
                self._recent.put(doc["_id"], turn)
        return [found[k] for k in keys if k in found]

    async def messages(
        self, thread: ThreadDoc, *, limit: int, before: str | None
    ) -> tuple[builtins.list[ThreadMessage], str | None]:
        """The latest whole turns holding at least `limit` messages (or all), oldest first; the cursor
        (the number of the oldest turn returned) reaches the turns before them."""
        below = None
        if before:  # the number of the oldest turn of the previous page (the contract's pattern)
            if not before.isdigit():
                raise _bad_cursor("query.cursor")
            below = int(before)
        picked: list[StoredTurn] = []  # newest first
        count = 0
        async for turn in self.newest_first(thread, below=below):
            picked.append(turn)
            count += len(turn.messages)
            if count >= limit:
                break
        cursor = str(picked[-1].seq) if picked and count >= limit and picked[-1].seq > 0 else None
        messages = [
            ThreadMessage(role=text_role(m.role), content=m.content, turn_id=uuid.UUID(t.turn_id), at=t.at)
            for t in reversed(picked)
            for m in t.messages
        ]
        return messages, cursor

    async def turn(self, key: str) -> TurnDoc | None:
        return await self.turns.find_one({"_id": key})

    async def turns_after(self, thread_id: str, last: int) -> builtins.list[TurnDoc]:
        """The thread's turns numbered after `last`, oldest first: read by key, PROBE numbers at
        a time while the last of them exists (a number skipped once, by a turn that failed to be
        written, is passed over; the turns after such a hole at the end of a probe are found
        when the owner next numbers a turn there)."""
        found: list[TurnDoc] = []
        seq = last + 1
        first = await self.turns.find_one({"_id": turn_key(thread_id, seq)})  # mostly none: one read
        if first is None:
            return found
        found.append(first)
        seq += 1
        while True:
            keys = [turn_key(thread_id, n) for n in range(seq, seq + PROBE)]
            docs = sorted(await self.turns.find({"_id": {"$in": keys}}).to_list(), key=lambda d: d["seq"])
            found.extend(docs)
            if not docs or docs[-1]["seq"] != seq + PROBE - 1:
                break
            seq += PROBE
        for doc in found:
            self._recent.put(doc["_id"], StoredTurn.of(doc))
        return found

    async def insert_turns(self, turns: Sequence[TurnWrite]) -> builtins.list[BaseException | None]:
        """Insert `turns` at once. Per turn: None when written, `Taken` when its key was, else why not."""
        results: list[BaseException | None] = [None] * len(turns)
        try:
            await self.turns.insert_many([t.document() for t in turns], ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                index = error["index"]
                taken = error.get("code") == DUPLICATE_KEY
                results[index] = Taken(turns[index].key) if taken else NotKept(error.get("errmsg", "turn not written"))
        except Exception as exc:
            results = [exc] * len(turns)
        for turn, result in zip(turns, results, strict=True):
            if result is None:
                self._recent.put(turn.key, turn.stored())
        return results


class Taken(Exception):
    """A turn number some other turn of the thread was written under."""


class NotKept(Exception):
    """A turn the store refused."""
