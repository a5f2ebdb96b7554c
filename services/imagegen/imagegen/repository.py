"""MongoDB adapter: the seed's `images` collection (the gallery) and `image_jobs`.

Every change to a running job is a conditional update on the job's lease token, so a worker
that has lost its job to another (it stalled past its lease) can no longer write to it.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common.contracts import ImageJob, ImageRecord, JobStage
from common.contracts.images import IMAGE_CURSOR_PATTERN
from common.errors import ErrorBody, ValidationFailed
from imagegen import jobs
from imagegen.documents import ImageDoc, JobDoc, OrphanedJob, StalledJob
from imagegen.providers.base import GeneratedImage

Doc = dict[str, Any]


class LeaseLost(Exception):
    """Another worker holds the job now; this one must stop touching it."""


def _is_id_conflict(exc: DuplicateKeyError) -> bool:
    details = exc.details or {}
    if "keyPattern" in details:
        return list(details["keyPattern"]) == ["_id"]
    return "_id_" in str(details.get("errmsg", exc))


def view_of(doc: JobDoc) -> ImageJob:
    error = doc.get("error")
    return ImageJob(
        job_id=uuid.UUID(doc["_id"]),
        user_id=doc["userId"],
        status=doc["status"],
        stage=doc["stage"],
        progress=doc["progress"],
        prompt=doc["prompt"],
        name=doc["name"],
        model=doc["model"],
        size=doc["size"],
        cost=doc["cost"],
        charged=doc.get("charged", 0),
        image_id=uuid.UUID(doc["imageId"]) if doc["status"] == "succeeded" else None,
        url=doc.get("url") if doc["status"] == "succeeded" else None,
        credits_remaining=doc.get("creditsRemaining"),
        provider_status=doc.get("providerStatus"),
        error=ErrorBody.model_validate(error) if error else None,
        version=doc["version"],
        deadline=doc["deadline"],
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
    )


def record_of(doc: ImageDoc) -> ImageRecord:
    status = doc["status"]
    if status != "ready":
        raise ValueError(f"image {doc['_id']} is {status}, not ready")
    return ImageRecord(
        id=uuid.UUID(doc["_id"]),
        user_id=doc["userId"],
        user_email=doc["userEmail"],
        user_name=doc["userName"],
        url=doc["url"],
        name=doc["name"],
        prompt=doc["prompt"],
        model=doc["model"],
        size=doc["size"],
        status=status,
        cost=doc["cost"],
        job_id=uuid.UUID(doc["jobId"]),
        width=doc["width"],
        height=doc["height"],
        format=doc["format"],
        bytes=doc["bytes"],
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
    )


def image_document(job: JobDoc, image: GeneratedImage, *, now: datetime) -> ImageDoc:
    """The gallery document of a job's image (the seed's fields first); `pending` until paid for."""
    return {
        "_id": job["imageId"],
        "userEmail": job["userEmail"],
        "userName": job["userName"],
        "url": job["url"],
        "name": job["name"],
        "userId": job["userId"],
        "prompt": job["prompt"],
        "model": job["model"],
        "size": job["size"],
        "status": "pending",
        "cost": job["cost"],
        "jobId": job["_id"],
        "storage": job["asset"],
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "bytes": len(image.data),
        "createdAt": now,
        "updatedAt": now,
    }


# A gallery cursor is `<createdAt as epoch milliseconds>.<image id>`: the last image of a page,
# in a form a pattern states exactly (IMAGE_CURSOR_PATTERN, which the gateway documents). BSON
# dates hold milliseconds, so the instant is exact. An instant past the last a datetime holds
# is taken as that last one (every image is older).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_MS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_CURSOR = re.compile(IMAGE_CURSOR_PATTERN)


def _cursor(doc: ImageDoc) -> str:
    created: datetime = doc["createdAt"]
    ms = (created.replace(tzinfo=created.tzinfo or UTC) - _EPOCH) // timedelta(milliseconds=1)
    return f"{ms}.{doc['_id']}"


def _after_cursor(cursor: str) -> Doc:
    if not _CURSOR.match(cursor):
        raise ValidationFailed(
            "malformed cursor",
            errors=[{"field": "query.cursor", "message": "not a cursor from a previous page", "type": "value_error"}],
        )
    ms, _, last_id = cursor.partition(".")
    at = _EPOCH + timedelta(milliseconds=min(int(ms), _LAST_MS))
    return {"$or": [{"createdAt": {"$lt": at}}, {"createdAt": at, "_id": {"$lt": last_id}}]}


class ImageRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        # This repository is the only writer of both collections: their documents are these types.
        self.images = cast("AsyncCollection[ImageDoc]", db["images"])
        self.jobs = cast("AsyncCollection[JobDoc]", db["image_jobs"])

    async def create_indexes(self) -> None:
        await self.images.create_index([("userId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)])
        await self.images.create_index([("createdAt", DESCENDING), ("_id", DESCENDING)])
        await self.images.create_index([("userEmail", ASCENDING)])
        await self.images.create_index([("jobId", ASCENDING)], unique=True)
        await self.jobs.create_index([("userId", ASCENDING), ("createdAt", DESCENDING)])
        await self.jobs.create_index([("status", ASCENDING), ("leaseUntil", ASCENDING)])
        await self.jobs.create_index([("orphan.key", ASCENDING)])

    # -- jobs ------------------------------------------------------------------------------

    async def insert_job(self, doc: JobDoc) -> bool:
        """False when a job with this id exists already (a repeated request)."""
        try:
            await self.jobs.insert_one(doc)
        except DuplicateKeyError as exc:
            if _is_id_conflict(exc):
                return False
            raise
        return True

    async def job(self, job_id: uuid.UUID | str) -> JobDoc | None:
        return await self.jobs.find_one({"_id": str(job_id)})

    async def claim(self, job_id: uuid.UUID, *, token: str, now: datetime, lease: timedelta) -> JobDoc | None:
        """Take an unfinished job that nobody holds (or whose holder's lease has lapsed)."""
        return await self.jobs.find_one_and_update(
            {
                "_id": str(job_id),
                "status": {"$in": list(jobs.ACTIVE)},
                "$or": [{"lease": None}, {"leaseUntil": {"$lt": now}}],
            },
            {"$set": {"lease": token, "leaseUntil": now + lease}, "$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def renew(self, job_id: uuid.UUID | str, *, token: str, now: datetime, lease: timedelta) -> bool:
        result = await self.jobs.update_one({"_id": str(job_id), "lease": token}, {"$set": {"leaseUntil": now + lease}})
        return result.matched_count == 1

    async def update(
        self, job: JobDoc, *, token: str, now: datetime, stage: JobStage | None = None, **fields: Any
    ) -> JobDoc:
        """Record progress on a job this worker holds; the updated job comes back.

        With `stage`, the job moves there (status and progress follow); with the terminal
        stages the lease is given up as well."""
        changes: Doc = {**fields, "updatedAt": now}
        unset: Doc = {}
        if stage is not None:
            jobs.check_transition(job["stage"], stage)
            provider_status = fields.get("providerStatus", job.get("providerStatus"))
            changes |= {
                "stage": stage,
                "status": jobs.status_of(stage),
                "progress": jobs.progress(stage, provider_status, previous=job["progress"]),
            }
            if stage in ("done", "failed"):
                changes["finishedAt"] = now
                unset = {"lease": "", "leaseUntil": ""}
        elif "providerStatus" in fields and job["stage"] == "generating":
            changes["progress"] = jobs.progress("generating", fields["providerStatus"])
        update: Doc = {"$set": changes, "$inc": {"version": 1}}
        if unset:
            update["$unset"] = unset
        doc = await self.jobs.find_one_and_update(
            {"_id": job["_id"], "lease": token}, update, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            raise LeaseLost(job["_id"])
        return doc

    async def stalled(self, *, now: datetime, limit: int = 100) -> list[StalledJob]:
        """Unfinished jobs whose holder (or dispatch) has lapsed."""
        query = {"status": {"$in": list(jobs.ACTIVE)}, "leaseUntil": {"$lt": now}}
        docs = await self.jobs.find(query, {"_id": 1, "requestId": 1}).limit(limit).to_list()
        return [_stalled(doc) for doc in docs]

    async def redispatch(self, job_id: str, *, now: datetime, window: timedelta) -> JobDoc | None:
        """Free a stalled job for the next worker; only one caller wins (the rest get None)."""
        return await self.jobs.find_one_and_update(
            {"_id": job_id, "status": {"$in": list(jobs.ACTIVE)}, "leaseUntil": {"$lt": now}},
            {"$set": {"lease": None, "leaseUntil": now + window}},
            return_document=ReturnDocument.AFTER,
        )

    async def orphans(self, *, limit: int = 100) -> list[OrphanedJob]:
        """Finished jobs with a stored file that could not be removed when they failed."""
        docs = await self.jobs.find({"orphan.key": {"$exists": True}}, {"orphan": 1}).limit(limit).to_list()
        return [OrphanedJob(_id=doc["_id"], orphan=doc["orphan"]) for doc in docs]

    async def clear_orphan(self, job_id: str) -> None:
        await self.jobs.update_one({"_id": job_id}, {"$unset": {"orphan": ""}})

    # -- images ----------------------------------------------------------------------------

    async def insert_image(self, doc: ImageDoc) -> None:
        """Idempotent for the job's own image; any other refusal by the server is raised."""
        try:
            await self.images.insert_one(doc)
        except DuplicateKeyError as exc:
            existing = await self.images.find_one({"_id": doc["_id"]}) if _is_id_conflict(exc) else None
            if existing is None or existing.get("jobId") != doc["jobId"]:
                raise

    async def mark_image_ready(self, image_id: str, *, now: datetime) -> None:
        await self.images.update_one({"_id": image_id}, {"$set": {"status": "ready", "updatedAt": now}})

    async def image(self, image_id: uuid.UUID | str) -> ImageDoc | None:
        return await self.images.find_one({"_id": str(image_id), "status": "ready"})

    async def delete_image(self, image_id: uuid.UUID | str) -> None:
        await self.images.delete_one({"_id": str(image_id)})

    async def list_images(
        self, *, user_id: str | None, limit: int, before: str | None
    ) -> tuple[list[ImageRecord], str | None]:
        """Ready images, newest first, by keyset pagination on (createdAt, _id); all users' with user_id None."""
        query: Doc = {"status": "ready"}
        if user_id is not None:
            query["userId"] = user_id
        if before:
            query |= _after_cursor(before)
        docs = (
            await self.images.find(query)
            .sort([("createdAt", DESCENDING), ("_id", DESCENDING)])
            .limit(limit + 1)
            .to_list()
        )
        cursor = _cursor(docs[limit - 1]) if len(docs) > limit else None
        return [record_of(d) for d in docs[:limit]], cursor


def _stalled(doc: JobDoc) -> StalledJob:
    """A stalled job's projection (`_id` and, when it has one, `requestId`)."""
    if "requestId" in doc:
        return StalledJob(_id=doc["_id"], requestId=doc["requestId"])
    return StalledJob(_id=doc["_id"])
