"""OpenAI-compatible image generation: `POST /v1/images/generations`, so OpenAI clients work
unchanged with a user's token as their API key. It answers once the image is ready (or the
job's deadline has passed), in OpenAI's shape, `{"created", "data": [{"url"} | {"b64_json"}]}`,
and its errors are in OpenAI's shape too."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from common.contracts import GenerateImage, ImageSize
from common.contracts.images import MODEL_PATTERN
from common.errors import DeadlineExceeded, UpstreamFailed
from gateway.auth.caller import CurrentUser
from gateway.deps import Settings
from gateway.http.params import IdempotencyKey
from gateway.http.responses import OPENAI_SPENDING
from gateway.image_jobs import Follower, failure_of, job_deadline, job_id_for, submit
from gateway.image_views import absolute
from gateway.openai.errors import OpenAIRoute
from gateway.routes.image_files import local_path

router = APIRouter(tags=["images", "openai"], route_class=OpenAIRoute)


class OpenAIImageRequest(BaseModel):
    """Body of POST /v1/images/generations, as OpenAI's images API takes it."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=4000)
    model: str | None = Field(None, min_length=1, max_length=200, pattern=MODEL_PATTERN)
    n: int = Field(1, ge=1, le=1, description="Only one image per request.")
    size: ImageSize | Literal["auto"] | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: Literal["png"] | None = None
    quality: str | None = Field(None, max_length=20, description="Accepted; the model decides.")
    style: str | None = Field(None, max_length=20, description="Accepted; the model decides.")
    background: str | None = Field(None, max_length=20, description="Accepted; the model decides.")
    moderation: str | None = Field(None, max_length=20, description="Accepted; the provider moderates.")
    user: str | None = Field(None, max_length=200, description="Accepted; the token says who the user is.")


class OpenAIImage(BaseModel):
    url: str | None = Field(None, description="With `response_format` url (the default).")
    b64_json: str | None = Field(None, description="With `response_format` b64_json.")
    revised_prompt: None = None


class OpenAIImages(BaseModel):
    created: int = Field(description="Unix time the image was made.")
    data: list[OpenAIImage] = Field(min_length=1, max_length=1)


@router.post(
    "/v1/images/generations",
    summary="Generate an image (OpenAI-compatible; answers with the image)",
    responses={200: {"description": "The image, as a URL or base64.", "model": OpenAIImages}, **OPENAI_SPENDING},
)
async def generate(
    body: OpenAIImageRequest,
    request: Request,
    user: CurrentUser,
    follower: Follower,
    settings: Settings,
    idempotency_key: IdempotencyKey = None,
    x_request_timeout: Annotated[str | None, Header(description="Seconds until the job is abandoned.")] = None,
) -> JSONResponse:
    payload = GenerateImage(
        job_id=job_id_for(user.id, idempotency_key),
        prompt=body.prompt,
        size=None if body.size == "auto" else body.size,
        model=body.model,
        deadline=job_deadline(settings, x_request_timeout),
    )
    accept_by = datetime.now(UTC) + timedelta(seconds=settings.request_timeout_s)
    job = await submit(follower, payload, accept_by=accept_by, wait_s=settings.image_job_timeout_s)
    if job.status == "failed":
        raise failure_of(job)
    if job.status != "succeeded" or job.url is None:
        raise DeadlineExceeded("the image was not ready before the job's deadline", job_id=str(job.job_id))
    url = absolute(request, job.url)
    item: dict[str, Any] = {"revised_prompt": None}
    if body.response_format == "b64_json":
        item["b64_json"] = base64.b64encode(await _image_bytes(Path(settings.image_data_dir), job.url, url)).decode()
    else:
        item["url"] = url
    return JSONResponse({"created": int(job.updated_at.timestamp()), "data": [item]})


async def _image_bytes(data_dir: Path, stored: str, url: str) -> bytes:
    """The picture itself: from the local directory, or fetched from the store that serves it."""
    path = local_path(data_dir, stored)
    if path is not None:
        return await asyncio.to_thread(path.read_bytes)
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as http:
        response = await http.get(url)
    if response.status_code != 200:
        raise UpstreamFailed(f"the stored image could not be read back ({response.status_code})")
    return response.content
