"""Image messages: a generation job (accepted by GenerateImage, run by RunImageJob), queries
on jobs and the gallery, deletion, and the ImageGenerated event.

Generation takes seconds to minutes, so it is never one request/reply: GenerateImage only
accepts the job (credits reserved, job stored) and answers at once; the work runs from its
own queue, and progress is published on the Redis channel `job_channel(...)` names.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field

from common.contracts.envelope import Contract
from common.errors import ErrorBody

ImageSize = Literal["256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
JobStage = Literal["queued", "generating", "storing", "saving", "charging", "done", "failed"]
MODEL_PATTERN = r"^[A-Za-z0-9._:/-]+$"
# Where the gateway serves files kept by imagegen's local storage: LOCAL_FILES_PATH/<folder>/<file>.
LOCAL_FILES_PATH = "/files/images"


def job_channel(namespace: str, job_id: uuid.UUID | str) -> str:
    """The Redis pub/sub channel on which every change of one job is published (as ImageJob JSON)."""
    return f"{namespace}:imagegen:job:{job_id}"


class GenerateImage(Contract):
    """Command: accept an image job for the acting user. The reply is the accepted ImageJob;
    the image itself comes later. Repeating a job id returns that job (an Idempotency-Key)."""

    job_id: uuid.UUID = Field(description="Chosen by the caller; deterministic for an Idempotency-Key.")
    prompt: str = Field(min_length=1, max_length=4000, description="What to draw.", examples=["a red lighthouse"])
    name: str | None = Field(None, min_length=1, max_length=200, description="Title in the gallery.")
    size: ImageSize | None = Field(None, description="Width x height; the service default when absent.")
    model: str | None = Field(
        None, min_length=1, max_length=200, pattern=MODEL_PATTERN, description="Model; the default when absent."
    )
    user_name: str | None = Field(None, max_length=200, description="Display name kept with the image.")
    deadline: AwareDatetime = Field(description="After this instant the job is abandoned and nothing is charged.")


class RunImageJob(Contract):
    """Command (internal): run an accepted job to its end. Safe to repeat: one worker holds a job at a time."""

    job_id: uuid.UUID


class ImageJob(Contract):
    """A generation job as its owner sees it. Reply to GenerateImage and GetImageJob."""

    job_id: uuid.UUID
    user_id: str
    status: JobStatus = Field(description="queued → running → succeeded | failed.")
    stage: JobStage = Field(description="Step the job is at (or ended in).")
    progress: int = Field(ge=0, le=100, description="Rough percentage done.")
    prompt: str
    name: str
    model: str
    size: ImageSize
    cost: int = Field(ge=0, description="Credits the image costs (held while the job runs).")
    charged: int = Field(ge=0, description="Credits charged: the cost once succeeded, otherwise 0.")
    image_id: uuid.UUID | None = Field(None, description="The image, once succeeded.")
    url: str | None = Field(None, description="Where the image is served, once succeeded.")
    credits_remaining: int | None = Field(None, description="The owner's available credits after the charge.")
    provider_status: str | None = Field(None, description="The provider's own status of the generation.")
    error: ErrorBody | None = Field(None, description="Why the job failed.")
    version: int = Field(ge=1, description="Increases with every change; orders progress events.")
    deadline: AwareDatetime
    created_at: AwareDatetime
    updated_at: AwareDatetime


class GetImageJob(Contract):
    """Query: one job (its owner's or, for admins, anyone's)."""

    job_id: uuid.UUID


class ImageRecord(Contract):
    """An image in the gallery (the seed's `images` document, extended)."""

    id: uuid.UUID
    user_id: str
    user_email: str
    user_name: str
    url: str
    name: str
    prompt: str
    model: str
    size: ImageSize
    status: Literal["ready"] = "ready"
    cost: int = Field(ge=0, description="Credits charged for it.")
    job_id: uuid.UUID
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    format: str = Field(examples=["png"])
    bytes: int = Field(ge=0)
    created_at: AwareDatetime
    updated_at: AwareDatetime


# `<createdAt as epoch milliseconds>.<image id>` of a page's last image.
IMAGE_CURSOR_PATTERN = r"^[0-9]{1,15}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class ListImages(Contract):
    """Query: images, newest first. A user lists their own; admins may name a user or list all."""

    user_id: str | None = Field(None, max_length=128, description="Whose images (admins only); default: the actor.")
    all_users: bool = Field(False, description="Every user's images (admins only).")
    limit: int = Field(20, ge=1, le=100)
    before: str | None = Field(None, pattern=IMAGE_CURSOR_PATTERN, description="Cursor from the previous page.")


class ImagePage(Contract):
    images: list[ImageRecord]
    next_cursor: str | None = None


class GetImage(Contract):
    """Query: one image (its owner's or, for admins, anyone's)."""

    image_id: uuid.UUID


class DeleteImage(Contract):
    """Command: remove an image and its stored file."""

    image_id: uuid.UUID


class ImageDeleted(Contract):
    """Reply to DeleteImage."""

    image_id: uuid.UUID


class ImageGenerated(Contract):
    """Event: an image was generated, stored and paid for. Consumers deduplicate on the message id."""

    image: ImageRecord
    charged: int = Field(ge=0)
    reservation_id: uuid.UUID
