"""The partitioned page logs' shared pieces: page ids and the read-ahead replay."""

from __future__ import annotations

import asyncio

import pytest

from common.pages import READ_AHEAD, page_id, pages_after, partition_key

pytestmark = pytest.mark.unit


def test_page_ids_sort_as_their_partition_and_seq_do() -> None:
    ids = [page_id(p, s) for p in (0, 2, 10) for s in (1, 9, 10, 123_456)]
    assert ids == sorted(ids)
    assert page_id(3, 42) == "p003:000000000042"
    assert page_id(3, 42).startswith(partition_key(3) + ":") and partition_key(3) == "p003"


@pytest.mark.parametrize("stored", [0, 1, READ_AHEAD - 1, READ_AHEAD, 2 * READ_AHEAD + 3])
def test_the_pages_after_a_seq_are_read_in_order_up_to_the_first_missing_one(stored: int) -> None:
    pages = set(range(1, stored + 1)) | {stored + 2}  # a page past a gap is not the log's
    asked: list[int] = []

    async def read(seq: int) -> int | None:
        asked.append(seq)
        await asyncio.sleep(0)
        return seq if seq in pages else None

    async def replay(after: int) -> list[int]:
        return [page async for page in pages_after(read, after)]

    assert asyncio.run(replay(0)) == list(range(1, stored + 1))
    # READ_AHEAD pages asked for at a time: one round per READ_AHEAD pages, not one per page.
    assert len(asked) == READ_AHEAD * (stored // READ_AHEAD + 1)
    asked.clear()
    assert asyncio.run(replay(min(stored, 1))) == list(range(min(stored, 1) + 1, stored + 1))
