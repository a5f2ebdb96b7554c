"""One chat request being answered, and the ChatCompletion replies built from its outcome."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chat.conversations import Conversation
from chat.providers.base import ProviderAnswer, ProviderRequest
from chat.streaming import Pumped, delivered_usage
from common.bus import ReplyStream
from common.contracts import Caller, ChatCompletion, ChatMessage, CompleteChat, Envelope, FinishReason, Usage
from common.contracts.chat import MAX_CONTENT_CHARS, ChatChoice
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
    conversation: Conversation | None = None  # a threaded request's

    @property
    def user_id(self) -> str:
        assert self.envelope.actor is not None
        return self.envelope.actor.id

    @property
    def completion_id(self) -> str:
        return f"chat_{uuid.uuid5(self.envelope.message_id, 'completion').hex}"

    @property
    def prompt_tokens(self) -> int | None:
        """The token bound of the messages sent, when counted already (a thread's context)."""
        return None if self.conversation is None else self.conversation.prompt_tokens

    @property
    def thread_id(self) -> uuid.UUID | None:
        return None if self.conversation is None else uuid.UUID(self.conversation.thread_id)


def completion(job: Job, provider: str, answer: ProviderAnswer, *, cached: bool, credits: int) -> ChatCompletion:
    text, finish = fitted(answer.text, answer.finish_reason)
    message = ChatMessage(role="assistant", content=text, tool_calls=list(answer.tool_calls))
    return ChatCompletion(
        id=job.completion_id,
        message=message,
        model=answer.model,
        provider=provider,
        usage=usage_of(answer),
        cached=cached,
        finish_reason=finish,
        credits=credits,
        thread_id=job.thread_id,
        choices=choices(message, finish, answer),
    )


def choices(first: ChatMessage, finish: FinishReason, answer: ProviderAnswer | None) -> list[ChatChoice]:
    """Every choice of an answer to a request for several; none for a request for one."""
    if answer is None or not answer.more:
        return []
    out = [ChatChoice(index=0, message=first, finish_reason=finish)]
    for index, choice in enumerate(answer.more, start=1):
        text, why = fitted(choice.text, choice.finish_reason)
        message = ChatMessage(role="assistant", content=text, tool_calls=list(choice.tool_calls))
        out.append(ChatChoice(index=index, message=message, finish_reason=why))
    return out


def streamed_completion(
    job: Job, provider: str, model: str, out: Pumped, *, cached: bool, credits: int
) -> ChatCompletion:
    """The reply after a stream: what was delivered, or the stream's error."""
    if out.error is not None:
        raise out.error
    calls = list(out.answer.tool_calls) if out.complete and out.answer is not None else []
    if not out.delivered_text and not calls:
        raise DeadlineExceeded("the requester left before the first token")
    text, finish = fitted(out.delivered_text, out.finish)
    message = ChatMessage(role="assistant", content=text, tool_calls=calls)
    return ChatCompletion(
        id=job.completion_id,
        message=message,
        model=out.answer.model if out.answer else model,
        provider=provider,
        usage=delivered_usage(out, job.request.messages),
        cached=cached,
        finish_reason=finish,
        credits=credits,
        thread_id=job.thread_id,
        choices=choices(message, finish, out.answer if out.complete else None),
    )


def fitted(text: str, finish: FinishReason) -> tuple[str, FinishReason]:
    """An answer as the reply can carry it: cut at the contract's limit, and then said to be cut,
    rather than a reply that fails to build (and a request redelivered until it is dead-lettered)."""
    if len(text) <= MAX_CONTENT_CHARS:
        return text, finish
    return text[:MAX_CONTENT_CHARS], "length"


def usage_of(answer: ProviderAnswer) -> Usage:
    return Usage(
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        total_tokens=answer.prompt_tokens + answer.completion_tokens,
    )
