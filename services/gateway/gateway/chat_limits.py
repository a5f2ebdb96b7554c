"""The limits of a chat request over HTTP, taken from the CompleteChat contract rather than
stated again: the HTTP bodies (POST /v1/chat, the OpenAI-compatible chat completion) declare
their fields with these types, so a body the gateway accepts is one the chat service accepts,
and the OpenAPI document states the contract's bounds."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from common.contracts import ChatMessage, CompleteChat
from common.contracts.chatfeatures import FunctionTool, ToolChoice
from common.errors import NotFound


def limits(field: str) -> tuple[Any, ...]:
    """The constraints (lengths, bounds, pattern) CompleteChat puts on `field`."""
    return tuple(CompleteChat.model_fields[field].metadata)


Messages = Annotated[list[ChatMessage], *limits("messages")]
ModelName = Annotated[str, *limits("model")]
Temperature = Annotated[float, *limits("temperature")]
TopP = Annotated[float, *limits("top_p")]
MaxTokens = Annotated[int, *limits("max_tokens")]
Tools = Annotated[list[FunctionTool], *limits("tools")]
Choices = Annotated[int, *limits("n")]
StopText = Annotated[str, Field(min_length=1, max_length=256)]
Stops = Annotated[list[StopText], *limits("stop")]
Seed = Annotated[int, *limits("seed")]
Penalty = Annotated[float, *limits("presence_penalty")]
EndUser = Annotated[str, *limits("end_user")]


def check_tool_choice(choice: ToolChoice | None, tools: list[FunctionTool]) -> None:
    """A tool choice naming a function is 404 when `tools` has none of that name, as a model that is
    not offered is: a name the request refers to that does not exist."""
    if choice is not None and choice.function is not None and choice.function not in {t.name for t in tools}:
        raise NotFound(
            f"Invalid value for 'tool_choice': no function named '{choice.function}' in 'tools'",
            errors=[{"field": "body.tool_choice", "message": "unknown function", "type": "value_error"}],
        )
