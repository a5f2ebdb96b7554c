"""The job and gallery collections on the real MongoDB-protocol server."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common.contracts.images import IMAGE_CURSOR_PATTERN
from common.errors import ValidationFailed
from imagegen.repository import ImageRepository, LeaseLost

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=30)


@pytest.fixture
async def repo(db: AsyncDatabase[dict[str, Any]]) -> ImageRepository:
    repository = ImageRepository(db)
    await repository.create_indexes()
    return repository


def job_doc(now: datetime, **overrides: Any) -> dict[str, Any]:
    return {
        "_id": str(uuid.uuid4()),
        "userId": "u1",
        "status": "queued",
        "stage": "queued",
        "progress": 0,
        "version": 1,
        "lease": None,
        "leaseUntil": now + LEASE,
        "deadline": now + timedelta(minutes=3),
        **overrides,
    }


def image_doc(now: datetime, **overrides: Any) -> dict[str, Any]:
    return {
        "_id": str(uuid.uuid4()),
        "jobId": str(uuid.uuid4()),
        "userId": "u1",
        "userEmail": "u1@example.com",
        "userName": "u1",
        "url": "/files/images/u1/x.png",
        "name": "n",
        "prompt": "p",
        "model": "m",
        "size": "256x256",
        "status": "ready",
        "cost": 5,
        "width": 256,
        "height": 256,
        "format": "png",
        "bytes": 10,
        "createdAt": now,
        "updatedAt": now,
        **overrides,
    }


async def test_of_two_workers_claiming_a_job_at_once_exactly_one_gets_it(repo: ImageRepository) -> None:
    now = datetime.now(UTC)
    doc = job_doc(now)
    assert await repo.insert_job(doc) and not await repo.insert_job(doc)

    claims = await asyncio.gather(
        *(repo.claim(uuid.UUID(doc["_id"]), token=t, now=now, lease=LEASE) for t in ("a", "b", "c"))
    )
    assert sum(c is not None for c in claims) == 1
    again = await repo.claim(uuid.UUID(doc["_id"]), token="d", now=now + LEASE / 2, lease=LEASE)
    assert again is None  # held, and the lease has not lapsed
    taken = await repo.claim(uuid.UUID(doc["_id"]), token="e", now=now + LEASE * 2, lease=LEASE)
    assert taken is not None and taken["lease"] == "e" and taken["attempts"] == 2


async def test_only_the_lease_holder_writes_and_finishing_gives_the_lease_up(repo: ImageRepository) -> None:
    now = datetime.now(UTC)
    doc = job_doc(now)
    await repo.insert_job(doc)
    held = await repo.claim(uuid.UUID(doc["_id"]), token="mine", now=now, lease=LEASE)
    assert held is not None

    with pytest.raises(LeaseLost):
        await repo.update(held, token="stale", now=now, stage="generating")
    running = await repo.update(held, token="mine", now=now, stage="generating", providerStatus="processing")
    assert (running["status"], running["progress"], running["version"]) == ("running", 40, 2)
    failed = await repo.update(running, token="mine", now=now, stage="failed", error={"code": "x", "detail": "y"})
    assert (failed["status"], failed["progress"], failed.get("lease")) == ("failed", 40, None)
    assert await repo.claim(uuid.UUID(doc["_id"]), token="late", now=now + LEASE * 9, lease=LEASE) is None


async def test_a_stalled_job_is_redispatched_by_one_sweeper_only(repo: ImageRepository) -> None:
    now = datetime.now(UTC)
    stalled, fresh, done = job_doc(now - LEASE * 2), job_doc(now), job_doc(now - LEASE * 2, status="succeeded")
    for doc in (stalled, fresh, done):
        await repo.insert_job(doc)

    assert [d["_id"] for d in await repo.stalled(now=now)] == [stalled["_id"]]
    wins = await asyncio.gather(*(repo.redispatch(stalled["_id"], now=now, window=LEASE) for _ in range(3)))
    assert sum(w is not None for w in wins) == 1
    assert await repo.stalled(now=now) == []


async def test_saving_the_jobs_own_image_twice_is_fine_but_any_other_refusal_is_raised(
    repo: ImageRepository, db: AsyncDatabase[dict[str, Any]]
) -> None:
    now = datetime.now(UTC)
    image = image_doc(now)
    await repo.insert_image(image)
    await repo.insert_image(image)  # a resumed job saves again

    with pytest.raises(DuplicateKeyError):  # same id, another job
        await repo.insert_image(image | {"jobId": str(uuid.uuid4())})
    with pytest.raises(DuplicateKeyError):  # another id, same job
        await repo.insert_image(image | {"_id": str(uuid.uuid4())})
    assert await db["images"].count_documents({}) == 1


async def test_the_gallery_pages_newest_first_per_user_and_only_ready_images(repo: ImageRepository) -> None:
    start = datetime.now(UTC)
    for i in range(5):
        await repo.insert_image(image_doc(start + timedelta(seconds=i), name=f"mine {i}"))
    await repo.insert_image(image_doc(start, userId="u2", name="theirs"))
    await repo.insert_image(image_doc(start + timedelta(seconds=9), status="pending", name="unpaid"))

    first, cursor = await repo.list_images(user_id="u1", limit=3, before=None)
    rest, end = await repo.list_images(user_id="u1", limit=3, before=cursor)
    assert [i.name for i in first + rest] == [f"mine {i}" for i in range(4, -1, -1)]
    assert end is None and cursor is not None and re.match(IMAGE_CURSOR_PATTERN, cursor)
    far_future = f"999999999999999.{uuid.uuid4()}"  # past the last datetime: every image is older
    assert len((await repo.list_images(user_id="u1", limit=10, before=far_future))[0]) == 5
    everyone, _ = await repo.list_images(user_id=None, limit=10, before=None)
    assert len(everyone) == 6
    with pytest.raises(ValidationFailed):
        await repo.list_images(user_id="u1", limit=3, before="not-a-cursor!")
