"""One ledger partition, owned by this replica: group commit over an in-memory book.

Operations queue up while the previous page is being written; the next batch takes them all
(up to `max_batch`), runs them on the book in arrival order, writes what they produced as
ONE page of the log and only then answers each. At low load a batch is one operation and
waits for nothing; under load the batch grows and the store sees one write for many
operations. Checkpoints (the changed accounts, the reservations settled since the last one,
and the partition's marker) are written in the background every `checkpoint_interval_s`, so
an operation costs a share of one page write and nothing that grows with the account's or
the ledger's history; and a load reads the checkpoint, its window of settlement digests and
the pages after it, not every page of the replay window.

Ownership: RabbitMQ's single active consumer gives each partition queue to one replica at a
time, and this replica's book is loaded on the first batch after it is handed the queue.
Safety does not depend on it: a page can be written only once (see credits.log), so a
replica whose book is stale fails its next write, reloads from the store and runs the batch
again. A page that cannot be written for any other reason throws the book away too: the
operations of that batch get a retryable error, and the next batch starts from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from common.errors import PlatformError, ServiceUnavailable
from common.pages import page_id
from credits import metrics
from credits.accounts import AccountStore, Marker
from credits.book import AccountState, Book, Settled
from credits.log import Fenced, LedgerLog, Page

log = logging.getLogger(__name__)

Announce = Callable[[list[Page]], Awaitable[None]]
ATTEMPTS = 3  # a batch fenced this often in a row gets a retryable error
ANNOUNCE_EVERY_S = 0.1  # pages written this close together are announced as one event
MAX_ANNOUNCED = 2000  # entries in one event at most


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Op:
    run: Callable[[Book, datetime], Any]
    users: tuple[str, ...]
    done: asyncio.Future[Any]
    urgent: bool = True


class Partition:
    def __init__(
        self,
        number: int,
        *,
        log_: LedgerLog,
        store: AccountStore,
        signup_credits: int,
        window: timedelta,
        announce: Announce,
        checkpoint_interval_s: float = 10.0,
        sweep_interval_s: float = 5.0,
        max_batch: int = 512,
        linger_s: float = 0.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.number = number
        self._log = log_
        self._store = store
        self._signup = signup_credits
        self._window = window
        self._announce = announce
        self._checkpoint_interval_s = checkpoint_interval_s
        self._sweep_interval_s = sweep_interval_s
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._clock = clock
        self._queue: list[_Op] = []
        self._urgent = 0  # queued operations somebody waits for
        self._first_queued = 0.0  # when the oldest queued operation arrived
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self.book: Book | None = None
        self.head = 0
        self._announced = 0
        self._unannounced: asyncio.Queue[Page] = asyncio.Queue()
        self._checkpointing: asyncio.Task[None] | None = None
        self._last_checkpoint = time.monotonic()
        self._last_sweep = time.monotonic()
        self._marker_seen = Marker()
        self._closing = False

    # -- the public face --------------------------------------------------------------------

    async def submit[T](
        self, run: Callable[[Book, datetime], T], *, users: Iterable[str] = (), urgent: bool = True
    ) -> T:
        """Run `run(book, now)` in a batch; its result once the batch's page is durable.

        An operation nobody waits for (`urgent=False`: a settlement sent without waiting) may
        linger up to `linger_s` for company; an urgent one starts the next batch at once, taking
        every lingering one with it in arrival order, so what is read after a settlement sees it."""
        if self._closing:
            raise ServiceUnavailable("the ledger partition is shutting down")
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._enqueue(_Op(run, tuple(users), done, urgent))
        return await done

    def _enqueue(self, op: _Op) -> None:
        if not self._queue:
            self._first_queued = time.monotonic()
        self._queue.append(op)
        self._urgent += op.urgent
        self._drained.clear()
        if op.urgent or len(self._queue) == 1:
            self._wake.set()

    def invalidate(self) -> None:
        """Forget the book (this replica may no longer own the partition); the next batch reloads it."""
        self.book = None

    async def run(self) -> None:
        """Commit batches until cancelled; sweep expired holds and checkpoint on their timers."""
        announcer = asyncio.create_task(self._announce_pages(), name=f"ledger-announce-{self.number}")
        try:
            while True:
                await self._idle()
                if self._queue:
                    batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                    self._urgent = sum(op.urgent for op in self._queue)
                    self._first_queued = time.monotonic()
                    await self._commit(batch)
                if not self._queue:
                    self._drained.set()
                self._timers()
        finally:
            announcer.cancel()

    async def close(self, *, timeout_s: float = 5.0) -> None:
        """Refuse new operations, let the queued ones finish, then checkpoint everything."""
        self._closing = True
        try:
            async with asyncio.timeout(timeout_s):
                await self._drained.wait()
                if self._checkpointing is not None:
                    await self._checkpointing
                self._start_checkpoint()
                if self._checkpointing is not None:
                    await self._checkpointing
        except TimeoutError:
            log.warning("ledger partition closed before its last checkpoint", extra={"partition": self.number})

    # -- batches ----------------------------------------------------------------------------

    async def _idle(self) -> None:
        """Until a batch is due (an urgent operation, a full batch, or the oldest one's linger
        spent) or, with nothing queued, until the timers' interval has passed."""
        while True:
            if self._urgent or len(self._queue) >= self._max_batch:
                return
            if self._queue:
                wait = self._first_queued + self._linger_s - time.monotonic()
                if wait <= 0:
                    return
            else:
                wait = max(0.05, min(self._sweep_interval_s, self._checkpoint_interval_s))
            self._wake.clear()
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                if not self._queue:
                    return

    def _timers(self) -> None:
        if self.book is None:
            return
        now = time.monotonic()
        if now - self._last_sweep >= self._sweep_interval_s and not self._closing:
            self._last_sweep = now
            if self.book.due(self._clock()):
                done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                done.add_done_callback(_log_failure)
                self._enqueue(_Op(_expire, (), done, urgent=False))
        if now - self._last_checkpoint >= self._checkpoint_interval_s:
            self._start_checkpoint()

    async def _commit(self, batch: list[_Op]) -> None:
        started = time.perf_counter()
        for _ in range(ATTEMPTS):
            try:
                book = await self._loaded()
                await self._load_accounts(book, {u for op in batch for u in op.users})
            except Exception as exc:
                self._fail(batch, exc, "loading the ledger partition failed")
                return
            now = self._clock()
            seq = self.head + 1
            book.forget_before(now)
            book.begin(seq)
            outcomes = [_run(op, book, now) for op in batch]
            broken = any(isinstance(o, BaseException) and not isinstance(o, PlatformError) for o in outcomes)
            entries = book.produced
            if entries:
                try:
                    await self._log.append(partition=self.number, seq=seq, at=now, entries=entries)
                except Fenced:
                    metrics.FENCED.inc()
                    log.warning("ledger partition written by another replica; reloading", extra={"page": seq})
                    self.book = None
                    continue
                except Exception as exc:
                    self._fail(batch, exc, "writing a ledger page failed")
                    return
                self.head = seq
                self._unannounced.put_nowait(Page(self.number, seq, now, entries))
                metrics.PAGE_ENTRIES.observe(len(entries))
            if broken:
                self.book = None  # an operation failed half-way: trust only what is on disk
            metrics.BATCH_OPERATIONS.observe(len(batch))
            metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            for op, outcome in zip(batch, outcomes, strict=True):
                _deliver(op.done, outcome)
            return
        self._fail(batch, ServiceUnavailable("the ledger partition kept changing hands"), "batch fenced repeatedly")

    def _fail(self, batch: list[_Op], exc: BaseException, why: str) -> None:
        log.warning(why, extra={"partition": self.number, "error": repr(exc)})
        self.book = None
        error = exc if isinstance(exc, ServiceUnavailable) else ServiceUnavailable("the ledger is unavailable; retry")
        for op in batch:
            _deliver(op.done, error)

    # -- loading ----------------------------------------------------------------------------

    async def _loaded(self) -> Book:
        if self.book is not None:
            return self.book
        started = time.perf_counter()
        book = Book(signup_credits=self._signup, window=self._window)
        marker = await self._store.marker(self.number)
        await self._load_accounts(book, marker.holders)
        start = min(marker.announced, marker.checkpoint)
        await self._remember_window(book, marker, before=start)
        head = marker.checkpoint
        unannounced: list[Page] = []
        async for page in self._log.after(self.number, start):
            head = page.seq
            if page.seq > marker.announced:
                unannounced.append(page)
            if page.seq > marker.checkpoint:
                await self._load_accounts(book, {e.user_id for e in page.entries})
            for entry in page.entries:
                account = book.accounts.get(entry.user_id)
                if page.seq > marker.checkpoint and (account is None or account.seq < page.seq):
                    book.apply(entry, seq=page.seq)
                else:  # its effect is in the account's checkpoint already
                    book.remember(entry, new=page.seq > marker.checkpoint)
        self.book, self.head, self._marker_seen = book, head, marker
        self._announced = marker.announced
        for page in unannounced:
            self._unannounced.put_nowait(page)
        log.info(
            "ledger partition loaded",
            extra={
                "partition": self.number,
                "head": head,
                "checkpoint": marker.checkpoint,
                "accounts": len(book.accounts),
                "settled": len(book.settled),
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return book

    async def _remember_window(self, book: Book, marker: Marker, *, before: int) -> None:
        """Settlements in the pages up to `before` that are still inside the replay window: from
        the checkpoints' digests, and from the pages no digest covers (written before digests)."""
        cutoff = self._clock() - self._window
        digested: list[tuple[str, Settled]] = []
        seq = before
        if marker.digest is not None:
            digested, rest = await self._store.settlements.window(marker.digest, cutoff=cutoff)
            seq = min(seq, rest)
        found = []
        while seq > 0:
            page = await self._log.read(self.number, seq)
            if page is None or page.at < cutoff:
                break
            found.append(page)
            seq -= 1
        for page in reversed(found):  # older than the digests
            for entry in page.entries:
                book.remember(entry)
        for reservation_id, settled in digested:
            book.recall(reservation_id, settled)

    async def _load_accounts(self, book: Book, users: Iterable[str]) -> None:
        missing = [u for u in users if u not in book.accounts and u not in book.absent]
        if not missing:
            return
        for user_id, account in zip(
            missing, await asyncio.gather(*(self._store.load(u) for u in missing)), strict=True
        ):
            if user_id in book.accounts:
                continue
            if account is None:
                book.absent.add(user_id)
            else:
                book.add_account(account)

    # -- checkpoints and events -------------------------------------------------------------

    def _start_checkpoint(self) -> None:
        book = self.book
        if book is None or (self._checkpointing is not None and not self._checkpointing.done()):
            return
        self._last_checkpoint = time.monotonic()
        seen = self._marker_seen
        marker = Marker(
            checkpoint=self.head,
            announced=min(self._announced, self.head),
            holders=book.holders(),
            digest=seen.digest,
        )
        if not book.dirty and marker == seen:
            return
        changed = [_copy(book.accounts[u]) for u in book.dirty if u in book.accounts]
        dirty, book.dirty = book.dirty, set()
        settled, book.settling = book.settling, []
        self._checkpointing = asyncio.create_task(
            self._checkpoint(book, _Checkpoint(changed, dirty, settled, seen.checkpoint), marker)
        )

    async def _checkpoint(self, book: Book, taken: _Checkpoint, marker: Marker) -> None:
        try:
            written = await self._store.checkpoint(
                partition=self.number,
                seq=marker.checkpoint,
                accounts=taken.changed,
                settled=taken.settled,
                since=taken.since,
                marker=marker,
                now=self._clock(),
            )
            if written is None:
                log.warning("ledger checkpoint refused: another replica wrote the partition; reloading")
                metrics.FENCED.inc()
                if self.book is book:
                    self.book = None
                return
            self._marker_seen = written
            metrics.CHECKPOINT_ACCOUNTS.observe(len(taken.changed))
            for account in taken.changed:  # their documents exist now, as of this checkpoint
                live = book.accounts.get(account.user_id)
                if live is not None:
                    live.stored, live.seq = True, marker.checkpoint
        except Exception:
            log.warning("ledger checkpoint failed; retrying later", extra={"partition": self.number}, exc_info=True)
            book.dirty |= taken.dirty
            book.settling[:0] = taken.settled  # the next digest covers these pages too

    async def _announce_pages(self) -> None:
        """Announce the pages, in order, as CreditsChanged events: the pages written within
        ANNOUNCE_EVERY_S of each other go out as one event; a failed publish is retried until the
        bus takes it (consumers deduplicate on entry ids)."""
        while True:
            pages = [await self._unannounced.get()]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ANNOUNCE_EVERY_S):
                    while sum(len(p.entries) for p in pages) < MAX_ANNOUNCED:
                        pages.append(await self._unannounced.get())
            pause = 0.1
            while True:
                try:
                    await self._announce(pages)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning(
                        "announcing ledger pages failed; retrying",
                        extra={"first": page_id(self.number, pages[0].seq), "pages": len(pages)},
                    )
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 5.0)
            self._announced = max(self._announced, pages[-1].seq)


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    """What a checkpoint took from the book: the accounts to write (copies), the ids it took them
    by, and the settlements of the pages after `since` (the previous checkpoint)."""

    changed: list[AccountState]
    dirty: set[str]
    settled: list[tuple[str, Settled]]
    since: int


def _expire(book: Book, now: datetime) -> list[tuple[str, int]]:
    expired = book.expire_due(now)
    for reservation_id, amount in expired:
        metrics.applied("expire", amount)
        log.info("reservation expired", extra={"reservation_id": reservation_id, "amount": amount})
    return expired


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("expiring reservations failed", extra={"error": repr(done.exception())})


def _run(op: _Op, book: Book, now: datetime) -> Any:
    try:
        return op.run(book, now)
    except Exception as exc:  # a PlatformError is an answer; anything else is reported to the caller
        return exc


def _deliver(done: asyncio.Future[Any], outcome: Any) -> None:
    if done.done():
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


def _copy(account: AccountState) -> AccountState:
    return replace(account, holds=dict(account.holds), grants=set(account.grants))
