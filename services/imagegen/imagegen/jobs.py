"""An image job's rules, free of IO: its stages, which moves between them are allowed, how far
along each one is, and what a worker that picks a job up must do next.

A job moves forward through

    queued → generating → storing → saving → charging → done

or, from any stage before done, to failed. What has been done is recorded on the job as it
happens (prediction id, asset key, image saved, charge committed), so whichever worker
holds the job next (after a crash, say) can tell from the record alone whether to carry on,
to finish, or to roll back: `plan` decides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from common.contracts import JobStage, JobStatus
from common.errors import ErrorBody, InternalError, PlatformError

FORWARD: tuple[JobStage, ...] = ("queued", "generating", "storing", "saving", "charging", "done")
TERMINAL: frozenset[JobStatus] = frozenset({"succeeded", "failed"})
ACTIVE: tuple[JobStatus, ...] = ("queued", "running")
PROGRESS: dict[JobStage, int] = {
    "queued": 0,
    "generating": 10,
    "storing": 70,
    "saving": 85,
    "charging": 95,
    "done": 100,
}
# Progress inside `generating`, by the provider's own status.
PROVIDER_PROGRESS = {"starting": 15, "processing": 40, "succeeded": 60}


class InvalidTransition(Exception):
    """A move the job's rules forbid: a bug, never a user error."""


def status_of(stage: JobStage) -> JobStatus:
    if stage == "queued":
        return "queued"
    if stage == "done":
        return "succeeded"
    if stage == "failed":
        return "failed"
    return "running"


def check_transition(current: JobStage, new: JobStage) -> None:
    """Forward, or to failed before done. A resumed job may also go back to generating from a
    step whose result was not recorded (storing, saving): those steps are redone, harmlessly."""
    if current in ("done", "failed"):
        raise InvalidTransition(f"job already {current}; it cannot move to {new}")
    if new == "failed" or (new == "generating" and current in ("storing", "saving")):
        return
    if FORWARD.index(new) < FORWARD.index(current):
        raise InvalidTransition(f"job at {current} cannot go back to {new}")


def progress(stage: JobStage, provider_status: str | None = None, *, previous: int = 0) -> int:
    """Rough percentage for a stage; a failed job keeps the figure it had reached."""
    if stage == "failed":
        return previous
    if stage == "generating" and provider_status in PROVIDER_PROGRESS:
        return PROVIDER_PROGRESS[provider_status]
    return PROGRESS[stage]


Step = Literal["skip", "generate", "charge", "finish", "roll_back"]


@dataclass(frozen=True, slots=True)
class Facts:
    """What a job's record says has happened."""

    status: JobStatus
    deadline: datetime
    image_saved: bool
    committed: bool
    failing: bool  # a failure was decided (and recorded) but not yet fully rolled back


def plan(facts: Facts, now: datetime) -> Step:
    """What the worker now holding a job must do.

    Once charged, only finishing remains. Once the image is saved, charging is what is left
    even past the deadline: the image exists and will be shown. Before that, a passed
    deadline or a recorded failure means rolling back, so nothing is charged."""
    if facts.status in TERMINAL:
        return "skip"
    if facts.committed:
        return "finish"
    if facts.failing:
        return "roll_back"
    if facts.image_saved:
        return "charge"
    if now >= facts.deadline:
        return "roll_back"
    return "generate"


def poll_delays(initial: float, maximum: float) -> Iterator[float]:
    """Waits between polls of a running prediction: doubling from `initial`, capped at `maximum`."""
    delay = min(initial, maximum)
    while True:
        yield delay
        delay = min(delay * 2, maximum)


def failure(exc: BaseException) -> ErrorBody:
    """The reason recorded on a failed job; an unexpected exception never shows its details."""
    if isinstance(exc, PlatformError):
        return exc.to_body()
    return InternalError("the job failed unexpectedly; nothing was charged").to_body()


def fingerprint(*, prompt: str, name: str, size: str, model: str) -> str:
    """Identifies a request's content, so a reused Idempotency-Key with a different body is caught."""
    canonical = json.dumps({"prompt": prompt, "name": name, "size": size, "model": model}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def default_name(prompt: str) -> str:
    """The gallery title when none is given: the prompt's first words."""
    words = " ".join(prompt.split())
    return words if len(words) <= 80 else words[:79].rstrip() + "…"
