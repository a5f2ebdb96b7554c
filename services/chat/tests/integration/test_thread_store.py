"""The thread store on the real MongoDB-protocol server: ownership, turns, repeats, races, deletion."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from chat.conversations import Conversations
from chat.thread_store import ThreadStore
from chat.threads import TurnWrite
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
        await store.update(uuid.UUID(thread_id), owner_id=OTHER, title="mine now", system=None, now=T0)
    with pytest.raises(NotFound):
        await store.delete(uuid.UUID(thread_id), owner_id=OTHER)
    assert (await store.list(owner_id=OTHER, limit=10, before=None))[0] == []
    assert (await store.get(thread_id, owner_id=OWNER))["title"] is None  # unchanged


async def test_creating_the_same_id_again_returns_that_thread_but_not_to_another_user(store: ThreadStore) -> None:
    thread_id = uuid.uuid4()
    first = await store.create(thread_id=thread_id, owner_id=OWNER, title="a", system=None, now=T0)
    again = await store.create(thread_id=thread_id, owner_id=OWNER, title="b", system=None, now=T0)
    assert again["title"] == first["title"] == "a"
    with pytest.raises(NotFound):
        await store.create(thread_id=thread_id, owner_id=OTHER, title="b", system=None, now=T0)


async def test_a_repeated_turn_is_kept_and_counted_once(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    first = turn(thread_id, 0, 0, title="question 0")
    assert await store.append([first]) == [None]
    assert await store.append([first]) == [None]  # a redelivered request: kept already, counted once
    doc = await store.get(thread_id, owner_id=OWNER)
    assert (doc["turns"], doc["messages"], doc["credits"], doc["autoTitle"], doc["last"]) == (1, 2, 1, "question 0", 0)
    assert doc["updatedAt"] == first.at
    assert await store.turns.count_documents({"threadId": thread_id}) == 1


async def test_turns_given_the_same_number_at_once_are_all_kept_in_order_of_writing(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    racing = [turn(thread_id, 0, n) for n in range(3)]  # three requests that read the thread at once
    assert await store.append(racing[:2]) == [None, None]  # one flush
    assert await store.append(racing[2:]) == [None]  # a later flush (another replica's)
    doc = await store.get(thread_id, owner_id=OWNER)
    assert (doc["turns"], doc["last"]) == (3, 2)
    fresh = ThreadStore(store.threads.database)  # nothing in memory: read from MongoDB
    assert [t.messages[0].content async for t in fresh.newest_first(doc)] == ["question 2", "question 1", "question 0"]


async def test_one_flush_keeps_turns_of_several_threads(store: ThreadStore) -> None:
    a, b = await new_thread(store), await new_thread(store)
    assert await store.append([turn(a, 0, 1), turn(b, 0, 2, credits=3), turn(a, 1, 3)]) == [None, None, None]
    doc_a, doc_b = await store.get(a, owner_id=OWNER), await store.get(b, owner_id=OWNER)
    assert (doc_a["turns"], doc_a["credits"], doc_b["turns"], doc_b["credits"]) == (2, 2, 1, 3)


async def test_messages_come_newest_turns_first_by_cursor(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    total = 20
    for n in range(total):
        assert await store.append([turn(thread_id, n, n)]) == [None]
    doc = await store.get(thread_id, owner_id=OWNER)
    assert doc["last"] == total - 1 and doc["turns"] == total
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


async def test_deleting_a_thread_removes_its_turns_and_a_turn_landing_after_it_is_not_kept(store: ThreadStore) -> None:
    thread_id = await new_thread(store)
    assert await store.append([turn(thread_id, 0, 0)]) == [None]
    await store.delete(uuid.UUID(thread_id), owner_id=OWNER)
    assert await store.turns.count_documents({"threadId": thread_id}) == 0
    (late,) = await store.append([turn(thread_id, 1, 1)])  # answered while the thread was being deleted
    assert isinstance(late, NotFound)
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


async def test_a_conversation_sends_the_latest_turns_that_fit_and_its_turn_takes_the_next_number(
    store: ThreadStore,
) -> None:
    thread_id = await new_thread(store, system="be brief")
    for n in range(12):
        assert await store.append([turn(thread_id, n, n)]) == [None]
    new = [ChatMessage(role="user", content="and now?")]
    conversations = Conversations(ThreadStore(store.threads.database), max_turns=3)  # read from MongoDB
    convo = await conversations.open(
        thread_id=uuid.UUID(thread_id), owner_id=OWNER, new=new, window=100_000, max_tokens=10
    )
    sent = [m.content for m in convo.messages]
    assert sent == [
        "be brief",
        "question 9",
        "answer 9",
        "question 10",
        "answer 10",
        "question 11",
        "answer 11",
        "and now?",
    ]
    assert convo.seq == 12
    assert convo.title is None  # the thread has turns already
    with pytest.raises(NotFound):
        await conversations.open(thread_id=uuid.UUID(thread_id), owner_id=OTHER, new=new, window=100_000, max_tokens=10)
