"""Expires abandoned reservations (their service died before resolving them) once their TTL
has passed, returning the credits. Safe with many replicas: each expiry is a conditional
update that only one of them can win."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from common.errors import Conflict
from credits import metrics
from credits.repository import AccountRepository

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(
        self, repo: AccountRepository, *, interval_s: float, on_change: Callable[[dict[str, object]], Awaitable[object]]
    ) -> None:
        self._repo = repo
        self._interval_s = interval_s
        self._on_change = on_change

    async def sweep_once(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        expired = 0
        for user_id, hold in await self._repo.due_holds(now=now):
            try:
                resolution = await self._repo.resolve(
                    user_id=user_id, reservation_id=hold["id"], held=hold["amount"], used=0, kind="expire", now=now
                )
            except Conflict:
                continue  # resolved meanwhile, or another replica expired it first
            if resolution.applied:
                expired += 1
                metrics.applied("expire", hold["amount"])
                log.info(
                    "reservation expired",
                    extra={"user_id": user_id, "reservation_id": hold["id"], "amount": hold["amount"]},
                )
                await self._on_change(resolution.account)
        return expired

    async def run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweep failed; retrying")
            await asyncio.sleep(self._interval_s)
