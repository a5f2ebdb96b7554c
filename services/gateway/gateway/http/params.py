"""Request parameters several routes share, declared exactly as they are checked, so the
OpenAPI document states what is accepted (a pattern, not just a format a client may ignore)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Header, Path
from pydantic import BeforeValidator

# Starlette's `uuid` path convertor: ids route only in this form, so `/v1/images/generations`
# is not taken for an image id.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# Visible ASCII, as a header value allows (the idempotency middleware holds keys to the same).
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]+$"
_UUID = re.compile(UUID_PATTERN)
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _hyphenated(value: Any) -> Any:
    """Only the 8-4-4-4-12 form the document states (pydantic would also take 32 bare hex digits)."""
    if isinstance(value, str) and not _UUID.match(value):
        raise ValueError("must be a UUID as 8-4-4-4-12 hex digits")
    return value


def _iso_8601(value: Any) -> Any:
    """Only a date-time as the document states it (pydantic would also take a number of seconds)."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date-time such as 2026-01-31T00:00:00Z")
    return value


# An instant in a query string: ISO 8601 (`format: date-time`), naive ones taken as UTC.
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_8601)]


def resource_id(description: str) -> Any:
    return Path(description=description, json_schema_extra={"pattern": UUID_PATTERN})


JobId = Annotated[uuid.UUID, BeforeValidator(_hyphenated), resource_id("The job's id (from its Location).")]
ImageId = Annotated[uuid.UUID, BeforeValidator(_hyphenated), resource_id("The image's id.")]
ThreadId = Annotated[uuid.UUID, BeforeValidator(_hyphenated), resource_id("The thread's id.")]

IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Repeat a request without doing it twice: a retry with the same key gets the first answer.",
    ),
]
