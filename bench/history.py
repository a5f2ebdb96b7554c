"""A large ledger history, written straight into the ledger's own storage (goal 4 of the
performance benchmark: the same figures on a store that already holds 200,000 operations).

The operations run on the ledger's own in-memory book (credits.book), so they obey every
rule a live partition does; its entries become pages of the log and its accounts one
checkpoint, exactly what a credits replica would have left behind. The hot account gets
`hot_operations` of them, the rest spread over `accounts` others; every operation is a
reserve or a commit, after each account's signup grant (and a purchase for the hot one).
All of it lies in the past, outside the replay window.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from common.bus.topology import partition_of
from credits.accounts import AccountStore, Marker
from credits.book import Book
from credits.log import LedgerLog

PAGE = 500
SIGNUP = 1000
SPAN = timedelta(days=30)


class _Writer:
    """One partition's book and the pages it fills."""

    def __init__(self, number: int, log: LedgerLog) -> None:
        self.number = number
        self.log = log
        self.book = Book(signup_credits=SIGNUP, window=timedelta(minutes=15))
        self.seq = 1
        self.at = datetime.now(UTC)
        self.book.begin(self.seq)

    async def flush(self, *, force: bool = False) -> None:
        entries = self.book.produced
        if not entries or (len(entries) < PAGE and not force):
            return
        await self.log.append(partition=self.number, seq=self.seq, at=entries[0].at, entries=entries)
        self.seq += 1
        self.book.begin(self.seq)


async def build_store(
    *,
    mongodb_url: str,
    database: str,
    accounts: int,
    operations: int,
    hot_operations: int,
    hot_user: str,
    partitions: int = 1,
    seed: int = 7,
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        db = client[database]
        log, store = LedgerLog(db), AccountStore(db)
        await log.create_indexes()
        writers = [_Writer(n, log) for n in range(partitions)]
        users = [f"history-{i:05d}" for i in range(accounts)]
        rng = random.Random(seed)
        plan = [hot_user] * hot_operations + [rng.choice(users) for _ in range(operations - hot_operations)]
        rng.shuffle(plan)
        start = datetime.now(UTC) - SPAN - timedelta(days=1)
        step = SPAN / max(len(plan), 1)
        open_holds: dict[str, str] = {}
        for i, user in enumerate(plan):
            now = start + step * i
            writer = writers[partition_of(user, partitions)]
            book = writer.book
            if user not in book.accounts and user == hot_user:
                book.grant(
                    user_id=user, email="", key="history-purchase", amount=10 * operations, reason="purchase", now=now
                )
            held = open_holds.pop(user, None)
            if held is None:
                rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{user}/{i}"))
                book.reserve(
                    user_id=user,
                    email="",
                    reservation_id=rid,
                    amount=1,
                    purpose="chat",
                    ttl=timedelta(minutes=5),
                    now=now,
                )
                open_holds[user] = rid
            else:
                book.resolve(user_id=user, reservation_id=held, held=1, used=1, kind="commit", now=now)
            if i % 10_000 == 0:
                book.forget_before(now)
            await writer.flush()
        for writer in writers:  # settle what is still held, as a quiet ledger would have
            for user, rid in list(open_holds.items()):
                if partition_of(user, partitions) == writer.number:
                    writer.book.resolve(
                        user_id=user, reservation_id=rid, held=1, used=1, kind="commit", now=start + SPAN
                    )
            await writer.flush(force=True)
            head = writer.seq - 1
            await store.checkpoint(
                partition=writer.number,
                seq=head,
                accounts=list(writer.book.accounts.values()),
                settled=[],  # all of it settled long before any replay window
                since=0,
                marker=Marker(checkpoint=head, announced=head, holders=[]),
                now=datetime.now(UTC),
            )
        await store.set_partitions(partitions)
    finally:
        await client.close()
