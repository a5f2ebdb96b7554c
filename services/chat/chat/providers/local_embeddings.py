"""Offline embeddings: vectors made on this machine, so the endpoint works without keys.

A vector is a deterministic function of its text (hashed words, normalised), so the same text
always gets the same vector and texts sharing words point in similar directions."""

from __future__ import annotations

import hashlib
import math

from chat.providers.base import count_tokens
from chat.providers.embedding import EmbeddingAnswer, EmbeddingRequest, pack

MODEL = "local-embed-1"
DIMENSIONS = 256


class LocalEmbeddings:
    name = "local"
    default_model = MODEL

    def owns(self, model: str) -> bool:
        return model == MODEL

    def model_for(self, requested: str) -> str:
        return requested

    def max_dimensions(self, model: str) -> int | None:
        return None  # any length the contract allows

    async def embed(self, request: EmbeddingRequest) -> EmbeddingAnswer:
        size = request.dimensions or DIMENSIONS
        vectors = tuple(pack(vector(text, size)) for text in request.inputs)
        tokens = sum(max(1, count_tokens(text)) for text in request.inputs)
        return EmbeddingAnswer(vectors=vectors, model=request.model, prompt_tokens=tokens)

    async def aclose(self) -> None:
        return None


def vector(text: str, size: int) -> list[float]:
    values = [0.0] * size
    for word in text.lower().split() or [text]:
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % size
        values[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
