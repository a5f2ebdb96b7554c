"""What a chat answer costs in credits, by model: a price per request plus, optionally, a price
per 1,000 tokens in and out, and the most answer tokens a request may ask for.

The reservation is the most an answer can cost, held before any provider is called: the prompt
counted at one token per UTF-8 byte (no tokenizer makes more tokens than bytes) plus a few per
message for its framing, and the answer at the `max_tokens` it was sent with. The commit charges
what the answer did cost, never more than was held; the rest goes back."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.contracts import ChatMessage

# Role markers and separators a provider adds around each message (OpenAI's are 3-4), generously.
FRAMING_TOKENS = 8


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_request: int = Field(1, ge=0, description="Credits per answer.")
    per_1k_tokens: int = Field(0, ge=0, description="Credits per 1,000 tokens in and out.")
    max_tokens: int = Field(
        4096,
        ge=1,
        le=1_000_000,
        description="Most answer tokens a request may ask for; a request that names none is sent with this.",
    )
    context_window: int = Field(
        128_000,
        ge=2,
        le=10_000_000,
        description="Most tokens a threaded request may send and get back, counted as for the reservation (one "
        "per UTF-8 byte, so generous): older turns of the thread are left out to fit it.",
    )

    @model_validator(mode="after")
    def _room_for_a_prompt(self) -> ModelPrice:
        if self.max_tokens >= self.context_window:
            raise ValueError(
                f"max_tokens {self.max_tokens} leaves no room for a prompt in a {self.context_window} window"
            )
        return self


def prompt_tokens_bound(messages: Sequence[ChatMessage]) -> int:
    """At least as many tokens as any provider counts for these messages."""
    return sum(len(m.content.encode()) + FRAMING_TOKENS for m in messages) + FRAMING_TOKENS


def reservation(price: ModelPrice, *, messages: Sequence[ChatMessage], max_tokens: int) -> int:
    tokens = prompt_tokens_bound(messages) + max_tokens
    return max(1, price.per_request + math.ceil(price.per_1k_tokens * tokens / 1000))


def charge(price: ModelPrice, *, total_tokens: int, reserved: int) -> int:
    return min(reserved, price.per_request + math.ceil(price.per_1k_tokens * total_tokens / 1000))


def embedding_reservation(price: ModelPrice, *, inputs: Sequence[str]) -> int:
    """The most embedding `inputs` can cost: each counted at one token per UTF-8 byte."""
    tokens = sum(len(text.encode()) for text in inputs)
    return max(1, price.per_request + math.ceil(price.per_1k_tokens * tokens / 1000))
