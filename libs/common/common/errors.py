"""A small typed error hierarchy with exactly two mappings: to HTTP (RFC 9457 problem+json)
and to reply messages (and back), so a service's error reaches the client unchanged."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_TYPE_PREFIX = "urn:aisaas:problem:"


class ErrorBody(BaseModel):
    """An error as it travels in a reply message."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Stable machine-readable error code.", examples=["insufficient_credits"])
    detail: str = Field(description="Human-readable explanation of this occurrence.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Structured facts about the error.")


class PlatformError(Exception):
    """Base of every error a client may see. Subclasses fix the code, status and title."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)

    def to_body(self) -> ErrorBody:
        return ErrorBody(code=self.code, detail=self.detail, extra=self.extra)

    def to_problem(self, *, request_id: str, instance: str | None = None) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": PROBLEM_TYPE_PREFIX + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "request_id": request_id,
        }
        if instance:
            problem["instance"] = instance
        problem.update({k: v for k, v in self.extra.items() if k not in problem})
        return problem


class BadRequest(PlatformError):
    code, status, title = "bad_request", 400, "Bad request"


class Unauthenticated(PlatformError):
    code, status, title = "unauthenticated", 401, "Authentication required"


class InsufficientCredits(PlatformError):
    code, status, title = "insufficient_credits", 402, "Insufficient credits"


class Forbidden(PlatformError):
    code, status, title = "forbidden", 403, "Forbidden"


class NotFound(PlatformError):
    code, status, title = "not_found", 404, "Not found"


class Conflict(PlatformError):
    code, status, title = "conflict", 409, "Conflict"


class PayloadTooLarge(PlatformError):
    code, status, title = "payload_too_large", 413, "Payload too large"


class ValidationFailed(PlatformError):
    code, status, title = "validation_failed", 422, "Validation failed"


class RateLimited(PlatformError):
    code, status, title = "rate_limited", 429, "Too many requests"


class InternalError(PlatformError):
    code, status, title = "internal", 500, "Internal error"


class UpstreamFailed(PlatformError):
    code, status, title = "upstream_failed", 502, "Upstream provider failed"


class ServiceUnavailable(PlatformError):
    code, status, title = "service_unavailable", 503, "Service unavailable"


class DeadlineExceeded(PlatformError):
    code, status, title = "deadline_exceeded", 504, "Deadline exceeded"


class OutcomeUnknown(DeadlineExceeded):
    """The request reached the broker (or may have), but its confirmation never came back: it
    may be done. A 504 like any answer that did not come, never a 503, which promises that
    nothing happened. Across the bus it travels as deadline_exceeded."""

    title = "Outcome unknown"


ERRORS_BY_CODE: dict[str, type[PlatformError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthenticated,
        InsufficientCredits,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        ValidationFailed,
        RateLimited,
        InternalError,
        UpstreamFailed,
        ServiceUnavailable,
        DeadlineExceeded,
    )
}


def error_from_body(body: ErrorBody) -> PlatformError:
    """Rebuild the typed error a service replied with; an unknown code becomes InternalError."""
    cls = ERRORS_BY_CODE.get(body.code, InternalError)
    return cls(body.detail, **body.extra)
