"""Runs one accepted job to its end: provider → storage → gallery → charge → event, or, when a
step fails, back out of every step taken so that nothing is charged and nothing is left.

The job's record says what has been done, and every step is safe to repeat (deterministic
image id and storage key, idempotent ledger calls, event id derived from the job), so a
worker that takes over a job after a crash simply runs `run` again: `jobs.plan` tells it
whether to carry on, charge, finish or roll back.

Rolling back goes in this order: cancel the prediction, return the credits, delete the
image document, delete the stored file, and only then mark the job failed. Until the end
the job stays unfinished, so a crash part-way leaves it to be rolled back again later.
A file that cannot be deleted is recorded on the job as an orphan; the sweeper retries.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import PyMongoError

from common.contracts import Actor, Caller, ImageGenerated, ImageJob, Reservation
from common.credits import CreditHolds
from common.errors import Conflict, DeadlineExceeded, InternalError, PlatformError
from imagegen import jobs
from imagegen.documents import AssetRef, JobDoc
from imagegen.lease import renewing
from imagegen.metrics import JOB_SECONDS, JOBS, ORPHANS, RUNNING
from imagegen.providers.base import GeneratedImage, GenerationRequest, ImageProvider
from imagegen.repository import ImageRepository, LeaseLost, image_document, record_of, view_of
from imagegen.storage.base import ImageStorage

log = logging.getLogger(__name__)

CREDITS_CALL_S = 15.0
Publish = Callable[[ImageJob], Awaitable[None]]
Announce = Callable[[Caller, ImageGenerated, uuid.UUID], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Held:
    """The job as this worker last wrote it, and the lease it writes under."""

    doc: JobDoc
    token: str
    prediction: str | None = None


class JobRunner:
    def __init__(
        self,
        *,
        repo: ImageRepository,
        provider: ImageProvider,
        storages: dict[str, ImageStorage],
        storage: str,
        credits: CreditHolds,
        publish: Publish,
        announce: Announce,
        lease: timedelta,
    ) -> None:
        self._repo = repo
        self._provider = provider
        self._storages = storages
        self._storage = storages[storage]
        self._credits = credits
        self._publish = publish
        self._announce = announce
        self._lease = lease

    async def run(self, job_id: uuid.UUID) -> None:
        """Take the job if nobody holds it, and run it as far as it will go."""
        token = uuid.uuid4().hex
        doc = await self._repo.claim(job_id, token=token, now=_now(), lease=self._lease)
        if doc is None:
            log.info("job not taken: finished, or held by another worker", extra={"job_id": str(job_id)})
            return
        held = _Held(doc=doc, token=token, prediction=doc.get("predictionId"))
        try:
            with RUNNING.track_inprogress():
                async with renewing(self._repo, held.doc["_id"], token=token, lease=self._lease):
                    await self._drive(held)
        except LeaseLost:
            log.warning("job taken over by another worker; stopping", extra={"job_id": str(job_id)})
        except Exception:
            # Infrastructure trouble (database, broker, ledger unreachable): the job keeps its
            # record, its lease lapses, and the sweeper hands it to a worker again.
            log.exception("job interrupted; it resumes once its lease lapses", extra={"job_id": str(job_id)})

    async def _drive(self, held: _Held) -> None:
        doc = held.doc
        step = jobs.plan(
            jobs.Facts(
                status=doc["status"],
                deadline=doc["deadline"],
                image_saved=doc.get("imageSaved", False),
                committed=doc.get("committed", False),
                failing=doc.get("error") is not None,
            ),
            _now(),
        )
        log.info("job step", extra={"job_id": doc["_id"], "step": step, "stage": doc["stage"]})
        if step == "skip":
            return
        if step == "finish":
            await self._finish(held)
        elif step == "charge":
            await self._charge(held)
        elif step == "roll_back":
            reason = (
                doc.get("error") or DeadlineExceeded("the job's deadline passed before it ran").to_body().model_dump()
            )
            await self._roll_back(held, reason=reason)
        else:
            try:
                image = await self._generate(held)
                await self._store(held, image)
                await self._save(held, image)
            except LeaseLost:
                raise
            except Exception as exc:
                if not isinstance(exc, PlatformError):
                    log.exception("job step failed", extra={"job_id": doc["_id"], "stage": held.doc["stage"]})
                await self._roll_back(held, reason=jobs.failure(exc).model_dump())
                return
            await self._charge(held)

    # -- forward ---------------------------------------------------------------------------

    async def _write(self, held: _Held, **fields: Any) -> None:
        held.doc = await self._repo.update(held.doc, token=held.token, now=_now(), **fields)
        await self._publish(view_of(held.doc))

    async def _generate(self, held: _Held) -> GeneratedImage:
        doc = held.doc
        await self._write(held, stage="generating", startedAt=doc.get("startedAt") or _now())

        async def started(ref: str) -> None:
            held.prediction = ref  # in memory first: a deadline may cut the write below short
            await self._write(held, predictionId=ref)

        async def status(provider_status: str) -> None:
            await self._write(held, providerStatus=provider_status)

        request = GenerationRequest(prompt=doc["prompt"], model=doc["model"], size=doc["size"])
        left = (doc["deadline"] - _now()).total_seconds()
        try:
            async with asyncio.timeout(max(left, 0.0)):
                return await self._provider.generate(
                    request, resume=held.prediction, on_started=started, on_status=status
                )
        except TimeoutError as exc:
            if held.prediction:
                await self._provider.cancel(held.prediction)
            raise DeadlineExceeded(
                "the job's deadline passed before the image was ready; the generation was canceled"
            ) from exc

    def _check_deadline(self, held: _Held) -> None:
        if _now() >= held.doc["deadline"]:
            raise DeadlineExceeded("the job's deadline passed before the image was stored")

    async def _store(self, held: _Held, image: GeneratedImage) -> None:
        self._check_deadline(held)
        doc = held.doc
        key = self._storage.key_for(user_id=doc["userId"], image_id=uuid.UUID(doc["imageId"]))
        # Recorded before the upload: whatever happens to the upload, the key is known to clean up.
        await self._write(held, stage="storing", asset={"backend": self._storage.name, "key": key})
        tags = ["aisaas", f"job-{doc['_id']}"]
        asset = await self._storage.put(key=key, image=image, tags=tags)
        await self._write(held, url=asset.url)

    async def _save(self, held: _Held, image: GeneratedImage) -> None:
        self._check_deadline(held)
        await self._write(held, stage="saving")
        doc, now = held.doc, _now()
        try:
            await self._repo.insert_image(image_document(doc, image, now=now))
        except PyMongoError as exc:
            # The error's text may quote the document (the prompt): log its kind and code only.
            code = getattr(exc, "code", None)
            log.warning(
                "image document refused", extra={"job_id": doc["_id"], "error": type(exc).__name__, "code": code}
            )
            raise InternalError("the image could not be saved to the gallery; nothing was charged") from exc
        await self._write(held, imageSaved=True)

    async def _charge(self, held: _Held) -> None:
        await self._write(held, stage="charging")
        doc = held.doc
        try:
            resolved = await self._credits.commit(self._caller(doc), _reservation(doc), amount=doc["cost"])
        except Conflict as exc:
            if exc.extra.get("status_now") not in ("released", "expired"):
                raise
            reason = DeadlineExceeded("the credit hold lapsed before the image was ready; nothing was charged")
            await self._roll_back(held, reason=reason.to_body().model_dump())
            return
        await self._write(held, committed=True, charged=resolved.committed, creditsRemaining=resolved.balance.available)
        await self._finish(held)

    async def _finish(self, held: _Held) -> None:
        doc, now = held.doc, _now()
        await self._repo.mark_image_ready(doc["imageId"], now=now)
        image = await self._repo.image(doc["imageId"])
        if image is not None:
            event = ImageGenerated(
                image=record_of(image),
                charged=doc.get("charged", doc["cost"]),
                reservation_id=uuid.UUID(doc["reservationId"]),
            )
            await self._announce(self._caller(doc), event, uuid.uuid5(uuid.UUID(doc["_id"]), "generated"))
        else:  # resumed after a crash, and its owner has deleted it meanwhile
            log.info("finished job's image already deleted", extra={"job_id": doc["_id"]})
        await self._write(held, stage="done")
        self._count(held.doc, "succeeded")
        log.info("image generated", extra={"job_id": doc["_id"], "image_id": doc["imageId"], "cost": doc["cost"]})

    # -- backward --------------------------------------------------------------------------

    async def _roll_back(self, held: _Held, *, reason: dict[str, Any]) -> None:
        doc = held.doc
        log.info("job failed; rolling back", extra={"job_id": doc["_id"], "stage": doc["stage"], "reason": reason})
        if doc.get("error") is None:
            await self._write(held, error=reason, failureReason=reason["detail"])
        if held.prediction and doc["stage"] in ("queued", "generating"):
            await self._provider.cancel(held.prediction)
        try:
            await self._credits.release(self._caller(doc), _reservation(doc))
        except Conflict as exc:
            if exc.extra.get("status_now") not in ("released", "expired"):
                raise  # committed: a bug, since a charge always comes last; keep the job for a look
        await self._repo.delete_image(doc["imageId"])
        orphan = await self._delete_asset(held.doc)
        await self._write(held, stage="failed", charged=0, **({"orphan": orphan} if orphan else {}))
        self._count(held.doc, reason["code"])

    async def _delete_asset(self, doc: JobDoc) -> AssetRef | None:
        asset = doc.get("asset")
        if not asset:
            return None
        try:
            await self._storages[asset["backend"]].delete(asset["key"])
        except Exception:
            log.warning("stored file not deleted; left to the sweeper", extra={"key": asset["key"]}, exc_info=True)
            ORPHANS.inc()
            return AssetRef(backend=asset["backend"], key=asset["key"])
        return None

    # -- plumbing --------------------------------------------------------------------------

    @staticmethod
    def _count(doc: JobDoc, outcome: str) -> None:
        JOBS.labels(outcome, doc["model"]).inc()
        JOB_SECONDS.labels("succeeded" if outcome == "succeeded" else "failed").observe(
            (doc["updatedAt"] - doc["createdAt"]).total_seconds()
        )

    def _caller(self, doc: JobDoc) -> Caller:
        actor = Actor(id=doc["userId"], email=doc["userEmail"], role=doc["role"])
        return Caller(request_id=doc["requestId"], actor=actor, deadline=_now() + timedelta(seconds=CREDITS_CALL_S))


def _reservation(doc: JobDoc) -> Reservation:
    return Reservation.model_validate(doc["reservation"])
