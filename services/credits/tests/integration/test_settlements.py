"""Settlement digests on the real MongoDB-protocol server: chained, split when large, read back
oldest first down to the window's start, and telling which pages no digest covers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from credits.book import Settled
from credits.settlements import MAX_SETTLED, Settlements, through_of

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def settled(n: int, *, at: datetime, first: int = 0) -> list[tuple[str, Settled]]:
    return [
        (f"r{i}", Settled(f"u{i % 7}", "commit" if i % 2 else "release", 3, i % 2, at + timedelta(minutes=5), at))
        for i in range(first, first + n)
    ]


async def test_digests_chain_split_and_come_back_oldest_first(db: AsyncDatabase[dict[str, Any]]) -> None:
    digests = Settlements(db)
    first = settled(10, at=NOW)
    second = settled(MAX_SETTLED + 5, at=NOW + timedelta(seconds=2), first=10)  # two documents
    one = await digests.write(partition=0, since=0, through=4, after=None, settled=first, at=NOW)
    assert one is not None and through_of(one) == 4
    two = await digests.write(partition=0, since=4, through=9, after=one, settled=second, at=NOW + timedelta(seconds=2))
    assert two is not None and await db["credit_settlements"].count_documents({}) == 3
    assert await digests.write(partition=0, since=9, through=12, after=two, settled=[], at=NOW) == two
    back, rest = await digests.window(two, cutoff=NOW - timedelta(minutes=15))
    assert back == first + second
    assert rest == 0  # the chain starts at the partition's first page


async def test_the_window_stops_at_its_cutoff_and_names_the_pages_no_digest_covers(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    digests = Settlements(db)
    old = await digests.write(partition=0, since=7, through=9, after=None, settled=settled(2, at=NOW), at=NOW)
    later = NOW + timedelta(minutes=20)
    new = await digests.write(
        partition=0, since=9, through=15, after=old, settled=settled(3, at=later, first=2), at=later
    )
    assert new is not None
    back, rest = await digests.window(new, cutoff=later - timedelta(minutes=15))
    assert [r for r, _ in back] == ["r2", "r3", "r4"] and rest == 0  # the older digest is out of the window
    back, rest = await digests.window(new, cutoff=NOW - timedelta(minutes=1))
    assert len(back) == 5 and rest == 7  # pages up to 7 predate the first digest: read them from the log
    await db["credit_settlements"].delete_one({"_id": old})
    back, rest = await digests.window(new, cutoff=NOW - timedelta(minutes=1))
    assert len(back) == 3 and rest == 9  # the older digest is gone: its pages are read instead
