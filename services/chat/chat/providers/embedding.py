"""The one interface every embedding provider implements, and what crosses it.

An embedding request never changes model on the way: vectors of two models are not comparable,
so a request is only ever sent to the provider that owns its model (see `chat.embeddings`)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    inputs: tuple[str, ...]
    model: str
    dimensions: int | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingAnswer:
    vectors: tuple[str, ...]  # base64 of little-endian float32, one per input (see `pack`)
    model: str
    prompt_tokens: int


class EmbeddingProvider(Protocol):
    name: str
    default_model: str

    def owns(self, model: str) -> bool:
        """Whether `model` is one of this provider's embedding models."""
        ...

    def model_for(self, requested: str) -> str:
        """The model this provider embeds `requested` with: always `requested` (models are never swapped)."""
        ...

    def max_dimensions(self, model: str) -> int | None:
        """The longest vector `model` gives, the most `dimensions` may ask for; None: not known here."""
        ...

    async def embed(self, request: EmbeddingRequest) -> EmbeddingAnswer: ...

    async def aclose(self) -> None: ...


def pack(values: Sequence[float]) -> str:
    """A vector as OpenAI's `encoding_format: base64` sends it: little-endian float32, base64."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def unpack(vector: str) -> list[float]:
    raw = base64.b64decode(vector)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))
