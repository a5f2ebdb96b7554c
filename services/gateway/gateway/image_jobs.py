"""Image jobs from the gateway's side: having one accepted, and following it (for `?wait=`,
the SSE progress stream and the OpenAI-compatible call that answers only with the image).

imagegen publishes every change of a job on the job's Redis channel (see
`common.contracts.images.job_channel`). A follower subscribes *before* it reads the job,
so no change falls between the read and the subscription; whenever it hears nothing for
REFRESH_S it reads the job's record again (GetImageJob), so a lost message or a Redis
hiccup costs a late update, never a stuck client. Versions only go up: a stale or repeated
message is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from pydantic import ValidationError
from redis.asyncio.client import PubSub

from common.bus import RpcClient
from common.contracts import Actor, Caller, GenerateImage, GetImageJob, ImageJob, job_channel
from common.errors import PlatformError, ValidationFailed, error_from_body
from common.redis_client import REDIS_ERRORS, RedisClient, subscriber
from gateway.auth.caller import CurrentUser
from gateway.deps import RequestId
from gateway.http.deadlines import deadline_from
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

REFRESH_S = 5.0
READ_TIMEOUT_S = 10.0
FINISHED = ("succeeded", "failed")


class JobFollower:
    """The changes of one job, as they happen, for one client."""

    def __init__(self, *, redis: RedisClient, rpc: RpcClient, namespace: str, request_id: str, actor: Actor) -> None:
        self._redis = redis
        self.rpc = rpc
        self._namespace = namespace
        self._request_id = request_id
        self._actor = actor

    def caller(self, *, deadline: datetime) -> Caller:
        return Caller(request_id=self._request_id, actor=self._actor, deadline=deadline)

    async def read(self, job_id: uuid.UUID) -> ImageJob:
        """The job's record (404 for a job that is not the actor's to see)."""
        caller = self.caller(deadline=datetime.now(UTC) + timedelta(seconds=READ_TIMEOUT_S))
        return await self.rpc.call(caller.envelope(GetImageJob(job_id=job_id)), reply_model=ImageJob)

    @contextlib.asynccontextmanager
    async def watching(self, job_id: uuid.UUID) -> AsyncIterator[Watch]:
        """Subscribe to the job's channel for the duration of the block."""
        pubsub: PubSub | None = None
        channel = job_channel(self._namespace, job_id)
        try:
            pubsub = await subscriber(self._redis)
            await pubsub.subscribe(channel)
        except REDIS_ERRORS:
            log.warning("job channel unavailable; reading the record instead", exc_info=True)
            if pubsub is not None:
                await pubsub.aclose()
            pubsub = None
        try:
            yield Watch(self, job_id, pubsub)
        finally:
            if pubsub is not None:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.unsubscribe(channel)
                await pubsub.aclose()


class Watch:
    def __init__(self, follower: JobFollower, job_id: uuid.UUID, pubsub: PubSub | None) -> None:
        self._follower = follower
        self._job_id = job_id
        self._pubsub = pubsub

    async def changes(self, first: ImageJob, *, until: float) -> AsyncIterator[ImageJob | None]:
        """`first`, then each newer version of the job, until it finishes or `until` (monotonic)
        passes; None after each quiet spell of REFRESH_S (a stream's cue for a keep-alive)."""
        last = first
        yield first
        while last.status not in FINISHED:
            left = until - time.monotonic()
            if left <= 0:
                return
            job = await self._next(min(left, REFRESH_S))
            if job is not None and job.version > last.version:
                last = job
                yield job
            else:
                yield None

    async def finished(self, first: ImageJob, *, within: float) -> ImageJob:
        """The job once finished, or as it stands after `within` seconds."""
        last = first
        async for job in self.changes(first, until=time.monotonic() + within):
            last = job or last
        return last

    async def _next(self, quiet_s: float) -> ImageJob | None:
        """The next published version, or the record when nothing came within `quiet_s`."""
        message = None
        try:
            if self._pubsub is None:
                await asyncio.sleep(quiet_s)
            else:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=quiet_s)
        except REDIS_ERRORS:
            log.warning("job channel lost; reading the record instead", exc_info=True)
            self._pubsub = None
        if message is not None:
            try:
                return ImageJob.model_validate_json(message["data"])
            except ValidationError:
                log.warning("unreadable job progress message ignored")
        return await self._follower.read(self._job_id)


# -- submitting ---------------------------------------------------------------------------

# Job ids for Idempotency-Keys: uuid5 of (user id, key) in this namespace.
IDEMPOTENT_JOBS = uuid.UUID("2f0f6a0e-9a51-4c1e-8d8e-4f4a3c7b9d21")
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def job_deadline(settings: GatewaySettings, header: str | None) -> datetime:
    """IMAGE_JOB_TIMEOUT_S from now, or sooner by X-Request-Timeout (which can shorten it, not extend it)."""
    limit = settings.image_job_timeout_s
    return deadline_from(header, default_s=limit, max_s=limit, context=" for image jobs")


def job_id_for(user_id: str, key: str | None) -> uuid.UUID:
    """A fresh id, or for an Idempotency-Key the same id every time that user sends that key."""
    if key is None:
        return uuid.uuid4()
    if not _KEY.match(key):
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
            errors=[{"field": "header.idempotency-key", "message": "malformed", "type": "value_error"}],
        )
    return uuid.uuid5(IDEMPOTENT_JOBS, f"{user_id}\n{key}")


def failure_of(job: ImageJob) -> PlatformError:
    """A failed job's error, to answer with, naming the job."""
    assert job.error is not None
    error = error_from_body(job.error)
    error.extra["job_id"] = str(job.job_id)
    return error


async def submit(follower: JobFollower, payload: GenerateImage, *, accept_by: datetime, wait_s: float) -> ImageJob:
    """Have the job accepted (a quick request/reply, answered by `accept_by`); with `wait_s`,
    follow it that long, or until it finishes or its deadline passes."""
    envelope = follower.caller(deadline=min(accept_by, payload.deadline)).envelope(payload)
    if wait_s <= 0:
        return await follower.rpc.call(envelope, reply_model=ImageJob)
    async with follower.watching(payload.job_id) as watch:
        job = await follower.rpc.call(envelope, reply_model=ImageJob)
        left = (payload.deadline - datetime.now(UTC)).total_seconds()
        return await watch.finished(job, within=min(wait_s, max(left, 0.0)))


async def _follower(request: Request, user: CurrentUser, request_id: RequestId) -> JobFollower:
    settings: GatewaySettings = request.app.state.settings
    return JobFollower(
        redis=request.app.state.redis,
        rpc=request.app.state.rpc,
        namespace=settings.bus_namespace,
        request_id=request_id,
        actor=user,
    )


Follower = Annotated[JobFollower, Depends(_follower)]
