"""MongoDB adapter of conversation threads: the `threads` and `thread_turns` collections, owned
by the chat service alone (see `threads.py` for their shape).

Every read and write names the owner: a thread of another user is not found, exactly like an
unknown id. The hot path reads by key only (the thread, then its turns newest first), so its
cost does not grow with a thread's or the collection's history; listing a user's threads is
the one query by owner. Turns never change once written, so each replica keeps the latest it
wrote or read in memory (TURN_CACHE of them) and reads from MongoDB only what it lacks: what
another replica wrote, or everything after a restart."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
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
from chat.threads import StoredTurn, TurnWrite, text_role, turn_key
from common.contracts import ThreadInfo, ThreadMessage
from common.errors import NotFound, ValidationFailed

log = logging.getLogger(__name__)

Doc = dict[str, Any]
NO_SUCH_THREAD = "no such thread"
DUPLICATE_KEY = 11000
TURN_CACHE = 20_000  # turns a replica keeps in memory (a few hundred bytes to a few KB each)
READ_CHUNK = 8  # turns read at once, newest first, when they are not in memory
SEQ_TRIES = 8  # a turn's number taken by a concurrent turn of its thread: try the next, this often


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

    async def get(self, thread_id: uuid.UUID | str, *, owner_id: str) -> ThreadDoc:
        doc = await self.threads.find_one({"_id": str(thread_id)})
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

    async def update(
        self, thread_id: uuid.UUID, *, owner_id: str, title: str | None, system: str | None, now: datetime
    ) -> ThreadDoc:
        changes: Doc = {"updatedAt": now}
        if title is not None:
            changes["title"] = title
        if system is not None:
            changes["system"] = system
        result = await self.threads.update_one({"_id": str(thread_id), "ownerId": owner_id}, {"$set": changes})
        if result.matched_count == 0:
            raise NotFound(NO_SUCH_THREAD)
        return await self.get(thread_id, owner_id=owner_id)

    async def delete(self, thread_id: uuid.UUID, *, owner_id: str) -> None:
        """The thread, then its turns (a turn landing in between is removed by `append`)."""
        result = await self.threads.delete_one({"_id": str(thread_id), "ownerId": owner_id})
        if result.deleted_count == 0:
            raise NotFound(NO_SUCH_THREAD)
        await self.turns.delete_many({"threadId": str(thread_id)})

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

    async def append(self, turns: Sequence[TurnWrite]) -> builtins.list[BaseException | None]:
        """Keep `turns` (one flush): their documents in one insert, then their threads' counters in
        one batch. Per turn: None when kept (or kept already: a repeat of its request), else why not.
        Two turns of one thread may have been given the same number; the later takes the next free one."""
        results: list[BaseException | None] = [None] * len(turns)
        current = list(turns)
        repeated: set[int] = set()
        pending = list(range(len(turns)))
        for _ in range(SEQ_TRIES):
            taken = await self._insert(current, pending, results)
            pending = []
            for i in taken:
                existing = await self.turns.find_one({"_id": current[i].key})
                if existing is not None and existing.get("turnId") == str(current[i].turn_id):
                    repeated.add(i)
                else:
                    current[i] = dataclasses.replace(current[i], seq=current[i].seq + 1)
                    pending.append(i)
            if not pending:
                break
        for i in pending:
            results[i] = NotKept("too many turns of this thread at once")
        kept = [i for i, r in enumerate(results) if r is None and i not in repeated]
        if kept:
            try:
                done = await self.threads.bulk_write(
                    [UpdateOne({"_id": current[i].thread_id}, current[i].thread_update()) for i in kept], ordered=False
                )
                if done.matched_count < len(kept):
                    await self._drop_orphans(current, kept, results)
            except Exception:  # the turns are kept; only their counters are lost
                log.warning("thread counters not updated", exc_info=True, extra={"count": len(kept)})
        for i, t in enumerate(current):
            if results[i] is None:
                self._recent.put(t.key, t.stored())
        return results

    async def _insert(
        self, turns: builtins.list[TurnWrite], indexes: builtins.list[int], results: builtins.list[BaseException | None]
    ) -> builtins.list[int]:
        """Insert the turns at `indexes`; those whose key was taken already."""
        try:
            await self.turns.insert_many([turns[i].document() for i in indexes], ordered=False)
        except BulkWriteError as exc:
            taken = []
            for error in exc.details.get("writeErrors", []):
                i = indexes[error["index"]]
                if error.get("code") == DUPLICATE_KEY:
                    taken.append(i)
                else:
                    results[i] = NotKept(error.get("errmsg", "turn not written"))
            return taken
        except Exception as exc:
            for i in indexes:
                results[i] = exc
        return []

    async def _drop_orphans(
        self, turns: Sequence[TurnWrite], kept: builtins.list[int], results: builtins.list[BaseException | None]
    ) -> None:
        """Threads deleted while a turn was being answered: remove the turns written for them."""
        ids = list({turns[i].thread_id for i in kept})
        alive = {d["_id"] for d in await self.threads.find({"_id": {"$in": ids}}, {"_id": 1}).to_list()}
        for thread_id in set(ids) - alive:
            await self.turns.delete_many({"threadId": thread_id})
        for i in kept:
            if turns[i].thread_id not in alive:
                results[i] = NotFound("the thread was deleted while the answer was being made")


class NotKept(Exception):
    """A turn the store refused."""
