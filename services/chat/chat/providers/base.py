"""The one interface every chat provider implements, and what crosses it."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from common.contracts import ChatMessage, FinishReason

_PIECE = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """A conversation and its generation parameters, for one model. None: the provider's default."""

    messages: tuple[ChatMessage, ...]
    model: str
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason = "stop"


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
