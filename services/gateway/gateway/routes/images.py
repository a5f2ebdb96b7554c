"""Image generation over HTTP: jobs, their progress, and the gallery.

Generating takes seconds to minutes, so `POST /v1/images` only has the job accepted (credits
held, job stored: a quick request/reply with imagegen) and answers 202 with the job and its
`Location`; `?wait=<seconds>` answers 200 with the image instead when it is ready in time.
A job's deadline is IMAGE_JOB_TIMEOUT_S, or shorter with `X-Request-Timeout`; when it passes
the generation is canceled and nothing is charged.

With an `Idempotency-Key`, the job id is derived from (user, key): a retried request finds
the same job and is not charged again, whether or not a response was kept for replay.

Users see only their own jobs and images; another user's id answers exactly like an unknown
one (404).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.sse import format_sse_event

from common.contracts import DeleteImage, GenerateImage, GetImage, ImageDeleted, ImagePage, ImageRecord, ListImages
from common.contracts.images import IMAGE_CURSOR_PATTERN
from common.errors import PlatformError
from gateway.auth.caller import CurrentUser
from gateway.deps import Rpc, Settings, UserCaller
from gateway.http.json_body import ParsedBodyRoute
from gateway.http.params import IdempotencyKey, ImageId, JobId
from gateway.http.responses import (
    CALLER,
    FORBIDDEN,
    LOCATION,
    NOT_FOUND,
    PROBLEM_REF,
    RETRY_AFTER,
    SPENDING,
    UPSTREAM,
    event_stream,
)
from gateway.http.sse import SSE_HEADERS
from gateway.image_jobs import Follower, failure_of, job_deadline, job_id_for, submit
from gateway.image_views import ImageList, ImageReady, ImageRequest, ImageView, JobView, absolute, image_view, job_view
from gateway.ratelimit.stream_slots import SlottedStream, StreamSlots

router = APIRouter(tags=["images"], route_class=ParsedBodyRoute)

SSE_GRACE_S = 120.0  # how long past a job's deadline its stream waits for the end
KEEPALIVE_S = 15.0
JOB_EVENTS = (
    "Server-sent events: one named by the job's status (`queued`, `running`, `succeeded`, `failed`) "
    "with the job (as GET answers it) each time it changes, comments as keep-alives, and `error` with "
    "a problem document if following the job fails."
)


@router.post(
    "/v1/images",
    status_code=202,
    response_model=JobView | ImageReady,
    summary="Generate an image: 202 with the job, or 200 with the image when `wait` suffices",
    responses={
        200: {"model": ImageReady, "description": "The image, ready within `wait`."},
        202: {
            "model": JobView,
            "description": "The job, accepted: follow its Location.",
            "headers": {"Location": LOCATION, "Retry-After": RETRY_AFTER},
        },
        **SPENDING,
    },
)
async def create_image(
    body: ImageRequest,
    request: Request,
    response: Response,
    user: CurrentUser,
    follower: Follower,
    settings: Settings,
    wait: Annotated[float, Query(ge=0, le=600, description="Seconds to wait for the image before answering 202.")] = 0,
    idempotency_key: IdempotencyKey = None,
    x_request_timeout: Annotated[str | None, Header(description="Seconds until the job is abandoned.")] = None,
) -> Any:
    payload = GenerateImage(
        job_id=job_id_for(user.id, idempotency_key),
        prompt=body.prompt,
        name=body.name,
        size=body.size,
        model=body.model,
        deadline=job_deadline(settings, x_request_timeout),
    )
    accept_by = datetime.now(UTC) + timedelta(seconds=settings.request_timeout_s)
    job = await submit(follower, payload, accept_by=accept_by, wait_s=wait)
    if wait > 0 and job.status == "succeeded":
        assert job.image_id is not None and job.url is not None
        response.status_code = 200
        url = absolute(request, job.url)
        return ImageReady(image_id=job.image_id, url=url, credits_remaining=job.credits_remaining, job_id=job.job_id)
    if wait > 0 and job.status == "failed":
        raise failure_of(job)
    response.headers["Location"] = f"/v1/images/jobs/{job.job_id}"
    response.headers["Retry-After"] = "1"
    return job_view(request, job)


@router.get(
    "/v1/images/jobs/{job_id:uuid}",
    response_model=JobView,
    summary="An image job's status",
    responses=CALLER | NOT_FOUND,
)
async def get_job(job_id: JobId, request: Request, follower: Follower) -> JobView:
    return job_view(request, await follower.read(job_id))


@router.get(
    "/v1/images/jobs/{job_id:uuid}/events",
    summary="An image job's progress as server-sent events, until it succeeds or fails",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": event_stream(
                JOB_EVENTS,
                events=["queued", "running", "succeeded", "failed", "error"],
                data={"anyOf": [{"$ref": "#/components/schemas/JobView"}, {"$ref": PROBLEM_REF}]},
            )
        },
        **CALLER,
        **NOT_FOUND,
    },
)
async def job_events(job_id: JobId, request: Request, follower: Follower, caller: UserCaller) -> StreamingResponse:
    first = await follower.read(job_id)  # 404 here, before the stream starts
    slots: StreamSlots = request.app.state.streams
    assert caller.actor is not None
    slots.take(caller.actor.id)  # 429 when this user holds the most streams already
    until = time.monotonic() + (first.deadline - datetime.now(UTC)).total_seconds() + SSE_GRACE_S

    async def events() -> AsyncIterator[bytes]:
        yield format_sse_event(comment="image job progress", retry=2000)
        try:
            async with follower.watching(job_id) as watch:
                current = await follower.read(job_id)  # again, now that no change can be missed
                sent = time.monotonic()
                async for job in watch.changes(current, until=until):
                    if job is not None:
                        data = job_view(request, job).model_dump_json(by_alias=True)
                        yield format_sse_event(event=job.status, data_str=data, id=str(job.version))
                        sent = time.monotonic()
                    elif time.monotonic() - sent >= KEEPALIVE_S:
                        yield format_sse_event(comment="keep-alive")
                        sent = time.monotonic()
        except PlatformError as exc:  # the stream has started: report it as an event, not a status
            problem = exc.to_problem(request_id=request.state.request_id)
            yield format_sse_event(event="error", data_str=json.dumps(problem))

    return SlottedStream(
        events(),
        slots=slots,
        user_id=caller.actor.id,
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


@router.get("/v1/images", response_model=ImageList, summary="Your images, newest first", responses=CALLER | FORBIDDEN)
async def list_images(
    request: Request,
    caller: UserCaller,
    rpc: Rpc,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, Query(pattern=IMAGE_CURSOR_PATTERN, description="nextCursor of the previous page")
    ] = None,
    user: Annotated[str | None, Query(max_length=128, description="Admins: a user id, or * for everyone")] = None,
) -> ImageList:
    query = ListImages(user_id=None if user in (None, "*") else user, all_users=user == "*", limit=limit, before=cursor)
    page = await rpc.call(caller.envelope(query), reply_model=ImagePage)
    return ImageList(images=[image_view(request, i) for i in page.images], next_cursor=page.next_cursor)


@router.get(
    "/v1/images/{image_id:uuid}", response_model=ImageView, summary="One of your images", responses=CALLER | NOT_FOUND
)
async def get_image(image_id: ImageId, request: Request, caller: UserCaller, rpc: Rpc) -> ImageView:
    return image_view(request, await rpc.call(caller.envelope(GetImage(image_id=image_id)), reply_model=ImageRecord))


@router.delete(
    "/v1/images/{image_id:uuid}",
    status_code=204,
    summary="Delete one of your images and its file",
    responses=CALLER | NOT_FOUND | UPSTREAM,
)
async def delete_image(image_id: ImageId, caller: UserCaller, rpc: Rpc) -> Response:
    await rpc.call(caller.envelope(DeleteImage(image_id=image_id)), reply_model=ImageDeleted)
    return Response(status_code=204)
