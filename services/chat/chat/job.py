"""One chat request being answered, and the ChatCompletion replies built from its outcome."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chat.providers.base import ProviderAnswer, ProviderRequest
from chat.streaming import Pumped, delivered_usage
from common.bus import ReplyStream
from common.contracts import Caller, ChatCompletion, ChatMessage, CompleteChat, Envelope, Usage
from common.errors import DeadlineExceeded


@dataclass(frozen=True, slots=True)
class Job:
    """One request being answered."""

    envelope: Envelope[CompleteChat]
    caller: Caller
    request: ProviderRequest
    stream: ReplyStream
    streaming: bool
    started: float
    deadline: float  # monotonic

    @property
    def user_id(self) -> str:
        assert self.envelope.actor is not None
        return self.envelope.actor.id

    @property
    def completion_id(self) -> str:
        return f"chat_{uuid.uuid5(self.envelope.message_id, 'completion').hex}"


def completion(job: Job, provider: str, answer: ProviderAnswer, *, cached: bool, credits: int) -> ChatCompletion:
    return ChatCompletion(
        id=job.completion_id,
        message=ChatMessage(role="assistant", content=answer.text),
        model=answer.model,
        provider=provider,
        usage=usage_of(answer),
        cached=cached,
        finish_reason=answer.finish_reason,
        credits=credits,
    )


def streamed_completion(
    job: Job, provider: str, model: str, out: Pumped, *, cached: bool, credits: int
) -> ChatCompletion:
    """The reply after a stream: what was delivered, or the stream's error."""
    if out.error is not None:
        raise out.error
    text = out.delivered_text
    if not text:
        raise DeadlineExceeded("the requester left before the first token")
    return ChatCompletion(
        id=job.completion_id,
        message=ChatMessage(role="assistant", content=text),
        model=out.answer.model if out.answer else model,
        provider=provider,
        usage=delivered_usage(out, job.request.messages),
        cached=cached,
        finish_reason=out.finish,
        credits=credits,
    )


def usage_of(answer: ProviderAnswer) -> Usage:
    return Usage(
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        total_tokens=answer.prompt_tokens + answer.completion_tokens,
    )
