"""The thread store on the real MongoDB-protocol server: ownership, turns read newest first across
their segments (and the one-turn documents from before segments), a segment written once,
deletion, checkpoints that write over what they read only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from chat.thread_documents import TurnDoc
from chat.thread_store import ThreadStore
from chat.threads import TurnWrite, count
from common.contracts import ChatMessage
from common.errors import NotFound
from tests.support.finds import watched

pytestmark = pytest.mark.integration

OWNER, OTHER = "owner-1", "other-1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def store(database: AsyncDatabase[dict[str, Any]]) -> ThreadStore:
    threads = ThreadStore(database)
    await threads.create_indexes()
    return threads


def turn(thread_id: str, seq: int, n: int, *, credits: int = 1, title: str | None = None) -> TurnWrite:
    return TurnWrite(
        thread_id=thread_id,
        owner_id=OWNER,
        seq=seq,
        turn_id=uuid.uuid4(),
        at=T0 + timedelta(seconds=n),
        messages=(
            ChatMessage(role="user", content=f"question {n}"),
            ChatMessage(role="assistant", content=f"answer {n}"),
        ),
        model="m",
        provider="p",
        prompt_tokens=10,
        completion_tokens=5,
        credits=credits,
        cost_usd=0.001,
        title=title,
    )


async def new_thread(store: ThreadStore, owner: str = OWNER, *, system: str | None = None) -> str:
    doc = await store.create(thread_id=uuid.uuid4(), owner_id=owner, title=None, system=system, now=T0)
    return str(doc["_id"])


async def test_another_users_thread_is_not_found_for_any_operation(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    with pytest.raises(NotFound):
        await store.get(thread_id, owner_id=OTHER)
    with pytest.raises(NotFound):
        await store.update(thread_id, owner_id=OTHER, changes={"title": "mine now"})
    with pytest.raises(NotFound):
        await store.delete(thread_id, owner_id=OTHER)
    assert (await store.list(owner_id=OTHER, limit=10, before=None))[0] == []
    assert (await store.get(thread_id, owner_id=OWNER))["title"] is None  # unchanged


async def test_creating_the_same_id_again_returns_that_thread_but_not_to_another_user(store: ThreadStore) -> None:
    thread_id = uuid.uuid4()
    first = await store.create(thread_id=thread_id, owner_id=OWNER, title="a", system=None, now=T0)
    again = await store.create(thread_id=thread_id, owner_id=OWNER, title="b", system=None, now=T0)
    assert again["title"] == first["title"] == "a"
    with pytest.raises(NotFound):
        await store.create(thread_id=thread_id, owner_id=OTHER, title="b", system=None, now=T0)


def turns(thread_id: str, numbers: range) -> list[TurnDoc]:
    return [turn(thread_id, n, n).document() for n in numbers]


async def seqs(store: ThreadStore, thread_id: str, start: int, top: int) -> list[int]:
    return [t.seq async for t in store.newest_first(thread_id, start=start, top=top)]


async def test_segments_are_read_newest_first_from_memory_or_mongodb_across_their_bounds(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    await store.compact([(thread_id, turns(thread_id, range(5)))])
    await store.compact([(thread_id, turns(thread_id, range(5, 40)))])  # 35 turns: two segments
    assert await store.segments.count_documents({"threadId": thread_id}) == 3
    fresh = ThreadStore(store.threads.database)  # nothing in memory: read from MongoDB
    assert await seqs(fresh, thread_id, 39, 39) == list(range(39, -1, -1))
    mid = ThreadStore(store.threads.database)
    assert await seqs(mid, thread_id, 20, 39) == list(range(20, -1, -1))  # inside a segment: walked down to by key
    assert await seqs(ThreadStore(store.threads.database), thread_id, 2, 39) == [2, 1, 0]
    kept = await ThreadStore(store.threads.database).turn(thread_id, 7, top=39)
    assert kept is not None and kept["messages"][0]["content"] == "question 7"
    assert await fresh.turn(thread_id, 40, top=39) is None


async def test_a_read_from_inside_a_segment_reads_segments_by_key_only(store: ThreadStore, mongodb_url: str) -> None:
    thread_id = await new_thread(store)
    for start in range(0, 200, 20):  # ten checkpoints of 20 turns
        await store.compact([(thread_id, turns(thread_id, range(start, start + 20)))])
    async with watched(mongodb_url) as (client, finds):
        reader = ThreadStore(client[store.threads.database.name])
        assert await seqs(reader, thread_id, 50, 199) == list(range(50, -1, -1))
    # Keys only (a query for a range or a list of keys scans the collection on mongoeco): no
    # segment ends at 50, so the read walks down from 199 to the one holding it (8 reads), then
    # reads on by the keys 39 and 19.
    assert all(isinstance(f["_id"], str) for f in finds.filters), finds.filters
    assert len(finds.filters) == 1 + 8 + 2


async def test_a_turn_stored_before_segments_reads_as_a_segment_of_one(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    await store.compact([(thread_id, turns(thread_id, range(3)))])
    await store.segments.insert_one(turn(thread_id, 3, 3).document())  # the earlier shape: one turn, top level
    await store.compact([(thread_id, turns(thread_id, range(4, 6)))])
    assert await seqs(ThreadStore(store.threads.database), thread_id, 5, 5) == [5, 4, 3, 2, 1, 0]
    old = await ThreadStore(store.threads.database).turn(thread_id, 3, top=5)
    assert old is not None and old["turnId"]


async def test_a_segment_written_again_is_left_as_it_is(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    run = turns(thread_id, range(3))
    await store.compact([(thread_id, run)])
    await store.compact([(thread_id, run)])  # a checkpoint repeated after a crash
    await store.compact([(thread_id, run[1:])])  # or by an owner that knew fewer of them: same last turn
    assert await store.segments.count_documents({"threadId": thread_id}) == 1
    assert await seqs(ThreadStore(store.threads.database), thread_id, 2, 2) == [2, 1, 0]


async def test_a_checkpoint_writes_over_the_document_it_read_only(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    doc = await store.get(thread_id, owner_id=OWNER)
    count(doc, turn(thread_id, 0, 0, title="question 0").document())
    assert await store.checkpoint([doc], since=[-1])
    stored = await store.get(thread_id, owner_id=OWNER)
    assert (stored["turns"], stored["last"], stored["autoTitle"]) == (1, 0, "question 0")
    assert not await store.checkpoint([doc], since=[-1])  # written since by someone else: refused


async def test_deleting_a_thread_removes_its_turns(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    await store.compact([(thread_id, turns(thread_id, range(40)))])
    await store.delete(thread_id, owner_id=OWNER)
    assert await store.segments.count_documents({"threadId": thread_id}) == 0
    with pytest.raises(NotFound):
        await store.get(thread_id, owner_id=OWNER)


async def test_threads_list_newest_first_by_cursor(store: ThreadStore) -> None:
    ids = []
    for n in range(5):
        doc = await store.create(
            thread_id=uuid.uuid4(), owner_id=OWNER, title=f"t{n}", system=None, now=T0 + timedelta(minutes=n)
        )
        ids.append(doc["_id"])
    await new_thread(store, OTHER)
    first, cursor = await store.list(owner_id=OWNER, limit=3, before=None)
    rest, end = await store.list(owner_id=OWNER, limit=3, before=cursor)
    assert [d["_id"] for d in first + rest] == ids[::-1] and end is None
