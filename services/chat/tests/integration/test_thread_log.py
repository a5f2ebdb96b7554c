"""The threads' log on the real MongoDB-protocol server: a page written once per number (the
fencing between two owners of a partition), read forward to the partition's head, and the
partition's mark moved only from where it was seen."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from chat.thread_documents import TurnDoc
from chat.thread_log import Fenced, ThreadLog

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0)  # pages expire a week after their time


@pytest.fixture
async def log(database: AsyncDatabase[dict[str, Any]]) -> ThreadLog:
    thread_log = ThreadLog(database)
    await thread_log.create_indexes()
    return thread_log


def turn(seq: int, text: str) -> TurnDoc:
    thread_id = "t-1"
    return {
        "_id": f"{thread_id}:{seq}",
        "threadId": thread_id,
        "ownerId": "owner-1",
        "seq": seq,
        "turnId": str(uuid.uuid4()),
        "at": T0,
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}],
        "model": "m",
        "provider": "p",
        "promptTokens": 1,
        "completionTokens": 1,
        "credits": 1,
        "costUsd": 0.0,
    }


async def test_a_page_is_written_once_and_read_forward_with_its_turns(log: ThreadLog) -> None:
    await log.append(0, 1, [turn(0, "a"), turn(1, "b")], at=T0)
    await log.append(0, 2, [turn(2, "c")], at=T0)
    await log.append(1, 1, [turn(0, "other partition")], at=T0)
    with pytest.raises(Fenced):
        await log.append(0, 2, [turn(2, "another owner's")], at=T0)
    pages = await log.after(0, 0)
    said = [(seq, [t["messages"][0]["content"] for t in turns]) for seq, turns in pages]
    assert said == [(1, ["a", "b"]), (2, ["c"])]
    assert pages[0][1][0]["at"] == T0  # times come back as they went in (aware)
    assert [seq for seq, _ in await log.after(0, 1)] == [2]
    assert await log.after(0, 2) == []


async def test_a_mark_moves_only_from_where_it_was_seen(log: ThreadLog) -> None:
    assert await log.mark(3) == 0
    assert await log.move_mark(3, since=0, to=5)
    assert not await log.move_mark(3, since=0, to=7)  # another owner saw no mark either: it lost
    assert not await log.move_mark(3, since=4, to=7)
    assert await log.move_mark(3, since=5, to=9)
    assert await log.mark(3) == 9
    assert await log.mark(4) == 0
