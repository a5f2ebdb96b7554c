"""The threads' owner on the real MongoDB-protocol server: turns numbered and counted in memory,
counters checkpointed, nothing lost by a crash before a checkpoint, two owners at once (a
partition changing hands) keeping both replicas' turns and counting each once, deletion."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from chat.conversations import Conversations
from chat.thread_book import ThreadBook
from chat.thread_log import ThreadLog
from chat.thread_store import ThreadStore
from chat.threads import TurnWrite
from chat.usage import UsageRecorder
from common.bus.topology import partition_of
from common.contracts import ChatMessage, UsageRecord
from common.errors import NotFound, ValidationFailed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

OWNER, OTHER = "owner-1", "other-1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def db(database: AsyncDatabase[dict[str, Any]]) -> AsyncDatabase[dict[str, Any]]:
    await ThreadStore(database).create_indexes()
    await ThreadLog(database).create_indexes()
    return database


def replica(db: Any) -> ThreadBook:
    """A chat replica's book: its own store and memory, on the shared database."""
    return ThreadBook(ThreadStore(db), ThreadLog(db), checkpoint_s=3600)


def turn(
    thread_id: str, n: int, *, credits: int = 1, title: str | None = None, turn_id: uuid.UUID | None = None
) -> TurnWrite:
    return TurnWrite(
        thread_id=thread_id,
        owner_id=OWNER,
        turn_id=turn_id or uuid.uuid4(),
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


async def new_thread(book: ThreadBook, owner: str = OWNER, *, system: str | None = None) -> str:
    doc = await book.create(thread_id=uuid.uuid4(), owner_id=owner, title=None, system=system, now=T0)
    return str(doc["_id"])


async def texts(book: ThreadBook, thread_id: str) -> list[str]:
    thread = await book.get(thread_id, owner_id=OWNER)
    return [t.messages[0].content async for t in book.newest_first(thread)][::-1]


async def test_turns_are_numbered_in_order_and_counted_at_once_and_written_to_the_thread_at_the_checkpoint(
    db: Any,
) -> None:
    book = replica(db)
    a, b = await new_thread(book), await new_thread(book)
    flush = [turn(a, 0, title="question 0"), turn(b, 1, credits=3), turn(a, 2)]
    assert await book.keep(flush) == [None, None, None]
    assert await book.keep([turn(a, 3)]) == [None]
    thread = await book.get(a, owner_id=OWNER)
    assert (thread["turns"], thread["messages"], thread["credits"], thread["last"]) == (3, 6, 3, 2)
    assert (thread["autoTitle"], thread["updatedAt"]) == ("question 0", T0 + timedelta(seconds=3))
    assert (await book.get(b, owner_id=OWNER))["credits"] == 3
    stored = await book.store.get(a, owner_id=OWNER)
    assert (stored["turns"], stored["last"]) == (0, -1)  # the document waits for the checkpoint
    await book.checkpoint()
    stored = await book.store.get(a, owner_id=OWNER)
    assert (stored["turns"], stored["messages"], stored["credits"], stored["last"]) == (3, 6, 3, 2)
    assert stored["autoTitle"] == "question 0"
    assert await texts(replica(db), a) == ["question 0", "question 2", "question 3"]


async def test_a_repeated_request_is_kept_and_counted_once(db: Any) -> None:
    book = replica(db)
    thread_id = await new_thread(book)
    first = turn(thread_id, 0)
    assert await book.keep([first]) == [None]
    assert await book.keep([first]) == [None]  # a redelivered request: kept already
    assert (await book.get(thread_id, owner_id=OWNER))["turns"] == 1
    assert await book.log.pages.count_documents({}) == 1
    await book.checkpoint()
    assert await texts(replica(db), thread_id) == ["question 0"]


async def test_a_replica_that_dies_before_its_checkpoint_loses_no_turn_and_no_count(db: Any) -> None:
    dead = replica(db)
    thread_id = await new_thread(dead)
    assert await dead.keep([turn(thread_id, n) for n in range(3)]) == [None] * 3
    await dead.checkpoint()
    assert await dead.keep([turn(thread_id, n, credits=2) for n in range(3, 20)]) == [None] * 17
    # `dead` never checkpoints again: the next owner counts the turns after the document's last.
    heir = replica(db)
    thread = await heir.get(thread_id, owner_id=OWNER)
    assert (thread["turns"], thread["credits"], thread["last"]) == (20, 3 + 2 * 17, 19)
    assert await heir.keep([turn(thread_id, 20)]) == [None]
    assert (await heir.get(thread_id, owner_id=OWNER))["last"] == 20


async def test_two_owners_at_once_keep_both_turns_and_count_each_once(db: Any) -> None:
    old, new = replica(db), replica(db)
    thread_id = await new_thread(old)
    assert await old.keep([turn(thread_id, 0)]) == [None]
    await new.get(thread_id, owner_id=OWNER)  # the partition moved: the new owner loads the thread
    assert await old.keep([turn(thread_id, 1)]) == [None]  # the old owner finishes what it had in hand
    assert await new.keep([turn(thread_id, 2)]) == [None]  # its number was taken: it takes the next
    thread = await new.get(thread_id, owner_id=OWNER)
    assert (thread["turns"], thread["last"]) == (3, 2)
    await old.checkpoint()  # writes over the document it read: accepted
    await new.checkpoint()  # the document moved under it: refused, and the thread reloaded
    thread = await new.get(thread_id, owner_id=OWNER)
    assert (thread["turns"], thread["messages"], thread["last"]) == (3, 6, 2)
    await new.checkpoint()
    stored = await new.store.get(thread_id, owner_id=OWNER)
    assert (stored["turns"], stored["last"]) == (3, 2)
    assert await texts(replica(db), thread_id) == ["question 0", "question 1", "question 2"]


async def test_a_replica_that_lost_its_channel_forgets_and_reloads(db: Any) -> None:
    book, other = replica(db), replica(db)
    thread_id = await new_thread(book)
    await other.get(thread_id, owner_id=OWNER)
    assert await other.keep([turn(thread_id, 0), turn(thread_id, 1)]) == [None, None]
    book.invalidate()
    assert (await book.get(thread_id, owner_id=OWNER))["turns"] == 2


async def test_a_thread_pushed_out_of_memory_before_its_turn_is_written_is_reloaded_not_lost(db: Any) -> None:
    # Room for one thread: loading the second thread of the flush evicts the first, which is
    # clean until its turn is counted. Its turn is still kept (and counted), not refused as deleted.
    book = ThreadBook(ThreadStore(db), ThreadLog(db), checkpoint_s=3600, capacity=1)
    first, second = await new_thread(replica(db)), await new_thread(replica(db))
    await book.get(first, owner_id=OWNER)
    assert await book.keep([turn(first, 0), turn(second, 0)]) == [None, None]
    assert [(await book.get(t, owner_id=OWNER))["turns"] for t in (first, second)] == [1, 1]
    assert await texts(replica(db), first) == ["question 0"]


async def test_a_turn_answered_after_its_thread_was_deleted_is_not_kept(db: Any) -> None:
    book = replica(db)
    thread_id = await new_thread(book)
    assert await book.keep([turn(thread_id, 0)]) == [None]
    writing = asyncio.create_task(book.keep([turn(thread_id, 1)]))
    await asyncio.sleep(0)  # one step of the loop: the write starts (and waits on MongoDB)
    await book.delete(uuid.UUID(thread_id), owner_id=OWNER)  # waits for the write in hand
    assert await writing == [None]
    (late,) = await book.keep([turn(thread_id, 2)])
    assert isinstance(late, NotFound)
    await book.checkpoint()
    assert await book.store.segments.count_documents({"threadId": thread_id}) == 0
    with pytest.raises(NotFound):
        await book.get(thread_id, owner_id=OWNER)


async def test_a_thread_deleted_during_a_checkpoint_leaves_no_segment_behind(db: Any) -> None:
    book = replica(db)
    thread_id = await new_thread(book)
    assert await book.keep([turn(thread_id, n) for n in range(3)]) == [None] * 3
    checkpoint = asyncio.create_task(book.checkpoint())
    await asyncio.sleep(0)  # one step of the loop: the checkpoint starts writing the thread's segment
    await book.delete(uuid.UUID(thread_id), owner_id=OWNER)  # waits for it, then removes what it wrote
    await checkpoint
    assert await book.store.segments.count_documents({"threadId": thread_id}) == 0


async def test_another_users_thread_is_not_found_and_a_list_shows_current_counters(db: Any) -> None:
    book = replica(db)
    thread_id = await new_thread(book)
    with pytest.raises(NotFound):
        await book.get(thread_id, owner_id=OTHER)
    with pytest.raises(NotFound):
        await book.update(uuid.UUID(thread_id), owner_id=OTHER, title="mine", system=None, now=T0)
    with pytest.raises(NotFound):
        await book.delete(uuid.UUID(thread_id), owner_id=OTHER)
    assert await book.keep([turn(thread_id, 0)]) == [None]
    renamed = await book.update(uuid.UUID(thread_id), owner_id=OWNER, title="named", system=None, now=T0)
    assert (renamed["title"], renamed["turns"]) == ("named", 1)
    listed, _ = await book.list(owner_id=OWNER, limit=10, before=None)
    assert [(d["_id"], d["turns"], d["title"]) for d in listed] == [(thread_id, 1, "named")]
    listed, _ = await replica(db).list(owner_id=OWNER, limit=10, before=None)  # nothing checkpointed yet
    assert [(d["_id"], d["turns"]) for d in listed] == [(thread_id, 1)]


async def test_a_conversation_sends_the_latest_turns_that_fit(db: Any) -> None:
    book = replica(db)
    thread_id = await new_thread(book, system="be brief")
    for n in range(12):
        assert await book.keep([turn(thread_id, n)]) == [None]
    new = [ChatMessage(role="user", content="and now?")]
    conversations = Conversations(replica(db), max_turns=3)  # read from MongoDB
    convo = await conversations.open(
        thread_id=uuid.UUID(thread_id), owner_id=OWNER, new=new, window=100_000, max_tokens=10
    )
    assert [m.content for m in convo.messages] == [
        "be brief",
        "question 9",
        "answer 9",
        "question 10",
        "answer 10",
        "question 11",
        "answer 11",
        "and now?",
    ]
    assert convo.title is None  # the thread has turns already
    with pytest.raises(NotFound):
        await conversations.open(thread_id=uuid.UUID(thread_id), owner_id=OTHER, new=new, window=100_000, max_tokens=10)


async def test_a_kept_turn_is_found_by_its_id_for_a_redelivered_request(db: Any) -> None:
    book = replica(db)
    thread_id = await new_thread(book)
    first = turn(thread_id, 0)
    assert await book.kept(thread_id, first.turn_id) is None
    assert await book.keep([first, turn(thread_id, 1)]) == [None, None]
    kept = await book.kept(thread_id, first.turn_id)
    assert kept is not None and (kept["seq"], kept["messages"][-1]["content"]) == (0, "answer 0")
    heir = replica(db)  # the replica a redelivery reaches after a takeover: it loads the thread first
    await heir.get(thread_id, owner_id=OWNER)
    assert (await heir.kept(thread_id, first.turn_id) or {}).get("seq") == 0
    assert await heir.kept(thread_id, uuid.uuid4()) is None


async def test_messages_come_newest_turns_first_by_cursor_from_the_log_then_from_segments(db: Any) -> None:
    book = replica(db)
    thread_id = await new_thread(book)
    total = 20
    for n in range(total):
        assert await book.keep([turn(thread_id, n)]) == [None]
    expected = [text for n in range(total) for text in (f"question {n}", f"answer {n}")]
    for reader in (book, None, replica(db)):  # turns in memory only, then checkpointed, then read from MongoDB
        if reader is None:
            await book.checkpoint()
            reader = book
        thread = await reader.get(thread_id, owner_id=OWNER)
        seen: list[str] = []
        cursor = None
        for _ in range(total):
            messages, cursor = await reader.messages(thread, limit=6, before=cursor)
            assert len(messages) == 6 or cursor is None
            seen = [m.content for m in messages] + seen
            if cursor is None:
                break
        assert seen == expected
    with pytest.raises(ValidationFailed):
        await book.messages(await book.get(thread_id, owner_id=OWNER), limit=6, before="not-a-cursor")


async def test_a_checkpoint_moves_the_mark_so_the_next_owner_replays_only_the_pages_after_it(db: Any) -> None:
    book = replica(db)
    thread_id = await new_thread(book)
    for n in range(3):
        assert await book.keep([turn(thread_id, n)]) == [None]
    await book.checkpoint()
    assert await book.log.mark(0) == 3
    assert await book.keep([turn(thread_id, 3)]) == [None]
    assert [seq for seq, _ in await book.log.after(0, await book.log.mark(0))] == [4]
    heir = replica(db)
    assert (await heir.get(thread_id, owner_id=OWNER))["turns"] == 4
    await heir.checkpoint()
    assert await heir.log.mark(0) == 4
    assert await texts(replica(db), thread_id) == [f"question {n}" for n in range(4)]


def record() -> UsageRecord:
    return UsageRecord(
        usage_id=uuid.uuid4(),
        user_id=OWNER,
        provider="p",
        model="m",
        prompt_tokens=1,
        completion_tokens=1,
        latency_ms=1.0,
        cached=False,
        streamed=False,
        cost_usd=0.0,
        credits=1,
        at=T0,
    )


async def test_the_turns_of_threaded_requests_in_hand_share_one_page_and_a_lone_one_waits_for_nobody(db: Any) -> None:
    book = replica(db)
    a, b = await new_thread(book), await new_thread(book)

    async def announce(_: Any) -> None:
        return None

    usage = UsageRecorder(db["usage"], announce, turn_linger_s=3600, threads=book)
    writer = asyncio.create_task(usage.run())
    try:
        with book.answer(), book.answer():  # two requests in hand: the first turn waits for the second
            first = asyncio.create_task(usage.keep(record(), turn(a, 0)))
            # the writer has taken it (without the linger, it would write it alone now)
            await wait_until(lambda: asyncio.sleep(0, usage._queue.qsize()), lambda queued: queued == 0, within=10)
            await asyncio.wait_for(asyncio.gather(first, usage.keep(record(), turn(b, 1))), timeout=30)
        assert [len(turns) for _, turns in await book.log.after(0, 0)] == [2]
        with book.answer():  # one in hand: its turn is written at once, not after the hour's linger
            await asyncio.wait_for(usage.keep(record(), turn(a, 2)), timeout=30)
        assert [len(turns) for _, turns in await book.log.after(0, 0)] == [2, 1]
    finally:
        writer.cancel()


async def test_each_partition_moves_its_own_mark_and_its_next_owner_replays_its_own_pages(db: Any) -> None:
    book = ThreadBook(ThreadStore(db), ThreadLog(db), partitions=4, checkpoint_s=3600)
    owners = [f"owner-{n}" for n in range(12)]
    partitions = {partition_of(o, 4) for o in owners}
    assert len(partitions) > 1
    threads = {o: await new_thread(book, o) for o in owners}
    assert await book.keep([dataclasses.replace(turn(threads[o], 0), owner_id=o) for o in owners]) == [None] * 12
    await book.checkpoint()
    assert {p: await book.log.mark(p) for p in partitions} == dict.fromkeys(partitions, 1)
    assert await book.keep([dataclasses.replace(turn(threads[o], 1), owner_id=o) for o in owners[:1]]) == [None]
    heir = ThreadBook(ThreadStore(db), ThreadLog(db), partitions=4, checkpoint_s=3600)
    counts = [(await heir.get(threads[o], owner_id=o))["turns"] for o in owners]
    assert counts == [2] + [1] * 11
