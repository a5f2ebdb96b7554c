"""The threads' log in MongoDB (`thread_log`): one document per page, a page being the turns
one flush of the usage writer kept in one partition of the users; and each partition's mark
(`thread_partitions`): the page up to which every turn is in its thread's segments.

A turn is kept (its requester answered) once its page is written; the partition's owner
writes the turns into their threads' segments at its next checkpoint and then moves the mark
(`thread_book.py`), so what a page holds is needed only until then: the next owner of the
partition replays the pages after the mark. A page's `_id` is `p<partition>:<seq>`, `seq`
counting up from 1 in each partition (`common.pages`), so appending page n twice is
impossible: whoever writes it second learns that another replica wrote the partition past
what it knows (the credits ledger's fencing, `credits/log.py`). Pages are read by `_id` only;
they expire after PAGE_TTL_S (a TTL index on `at`), long after their mark passed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from chat.thread_documents import PageDoc, TurnDoc, decode_turns, encode_turns
from common.pages import page_id, pages_after, partition_key

Doc = dict[str, Any]
PAGE_TTL_S = 7 * 24 * 3600


class Fenced(Exception):
    """The page exists: another replica wrote this partition past what this one knows."""


class ThreadLog:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        # The log is written here only: its documents are pages.
        self.pages = cast("AsyncCollection[PageDoc]", db["thread_log"])
        self.marks = db["thread_partitions"]

    async def create_indexes(self) -> None:
        await self.pages.create_index([("at", ASCENDING)], expireAfterSeconds=PAGE_TTL_S)

    async def append(self, partition: int, seq: int, turns: Sequence[TurnDoc], *, at: datetime) -> None:
        """Write page `seq` of the partition; Fenced if it exists."""
        key = page_id(partition, seq)
        page = PageDoc(_id=key, partition=partition, seq=seq, at=at, count=len(turns), turns=encode_turns(turns))
        try:
            await self.pages.insert_one(page)
        except DuplicateKeyError as exc:
            raise Fenced(page["_id"]) from exc

    async def after(self, partition: int, seq: int) -> list[tuple[int, list[TurnDoc]]]:
        """The pages after `seq`, oldest first, up to the partition's head: each with its turns
        (`common.pages.pages_after`)."""
        return [page async for page in pages_after(lambda n: self._read(partition, n), seq)]

    async def _read(self, partition: int, seq: int) -> tuple[int, list[TurnDoc]] | None:
        doc = await self.pages.find_one({"_id": page_id(partition, seq)})
        return None if doc is None else (seq, decode_turns(doc["turns"]))

    async def mark(self, partition: int) -> int:
        """The page up to which the partition's turns are in their threads' segments (0: none)."""
        doc = await self.marks.find_one({"_id": partition_key(partition)})
        return 0 if doc is None else int(doc["through"])

    async def move_mark(self, partition: int, *, since: int, to: int) -> bool:
        """Move the mark from `since` (as last read or written here) to `to`: False when it moved
        meanwhile (another replica owns the partition now)."""
        if since == 0:
            try:
                await self.marks.insert_one({"_id": partition_key(partition), "through": to})
            except DuplicateKeyError:
                return False
            return True
        done = await self.marks.update_one(
            {"_id": partition_key(partition), "through": since}, {"$set": {"through": to}}
        )
        return done.matched_count == 1
