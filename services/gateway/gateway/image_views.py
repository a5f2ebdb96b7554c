"""The image API's HTTP bodies and views. Views use camelCase, like the seed's image documents."""

from __future__ import annotations

import uuid

from fastapi import Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from common.contracts import ImageJob, ImageRecord, ImageSize
from common.contracts.images import MODEL_PATTERN


class ImageRequest(BaseModel):
    """Body of POST /v1/images."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=4000, description="What to draw.", examples=["a red lighthouse"])
    name: str | None = Field(None, min_length=1, max_length=200, description="Title in the gallery.")
    size: ImageSize | None = Field(None, description="Width x height; 1024x1024 when absent.")
    model: str | None = Field(None, min_length=1, max_length=200, pattern=MODEL_PATTERN, description="Model to use.")


class _View(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class JobError(_View):
    code: str
    detail: str


class JobView(_View):
    id: uuid.UUID
    status: str = Field(description="queued, running, succeeded or failed.")
    stage: str = Field(description="queued, generating, storing, saving, charging, done or failed.")
    progress: int
    prompt: str
    name: str
    model: str
    size: str
    cost: int = Field(description="Credits the image costs, held while the job runs.")
    charged: int = Field(description="Credits charged: the cost once succeeded, 0 otherwise.")
    image_id: uuid.UUID | None = None
    url: str | None = None
    credits_remaining: int | None = None
    provider_status: str | None = None
    error: JobError | None = None
    deadline: AwareDatetime
    created_at: AwareDatetime
    updated_at: AwareDatetime


class ImageView(_View):
    id: uuid.UUID
    url: str
    name: str
    prompt: str
    model: str
    size: str
    status: str
    cost: int
    width: int
    height: int
    format: str
    bytes: int
    job_id: uuid.UUID
    user_email: str
    user_name: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class ImageList(_View):
    images: list[ImageView]
    next_cursor: str | None = None


class ImageReady(_View):
    """What `POST /v1/images?wait=` answers when the image is ready in time."""

    image_id: uuid.UUID
    url: str
    credits_remaining: int | None
    job_id: uuid.UUID


def absolute(request: Request, url: str) -> str:
    """Local storage keeps paths; clients get them on the address they reached us by."""
    return str(request.base_url).rstrip("/") + url if url.startswith("/") else url


def job_view(request: Request, job: ImageJob) -> JobView:
    view = JobView.model_validate({**job.model_dump(exclude={"job_id", "user_id", "version"}), "id": job.job_id})
    if view.url:
        view.url = absolute(request, view.url)
    return view


def image_view(request: Request, image: ImageRecord) -> ImageView:
    view = ImageView.model_validate(image.model_dump(exclude={"user_id"}))
    view.url = absolute(request, view.url)
    return view
