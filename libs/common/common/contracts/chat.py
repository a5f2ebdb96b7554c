"""Chat messages: the CompleteChat command and its ChatCompletion reply."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from common.contracts.envelope import Contract

ChatRole = Literal["system", "user", "assistant"]


class ChatMessage(Contract):
    role: ChatRole = Field(description="Who said it.", examples=["user"])
    content: str = Field(min_length=1, max_length=32_000, description="The text.", examples=["Hello!"])


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
