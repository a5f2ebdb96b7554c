"""What a chat answer costs in credits, by model: a price per answer (per choice, when a request
asks for n of them) plus, optionally, a price per 1,000 tokens in and out, and the most answer
tokens a request may ask for.

The reservation is the most an answer can cost, held before any provider is called: the prompt
counted at one token per UTF-8 byte (no tokenizer makes more tokens than bytes) plus a few per
message for its framing, the tool definitions and response schema the same way, each image at
the model's `image_tokens`, and each of the n answers at the `max_tokens` it was sent with. The
commit charges what the answer did cost (the tokens the provider counted, images included),
never more than was held; the rest goes back."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

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
    image_tokens: int = Field(
        765,
        ge=0,
        le=100_000,
        description="Tokens each image in a prompt is held at: the most the model counts for one (OpenAI's "
        "gpt-4o: 85 at `detail: low`, 765 for a 1024 px image at high detail; Gemini: 258 up to 384 px). The "
        "charge is the provider's own count, never above the hold.",
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


def prompt_tokens_bound(messages: Sequence[ChatMessage], *, image_tokens: int = 0) -> int:
    """At least as many tokens as any provider counts for these messages (images at `image_tokens`)."""
    return sum(_message_bytes(m) + len(m.images) * image_tokens + FRAMING_TOKENS for m in messages) + FRAMING_TOKENS


def utf8_len(text: str) -> int:
    """Its length in UTF-8 bytes, without encoding it when it is ASCII (CPython knows that at once)."""
    return len(text) if text.isascii() else len(text.encode())


def _message_bytes(m: ChatMessage) -> int:
    calls = sum(utf8_len(c.id) + len(c.name) + utf8_len(c.arguments) + FRAMING_TOKENS for c in m.tool_calls)
    return utf8_len(m.content) + calls + utf8_len(m.tool_call_id or "")


def definition_tokens(*definitions: Any) -> int:
    """At least as many tokens as a provider counts for tool definitions or a response schema
    (one per byte of their JSON, as for text)."""
    return sum(len(json.dumps(d, ensure_ascii=False).encode()) + FRAMING_TOKENS for d in definitions if d)


def reservation(
    price: ModelPrice,
    *,
    messages: Sequence[ChatMessage],
    max_tokens: int,
    n: int = 1,
    definitions: int = 0,
    prompt_tokens: int | None = None,
) -> int:
    """The most an answer can cost: `n` choices of `max_tokens` each; `definitions`: its tools' and
    schema's tokens; `prompt_tokens`: the messages' `prompt_tokens_bound`, when counted already."""
    if prompt_tokens is None:
        prompt_tokens = prompt_tokens_bound(messages, image_tokens=price.image_tokens)
    tokens = prompt_tokens + definitions + max_tokens * n
    return max(1, _priced(price, tokens=tokens, n=n))


def charge(price: ModelPrice, *, total_tokens: int, reserved: int, n: int = 1) -> int:
    return min(reserved, _priced(price, tokens=total_tokens, n=n))


def embedding_reservation(price: ModelPrice, *, inputs: Sequence[str]) -> int:
    """The most embedding `inputs` can cost: each counted at one token per UTF-8 byte."""
    tokens = sum(utf8_len(text) for text in inputs)
    return max(1, _priced(price, tokens=tokens))


def _priced(price: ModelPrice, *, tokens: int, n: int = 1) -> int:
    """What `n` answers (or one embedding request) of `tokens` in all cost: the request price per
    answer plus the token price, rounded up."""
    return price.per_request * n + math.ceil(price.per_1k_tokens * tokens / 1000)
