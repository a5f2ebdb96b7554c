"""The limits of a chat request over HTTP, taken from the CompleteChat contract rather than
stated again: the HTTP bodies (POST /v1/chat, the OpenAI-compatible chat completion) declare
their fields with these types, so a body the gateway accepts is one the chat service accepts,
and the OpenAPI document states the contract's bounds."""

from __future__ import annotations

from typing import Annotated, Any

from common.contracts import ChatMessage, CompleteChat


def limits(field: str) -> tuple[Any, ...]:
    """The constraints (lengths, bounds, pattern) CompleteChat puts on `field`."""
    return tuple(CompleteChat.model_fields[field].metadata)


Messages = Annotated[list[ChatMessage], *limits("messages")]
ModelName = Annotated[str, *limits("model")]
Temperature = Annotated[float, *limits("temperature")]
TopP = Annotated[float, *limits("top_p")]
MaxTokens = Annotated[int, *limits("max_tokens")]
