"""Broker entry points of the imagegen service: accept jobs, answer queries, delete images.

Accepting a job is quick and answered at once: the model is checked and priced, the credits
are held (so a user without enough hears 402 now, not minutes later), the job is stored and
then dispatched to the job queue, where `JobRunner` does the slow part.

A user sees only their own jobs and images: someone else's id gets the same 404 as an id
that does not exist, so ids reveal nothing. Admins (and internal services) see everything.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from common.contracts import (
    Actor,
    Caller,
    DeleteImage,
    Envelope,
    GenerateImage,
    GetImage,
    GetImageJob,
    ImageDeleted,
    ImageJob,
    ImagePage,
    ImageRecord,
    ImageSize,
    ListImages,
    Reservation,
)
from common.credits import CreditHolds
from common.errors import (
    Conflict,
    DeadlineExceeded,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
)
from imagegen import jobs
from imagegen.documents import ImageDoc, JobDoc
from imagegen.pricing import ImagePricing
from imagegen.repository import ImageRepository, record_of, view_of
from imagegen.storage.base import ImageStorage

log = logging.getLogger(__name__)

Dispatch = Callable[[uuid.UUID, str], Awaitable[None]]
Publish = Callable[[ImageJob], Awaitable[None]]
NO_SUCH_JOB = "no such image job"
NO_SUCH_IMAGE = "no such image"


def _actor(envelope: Envelope[Any]) -> Actor:
    if envelope.actor is None:
        raise Unauthenticated("image requests need an acting user")
    return envelope.actor


def _visible(actor: Actor | None, owner: str) -> bool:
    return actor is None or actor.role == "admin" or actor.id == owner


class ImageHandlers:
    def __init__(
        self,
        *,
        repo: ImageRepository,
        pricing: ImagePricing,
        credits: CreditHolds,
        storages: dict[str, ImageStorage],
        default_size: ImageSize,
        dispatch: Dispatch,
        publish: Publish,
        dispatch_window: timedelta,
    ) -> None:
        self._repo = repo
        self._pricing = pricing
        self._credits = credits
        self._storages = storages
        self._default_size = default_size
        self._dispatch = dispatch
        self._publish = publish
        self._window = dispatch_window

    async def generate_image(self, envelope: Envelope[GenerateImage]) -> ImageJob:
        actor, p = _actor(envelope), envelope.payload
        model = self._pricing.resolve(p.model)
        size = p.size or self._default_size
        name = p.name or jobs.default_name(p.prompt)
        fingerprint = jobs.fingerprint(prompt=p.prompt, name=name, size=size, model=model)
        existing = await self._repo.job(p.job_id)
        if existing is not None:
            return self._repeat(existing, actor, fingerprint)
        now = datetime.now(UTC)
        if p.deadline <= now:
            raise DeadlineExceeded("the job's deadline has already passed")
        caller = Caller.of(envelope)
        cost = self._pricing.price(model)
        # Derived from the job id: a repeated request finds the hold the first one made.
        reservation = await self._credits.reserve(
            caller, reservation_id=uuid.uuid5(p.job_id, "image"), amount=cost, purpose="image"
        )
        doc = self._new_job(envelope, actor, model=model, size=size, name=name, cost=cost, now=now)
        doc["fingerprint"] = fingerprint
        doc["reservation"] = reservation.model_dump(mode="json")
        try:
            inserted = await self._repo.insert_job(doc)
        except Exception:
            await self._release_quietly(caller, reservation)
            raise
        if not inserted:  # a twin of this request got there first
            twin = await self._repo.job(p.job_id)
            assert twin is not None
            return self._repeat(twin, actor, fingerprint)
        job = view_of(doc)
        await self._publish(job)
        try:
            await self._dispatch(p.job_id, envelope.request_id)
        except Exception:
            # Stored and paid for: the sweeper dispatches it once the dispatch window lapses.
            log.warning("job dispatch failed; the sweeper will retry", extra={"job_id": str(p.job_id)}, exc_info=True)
        log.info("image job accepted", extra={"job_id": str(p.job_id), "model": model, "cost": cost})
        return job

    def _new_job(
        self,
        envelope: Envelope[GenerateImage],
        actor: Actor,
        *,
        model: str,
        size: ImageSize,
        name: str,
        cost: int,
        now: datetime,
    ) -> JobDoc:
        p = envelope.payload
        return {
            "_id": str(p.job_id),
            "userId": actor.id,
            "userEmail": actor.email,
            "userName": p.user_name or actor.email.partition("@")[0],
            "role": actor.role,
            "requestId": envelope.request_id,
            "prompt": p.prompt,
            "name": name,
            "model": model,
            "size": size,
            "cost": cost,
            "charged": 0,
            # Random, not derived: it names the stored file, whose URL must not be guessable.
            "imageId": str(uuid.uuid4()),
            "reservationId": str(uuid.uuid5(p.job_id, "image")),
            "status": "queued",
            "stage": "queued",
            "progress": 0,
            "version": 1,
            "attempts": 0,
            "lease": None,
            "leaseUntil": now + self._window,
            "deadline": p.deadline,
            "createdAt": now,
            "updatedAt": now,
        }

    def _repeat(self, existing: JobDoc, actor: Actor, fingerprint: str) -> ImageJob:
        if existing["userId"] != actor.id:
            raise Conflict("this job id belongs to another request")
        if existing.get("fingerprint") != fingerprint:
            raise Conflict("this Idempotency-Key was already used for a different request")
        return view_of(existing)

    async def _release_quietly(self, caller: Caller, reservation: Reservation) -> None:
        try:
            await self._credits.release(caller, reservation)
        except Exception:
            log.exception(
                "releasing an unused hold failed; it will expire", extra={"id": str(reservation.reservation_id)}
            )

    async def get_image_job(self, envelope: Envelope[GetImageJob]) -> ImageJob:
        doc = await self._repo.job(envelope.payload.job_id)
        if doc is None or not _visible(envelope.actor, doc["userId"]):
            raise NotFound(NO_SUCH_JOB)
        return view_of(doc)

    async def get_image(self, envelope: Envelope[GetImage]) -> ImageRecord:
        return record_of(await self._visible_image(envelope.actor, envelope.payload.image_id))

    async def list_images(self, envelope: Envelope[ListImages]) -> ImagePage:
        actor, p = _actor(envelope), envelope.payload
        if (p.all_users or (p.user_id not in (None, actor.id))) and actor.role != "admin":
            raise Forbidden("only admins list other users' images")
        owner = None if p.all_users else (p.user_id or actor.id)
        images, cursor = await self._repo.list_images(user_id=owner, limit=p.limit, before=p.before)
        return ImagePage(images=images, next_cursor=cursor)

    async def delete_image(self, envelope: Envelope[DeleteImage]) -> ImageDeleted:
        doc = await self._visible_image(envelope.actor, envelope.payload.image_id)
        storage = self._storages.get(doc["storage"]["backend"])
        if storage is None:
            raise ServiceUnavailable(f"the {doc['storage']['backend']} image storage is not configured here")
        # The file first: if that fails the image stays listed and the delete can be retried.
        await storage.delete(doc["storage"]["key"])
        await self._repo.delete_image(doc["_id"])
        log.info("image deleted", extra={"image_id": doc["_id"]})
        return ImageDeleted(image_id=envelope.payload.image_id)

    async def _visible_image(self, actor: Actor | None, image_id: uuid.UUID) -> ImageDoc:
        doc = await self._repo.image(image_id)
        if doc is None or not _visible(actor, doc["userId"]):
            raise NotFound(NO_SUCH_IMAGE)
        return doc

    def routes(self) -> dict[str, Any]:
        return {
            "GenerateImage": self.generate_image,
            "GetImageJob": self.get_image_job,
            "GetImage": self.get_image,
            "ListImages": self.list_images,
            "DeleteImage": self.delete_image,
        }
