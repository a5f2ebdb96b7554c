"""Embedding messages: the CreateEmbeddings command and its Embeddings reply.

Vectors travel as OpenAI's `base64` encoding does them (each one the little-endian float32
bytes of its values, base64-encoded): a quarter of the size of JSON numbers, and what the
`openai` SDK asks for by default, so the gateway passes them on untouched."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from common.contracts.envelope import Contract

# OpenAI's own limits: 2,048 inputs a request; an input of 8,192 tokens is at most ~32,000 characters.
MAX_INPUTS = 2048
MAX_INPUT_CHARS = 32_000
MAX_DIMENSIONS = 4096
# The most numbers one reply carries (inputs times dimensions), which bounds its message at 16 MiB
# of float32 (22 MiB in base64): 2,048 vectors of 2,048, or 1,365 of 3,072.
MAX_VALUES = 2048 * 2048

EmbeddingInput = Annotated[str, Field(min_length=1, max_length=MAX_INPUT_CHARS)]


class CreateEmbeddings(Contract):
    """Command: an embedding vector for each input text."""

    input: list[EmbeddingInput] = Field(
        min_length=1, max_length=MAX_INPUTS, description="The texts to embed, each non-empty.", examples=[["Hello!"]]
    )
    model: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description="Embedding model to use.",
        examples=["text-embedding-3-small"],
    )
    dimensions: int | None = Field(
        None, ge=1, le=MAX_DIMENSIONS, description="Length of each vector; the model's own when absent."
    )


class EmbeddingUsage(Contract):
    prompt_tokens: int = Field(ge=0, description="Tokens of the inputs, as the provider counted them.")
    total_tokens: int = Field(ge=0)


class Embeddings(Contract):
    """Reply to CreateEmbeddings."""

    vectors: list[str] = Field(
        description="One vector per input, in input order: base64 of its little-endian float32 values."
    )
    model: str = Field(description="Model that embedded.", examples=["text-embedding-3-small"])
    provider: str = Field(description="Provider that embedded.", examples=["openai", "gemini", "local"])
    usage: EmbeddingUsage
    credits: int = Field(0, ge=0, description="Credits charged for these embeddings.")
