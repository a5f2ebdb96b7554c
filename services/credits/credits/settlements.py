"""Settlement digests (`credit_settlements`): the reservations settled between two checkpoints.

A replica loading a partition must know every reservation settled within the replay window
(`credits.book`: a repeated commit, release or reserve gets its first answer). Read back from
the log, that is one document per page, and a busy partition writes hundreds of pages a
second: a takeover after fifteen minutes of such load would read 100,000 of them first. So a
checkpoint also writes what was settled in the pages it covers as a digest (one document per
MAX_SETTLED), chained to the digest before it, and the partition's marker names the newest
(`credits.accounts`). A load reads back window ÷ CHECKPOINT_INTERVAL_S digests, however many
pages the window holds.

A digest covers the pages (`since`, `through`]. Pages from before the partition's first
digest (a ledger written before digests existed), or covered by a digest that is gone, are
read as before, page by page back to the window's start. A digest written by a checkpoint
that then failed is named by no marker and never read; digests expire after DIGEST_TTL_S.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, cast

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from common.pages import partition_key
from credits.book import Settled
from credits.entries import from_millis, millis

Doc = dict[str, Any]
MAX_SETTLED = 4096  # settlements in one digest document at most (a document stays well under 1 MB)
DIGEST_TTL_S = 7 * 24 * 3600  # far beyond any sensible replay window; a missing one is read from the log


class DigestDoc(TypedDict):
    _id: str  # digest_id(partition, through, ...)
    partition: int
    since: int  # the pages it covers: after this one...
    through: int  # ...up to this one
    after: str | None  # the digest before it (None: the partition's first)
    at: datetime  # when its checkpoint was written: everything in it settled before
    count: int
    settled: str  # JSON rows: [reservation id, user id, kind, held, used, expires ms, at ms]


def digest_id(partition: int, through: int) -> str:
    """A fresh id: a checkpoint retried at the same page writes a new digest, never over one."""
    return f"{partition_key(partition)}:{through:012d}:{uuid.uuid4().hex[:12]}"


def through_of(digest: str) -> int:
    return int(digest.split(":")[1])


def encode(settled: Sequence[tuple[str, Settled]]) -> str:
    rows = [[rid, s.user_id, s.kind, s.held, s.used, millis(s.expires_at), millis(s.at)] for rid, s in settled]
    return json.dumps(rows, separators=(",", ":"))


def decode(text: str) -> list[tuple[str, Settled]]:
    return [
        (rid, Settled(user, kind, held, used, from_millis(expires), from_millis(at)))
        for rid, user, kind, held, used, expires, at in json.loads(text)
    ]


class Settlements:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        # Written here only: its documents are digests.
        self.digests = cast("AsyncCollection[DigestDoc]", db["credit_settlements"])

    async def create_indexes(self) -> None:
        await self.digests.create_index([("at", ASCENDING)], expireAfterSeconds=DIGEST_TTL_S)

    async def write(
        self,
        *,
        partition: int,
        since: int,
        through: int,
        after: str | None,
        settled: Sequence[tuple[str, Settled]],
        at: datetime,
    ) -> str | None:
        """Write the settlements of the pages (`since`, `through`] after the digest `after`; the
        newest digest's id (`after` itself when there is nothing to write)."""
        docs: list[DigestDoc] = []
        for i in range(0, len(settled), MAX_SETTLED):
            chunk = settled[i : i + MAX_SETTLED]
            doc = DigestDoc(
                _id=digest_id(partition, through),
                partition=partition,
                since=since,
                through=through,
                after=after,
                at=at,
                count=len(chunk),
                settled=encode(chunk),
            )
            docs.append(doc)
            after = doc["_id"]
        if docs:
            await self.digests.insert_many(docs, ordered=True)
        return after

    async def window(self, newest: str, *, cutoff: datetime) -> tuple[list[tuple[str, Settled]], int]:
        """The settlements of the digests from `newest` back to the first written before `cutoff`,
        oldest first; and the page up to which the log must still be read for the rest of the
        window (0: none), where the chain reaches the partition's first digest or a missing one."""
        found: list[DigestDoc] = []
        digest: str | None = newest
        rest = 0
        while digest is not None:
            doc = await self.digests.find_one({"_id": digest})
            if doc is None:
                rest = through_of(digest)
                break
            if doc["at"] < cutoff:
                break
            found.append(doc)
            digest = doc["after"]
            if digest is None:
                rest = doc["since"]
        return [s for doc in reversed(found) for s in decode(doc["settled"])], rest
