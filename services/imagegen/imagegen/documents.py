"""The documents of `image_jobs` and `images` as stored, field by field (the seed's camelCase).

`ImageRepository` is the only writer of both collections, so it reads them as these types;
the job runner, the handlers and the sweeper see typed fields, never a bare dict.
"""

# No `from __future__ import annotations`: TypedDict reads NotRequired from evaluated annotations,
# so `JobDoc.__required_keys__` stays true at run time.
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

from common.contracts import ImageSize, JobStage, JobStatus, Role


class AssetRef(TypedDict):
    """Where a job's file is kept: the storage backend's name and the file's key there."""

    backend: str
    key: str


class JobDoc(TypedDict):
    _id: str  # the job id
    userId: str
    userEmail: str
    userName: str
    role: Role
    requestId: str
    prompt: str
    name: str
    model: str
    size: ImageSize
    cost: int
    charged: int
    imageId: str
    reservationId: str
    status: JobStatus
    stage: JobStage
    progress: int
    version: int
    attempts: int
    lease: str | None
    leaseUntil: datetime
    deadline: datetime
    createdAt: datetime
    updatedAt: datetime
    fingerprint: NotRequired[str]
    reservation: NotRequired[dict[str, Any]]  # the Reservation the credits service answered, as JSON
    startedAt: NotRequired[datetime]
    predictionId: NotRequired[str]
    providerStatus: NotRequired[str]
    asset: NotRequired[AssetRef]
    url: NotRequired[str]
    imageSaved: NotRequired[bool]
    committed: NotRequired[bool]
    creditsRemaining: NotRequired[int]
    error: NotRequired[dict[str, Any]]  # an ErrorBody, as JSON
    failureReason: NotRequired[str]
    finishedAt: NotRequired[datetime]
    orphan: NotRequired[AssetRef]  # a file that could not be deleted when the job failed


class StalledJob(TypedDict):
    """The fields of an unfinished job the sweeper dispatches again."""

    _id: str
    requestId: NotRequired[str]


class OrphanedJob(TypedDict):
    """The fields of a finished job whose file is left for the sweeper to delete."""

    _id: str
    orphan: AssetRef


class ImageDoc(TypedDict):
    """A gallery image (the seed's fields first); `pending` until its job has charged for it."""

    _id: str  # the image id
    userEmail: str
    userName: str
    url: str
    name: str
    userId: str
    prompt: str
    model: str
    size: ImageSize
    status: Literal["pending", "ready"]
    cost: int
    jobId: str
    storage: AssetRef
    width: int
    height: int
    format: str
    bytes: int
    createdAt: datetime
    updatedAt: datetime
