"""Chat messages: the CompleteChat command and its ChatCompletion reply, the chunks a
streamed answer is sent in, the model list, and the UsageRecorded event."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

from common.contracts.chatfeatures import (
    MAX_CALL_ID,
    MAX_IMAGES,
    MAX_TOOLS,
    FunctionTool,
    ImageInput,
    ResponseFormat,
    ToolCall,
    ToolChoice,
)
from common.contracts.envelope import Contract

ChatRole = Literal["system", "user", "assistant"]
# A message's role: a thread's roles, and `tool` for a function's result.
MessageRole = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "cancelled", "error"]
MAX_CHOICES = 8
# Longest message text, asked or answered; a longer answer is delivered cut here, as "length".
MAX_CONTENT_CHARS = 32_000


# What the validator below requires, stated in the schema so that clients generated from it know.
_SAYS_SOMETHING: JsonDict = {
    "anyOf": [
        {"required": ["content"], "properties": {"content": {"minLength": 1}}},
        {"required": ["tool_calls"], "properties": {"tool_calls": {"minItems": 1}}},
        {"required": ["images"], "properties": {"images": {"minItems": 1}}},
    ]
}


class ChatMessage(Contract):
    """One message: text, images shown after it, the tool calls an assistant made, or a tool's result.
    It says something: text, an image or a tool call."""

    model_config = ConfigDict(**Contract.model_config, json_schema_extra=_SAYS_SOMETHING)

    role: MessageRole = Field(description="Who said it; `tool`: a function's result.", examples=["user"])
    images: list[ImageInput] = Field(
        default_factory=list, max_length=MAX_IMAGES, description="Images shown with the text, after it."
    )
    tool_calls: list[ToolCall] = Field(
        default_factory=list, max_length=MAX_TOOLS, description="Functions the assistant called (its turn)."
    )
    tool_call_id: str | None = Field(
        None, min_length=1, max_length=MAX_CALL_ID, description="The call a `tool` message answers."
    )
    # Last, so that its check below sees the others (and a missing text is reported as this field's).
    content: str = Field(
        "", max_length=MAX_CONTENT_CHARS, validate_default=True, description="The text.", examples=["Hello!"]
    )

    @field_validator("content")
    @classmethod
    def _says_something(cls, content: str, info: ValidationInfo) -> str:
        if not (content or info.data.get("images") or info.data.get("tool_calls")):
            raise ValueError("a message needs content (at least 1 character), images or tool_calls")
        return content


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
    tools: list[FunctionTool] = Field(
        default_factory=list, max_length=MAX_TOOLS, description="Functions the model may call."
    )
    tool_choice: ToolChoice | None = Field(
        None, description="Whether or which tool to call; provider default if absent."
    )
    response_format: ResponseFormat | None = Field(None, description="The form of the answer; text if absent.")
    n: int = Field(1, ge=1, le=MAX_CHOICES, description="How many alternative answers (choices) to produce.")
    stop: list[str] = Field(
        default_factory=list, max_length=4, description="Text at which the answer stops (not included)."
    )
    seed: int | None = Field(None, ge=-(2**31), le=2**31 - 1, description="Sampling seed, for repeatable answers.")
    presence_penalty: float | None = Field(None, ge=-2, le=2, description="Penalty for tokens already present.")
    frequency_penalty: float | None = Field(None, ge=-2, le=2, description="Penalty by how often a token appeared.")
    end_user: str | None = Field(
        None, max_length=256, description="The client's label for its own end user, passed on to OpenAI as `user`."
    )
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


class ChatChoice(Contract):
    """One of several answers to a request that asked for more than one."""

    index: int = Field(ge=0, description="Position of this choice, from 0.")
    message: ChatMessage = Field(description="The assistant's answer.")
    finish_reason: FinishReason = Field("stop", description="Why the answer ended.")


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
    choices: list[ChatChoice] = Field(
        default_factory=list,
        max_length=MAX_CHOICES,
        description="With n > 1: every choice, the first being `message` and `finish_reason`; else empty.",
    )


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
    embedding_models: list[ModelInfo] = Field(
        default_factory=list, description="Embedding models (CreateEmbeddings), in failover order."
    )


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
