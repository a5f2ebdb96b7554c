"""A ledger partition run on the real MongoDB-protocol server the way the credits service runs
one, for the credits tests: a test clock and `Replica`, one replica's partition 0."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from credits.accounts import AccountStore
from credits.book import Book
from credits.log import LedgerLog, Page
from credits.partition import Partition

SIGNUP = 10
TTL = timedelta(seconds=60)


class Clock:
    """The ledger's notion of now, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Replica:
    """One credits replica's partition 0, as the service runs it: its own book, batches, timers.
    Several may run at once on one database (a stale owner and a new one)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], clock: Clock, **options: Any) -> None:
        self.log = LedgerLog(db)
        self.store = AccountStore(db)
        self.announced: list[Page] = []
        self.partition = Partition(
            0,
            log_=self.log,
            store=self.store,
            signup_credits=options.pop("signup_credits", SIGNUP),
            window=options.pop("window", timedelta(seconds=600)),
            announce=self._announce,
            clock=clock,
            **{"checkpoint_interval_s": 3600.0, "sweep_interval_s": 3600.0, **options},
        )
        self._task = asyncio.create_task(self.partition.run())

    async def _announce(self, pages: list[Page]) -> None:
        self.announced += pages

    async def run[T](self, op: Any, *users: str) -> T:
        result: T = await self.partition.submit(op, users=users)
        return result

    async def reserve(self, user: str, amount: int, rid: str | None = None, *, ttl: timedelta = TTL) -> str:
        rid = rid or str(uuid.uuid4())
        await self.run(
            lambda b, now: b.reserve(
                user_id=user,
                email=f"{user}@example.com",
                reservation_id=rid,
                amount=amount,
                purpose="chat",
                ttl=ttl,
                now=now,
            ),
            user,
        )
        return rid

    async def resolve(self, user: str, rid: str, *, held: int, used: int = 0, kind: str = "commit") -> Any:
        return await self.run(
            lambda b, now: b.resolve(user_id=user, reservation_id=rid, held=held, used=used, kind=kind, now=now), user
        )

    async def grant(self, user: str, key: str, amount: int) -> Any:
        return await self.run(
            lambda b, now: b.grant(user_id=user, email="", key=key, amount=amount, reason="purchase", now=now), user
        )

    async def balance(self, user: str) -> Any:
        return await self.run(lambda b, now: b.balance(user_id=user, email=f"{user}@example.com", now=now), user)

    async def expire(self) -> Any:
        return await self.run(lambda b, now: b.expire_due(now))

    async def checkpoint(self) -> None:
        """Write a checkpoint now and wait for it."""
        await self.run(lambda b, now: None)
        self.partition._start_checkpoint()
        if self.partition._checkpointing is not None:
            await self.partition._checkpointing

    @property
    def book(self) -> Book:
        assert self.partition.book is not None
        return self.partition.book

    async def stop(self) -> None:
        """A clean shutdown: the queue drained and a last checkpoint written."""
        await self.partition.close()
        await self.kill()

    async def kill(self) -> None:
        """The replica dies: whatever it held only in memory is gone."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
