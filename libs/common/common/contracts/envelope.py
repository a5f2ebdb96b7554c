"""The envelope every message travels in, and the reply a request gets back.

The envelope is the JSON body of the AMQP message. The trace context is also copied into
the AMQP headers by the bus so tooling that reads headers sees it; the envelope stays the
contract other services code against (see docs/asyncapi.json).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from common.contracts.patterns import EMAIL
from common.errors import ErrorBody

SCHEMA_VERSION: Final = 1
Role = Literal["user", "subscriber", "admin"]


class Contract(BaseModel):
    """Base of every message model: unknown fields are an error, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Actor(Contract):
    """The user on whose behalf a message is sent, taken only from a verified token."""

    id: str = Field(
        min_length=1, max_length=128, description="Identity-provider user id (JWT `sub`).", examples=["user_2abc"]
    )
    email: str = Field(max_length=320, pattern=EMAIL, description="Verified email address.", examples=["a@example.com"])
    role: Role = Field(description="Authorization role.", examples=["user"])


class Envelope[P: Contract](Contract):
    """Metadata common to every command and event, around a typed payload."""

    schema_version: Literal[1] = Field(SCHEMA_VERSION, description="Envelope schema version.")
    message_id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="Unique per logical message; consumers deduplicate on it."
    )
    type: str = Field(description="Message name, also the routing key.", examples=["CompleteChat"])
    request_id: str = Field(
        min_length=1, max_length=128, description="Id of the HTTP request that caused this message."
    )
    actor: Actor | None = Field(None, description="Acting user; absent for system messages.")
    deadline: AwareDatetime | None = Field(
        None, description="After this instant the work is useless and is dropped, not done."
    )
    traceparent: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        description="W3C trace context `traceparent`.",
    )
    tracestate: str | None = Field(None, max_length=512, description="W3C trace context `tracestate`.")
    payload: P

    def expired(self, now: datetime | None = None) -> bool:
        return self.deadline is not None and (now or datetime.now(UTC)) >= self.deadline

    def seconds_left(self, now: datetime | None = None) -> float | None:
        if self.deadline is None:
            return None
        return (self.deadline - (now or datetime.now(UTC))).total_seconds()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked, under which request id and until when: what every message caused by one
    request shares. `envelope` wraps a payload in it."""

    request_id: str
    actor: Actor | None
    deadline: datetime | None

    @classmethod
    def of(cls, envelope: Envelope[Any]) -> Caller:
        return cls(request_id=envelope.request_id, actor=envelope.actor, deadline=envelope.deadline)

    def envelope[P: Contract](
        self, payload: P, *, message_id: uuid.UUID | None = None, deadline: datetime | None = None
    ) -> Envelope[P]:
        return envelope_model_for(type(payload))(
            message_id=message_id or uuid.uuid4(),
            type=type(payload).__name__,
            request_id=self.request_id,
            actor=self.actor,
            deadline=deadline or self.deadline,
            payload=payload,
        )


class Reply[R: Contract](Contract):
    """What a request/reply consumer sends back: exactly one of `result` or `error`."""

    schema_version: Literal[1] = Field(SCHEMA_VERSION, description="Reply schema version.")
    request_id: str = Field(description="Request id of the message this answers.")
    result: R | None = Field(None, description="The answer, when the work succeeded.")
    error: ErrorBody | None = Field(None, description="The typed error, when it did not.")


# A generic model parametrised with a class known only at run time (a catalog entry, the type of a
# payload): pydantic builds and caches `Envelope[payload]`, which validates the payload as that
# class. Its `__class_getitem__` is typed as returning any model, hence the casts.
def envelope_model_for[P: Contract](payload: type[P]) -> type[Envelope[P]]:
    """`Envelope[payload]` for a payload class held in a variable."""
    return cast("type[Envelope[P]]", Envelope.__class_getitem__(payload))


def reply_model_for[R: Contract](result: type[R]) -> type[Reply[R]]:
    """`Reply[result]` for a result class held in a variable."""
    return cast("type[Reply[R]]", Reply.__class_getitem__(result))
