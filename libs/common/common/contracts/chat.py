"""Chat messages: the CompleteChat command and its ChatCompletion reply, the chunks a
streamed answer is sent in, the model list, and the UsageRecorded event."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field

from common.contracts.envelope import Contract

ChatRole = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "content_filter", "cancelled", "error"]
# Longest message text, asked or answered; a longer answer is delivered cut here, as "length".
MAX_CONTENT_CHARS = 32_000


class ChatMessage(Contract):
    role: ChatRole = Field(description="Who said it.", examples=["user"])
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS, description="The text.", examples=["Hello!"])


class CompleteChat(Contract):
    """Command: answer this conversation."""

    messages: list[ChatMessage] = Field(
        min_length=1, max_length=100, description="The conversation so far, oldest first."
    )
    model: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description="Requested model; the service default when absent.",
    )
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature; provider default if absent.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling mass; provider default if absent.")
    max_tokens: int | None = Field(None, ge=1, le=32_768, description="Most tokens the answer may have.")
    stream: bool = Field(
        False, description="Send the answer as ChatChunk messages to the requester as it is produced, then the reply."
    )
    use_cache: bool = Field(True, description="False: skip the prompt cache lookup (the fresh answer is still stored).")
    thread_id: uuid.UUID | None = Field(
        None,
        description="Continue this thread of the acting user: `messages` are then the new turn only (system "
        "messages among them stand in for the thread's system prompt for this request and are not kept); the "
        "provider gets the system prompt, as many latest turns as fit the model's window, and the new messages; "
        "the new messages and the answer are kept as the thread's next turn.",
    )


class Usage(Contract):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class ChatCompletion(Contract):
    """Reply to CompleteChat."""

    id: str = Field(description="Id of this completion.")
    message: ChatMessage = Field(description="The assistant's answer.")
    model: str = Field(description="Model that answered.")
    provider: str = Field(description="Provider that answered.", examples=["gemini", "openai", "local"])
    usage: Usage
    cached: bool = Field(False, description="Whether the answer came from the prompt cache.")
    finish_reason: FinishReason = Field("stop", description="Why the answer ended.")
    credits: int = Field(0, ge=0, description="Credits charged for this answer.")
    thread_id: uuid.UUID | None = Field(None, description="The thread this answer was kept in.")


class ChatChunk(Contract):
    """A piece of a streamed answer, sent to the requester's reply queue before the reply.

    The chunk with `last` set ends the text; the requester then acknowledges how many chunks it
    delivered to its client, and the ChatCompletion (or a typed error) follows."""

    index: int = Field(ge=0, description="Position of this chunk in the answer, from 0.")
    delta: str = Field(description="Text to append.")
    last: bool = Field(False, description="No text follows this chunk.")
    finish_reason: FinishReason | None = Field(None, description="Set on the last chunk.")
    provider: str = Field(description="Provider producing the answer.")
    model: str = Field(description="Model producing the answer.")
    cached: bool = Field(False, description="Whether the answer is replayed from the prompt cache.")


class ListModels(Contract):
    """Command: which models the chat service can answer with."""


class ModelInfo(Contract):
    id: str = Field(description="Model name to put in a request.", examples=["gemini-2.5-flash"])
    provider: str = Field(description="Provider serving it.", examples=["gemini"])


class ModelList(Contract):
    """Reply to ListModels: configured providers' models, in failover order."""

    models: list[ModelInfo]
    default: str = Field(description="Model used when a request names none.")


class UsageRecord(Contract):
    """One answer's usage and estimated provider cost (a cache hit costs the provider nothing)."""

    usage_id: uuid.UUID = Field(description="Id of the usage record, derived from the request's message id.")
    user_id: str = Field(description="Who asked.")
    provider: str = Field(description="Provider that produced the answer.", examples=["gemini"])
    model: str = Field(description="Model that produced the answer.", examples=["gemini-2.5-flash"])
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    latency_ms: float = Field(ge=0, description="From the request reaching the chat service to the answer.")
    cached: bool = Field(description="Served from the prompt cache.")
    streamed: bool = Field(description="Sent as a stream.")
    cost_usd: float = Field(ge=0, description="Estimated provider cost from the price table; 0 for a cache hit.")
    credits: int = Field(ge=0, description="Credits charged to the user.")
    at: AwareDatetime
    request_id: str = Field("", max_length=128, description="The HTTP request the answer was for.")


class UsageRecorded(Contract):
    """Event: answers' usage records, as one batch stored them (MongoDB `usage` collection).
    Delivered at least once: consumers deduplicate on `usage_id`."""

    records: list[UsageRecord] = Field(min_length=1)
