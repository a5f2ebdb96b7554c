"""The ledger's log in MongoDB (`credit_log`): one document per page, a page being the entries
one batch of operations produced in one partition.

A page's `_id` is `p<partition>:<seq>` (`common.pages`), so appending page n+1 twice is
impossible: whoever writes it second gets a duplicate key and learns that another replica owns
(or owned) the partition and wrote past what it knows. That fencing is what keeps two owners
from diverging, however RabbitMQ's single active consumer hands a partition over. Pages are
only ever read by `_id`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, cast

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common.pages import page_id, pages_after
from credits.entries import FORMAT, Entry, decode, encode

Doc = dict[str, Any]


class PageDoc(TypedDict):
    """A page of `credit_log` as stored."""

    _id: str  # page_id(partition, seq)
    partition: int
    seq: int
    at: datetime
    format: int
    count: int
    entries: str  # `entries.encode`d


class Fenced(Exception):
    """The page already exists: another replica wrote this partition past what this one knows."""


@dataclass(frozen=True, slots=True)
class Page:
    partition: int
    seq: int
    at: datetime
    entries: list[Entry]


def _page(doc: PageDoc) -> Page:
    return Page(doc["partition"], doc["seq"], doc["at"], decode(doc["entries"]))


class LedgerLog:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        # The log is written here only: its documents are pages.
        self.pages = cast("AsyncCollection[PageDoc]", db["credit_log"])

    async def create_indexes(self) -> None:
        await self.pages.create_index([("at", ASCENDING)])  # reports over a period

    async def append(self, *, partition: int, seq: int, at: datetime, entries: list[Entry]) -> None:
        try:
            await self.pages.insert_one(
                PageDoc(
                    _id=page_id(partition, seq),
                    partition=partition,
                    seq=seq,
                    at=at,
                    format=FORMAT,
                    count=len(entries),
                    entries=encode(entries),
                )
            )
        except DuplicateKeyError as exc:
            raise Fenced(page_id(partition, seq)) from exc

    async def read(self, partition: int, seq: int) -> Page | None:
        doc = await self.pages.find_one({"_id": page_id(partition, seq)})
        return _page(doc) if doc is not None else None

    async def after(self, partition: int, seq: int) -> AsyncIterator[Page]:
        """The pages after `seq`, oldest first, up to the partition's head (`common.pages.pages_after`)."""
        async for page in pages_after(lambda n: self.read(partition, n), seq):
            yield page

    async def scan(self, query: Doc | None = None) -> AsyncIterator[Page]:
        """Every page (matching `query`), in partition and page order: the whole journal."""
        async for doc in self.pages.find(query or {}).sort("_id", ASCENDING):
            yield _page(doc)
