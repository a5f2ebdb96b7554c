"""MongoDB adapter of conversation threads: the `threads` and `thread_pages` collections, owned
by the chat service alone (see `threads.py` for their shape).

Every read and write names the owner: a thread of another user is not found, exactly like an
unknown id. The hot path reads by key only (the thread, then its pages newest first), so its
cost does not grow with a thread's or the collection's history; listing a user's threads is
the one query by owner."""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from chat.threads import TurnWrite, page_id
from common.contracts import ThreadInfo, ThreadMessage
from common.errors import NotFound, ValidationFailed

log = logging.getLogger(__name__)

Doc = dict[str, Any]
NO_SUCH_THREAD = "no such thread"
DUPLICATE_KEY = 11000


def info_of(doc: Doc) -> ThreadInfo:
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


def _encode(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode()


def _bad_cursor(field: str) -> ValidationFailed:
    return ValidationFailed(
        "malformed cursor",
        errors=[{"field": field, "message": "not a cursor from a previous page", "type": "value_error"}],
    )


def _decode(cursor: str, field: str) -> tuple[str, str]:
    try:
        first, sep, second = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _bad_cursor(field) from exc
    if not sep:
        raise _bad_cursor(field)
    return first, second


class ThreadStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.threads: AsyncCollection[Doc] = db["threads"]
        self.pages: AsyncCollection[Doc] = db["thread_pages"]

    async def create_indexes(self) -> None:
        await self.threads.create_index([("ownerId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)])
        await self.pages.create_index([("threadId", ASCENDING)])

    # -- threads -------------------------------------------------------------------------------

    async def create(
        self, *, thread_id: uuid.UUID, owner_id: str, title: str | None, system: str | None, now: datetime
    ) -> Doc:
        doc: Doc = {
            "_id": str(thread_id),
            "ownerId": owner_id,
            "title": title,
            "autoTitle": None,
            "system": system,
            "page": 0,
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

    async def get(self, thread_id: uuid.UUID | str, *, owner_id: str) -> Doc:
        doc = await self.threads.find_one({"_id": str(thread_id)})
        if doc is None or doc["ownerId"] != owner_id:
            raise NotFound(NO_SUCH_THREAD)
        return doc

    async def list(self, *, owner_id: str, limit: int, before: str | None) -> tuple[list[Doc], str | None]:
        """The owner's threads, newest first, by keyset pagination on (createdAt, _id)."""
        query: Doc = {"ownerId": owner_id}
        if before:
            at_iso, last_id = _decode(before, "query.cursor")
            try:
                at = datetime.fromisoformat(at_iso)
            except ValueError as exc:
                raise _bad_cursor("query.cursor") from exc
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
            cursor = _encode(last["createdAt"].isoformat(), last["_id"])
        return docs[:limit], cursor

    async def update(
        self, thread_id: uuid.UUID, *, owner_id: str, title: str | None, system: str | None, now: datetime
    ) -> Doc:
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
        """The thread, then its pages (a turn landing in between is removed by `append`)."""
        result = await self.threads.delete_one({"_id": str(thread_id), "ownerId": owner_id})
        if result.deleted_count == 0:
            raise NotFound(NO_SUCH_THREAD)
        await self.pages.delete_many({"threadId": str(thread_id)})

    # -- pages -----------------------------------------------------------------------------------

    async def pages_newest_first(self, thread: Doc, *, start: int | None = None) -> AsyncIterator[tuple[int, Doc]]:
        """The thread's pages from `start` (default: its current page) back to the first, each read by key;
        a page not written yet (a current page still empty) is skipped."""
        n = thread.get("page", 0) if start is None else start
        while n >= 0:
            page = await self.pages.find_one({"_id": page_id(thread["_id"], n)})
            if page is not None:
                yield n, page
            n -= 1

    async def messages(self, thread: Doc, *, limit: int, before: str | None) -> tuple[list[ThreadMessage], str | None]:
        """The latest whole turns holding at least `limit` messages (or all), oldest first; the cursor
        (a page and how many of its first turns are left) reaches the turns before them. Turns are
        only ever added after the last, so a cursor stays right while the thread grows."""
        start, upto = thread.get("page", 0), None
        if before:
            page_s, upto_s = _decode(before, "query.cursor")
            if not (page_s.isdigit() and upto_s.isdigit()):
                raise _bad_cursor("query.cursor")
            start, upto = int(page_s), int(upto_s)
        picked: list[Doc] = []  # turns, newest first
        count = 0
        cursor: str | None = None
        async for n, page in self.pages_newest_first(thread, start=start):
            turns = page["turns"][:upto] if n == start and upto is not None else page["turns"]
            for i in range(len(turns) - 1, -1, -1):
                if count >= limit:
                    cursor = _encode(str(n), str(i + 1))
                    break
                picked.append(turns[i])
                count += len(turns[i]["messages"])
            if cursor is not None:
                break
        messages = [
            ThreadMessage(role=m["role"], content=m["content"], turn_id=uuid.UUID(t["id"]), at=t["at"])
            for t in reversed(picked)
            for m in t["messages"]
        ]
        return messages, cursor

    async def append(self, turns: Sequence[TurnWrite]) -> list[BaseException | None]:
        """Keep `turns` (one flush): their pages first, then their threads' counters, two batched
        writes in all. Per turn: None when kept (or kept already: a repeat of its request), else why not."""
        results: list[BaseException | None] = [None] * len(turns)
        page_ops = [
            UpdateOne(
                # A repeat of a kept turn matches nothing and its upsert hits the page's _id: a duplicate.
                {"_id": page_id(t.thread_id, t.page), "turns.id": {"$ne": str(t.turn_id)}},
                {
                    "$push": {"turns": t.turn_document()},
                    "$setOnInsert": {"threadId": t.thread_id, "ownerId": t.owner_id, "n": t.page, "createdAt": t.at},
                },
                upsert=True,
            )
            for t in turns
        ]
        repeated: set[int] = set()
        try:
            await self.pages.bulk_write(page_ops, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                index = error["index"]
                if error.get("code") == DUPLICATE_KEY:
                    repeated.add(index)
                else:
                    results[index] = NotKept(error.get("errmsg", "page write failed"))
        except Exception as exc:
            return [exc] * len(turns)
        kept = [i for i, r in enumerate(results) if r is None and i not in repeated]
        if not kept:
            return results
        try:
            done = await self.threads.bulk_write(
                [UpdateOne({"_id": turns[i].thread_id}, turns[i].thread_update()) for i in kept], ordered=False
            )
            if done.matched_count < len(kept):
                await self._drop_orphans(turns, kept, results)
        except Exception:  # the turns are kept; only their counters are lost
            log.warning("thread counters not updated", exc_info=True, extra={"count": len(kept)})
        return results

    async def _drop_orphans(
        self, turns: Sequence[TurnWrite], kept: list[int], results: list[BaseException | None]
    ) -> None:
        """Threads deleted while a turn was being answered: remove the pages that turn recreated."""
        ids = list({turns[i].thread_id for i in kept})
        alive = {d["_id"] for d in await self.threads.find({"_id": {"$in": ids}}, {"_id": 1}).to_list()}
        for thread_id in set(ids) - alive:
            await self.pages.delete_many({"threadId": thread_id})
        for i in kept:
            if turns[i].thread_id not in alive:
                results[i] = NotFound("the thread was deleted while the answer was being made")


class NotKept(Exception):
    """A turn the store refused."""
