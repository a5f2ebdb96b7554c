"""Partitioned logs of pages in MongoDB (the credits ledger's `credit_log`, the chat threads'
`thread_log`): a page's `_id` is `p<partition>:<seq>`, `seq` counting up from 1 in each
partition, so writing page n twice is impossible (whoever writes it second learns that another
replica wrote the partition past what it knows); and a replay reads the pages after a given
one by `_id` only, which every MongoDB answers from its primary index whatever the log's size
(an `_id` range or `$in` would make mongoeco scan the collection)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

READ_AHEAD = 16  # pages a replay asks for at once


def partition_key(partition: int) -> str:
    """`p<partition>`: a partition's own documents (its mark) are keyed by it, its pages begin with it."""
    return f"p{partition:03d}"


def page_id(partition: int, seq: int) -> str:
    return f"{partition_key(partition)}:{seq:012d}"


async def pages_after[T](read: Callable[[int], Awaitable[T | None]], seq: int) -> AsyncIterator[T]:
    """`read(n)` of the pages after `seq`, oldest first, up to the first missing one (the head):
    READ_AHEAD of them asked for at once, so a replay waits for one round trip per READ_AHEAD
    pages, not per page."""
    while True:
        batch = await asyncio.gather(*(read(n) for n in range(seq + 1, seq + 1 + READ_AHEAD)))
        for page in batch:
            if page is None:
                return
            yield page
            seq += 1
