"""The threads of the users this chat replica owns, in memory.

A user's thread commands, and the chat requests that continue one of their threads, go to the
partition queue owning that user (`common.bus.topology`), where RabbitMQ lets one replica
consume at a time: that replica is the threads' single writer. It keeps each thread it touched
(its document with up-to-date counters, and the turns not yet in its segments) here, so a
threaded request reads nothing from MongoDB but the turns it lacks. Its turn is numbered here
after the thread's latest and kept in the flush of the usage writer (`usage.py`): the turns of
one flush in one partition are ONE page of the log (`thread_log.py`), whatever their number.
Every CHAT_THREAD_CHECKPOINT_S (and at shutdown) the turns reach their threads' segments, one
document per thread that changed, and the counters their documents, one update per thread,
whatever the number of turns since; then the partition's mark moves past the pages they came
from (`checkpoint`).

A partition is loaded on its first use: the pages after its mark are replayed, each turn
numbered after its thread document's `last` counted (what the previous owner kept but had not
checkpointed). So a crash loses no turn and no count, and a replica taking a partition over
counts what the one before it wrote. Should two replicas write one partition at once (the old
owner finishing what it had in hand while the new one starts), a page can be written once
only: the one that finds its page taken replays the pages it did not know and numbers its
turns again. A checkpoint writes only over the documents it last read or wrote, and moves the
mark from where it last saw it (else it forgets the partition and loads it again). When the
consumer's channel goes, this replica may no longer own its partitions: it forgets everything
(`invalidate`)."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime

from chat.thread_documents import ThreadDoc, TurnDoc
from chat.thread_log import Fenced, ThreadLog
from chat.thread_store import NO_SUCH_THREAD, NotKept, ThreadStore, bad_cursor
from chat.threads import StoredTurn, TurnWrite, count, text_role
from common.bus.topology import partition_of
from common.contracts import ThreadMessage
from common.errors import NotFound

log = logging.getLogger(__name__)

CAPACITY = 10_000  # threads kept in memory (those with turns not yet in their segments stay regardless)
RECENT_IDS = 32  # ids of a thread's latest turns remembered, so a repeated request is kept once
FENCED_TRIES = 8  # a flush's page taken by another replica: replay and number again, this often


@dataclasses.dataclass(slots=True)
class _Thread:
    doc: ThreadDoc  # with every turn kept so far counted
    stored: int  # the `last` of the document in MongoDB: its segments hold the turns up to it
    partition: int
    recent: OrderedDict[str, int] = dataclasses.field(default_factory=OrderedDict)  # latest turns' ids, numbers
    # Kept after `stored` (in the log only): each turn as written and as read.
    pending: list[tuple[TurnDoc, StoredTurn]] = dataclasses.field(default_factory=list)

    @property
    def dirty(self) -> bool:
        return self.doc["last"] != self.stored


@dataclasses.dataclass(slots=True)
class _Partition:
    through: int  # its mark as last read or moved here: the turns of the pages up to it are in segments
    next: int  # the page this replica writes next


class ThreadBook:
    def __init__(
        self,
        store: ThreadStore,
        log: ThreadLog,
        *,
        partitions: int = 1,
        checkpoint_s: float = 10.0,
        capacity: int = CAPACITY,
    ) -> None:
        self.store = store
        self.log = log
        self._partitions = partitions
        self._checkpoint_s = checkpoint_s
        self._capacity = capacity
        self._threads: OrderedDict[str, _Thread] = OrderedDict()
        self._parts: dict[int, _Partition] = {}
        self._loading: dict[str, asyncio.Future[_Thread | None]] = {}
        self._loading_parts: dict[int, asyncio.Future[_Partition]] = {}
        self._generation = 0  # moved by `invalidate`: a load begun before it is not kept
        self._writing = asyncio.Lock()  # pages being written, or a thread being deleted
        self._checkpointing = asyncio.Lock()  # segments being written, or a thread being deleted
        self.answering = 0  # threaded requests between their thread's opening and their end (`answer`)

    @contextlib.contextmanager
    def answer(self) -> Iterator[None]:
        """Count a threaded request in hand: the usage writer waits a moment for the turns of
        those still answering, so that one page keeps them all (`usage.py`)."""
        self.answering += 1
        try:
            yield
        finally:
            self.answering -= 1

    # -- reading -------------------------------------------------------------------------------

    async def get(self, thread_id: uuid.UUID | str, *, owner_id: str) -> ThreadDoc:
        """The owner's thread with its counters up to date (a copy); NotFound for another's."""
        thread = await self._thread(str(thread_id))
        if thread is None or thread.doc["ownerId"] != owner_id:
            raise NotFound(NO_SUCH_THREAD)
        return thread.doc.copy()

    async def kept(self, thread_id: str, turn_id: uuid.UUID, *, look: bool = False) -> TurnDoc | None:
        """The turn `turn_id` of the thread, if it was kept already (its request is a redelivery);
        with `look`, after replaying the pages written since this replica last did."""
        thread = self._threads.get(thread_id)
        if thread is None:
            return None
        if look and str(turn_id) not in thread.recent:
            async with self._writing:  # not while this replica writes pages of its own
                await self._catch_up(thread.partition, await self._part(thread.partition))
        seq = thread.recent.get(str(turn_id))
        if seq is None:
            return None
        pending = next((doc for doc, _ in thread.pending if doc["seq"] == seq), None)
        return pending or await self.store.turn(thread_id, seq, top=thread.stored)

    async def newest_first(self, thread: ThreadDoc, *, below: int | None = None) -> AsyncIterator[StoredTurn]:
        """The thread's turns from its newest (or the one below `below`) back to its first."""
        seq = thread["last"] if below is None else min(below - 1, thread["last"])
        stored = thread["last"]  # a thread not in memory: as its document says
        live = self._threads.get(thread["_id"])
        if live is not None:
            pending, stored = list(live.pending), live.stored  # as they are now: a checkpoint may move them
            for _, turn in reversed(pending):
                if turn.seq <= seq:
                    yield turn
            seq = min(seq, stored)
        async for stored_turn in self.store.newest_first(thread["_id"], start=seq, top=stored):
            yield stored_turn

    async def messages(
        self, thread: ThreadDoc, *, limit: int, before: str | None
    ) -> tuple[builtins.list[ThreadMessage], str | None]:
        """The latest whole turns holding at least `limit` messages (or all), oldest first; the cursor
        (the number of the oldest turn returned) reaches the turns before them."""
        below = None
        if before:  # the number of the oldest turn of the previous page (the contract's pattern)
            if not before.isdigit():
                raise bad_cursor("query.cursor")
            below = int(before)
        picked: list[StoredTurn] = []  # newest first
        said = 0
        async for turn in self.newest_first(thread, below=below):
            picked.append(turn)
            said += len(turn.messages)
            if said >= limit:
                break
        cursor = str(picked[-1].seq) if picked and said >= limit and picked[-1].seq > 0 else None
        messages = [
            ThreadMessage(role=text_role(m.role), content=m.content, turn_id=uuid.UUID(t.turn_id), at=t.at)
            for t in reversed(picked)
            for m in t.messages
        ]
        return messages, cursor

    async def list(
        self, *, owner_id: str, limit: int, before: str | None
    ) -> tuple[builtins.list[ThreadDoc], str | None]:
        """The owner's threads, newest first, each with its counters up to date."""
        docs, cursor = await self.store.list(owner_id=owner_id, limit=limit, before=before)
        current = []
        for doc in docs:
            thread = self._threads.get(doc["_id"]) or await self._adopt(doc)
            current.append(thread.doc.copy())
        return current, cursor

    # -- changing ------------------------------------------------------------------------------

    async def create(
        self, *, thread_id: uuid.UUID, owner_id: str, title: str | None, system: str | None, now: datetime
    ) -> ThreadDoc:
        doc = await self.store.create(thread_id=thread_id, owner_id=owner_id, title=title, system=system, now=now)
        if doc["_id"] not in self._threads:
            await self._adopt(doc)
        return await self.get(thread_id, owner_id=owner_id)

    async def update(
        self, thread_id: uuid.UUID, *, owner_id: str, title: str | None, system: str | None, now: datetime
    ) -> ThreadDoc:
        await self.get(thread_id, owner_id=owner_id)
        changes: dict[str, object] = {"updatedAt": now}
        if title is not None:
            changes["title"] = title
        if system is not None:
            changes["system"] = system
        await self.store.update(str(thread_id), owner_id=owner_id, changes=changes)
        thread = await self._thread(str(thread_id))
        if thread is None:  # deleted meanwhile
            raise NotFound(NO_SUCH_THREAD)
        if title is not None:
            thread.doc["title"] = title
        if system is not None:
            thread.doc["system"] = system
        thread.doc["updatedAt"] = max(thread.doc["updatedAt"], now)
        return thread.doc.copy()

    async def delete(self, thread_id: uuid.UUID, *, owner_id: str) -> None:
        """The thread and its turns; a turn being written waits, and one answered after is not kept
        (the log's pages may still hold some: a replay passes over the turns of a thread gone)."""
        async with self._checkpointing, self._writing:  # no segment of it written after it is gone
            await self.get(thread_id, owner_id=owner_id)
            self._threads.pop(str(thread_id), None)
            await self.store.delete(str(thread_id), owner_id=owner_id)

    async def keep(self, turns: Sequence[TurnWrite]) -> builtins.list[BaseException | None]:
        """Number and write `turns` (one flush of the usage writer: one page per partition), and
        count them. Per turn: None when kept (or kept already: a repeat of its request), else why not."""
        results: list[BaseException | None] = [None] * len(turns)
        async with self._writing:
            by_partition: dict[int, list[int]] = {}
            seen: set[str] = set()
            for i, turn in enumerate(turns):
                thread = await self._thread(turn.thread_id)
                if thread is None or thread.doc["ownerId"] != turn.owner_id:
                    results[i] = NotFound("the thread was deleted while the answer was being made")
                elif str(turn.turn_id) not in thread.recent and str(turn.turn_id) not in seen:  # else a repeat
                    seen.add(str(turn.turn_id))
                    by_partition.setdefault(thread.partition, []).append(i)
            for partition, indices in by_partition.items():
                for i, outcome in zip(indices, await self._append(partition, [turns[i] for i in indices]), strict=True):
                    results[i] = outcome
        return results

    async def _append(self, partition: int, turns: Sequence[TurnWrite]) -> builtins.list[BaseException | None]:
        """Write `turns` as the partition's next page, numbered after their threads' latest."""
        for _ in range(FENCED_TRIES):
            generation = self._generation
            results: list[BaseException | None] = [None] * len(turns)
            held: dict[str, _Thread] = {}
            for i, turn in enumerate(turns):
                # Loaded again if it left memory since `keep` looked (pushed out by the threads
                # loaded for this flush, or forgotten): gone only if its document is.
                thread = held.get(turn.thread_id) or await self._thread(turn.thread_id)
                if thread is None:
                    results[i] = NotFound("the thread was deleted while the answer was being made")
                else:
                    held[turn.thread_id] = thread
            part = await self._part(partition)
            numbered: dict[int, TurnWrite] = {}
            after: dict[str, int] = {}
            for i, turn in enumerate(turns):
                thread = held.get(turn.thread_id)
                if thread is None or str(turn.turn_id) in thread.recent:
                    continue  # gone, or kept by the replica that wrote the page we met
                after[turn.thread_id] = after.get(turn.thread_id, thread.doc["last"]) + 1
                numbered[i] = dataclasses.replace(turn, seq=after[turn.thread_id])
            if not numbered:
                return results
            docs = [t.document() for t in numbered.values()]
            try:
                await self.log.append(partition, part.next, docs, at=datetime.now(UTC))
            except Fenced:
                await self._catch_up(partition, part)
                continue
            except Exception as exc:  # a page that may or may not be written: the next append finds out
                return [exc if r is None else r for r in results]
            part.next += 1
            for written, doc in zip(numbered.values(), docs, strict=True):
                thread = self._threads.get(written.thread_id)
                if thread is None and generation == self._generation:  # pushed out meanwhile: back in, counted
                    thread = self._threads[written.thread_id] = held[written.thread_id]
                if thread is not None:  # else forgotten: the partition's next load replays this page
                    self._count(thread, doc, written.stored())
            return results
        return [NotKept("the partition's log kept moving under this replica")] * len(turns)

    # -- checkpoints ---------------------------------------------------------------------------

    async def checkpoint(self) -> None:
        """Write the turns and counters of every thread that changed into their segments and
        documents, then move each partition's mark past the pages they came from."""
        async with self._checkpointing:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        # What every partition writes is taken at once, in one pass over the threads and before
        # any write: a page kept meanwhile is written, and passed by its mark, at the next one.
        dirty: dict[int, list[_Thread]] = {}
        for thread in self._threads.values():
            if thread.dirty:
                dirty.setdefault(thread.partition, []).append(thread)
        plans = [
            (
                partition,
                part,
                [(t, t.doc.copy(), len(t.pending), t.stored) for t in dirty.get(partition, [])],
                part.next - 1,
            )
            for partition, part in self._parts.items()
        ]
        for partition, part, taken, upto in plans:
            if not taken and part.through >= upto:
                continue
            try:
                ours = await self._write(taken) and (
                    upto == part.through or await self.log.move_mark(partition, since=part.through, to=upto)
                )
            except Exception:
                log.warning("thread checkpoint failed", exc_info=True, extra={"partition": partition})
                continue
            if ours:
                part.through = upto
            elif self._parts.get(partition) is part:
                # Not ours to write (a document deleted or written by another replica, or the mark
                # moved by one): forget the partition and load it again when next used.
                log.warning("thread checkpoint conflicted; reloading", extra={"partition": partition})
                self._forget(partition)
        self._evict()

    async def _write(self, taken: Sequence[tuple[_Thread, ThreadDoc, int, int]]) -> bool:
        if not taken:
            return True
        await self.store.compact((doc["_id"], [t for t, _ in thread.pending[:n]]) for thread, doc, n, _ in taken)
        if not await self.store.checkpoint([doc for _, doc, _, _ in taken], since=[s for *_, s in taken]):
            return False
        for thread, doc, n, _ in taken:
            thread.stored = doc["last"]
            del thread.pending[:n]
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_s)
            try:
                await self.checkpoint()
            except Exception:
                log.warning("thread checkpoint failed", exc_info=True)

    async def close(self, *, timeout_s: float = 2.0) -> None:
        """Write what changed, for at most `timeout_s` (what is not written is replayed on the next load)."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout_s):
                await self.checkpoint()

    def invalidate(self) -> None:
        """Forget every thread and partition: another replica may own them now."""
        self._threads.clear()
        self._parts.clear()
        self._generation += 1

    def _forget(self, partition: int) -> None:
        self._parts.pop(partition, None)
        for tid in [tid for tid, t in self._threads.items() if t.partition == partition]:
            del self._threads[tid]
        self._generation += 1

    # -- memory --------------------------------------------------------------------------------

    async def _thread(self, thread_id: str) -> _Thread | None:
        thread = self._threads.get(thread_id)
        if thread is not None:
            self._threads.move_to_end(thread_id)
            return thread
        return await _once(self._loading, thread_id, lambda: self._load(thread_id))

    async def _load(self, thread_id: str) -> _Thread | None:
        doc = await self.store.find(thread_id)
        return None if doc is None else await self._adopt(doc)

    async def _adopt(self, doc: ThreadDoc) -> _Thread:
        """Keep `doc`, once its partition's pages are replayed (which may have kept it already)."""
        thread = self._fresh(doc)
        generation = self._generation
        await self._part(thread.partition)
        known = self._threads.get(doc["_id"])
        if known is not None:
            return known
        if generation == self._generation:
            self._threads[doc["_id"]] = thread
            self._evict()
        return thread

    def _fresh(self, doc: ThreadDoc) -> _Thread:
        """A thread as its document has it: its turns up to `last` in segments."""
        return _Thread(doc=doc, stored=doc["last"], partition=partition_of(doc["ownerId"], self._partitions))

    async def _part(self, partition: int) -> _Partition:
        part = self._parts.get(partition)
        if part is not None:
            return part
        return await _once(self._loading_parts, partition, lambda: self._load_part(partition))

    async def _load_part(self, partition: int) -> _Partition:
        """The partition from its mark, with the pages after it replayed."""
        generation = self._generation
        through = await self.log.mark(partition)
        part = _Partition(through=through, next=through + 1)
        pages = await self.log.after(partition, through)
        counted = await self._replay(part, pages)
        if generation != self._generation:
            return part  # forgotten meanwhile: used by whoever waited, not kept
        self._parts[partition] = part
        log.info("thread partition loaded", extra={"partition": partition, "pages": len(pages), "counted": counted})
        return part

    async def _catch_up(self, partition: int, part: _Partition) -> None:
        """Replay the pages written after the last one this replica knows of the partition."""
        await self._replay(part, await self.log.after(partition, part.next - 1))

    async def _replay(self, part: _Partition, pages: Sequence[tuple[int, Sequence[TurnDoc]]]) -> int:
        """Count the turns of `pages` (written by another replica, or by this one before it forgot)
        that their threads do not count yet; a thread gone is passed over."""
        counted = 0
        gone: set[str] = set()
        for seq, turns in pages:
            for turn in turns:
                tid = turn["threadId"]
                thread = self._threads.get(tid)
                if thread is None and tid not in gone:
                    doc = await self.store.find(tid)
                    if doc is None:
                        gone.add(tid)
                        continue
                    thread = self._threads.setdefault(tid, self._fresh(doc))
                if thread is None:
                    continue
                if turn["seq"] > thread.doc["last"]:
                    self._count(thread, turn)
                    counted += 1
                elif turn["turnId"] not in thread.recent:  # counted already: known for a redelivery
                    self._recall(thread, turn)
            part.next = max(part.next, seq + 1)
        return counted

    def _count(self, thread: _Thread, turn: TurnDoc, said: StoredTurn | None = None) -> None:
        count(thread.doc, turn)
        said = said or StoredTurn.of(turn)
        thread.pending.append((turn, said))
        self._recall(thread, turn)
        self.store.remember(turn["_id"], said)

    @staticmethod
    def _recall(thread: _Thread, turn: TurnDoc) -> None:
        thread.recent[turn["turnId"]] = turn["seq"]
        if len(thread.recent) > RECENT_IDS:
            thread.recent.popitem(last=False)

    def _evict(self) -> None:
        """Forget the least recently used threads beyond CAPACITY whose turns are all in segments."""
        excess = len(self._threads) - self._capacity
        if excess > 0:
            for tid in [tid for tid, t in self._threads.items() if not t.dirty][:excess]:
                del self._threads[tid]


def _once[K, V](loading: dict[K, asyncio.Future[V]], key: K, load: Callable[[], Awaitable[V]]) -> Awaitable[V]:
    """One load of `key` at a time: whoever asks meanwhile waits for the same one (shielded, so a
    caller giving up does not cancel it for the others)."""
    future = loading.get(key)
    if future is None:
        future = loading[key] = asyncio.ensure_future(load())
        future.add_done_callback(lambda _: loading.pop(key, None))
    return asyncio.shield(future)
