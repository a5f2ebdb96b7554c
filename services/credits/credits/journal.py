"""Copies each account's outbox to the immutable `credit_journal` collection and announces
every entry as a CreditsChanged event; only then are the entries removed from the outbox.

Crash-safe in any order: journal inserts are idempotent by entry id, events carry a message
id derived from the entry id (consumers deduplicate), and an entry leaves the outbox only
after both. Several replicas may run it at once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from common.contracts import JournalEntry
from credits.repository import AccountRepository, journal_entry

log = logging.getLogger(__name__)
DUPLICATE_KEY = 11000
ENTRY_NAMESPACE = uuid.UUID("6f1b8c1e-5d0a-4c64-9a55-0f4b1c2d3e4f")

Announce = Callable[[JournalEntry, uuid.UUID], Awaitable[None]]


class JournalFlusher:
    def __init__(self, repo: AccountRepository, *, announce: Announce, interval_s: float, batch: int = 200) -> None:
        self._repo = repo
        self._announce = announce
        self._interval_s = interval_s
        self._batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def flush_once(self) -> int:
        accounts = await self._repo.dirty_accounts(limit=self._batch)
        entries = [entry for account in accounts for entry in account["outbox"]]
        if not entries:
            return 0
        try:
            await self._repo.journal.insert_many(entries, ordered=False)
        except BulkWriteError as exc:
            if any(error["code"] != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
                raise
        await asyncio.gather(
            *(self._announce(journal_entry(e), uuid.uuid5(ENTRY_NAMESPACE, e["_id"])) for e in entries)
        )
        await self._repo.accounts.bulk_write(
            [
                UpdateOne({"_id": a["_id"]}, {"$pull": {"outbox": {"_id": {"$in": [e["_id"] for e in a["outbox"]]}}}})
                for a in accounts
            ],
            ordered=False,
        )
        return len(entries)

    async def run(self) -> None:
        while True:
            try:
                if await self.flush_once():
                    continue
            except Exception:
                log.exception("journal flush failed; retrying")
            self._wake.clear()
            try:
                async with asyncio.timeout(self._interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
