"""Keeping a job's lease while a worker runs it, so no one takes over a job that progresses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from imagegen.repository import ImageRepository

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def renewing(repo: ImageRepository, job_id: str, *, token: str, lease: timedelta) -> AsyncIterator[None]:
    """Renew the lease every third of its length for the duration of the block. A renewal that
    finds the lease gone stops; the worker learns it at its next write (LeaseLost)."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            try:
                if not await repo.renew(job_id, token=token, now=datetime.now(UTC), lease=lease):
                    return
            except Exception:
                log.warning("renewing a job's lease failed", extra={"job_id": job_id}, exc_info=True)

    task = asyncio.create_task(renew(), name=f"lease-{job_id}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
