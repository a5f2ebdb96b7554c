"""The thread store on the real MongoDB-protocol server: ownership, turns by number, pages of
messages, the turns after a number, deletion, checkpoints that write over what they read only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from chat.thread_store import Taken, ThreadStore
from chat.threads import TurnWrite, count
from common.contracts import ChatMessage
from common.errors import NotFound, ValidationFailed

pytestmark = pytest.mark.integration

OWNER, OTHER = "owner-1", "other-1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def store(mongodb_url: str, namespace: str) -> AsyncIterator[ThreadStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    db = client[f"t_{namespace}"]
    threads = ThreadStore(db)
    await threads.create_indexes()
    yield threads
    await client.drop_database(db.name)
    await client.close()


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


async def test_a_turn_number_is_written_once(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    assert await store.insert_turns([turn(thread_id, 0, 0), turn(thread_id, 1, 1)]) == [None, None]
    outcome = await store.insert_turns([turn(thread_id, 1, 2), turn(thread_id, 2, 3)])
    assert isinstance(outcome[0], Taken) and outcome[1] is None
    kept = await store.turn(f"{thread_id}:1")
    assert kept is not None and kept["messages"][0]["content"] == "question 1"


async def test_the_turns_after_a_number_are_read_forward_across_probes(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    assert await store.insert_turns([turn(thread_id, n, n) for n in range(20)]) == [None] * 20
    fresh = ThreadStore(store.threads.database)
    assert [t["seq"] for t in await fresh.turns_after(thread_id, 4)] == list(range(5, 20))
    assert await fresh.turns_after(thread_id, 19) == []
    doc = await store.get(thread_id, owner_id=OWNER)
    for t in await fresh.turns_after(thread_id, -1):
        count(doc, t)
    assert (doc["turns"], doc["messages"], doc["credits"], doc["last"]) == (20, 40, 20, 19)


async def test_messages_come_newest_turns_first_by_cursor(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    total = 20
    for n in range(total):
        assert await store.insert_turns([turn(thread_id, n, n)]) == [None]
    doc = await store.get(thread_id, owner_id=OWNER)
    doc["last"] = total - 1
    seen: list[str] = []
    cursor = None
    for reader in (store, ThreadStore(store.threads.database)):  # from memory, then from MongoDB
        seen, cursor = [], None
        for _ in range(total):
            messages, cursor = await reader.messages(doc, limit=6, before=cursor)
            assert len(messages) == 6 or cursor is None
            seen = [m.content for m in messages] + seen
            if cursor is None:
                break
        assert seen == [text for n in range(total) for text in (f"question {n}", f"answer {n}")]
    with pytest.raises(ValidationFailed):
        await store.messages(doc, limit=6, before="not-a-cursor")


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
    assert await store.insert_turns([turn(thread_id, 0, 0)]) == [None]
    await store.delete(thread_id, owner_id=OWNER)
    assert await store.turns.count_documents({"threadId": thread_id}) == 0
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
