"""The one interface every chat provider implements, and what crosses it."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from common.contracts import ChatMessage, FinishReason
from common.contracts.chatfeatures import FunctionTool, ResponseFormat, ToolCall, ToolChoice

_PIECE = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """A conversation and its generation parameters, for one model. None: the provider's default."""

    messages: tuple[ChatMessage, ...]
    model: str
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    end_user: str | None = None

    @property
    def images(self) -> int:
        return sum(len(m.images) for m in self.messages)


@dataclass(frozen=True, slots=True)
class Choice:
    """One more answer to a request for several (n > 1): the first is the ProviderAnswer itself."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    """An answer: its text and tool calls (the first choice), the other choices, and the usage of all."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason = "stop"
    tool_calls: tuple[ToolCall, ...] = ()
    more: tuple[Choice, ...] = ()

    @property
    def said(self) -> bool:
        """Whether it says anything: text or a tool call."""
        return bool(self.text or self.tool_calls)


class ProviderError(Exception):
    """A provider gave no usable answer.

    `retryable`: the same call may well succeed later (429, 5xx, a timeout, a dropped connection,
    a body that does not parse). `counts`: the failure is the provider's, so it counts towards
    its circuit breaker (a 400 for a request it cannot take does not). `timed_out`: no answer in
    time, which may be the request's own doing (a huge one), so it counts once per user."""

    def __init__(
        self,
        provider: str,
        detail: str,
        *,
        retryable: bool,
        status: int | None = None,
        counts: bool = True,
        timed_out: bool = False,
    ) -> None:
        self.provider = provider
        self.detail = detail
        self.retryable = retryable
        self.status = status
        self.counts = counts
        self.timed_out = timed_out
        super().__init__(f"{provider}: {detail}")


# A stream yields text pieces as they arrive, then one ProviderAnswer with the whole text and usage.
ProviderStream = AsyncGenerator[str | ProviderAnswer]


class ChatProvider(Protocol):
    name: str
    default_model: str

    def owns(self, model: str) -> bool:
        """Whether `model` is one of this provider's (it then goes first in the failover order)."""
        ...

    def model_for(self, requested: str) -> str:
        """The model this provider answers `requested` with: itself if it owns it, else its default."""
        ...

    async def complete(self, request: ProviderRequest) -> ProviderAnswer: ...

    def stream(self, request: ProviderRequest) -> ProviderStream: ...

    async def aclose(self) -> None: ...


def count_tokens(text: str) -> int:
    """A rough token count (words), for providers or paths that report none."""
    return len(text.split())


def pieces(text: str) -> list[str]:
    """Stream pieces of a known text: one word each with its trailing space; joined they give it back."""
    return _PIECE.findall(text) or [text]


def status_retryable(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500
