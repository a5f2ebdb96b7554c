"""The threads of the users this chat replica owns, in memory.

A user's thread commands, and the chat requests that continue one of their threads, go to the
partition queue owning that user (`common.bus.topology`), where RabbitMQ lets one replica
consume at a time: that replica is the threads' single writer. It keeps each thread it touched
(its document with up-to-date counters) here, so a threaded request reads nothing from MongoDB
but the turns it lacks, and writes one document: its turn, numbered here after the thread's
latest, in the flush of the usage writer (`usage.py`). The counters reach the thread's document
every CHAT_THREAD_CHECKPOINT_S (and at shutdown), one update per thread that changed, whatever
the number of turns since (`checkpoint`).

A thread is loaded from its document plus the turns numbered after the document's `last`
(`ThreadStore.turns_after`): what the previous owner kept but had not checkpointed. So a crash
loses no turn and no count, and a replica taking a partition over (its owner gone) counts what
the one before it wrote. Should two replicas write one thread at once (the old owner finishing
what it had in hand while the new one starts), the turn numbers keep them apart: a number taken
by a turn this replica did not know is counted, and its own turn takes the next; a checkpoint
writes only over the document it last read or wrote (else it forgets the thread and reloads it).
When the consumer's channel goes, this replica may no longer own its partitions: it forgets
everything (`invalidate`)."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from chat.thread_documents import ThreadDoc, TurnDoc
from chat.thread_store import NO_SUCH_THREAD, NotKept, Taken, ThreadStore
from chat.threads import StoredTurn, TurnWrite, count, turn_key
from common.errors import NotFound

log = logging.getLogger(__name__)

CAPACITY = 10_000  # threads kept in memory (those with counters not yet written stay regardless)
RECENT_IDS = 32  # ids of a thread's latest turns remembered, so a repeated request is kept once
SEQ_TRIES = 8  # a turn's number taken by a turn this replica did not know: take the next, this often


@dataclasses.dataclass(slots=True)
class _Thread:
    doc: ThreadDoc  # with every turn kept so far counted
    stored: int  # the `last` of the document in MongoDB: the checkpoint writes over that one only
    recent: OrderedDict[str, int]  # the ids of its latest turns, with their numbers

    @property
    def dirty(self) -> bool:
        return self.doc["last"] != self.stored


class ThreadBook:
    def __init__(self, store: ThreadStore, *, checkpoint_s: float = 2.0, capacity: int = CAPACITY) -> None:
        self.store = store
        self._checkpoint_s = checkpoint_s
        self._capacity = capacity
        self._threads: OrderedDict[str, _Thread] = OrderedDict()
        self._loading: dict[str, asyncio.Future[_Thread | None]] = {}
        self._generation = 0  # moved by `invalidate`: a load begun before it is not kept
        self._writing = asyncio.Lock()  # turns being written, or a thread being deleted

    # -- reading -------------------------------------------------------------------------------

    async def get(self, thread_id: uuid.UUID | str, *, owner_id: str) -> ThreadDoc:
        """The owner's thread with its counters up to date (a copy); NotFound for another's."""
        thread = await self._thread(str(thread_id))
        if thread is None or thread.doc["ownerId"] != owner_id:
            raise NotFound(NO_SUCH_THREAD)
        return thread.doc.copy()

    async def kept(self, thread_id: str, turn_id: uuid.UUID, *, look: bool = False) -> TurnDoc | None:
        """The turn `turn_id` of the thread, if it was kept already (its request is a redelivery);
        with `look`, after counting the turns written since this replica last did."""
        thread = self._threads.get(thread_id)
        if thread is None:
            return None
        if look and str(turn_id) not in thread.recent:
            async with self._writing:  # not while this replica numbers turns of its own
                self._absorb(thread, await self.store.turns_after(thread_id, thread.doc["last"]))
        seq = thread.recent.get(str(turn_id))
        return None if seq is None else await self.store.turn(turn_key(thread_id, seq))

    def newest_first(self, thread: ThreadDoc, *, below: int | None = None) -> AsyncIterator[StoredTurn]:
        return self.store.newest_first(thread, below=below)

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
        """The thread and its turns; a turn being written waits, and one answered after is not kept."""
        async with self._writing:
            await self.get(thread_id, owner_id=owner_id)
            self._threads.pop(str(thread_id), None)
            await self.store.delete(str(thread_id), owner_id=owner_id)

    async def keep(self, turns: Sequence[TurnWrite]) -> builtins.list[BaseException | None]:
        """Number and write `turns` (one flush of the usage writer), and count them. Per turn: None
        when kept (or kept already: a repeat of its request), else why not."""
        results: list[BaseException | None] = [None] * len(turns)
        async with self._writing:
            pending: list[int] = []
            threads: dict[str, _Thread] = {}
            for i, turn in enumerate(turns):
                thread = threads.get(turn.thread_id) or await self._thread(turn.thread_id)
                if thread is None or thread.doc["ownerId"] != turn.owner_id:
                    results[i] = NotFound("the thread was deleted while the answer was being made")
                elif str(turn.turn_id) not in thread.recent:  # else a repeat: kept already
                    threads[turn.thread_id] = thread
                    pending.append(i)
            numbered = list(turns)
            for _ in range(SEQ_TRIES):
                if not pending:
                    break
                after: dict[str, int] = {}
                for i in pending:
                    tid = numbered[i].thread_id
                    after[tid] = after.get(tid, threads[tid].doc["last"]) + 1
                    numbered[i] = dataclasses.replace(numbered[i], seq=after[tid])
                written = await self.store.insert_turns([numbered[i] for i in pending])
                taken: list[int] = []
                for i, outcome in zip(pending, written, strict=True):
                    if outcome is None:
                        self._count(threads[numbered[i].thread_id], numbered[i].document())
                    elif isinstance(outcome, Taken):
                        taken.append(i)
                    else:
                        results[i] = outcome
                pending = [i for i in taken if not await self._known(threads[numbered[i].thread_id], numbered[i])]
            for i in pending:
                results[i] = NotKept("too many turns of this thread at once")
        return results

    async def _known(self, thread: _Thread, turn: TurnWrite) -> bool:
        """Count the turn written under `turn`'s number (and any after it) that this replica did
        not know of; True when it is `turn` itself (its request was kept already)."""
        existing = await self.store.turn(turn.key)
        self._absorb(thread, [existing] if existing is not None else [])
        self._absorb(thread, await self.store.turns_after(thread.doc["_id"], thread.doc["last"]))
        return str(turn.turn_id) in thread.recent

    # -- checkpoints ---------------------------------------------------------------------------

    async def checkpoint(self) -> None:
        """Write the counters of every thread that changed since it was read or written."""
        dirty = [(tid, t) for tid, t in self._threads.items() if t.dirty]
        if not dirty:
            return
        docs = [t.doc.copy() for _, t in dirty]
        if await self.store.checkpoint(docs, since=[t.stored for _, t in dirty]):
            for (_, thread), doc in zip(dirty, docs, strict=True):
                thread.stored = doc["last"]
            self._evict()
            return
        # Some document was not ours to write (deleted, or written by another replica): reload them.
        log.warning("thread checkpoint conflicted; reloading", extra={"count": len(dirty)})
        for tid, thread in dirty:
            if self._threads.get(tid) is thread:
                del self._threads[tid]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_s)
            try:
                await self.checkpoint()
            except Exception:
                log.warning("thread checkpoint failed", exc_info=True)

    async def close(self, *, timeout_s: float = 2.0) -> None:
        """Write what changed, for at most `timeout_s` (what is not written is counted on the next load)."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout_s):
                await self.checkpoint()

    def invalidate(self) -> None:
        """Forget every thread: another replica may own them now."""
        self._threads.clear()
        self._generation += 1

    # -- memory --------------------------------------------------------------------------------

    async def _thread(self, thread_id: str) -> _Thread | None:
        thread = self._threads.get(thread_id)
        if thread is not None:
            self._threads.move_to_end(thread_id)
            return thread
        loading = self._loading.get(thread_id)
        if loading is None:
            loading = self._loading[thread_id] = asyncio.ensure_future(self._load(thread_id))
            loading.add_done_callback(lambda _: self._loading.pop(thread_id, None))
        return await asyncio.shield(loading)

    async def _load(self, thread_id: str) -> _Thread | None:
        doc = await self.store.find(thread_id)
        return None if doc is None else await self._adopt(doc)

    async def _adopt(self, doc: ThreadDoc) -> _Thread:
        """Keep `doc` with the turns after its `last` counted."""
        generation = self._generation
        thread = _Thread(doc=doc, stored=doc["last"], recent=OrderedDict())
        later = await self.store.turns_after(doc["_id"], doc["last"])
        self._absorb(thread, later)
        log.info("thread loaded", extra={"thread_id": doc["_id"], "turns": thread.doc["turns"], "counted": len(later)})
        if generation == self._generation:
            self._threads.setdefault(doc["_id"], thread)
            self._evict()
            return self._threads[doc["_id"]]
        return thread

    @classmethod
    def _absorb(cls, thread: _Thread, turns: Sequence[TurnDoc]) -> None:
        """Count those of `turns` the thread does not count yet (written by another replica)."""
        for turn in turns:
            if turn["turnId"] not in thread.recent:
                cls._count(thread, turn)

    @staticmethod
    def _count(thread: _Thread, turn: TurnDoc) -> None:
        count(thread.doc, turn)
        thread.recent[turn["turnId"]] = turn["seq"]
        if len(thread.recent) > RECENT_IDS:
            thread.recent.popitem(last=False)

    def _evict(self) -> None:
        """Forget the least recently used threads beyond CAPACITY whose counters are written."""
        excess = len(self._threads) - self._capacity
        if excess > 0:
            for tid in [tid for tid, t in self._threads.items() if not t.dirty][:excess]:
                del self._threads[tid]
