"""Keeps jobs moving when their worker is gone: a job whose lease has lapsed (its worker
crashed, or its dispatch was lost) is dispatched again, and stored files that a failed job
could not delete are deleted. Safe with many replicas: each redispatch is a conditional
update only one of them wins."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from imagegen.repository import ImageRepository
from imagegen.storage.base import ImageStorage

log = logging.getLogger(__name__)

Dispatch = Callable[[uuid.UUID, str], Awaitable[None]]  # job id, request id


class JobSweeper:
    def __init__(
        self,
        repo: ImageRepository,
        *,
        dispatch: Dispatch,
        storages: dict[str, ImageStorage],
        interval_s: float,
        window: timedelta,
    ) -> None:
        self._repo = repo
        self._dispatch = dispatch
        self._storages = storages
        self._interval_s = interval_s
        self._window = window

    async def sweep_once(self, now: datetime | None = None) -> int:
        """Dispatch stalled jobs again and delete orphaned files; returns how many jobs were dispatched."""
        now = now or datetime.now(UTC)
        dispatched = 0
        for doc in await self._repo.stalled(now=now):
            if await self._repo.redispatch(doc["_id"], now=now, window=self._window) is None:
                continue  # another replica got there first
            log.info("stalled job dispatched again", extra={"job_id": doc["_id"]})
            await self._dispatch(uuid.UUID(doc["_id"]), doc.get("requestId") or f"job:{doc['_id']}")
            dispatched += 1
        for job in await self._repo.orphans():
            orphan = job["orphan"]
            storage = self._storages.get(orphan["backend"])
            if storage is None:
                continue
            try:
                await storage.delete(orphan["key"])
            except Exception:
                log.warning("orphaned file still not deleted", extra={"key": orphan["key"]}, exc_info=True)
                continue
            await self._repo.clear_orphan(job["_id"])
            log.info("orphaned file deleted", extra={"key": orphan["key"], "job_id": job["_id"]})
        return dispatched

    async def run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:
                log.exception("image job sweep failed; retrying")
            await asyncio.sleep(self._interval_s)
