"""What the OpenAI-compatible routes answer, as OpenAI's own objects with the platform's few
additions (`provider`, `cached`, `credits`), declared for the OpenAPI document: a client
generated from it reads the same fields an OpenAI client does."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from common.contracts import Usage
from common.contracts.chat import MAX_CHOICES

OpenAIFinish = Literal["stop", "length", "content_filter", "tool_calls"]


class FunctionCallView(BaseModel):
    name: str
    arguments: str = Field(description="JSON text; parse it, the model may not keep to the schema.")


class ToolCallView(BaseModel):
    id: str
    type: Literal["function"]
    function: FunctionCallView


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None = Field(description="The text; null for an answer of tool calls only.")
    refusal: None = Field(description="Always null: the platform does not refuse in-band.")
    tool_calls: list[ToolCallView] | None = Field(None, description="Functions the model asks to be called.")


class CompletionChoice(BaseModel):
    index: int = Field(ge=0)
    message: AssistantMessage
    logprobs: None
    finish_reason: OpenAIFinish


class ChatCompletionView(BaseModel):
    """A `chat.completion` object."""

    id: str = Field(pattern=r"^chatcmpl-[0-9a-f]{32}$")
    object: Literal["chat.completion"]
    created: int = Field(ge=0, description="Unix seconds.")
    model: str
    choices: list[CompletionChoice] = Field(min_length=1, max_length=MAX_CHOICES, description="`n` of them.")
    usage: Usage
    system_fingerprint: None
    provider: str = Field(description="The provider that answered.")
    cached: bool = Field(description="Whether the answer came from the prompt cache.")
    credits: int = Field(ge=0, description="Credits charged for this answer.")
    thread_id: str | None = Field(None, description="Not OpenAI's: the thread this answer was kept in, when named.")


class ModelView(BaseModel):
    id: str
    object: Literal["model"]
    created: int = Field(ge=0)
    owned_by: str = Field(description="The provider that serves it.")
    kind: Literal["chat", "embedding"] = Field(
        description="What it answers: chat completions, or embeddings (`POST /v1/embeddings`); not in OpenAI's schema."
    )


class ModelListView(BaseModel):
    object: Literal["list"]
    data: list[ModelView]


STREAM = (
    "Server-sent events: `data: {chat.completion.chunk}` per piece of the first choice's text, its tool "
    "calls and each other choice (n > 1) whole in one chunk each, a chunk with `finish_reason` per choice "
    "(and with `stream_options.include_usage` one with `usage` and `credits`), then `data: [DONE]`; an "
    "error after the first event is `data: {OpenAIError}`."
)
